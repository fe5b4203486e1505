//! Device secrets, sealing and signatures without cryptography.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::device::*;
use crate::error::UnexpectedError;

/// Device secrets `eags_fake-<n>`, fingerprinted as `fp-<n>`.
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
        SecretFingerprint::new(secret.expose().replace("eags_fake-", "fp-"))
    }
}

/// A transparent "sealer": `<device id>|<secret>` under a named key. It
/// binds the device like the real one, and can switch keys.
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
}

impl SecretSealer for FakeSealer {
    fn seal(&self, device: DeviceId, secret: &DeviceSecret) -> Result<SealedSecret, UnexpectedError> {
        Ok(SealedSecret {
            key_id: self.key_id.clone(),
            ciphertext: format!("{device}|{}", secret.expose()).into_bytes(),
        })
    }

    fn open(&self, device: DeviceId, sealed: &SealedSecret) -> Result<DeviceSecret, OpenSecretError> {
        if !self.known.contains(&sealed.key_id) {
            return Err(OpenSecretError::UnknownKey(sealed.key_id.clone()));
        }
        let text = String::from_utf8(sealed.ciphertext.clone()).map_err(|_| OpenSecretError::Corrupt)?;
        let (bound, secret) = text.split_once('|').ok_or(OpenSecretError::Corrupt)?;
        if bound != device.to_string() {
            return Err(OpenSecretError::Corrupt);
        }
        Ok(DeviceSecret::new(secret.to_owned()))
    }

    fn current_key_id(&self) -> &str {
        &self.key_id
    }
}

/// A stand-in MAC for domain tests (the domain has no HMAC): 32 bytes
/// derived from the secret and the message with std's hasher. Not secure;
/// only deterministic.
pub fn fake_mac(secret: &str, message: &str) -> [u8; 32] {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut out = [0u8; 32];
    for (i, chunk) in out.chunks_mut(8).enumerate() {
        let mut h = DefaultHasher::new();
        (i, secret, message).hash(&mut h);
        chunk.copy_from_slice(&h.finish().to_le_bytes());
    }
    out
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
