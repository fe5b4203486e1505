//! Access and refresh tokens without cryptography.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use super::secrets::{hash32, hex};
use crate::account::*;
use crate::error::UnexpectedError;

/// Readable access tokens: `fake.<user>.<session>.<iat>.<exp>.<check>`,
/// the check a hash of the rest (a stand-in for the signature, so a changed
/// token is refused). Verification checks the shape, the check and the
/// lifetime (allowing a minute of clock skew for `iat`, as the real one).
#[derive(Debug, Clone, Copy, Default)]
pub struct FakeAccessTokens;

impl FakeAccessTokens {
    fn check(payload: &str) -> String {
        hex(&hash32(("fake access token", payload))[..8])
    }
}

impl AccessTokenIssuer for FakeAccessTokens {
    fn issue(&self, c: &AccessClaims) -> Result<AccessToken, UnexpectedError> {
        let payload = format!(
            "fake.{}.{}.{}.{}",
            c.user_id,
            c.session_id,
            c.issued_at.timestamp(),
            c.expires_at.timestamp()
        );
        let check = Self::check(&payload);
        Ok(AccessToken::new(format!("{payload}.{check}")))
    }

    fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<AccessClaims, InvalidAccessToken> {
        let (payload, check) = token.rsplit_once('.').ok_or(InvalidAccessToken)?;
        if check != Self::check(payload) {
            return Err(InvalidAccessToken);
        }
        let parts: Vec<&str> = payload.split('.').collect();
        let ["fake", user, session, iat, exp] = parts.as_slice() else {
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
        if claims.expires_at <= now
            || claims.issued_at > now + Duration::seconds(60)
            || claims.issued_at >= claims.expires_at
        {
            return Err(InvalidAccessToken);
        }
        Ok(claims)
    }
}

/// Refresh tokens `rt-1`, `rt-2`, ... stored under a 32-byte hash.
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
        RefreshTokenHash::new(hash32(("fake refresh token", token)).to_vec())
    }
}
