//! Access and refresh tokens without cryptography.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::account::*;
use crate::error::UnexpectedError;

/// Unsigned access tokens: `fake.<user>.<session>.<iat>.<exp>`. Verification
/// checks only the shape and the expiry.
#[derive(Debug, Clone, Copy, Default)]
pub struct FakeAccessTokens;

impl AccessTokenIssuer for FakeAccessTokens {
    fn issue(&self, c: &AccessClaims) -> Result<AccessToken, UnexpectedError> {
        Ok(AccessToken::new(format!(
            "fake.{}.{}.{}.{}",
            c.user_id,
            c.session_id,
            c.issued_at.timestamp(),
            c.expires_at.timestamp()
        )))
    }

    fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<AccessClaims, InvalidAccessToken> {
        let parts: Vec<&str> = token.split('.').collect();
        let [_, user, session, iat, exp] = parts.as_slice() else {
            return Err(InvalidAccessToken);
        };
        let uuid = |s: &str| Uuid::parse_str(s).map_err(|_| InvalidAccessToken);
        let time = |s: &str| {
            s.parse::<i64>()
                .ok()
                .and_then(|t| DateTime::from_timestamp(t, 0))
                .ok_or(InvalidAccessToken)
        };
        let claims = AccessClaims {
            user_id: UserId::from_uuid(uuid(user)?),
            session_id: SessionId::from_uuid(uuid(session)?),
            issued_at: time(iat)?,
            expires_at: time(exp)?,
        };
        if claims.expires_at <= now {
            return Err(InvalidAccessToken);
        }
        Ok(claims)
    }
}

/// Refresh tokens `rt-1`, `rt-2`, ... stored under `digest:<token>`.
#[derive(Debug, Clone, Default)]
pub struct FakeRefreshTokens(Arc<AtomicU64>);

impl RefreshTokenFactory for FakeRefreshTokens {
    fn generate(&self) -> Result<RefreshToken, UnexpectedError> {
        Ok(RefreshToken::new(format!(
            "rt-{}",
            self.0.fetch_add(1, Ordering::Relaxed) + 1
        )))
    }

    fn digest(&self, token: &str) -> RefreshTokenHash {
        RefreshTokenHash::new(format!("digest:{token}").into_bytes())
    }
}
