use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use eagate_domain::UnexpectedError;
use eagate_domain::account::{RefreshToken, RefreshTokenFactory, RefreshTokenHash};
use sha2::{Digest, Sha256};

use crate::random::random_bytes;

/// Refresh tokens `eagr_<43 base64url chars>` carrying 256 random bits. A
/// fast digest is the right storage form here: unlike passwords the tokens
/// are uniformly random, so SHA-256 cannot be brute-forced.
#[derive(Debug, Clone, Copy, Default)]
pub struct OpaqueRefreshTokens;

impl OpaqueRefreshTokens {
    pub const PREFIX: &'static str = "eagr_";
}

impl RefreshTokenFactory for OpaqueRefreshTokens {
    fn generate(&self) -> Result<RefreshToken, UnexpectedError> {
        let bytes = random_bytes::<32>()?;
        Ok(RefreshToken::new(format!(
            "{}{}",
            Self::PREFIX,
            URL_SAFE_NO_PAD.encode(bytes)
        )))
    }

    fn digest(&self, token: &str) -> RefreshTokenHash {
        RefreshTokenHash::new(Sha256::digest(token.as_bytes()).to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_prefixed_and_digest_deterministically() {
        let f = OpaqueRefreshTokens;
        let a = f.generate().unwrap();
        let b = f.generate().unwrap();
        assert_ne!(a, b);
        assert!(a.expose().starts_with("eagr_"));
        assert_eq!(a.expose().len(), 5 + 43);
        assert_eq!(f.digest(a.expose()), f.digest(a.expose()));
        assert_ne!(f.digest(a.expose()), f.digest(b.expose()));
        assert_eq!(f.digest(a.expose()).as_bytes().len(), 32);
    }
}
