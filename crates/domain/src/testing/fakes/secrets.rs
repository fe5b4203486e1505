//! Device secrets, sealing and signatures without cryptography: readable
//! and deterministic, yet honest about what the contracts check (a sealed
//! secret or a fingerprint never contains the secret; tampering is noticed).

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::device::*;
use crate::error::UnexpectedError;

/// 32 bytes mixed from `item` with std's hasher. Not secure; only
/// deterministic and sensitive to every bit of the input.
pub(super) fn hash32(item: impl Hash) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, chunk) in out.chunks_mut(8).enumerate() {
        let mut h = DefaultHasher::new();
        (i, &item).hash(&mut h);
        chunk.copy_from_slice(&h.finish().to_le_bytes());
    }
    out
}

pub(super) use eagate_protocol::hex;

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| text.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
        .collect()
}

/// Device secrets `eags_fake-<n>`, fingerprinted as `fp-<n>` (any other
/// secret as `fp-<hash>`).
#[derive(Debug, Clone, Default)]
pub struct FakeDeviceSecrets(Arc<AtomicU64>);

impl DeviceSecretFactory for FakeDeviceSecrets {
    fn generate(&self) -> Result<DeviceSecret, UnexpectedError> {
        Ok(DeviceSecret::new(format!(
            "eags_fake-{}",
            self.0.fetch_add(1, Ordering::Relaxed) + 1
        )))
    }

    fn fingerprint(&self, secret: &DeviceSecret) -> SecretFingerprint {
        let fingerprint = match secret.expose().strip_prefix("eags_fake-") {
            Some(n) if n.bytes().all(|b| b.is_ascii_digit()) => format!("fp-{n}"),
            _ => format!("fp-{}", &hex(&hash32(secret.expose()))[..16]),
        };
        SecretFingerprint::new(fingerprint)
    }
}

/// A readable "sealer": `<device id>|<secret in hex>|<check>` under a named
/// key, where the check covers the key, the device and the secret. It binds
/// the device and notices tampering like the real one, and can switch keys.
#[derive(Debug, Clone)]
pub struct FakeSealer {
    pub key_id: String,
    /// Keys that can still open.
    pub known: Vec<String>,
}

impl FakeSealer {
    pub fn new(key_id: &str) -> Self {
        Self {
            key_id: key_id.to_owned(),
            known: vec![key_id.to_owned()],
        }
    }

    /// A sealer whose current key is `key_id` that still opens what
    /// `older` keys sealed (after a master-key rotation).
    pub fn rotated(key_id: &str, older: &[&str]) -> Self {
        let mut sealer = Self::new(key_id);
        sealer.known.extend(older.iter().map(|k| (*k).to_owned()));
        sealer
    }

    fn check(key_id: &str, bound: &str, secret_hex: &str) -> String {
        hex(&hash32((key_id, bound, secret_hex))[..8])
    }
}

impl SecretSealer for FakeSealer {
    fn seal(&self, device: DeviceId, secret: &DeviceSecret) -> Result<SealedSecret, UnexpectedError> {
        let secret_hex = hex(secret.expose().as_bytes());
        let check = Self::check(&self.key_id, &device.to_string(), &secret_hex);
        Ok(SealedSecret {
            key_id: self.key_id.clone(),
            ciphertext: format!("{device}|{secret_hex}|{check}").into_bytes(),
        })
    }

    fn open(&self, device: DeviceId, sealed: &SealedSecret) -> Result<DeviceSecret, OpenSecretError> {
        if !self.known.contains(&sealed.key_id) {
            return Err(OpenSecretError::UnknownKey(sealed.key_id.clone()));
        }
        let text = String::from_utf8(sealed.ciphertext.clone()).map_err(|_| OpenSecretError::Corrupt)?;
        let mut parts = text.split('|');
        let (Some(bound), Some(secret_hex), Some(check), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(OpenSecretError::Corrupt);
        };
        if bound != device.to_string() || check != Self::check(&sealed.key_id, bound, secret_hex) {
            return Err(OpenSecretError::Corrupt);
        }
        let secret = unhex(secret_hex)
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or(OpenSecretError::Corrupt)?;
        Ok(DeviceSecret::new(secret))
    }

    fn current_key_id(&self) -> &str {
        &self.key_id
    }
}

/// A stand-in MAC for domain tests (the domain has no HMAC): 32 bytes
/// derived from the secret and the message with std's hasher. Not secure;
/// only deterministic.
pub fn fake_mac(secret: &str, message: &str) -> [u8; 32] {
    hash32((secret, message))
}

/// Verifies [`fake_mac`]s, opening secrets with a [`FakeSealer`].
#[derive(Debug, Clone)]
pub struct FakeVerifier(pub FakeSealer);

impl SignatureVerifier for FakeVerifier {
    fn verify(
        &self,
        device: DeviceId,
        sealed: &SealedSecret,
        message: &str,
        signature: &[u8; 32],
    ) -> Result<bool, UnexpectedError> {
        let secret = self.0.open(device, sealed).map_err(UnexpectedError::new)?;
        Ok(fake_mac(secret.expose(), message) == *signature)
    }
}
