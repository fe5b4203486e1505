use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use eagate_domain::UnexpectedError;
use eagate_domain::device::{DeviceId, SealedSecret, SecretSealer, SignatureVerifier};
use eagate_protocol::SigningKey;

use crate::XChaChaSealer;

/// Cached keys beyond this many are dropped wholesale (they are cheap to
/// rebuild; the bound only caps memory).
const MAX_CACHED_KEYS: usize = 100_000;

/// Per device: the sealed bytes a key was opened from, and the ready key.
type KeyCache = HashMap<DeviceId, (Vec<u8>, SigningKey)>;

/// [`SignatureVerifier`] with HMAC-SHA256. Opening a sealed secret and
/// scheduling its HMAC key happen once per secret: the ready key is cached
/// in memory by device, tagged with the exact sealed bytes it came from, so
/// a rotated or re-sealed secret is never served stale. The cache is local
/// to this instance and holds nothing another instance needs.
#[derive(Clone)]
pub struct HmacVerifier {
    sealer: XChaChaSealer,
    keys: Arc<RwLock<KeyCache>>,
}

impl std::fmt::Debug for HmacVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HmacVerifier").finish_non_exhaustive()
    }
}

impl HmacVerifier {
    pub fn new(sealer: XChaChaSealer) -> Self {
        Self {
            sealer,
            keys: Arc::default(),
        }
    }

    fn key_for(&self, device: DeviceId, sealed: &SealedSecret) -> Result<SigningKey, UnexpectedError> {
        if let Ok(keys) = self.keys.read()
            && let Some((tag, key)) = keys.get(&device)
            && *tag == sealed.ciphertext
        {
            return Ok(key.clone());
        }
        let secret = self
            .sealer
            .open(device, sealed)
            .map_err(|e| UnexpectedError::msg(format!("cannot open the secret of device {device}: {e}")))?;
        let key = SigningKey::new(secret.expose());
        if let Ok(mut keys) = self.keys.write() {
            if keys.len() >= MAX_CACHED_KEYS {
                keys.clear();
            }
            keys.insert(device, (sealed.ciphertext.clone(), key.clone()));
        }
        Ok(key)
    }
}

impl SignatureVerifier for HmacVerifier {
    fn verify(
        &self,
        device: DeviceId,
        sealed: &SealedSecret,
        message: &str,
        signature: &[u8; 32],
    ) -> Result<bool, UnexpectedError> {
        Ok(self.key_for(device, sealed)?.verify(message, signature))
    }
}

#[cfg(test)]
mod tests {
    use eagate_domain::device::DeviceSecret;
    use uuid::Uuid;

    use super::*;
    use crate::MasterKeyring;

    fn sealer() -> XChaChaSealer {
        XChaChaSealer::new(MasterKeyring::parse(&MasterKeyring::generate_entry("k1").unwrap()).unwrap())
    }

    #[test]
    fn verifies_the_published_vectors_through_a_sealed_secret() {
        let doc: serde_json::Value =
            serde_json::from_str(include_str!("../../../docs/protocol-vectors.json")).unwrap();
        let sealer = sealer();
        let verifier = HmacVerifier::new(sealer.clone());
        let device = DeviceId::from_uuid(doc["device_id"].as_str().unwrap().parse().unwrap());
        let sealed = sealer
            .seal(
                device,
                &DeviceSecret::new(doc["secret"].as_str().unwrap().to_owned()),
            )
            .unwrap();
        for v in doc["vectors"].as_array().unwrap() {
            let message = v["string_to_sign"].as_str().unwrap();
            let mac = eagate_protocol::parse_signature(v["signature"].as_str().unwrap()).unwrap();
            assert!(
                verifier.verify(device, &sealed, message, &mac).unwrap(),
                "{}",
                v["name"]
            );
            let mut wrong = mac;
            wrong[31] ^= 1;
            assert!(!verifier.verify(device, &sealed, message, &wrong).unwrap());
        }
    }

    #[test]
    fn a_rotated_secret_is_never_served_from_the_cache() {
        let sealer = sealer();
        let verifier = HmacVerifier::new(sealer.clone());
        let device = DeviceId::from_uuid(Uuid::now_v7());
        let old = sealer
            .seal(device, &DeviceSecret::new("eags_old".into()))
            .unwrap();
        let new = sealer
            .seal(device, &DeviceSecret::new("eags_new".into()))
            .unwrap();
        let mac_new = SigningKey::new("eags_new").sign("m");
        let mac_old = SigningKey::new("eags_old").sign("m");
        assert!(verifier.verify(device, &old, "m", &mac_old).unwrap());
        assert!(!verifier.verify(device, &new, "m", &mac_old).unwrap());
        assert!(verifier.verify(device, &new, "m", &mac_new).unwrap());
        assert!(verifier.verify(device, &old, "m", &mac_old).unwrap());
        // A secret sealed for another device does not open.
        assert!(
            verifier
                .verify(DeviceId::from_uuid(Uuid::now_v7()), &old, "m", &mac_old)
                .is_err()
        );
    }
}
