use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use eagate_domain::UnexpectedError;
use eagate_domain::device::{DeviceSecret, DeviceSecretFactory, SecretFingerprint};
use sha2::{Digest, Sha256};

use crate::random::random_bytes;

/// Device secrets: `eags_` + base64url (no padding) of 32 bytes from the OS
/// CSPRNG. Fingerprint: `sha256:` + the first 16 hex digits of SHA-256 over
/// the secret's ASCII bytes — enough to tell secrets apart, useless for
/// recovering one (the secret has 256 bits of entropy).
#[derive(Debug, Clone, Copy, Default)]
pub struct RandomDeviceSecrets;

/// The fingerprint of a device secret, as shown by the API.
pub fn secret_fingerprint(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    format!("sha256:{}", eagate_protocol::hex(&digest[..8]))
}

impl DeviceSecretFactory for RandomDeviceSecrets {
    fn generate(&self) -> Result<DeviceSecret, UnexpectedError> {
        let bytes = random_bytes::<32>()?;
        Ok(DeviceSecret::new(format!(
            "{}{}",
            DeviceSecret::PREFIX,
            URL_SAFE_NO_PAD.encode(bytes)
        )))
    }

    fn fingerprint(&self, secret: &DeviceSecret) -> SecretFingerprint {
        SecretFingerprint::new(secret_fingerprint(secret.expose()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_have_the_documented_shape() {
        let f = RandomDeviceSecrets;
        let a = f.generate().unwrap();
        let b = f.generate().unwrap();
        assert_ne!(a, b);
        let body = a.expose().strip_prefix("eags_").unwrap();
        assert_eq!(body.len(), 43);
        assert_eq!(URL_SAFE_NO_PAD.decode(body).unwrap().len(), 32);
        assert!(
            body.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
    }

    #[test]
    fn fingerprints_are_short_stable_and_distinct() {
        let f = RandomDeviceSecrets;
        let a = f.generate().unwrap();
        assert_eq!(f.fingerprint(&a), f.fingerprint(&a));
        assert_ne!(f.fingerprint(&a), f.fingerprint(&f.generate().unwrap()));
        assert_eq!(f.fingerprint(&a).as_str().len(), "sha256:".len() + 16);
        // A known value (computed independently), so other implementations
        // can check theirs.
        assert_eq!(
            secret_fingerprint("eags_TESTONLY-0123456789abcdefghijklmnopqrstuvwxyzAB"),
            "sha256:e26b5924c1678cf8"
        );
    }
}
