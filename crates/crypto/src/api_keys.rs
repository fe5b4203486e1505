use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use eagate_domain::UnexpectedError;
use eagate_domain::access::{ApiKeyFactory, ApiKeyHash, ApiKeySecret, GeneratedApiKey};
use sha2::{Digest, Sha256};

use crate::random::random_bytes;

/// Characters of the random part: base64url (no padding) of 32 bytes.
const BODY_LEN: usize = 43;
/// Characters of the checksum: base64url of 4 bytes.
const CHECKSUM_LEN: usize = 6;

/// The server secret that keys the API-key hashes is too short.
#[derive(Debug, thiserror::Error)]
#[error("the API key secret must be base64url of at least 32 bytes (got {0} bytes)")]
pub struct ApiKeySecretTooShort(pub usize);

/// API keys: `eag_live_` + base64url of 32 bytes from the OS CSPRNG + a
/// 6-character checksum (base64url of the first 4 bytes of SHA-256 over
/// everything before it), so a scanner — and the server, before any
/// database read — can tell a real key from a look-alike:
/// `eag_live_[A-Za-z0-9_-]{49}`.
///
/// Stored as HMAC-SHA256 under a server secret (`EAGATE_API_KEY_SECRET`):
/// a key has 256 random bits, so a slow password hash would add nothing
/// against guessing, while a fast one keeps each request cheap; the server
/// secret makes a stolen table useless on its own.
#[derive(Clone)]
pub struct HmacApiKeys {
    key: hmac::Key,
}

impl std::fmt::Debug for HmacApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HmacApiKeys(<redacted>)")
    }
}

impl HmacApiKeys {
    /// Keys the hashes with `secret` (at least 32 bytes).
    pub fn new(secret: &[u8]) -> Result<Self, ApiKeySecretTooShort> {
        if secret.len() < 32 {
            return Err(ApiKeySecretTooShort(secret.len()));
        }
        Ok(Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        })
    }

    /// Parses the configured secret: base64url (padding optional).
    pub fn from_base64url(text: &str) -> Result<Self, String> {
        let bytes = URL_SAFE_NO_PAD
            .decode(text.trim().trim_end_matches('='))
            .map_err(|e| format!("not base64url: {e}"))?;
        Self::new(&bytes).map_err(|e| e.to_string())
    }

    /// A new secret for `EAGATE_API_KEY_SECRET`: base64url of 32 random bytes.
    pub fn generate_secret() -> Result<String, UnexpectedError> {
        Ok(URL_SAFE_NO_PAD.encode(random_bytes::<32>()?))
    }
}

fn checksum(prefix_and_body: &str) -> String {
    let digest = Sha256::digest(prefix_and_body.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..4])
}

/// Whether `presented` has the shape of a key and a matching checksum.
pub fn is_well_formed_api_key(presented: &str) -> bool {
    let Some(rest) = presented.strip_prefix(ApiKeySecret::PREFIX) else {
        return false;
    };
    if rest.len() != BODY_LEN + CHECKSUM_LEN
        || !rest
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
    {
        return false;
    }
    let (signed, sum) = presented.split_at(presented.len() - CHECKSUM_LEN);
    // Not secret: a checksum only catches typos and look-alikes.
    checksum(signed) == sum
}

impl ApiKeyFactory for HmacApiKeys {
    fn generate(&self) -> Result<GeneratedApiKey, UnexpectedError> {
        let signed = format!(
            "{}{}",
            ApiKeySecret::PREFIX,
            URL_SAFE_NO_PAD.encode(random_bytes::<32>()?)
        );
        let secret = format!("{signed}{}", checksum(&signed));
        let hash = self
            .hash(&secret)
            .ok_or_else(|| UnexpectedError::msg("a generated API key is not well-formed"))?;
        Ok(GeneratedApiKey {
            secret: ApiKeySecret::new(secret),
            hash,
        })
    }

    fn hash(&self, presented: &str) -> Option<ApiKeyHash> {
        is_well_formed_api_key(presented)
            .then(|| ApiKeyHash::new(hmac::sign(&self.key, presented.as_bytes()).as_ref().to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> HmacApiKeys {
        HmacApiKeys::new(&[7; 32]).unwrap()
    }

    #[test]
    fn keys_have_the_documented_shape() {
        let pattern_ok = |s: &str| {
            s.len() == "eag_live_".len() + 49
                && s.starts_with("eag_live_")
                && s["eag_live_".len()..]
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        };
        let a = keys().generate().unwrap();
        let b = keys().generate().unwrap();
        assert!(pattern_ok(a.secret.expose()), "{}", a.secret.expose().len());
        assert_ne!(a.secret, b.secret);
        assert_eq!(a.hash.as_bytes().len(), 32);
        assert_eq!(
            keys().hash(a.secret.expose()),
            Some(a.hash.clone()),
            "hashing is stable"
        );
        assert_ne!(
            HmacApiKeys::new(&[8; 32]).unwrap().hash(a.secret.expose()),
            Some(a.hash),
            "the server secret keys the hash"
        );
    }

    #[test]
    fn look_alikes_fail_the_checksum_before_any_lookup() {
        let key = keys().generate().unwrap();
        let secret = key.secret.expose();
        let mut typo = secret.to_owned().into_bytes();
        let i = "eag_live_".len() + 5;
        typo[i] = if typo[i] == b'A' { b'B' } else { b'A' };
        let typo = String::from_utf8(typo).unwrap();
        assert_eq!(keys().hash(&typo), None, "one character changed");
        assert_eq!(keys().hash(&secret[..secret.len() - 1]), None, "truncated");
        assert_eq!(keys().hash(&format!("{secret}A")), None, "too long");
        assert_eq!(keys().hash(&secret.replace("eag_live_", "eag_test_")), None);
        assert_eq!(
            keys().hash(&format!(
                "eag_live_{}",
                URL_SAFE_NO_PAD.encode(key.hash.as_bytes())
            )),
            None,
            "the stored hash is not a key"
        );
    }

    #[test]
    fn the_server_secret_is_at_least_32_bytes_of_base64url() {
        assert!(HmacApiKeys::new(&[1; 31]).is_err());
        let generated = HmacApiKeys::generate_secret().unwrap();
        assert!(HmacApiKeys::from_base64url(&generated).is_ok());
        assert!(
            HmacApiKeys::from_base64url("c2hvcnQ")
                .unwrap_err()
                .contains("at least 32 bytes")
        );
        assert!(
            HmacApiKeys::from_base64url("not base64!")
                .unwrap_err()
                .contains("base64url")
        );
        assert_eq!(format!("{:?}", keys()), "HmacApiKeys(<redacted>)");
    }
}
