use std::sync::Arc;

use argon2::password_hash::phc::PasswordHash as PhcHash;
use argon2::{Algorithm, Argon2, Params, PasswordHasher as _, PasswordVerifier as _, Version};
use eagate_domain::UnexpectedError;
use eagate_domain::account::{Password, PasswordHash, PasswordHasher, PasswordVerification};
use tokio::sync::Semaphore;
use tracing::Instrument as _;

/// argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Params {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Argon2Params {
    /// OWASP's current recommendation for argon2id: 19 MiB, 2 passes, 1 lane.
    pub const OWASP: Self = Self {
        memory_kib: 19_456,
        iterations: 2,
        parallelism: 1,
    };
}

impl Default for Argon2Params {
    fn default() -> Self {
        Self::OWASP
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HasherError {
    #[error("invalid argon2 parameters: {0}")]
    InvalidParams(String),
    #[error("the password hashing concurrency must be at least 1")]
    ZeroConcurrency,
    #[error("could not compute the dummy hash: {0}")]
    Dummy(String),
}

struct Inner {
    argon2: Argon2<'static>,
    params: Params,
    /// A hash of a random password, for constant-work failed logins.
    dummy: String,
}

/// argon2id hashing in PHC string format. Hashes made with other
/// parameters still verify, and report that they need a rehash.
///
/// The work runs on tokio's blocking pool, at most `max_concurrent` hashes
/// at a time, so a burst of logins queues instead of starving the async
/// workers or exhausting memory (each hash holds `memory_kib`).
#[derive(Clone)]
pub struct Argon2Hasher {
    inner: Arc<Inner>,
    permits: Arc<Semaphore>,
}

impl std::fmt::Debug for Argon2Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Argon2Hasher")
            .field("params", &self.inner.params)
            .field("available_permits", &self.permits.available_permits())
            .finish()
    }
}

impl Argon2Hasher {
    pub fn new(params: Argon2Params, max_concurrent: usize) -> Result<Self, HasherError> {
        if max_concurrent == 0 {
            return Err(HasherError::ZeroConcurrency);
        }
        let params = Params::new(params.memory_kib, params.iterations, params.parallelism, None)
            .map_err(|e| HasherError::InvalidParams(e.to_string()))?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let dummy_password = crate::random_bytes::<32>().map_err(|e| HasherError::Dummy(e.to_string()))?;
        let dummy = argon2
            .hash_password(&dummy_password)
            .map_err(|e| HasherError::Dummy(e.to_string()))?
            .to_string();
        Ok(Self {
            inner: Arc::new(Inner {
                argon2,
                params,
                dummy,
            }),
            permits: Arc::new(Semaphore::new(max_concurrent)),
        })
    }

    /// Runs `work` on the blocking pool once a permit is free, inside the
    /// caller's span.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Inner) -> T + Send + 'static,
    ) -> Result<T, UnexpectedError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| UnexpectedError::msg("password hasher shut down"))?;
        let inner = Arc::clone(&self.inner);
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || span.in_scope(|| work(&inner)))
            .instrument(tracing::Span::current())
            .await
            .map_err(UnexpectedError::new)
    }
}

impl Inner {
    fn verify(&self, password: &[u8], stored: &str) -> PasswordVerification {
        let Ok(parsed) = PhcHash::new(stored) else {
            return PasswordVerification::Invalid;
        };
        // Verify with the parameters recorded in the hash itself.
        if self.argon2.verify_password(password, &parsed).is_err() {
            return PasswordVerification::Invalid;
        }
        let current = parsed.algorithm.as_str() == Algorithm::Argon2id.ident().as_str()
            && parsed.version == Some(Version::V0x13.into())
            && Params::try_from(&parsed).is_ok_and(|p| {
                p.m_cost() == self.params.m_cost()
                    && p.t_cost() == self.params.t_cost()
                    && p.p_cost() == self.params.p_cost()
            });
        if current {
            PasswordVerification::Valid
        } else {
            PasswordVerification::ValidNeedsRehash
        }
    }
}

impl PasswordHasher for Argon2Hasher {
    async fn hash(&self, password: &Password) -> Result<PasswordHash, UnexpectedError> {
        let password = password.clone();
        self.run(move |inner| {
            inner
                .argon2
                .hash_password(password.expose())
                .map(|h| PasswordHash::new(h.to_string()))
                .map_err(|e| UnexpectedError::msg(format!("argon2 hashing failed: {e}")))
        })
        .await?
    }

    async fn verify(
        &self,
        password: &Password,
        hash: &PasswordHash,
    ) -> Result<PasswordVerification, UnexpectedError> {
        let password = password.clone();
        let stored = hash.as_str().to_owned();
        self.run(move |inner| inner.verify(password.expose(), &stored))
            .await
    }

    async fn verify_dummy(&self, password: &Password) -> Result<(), UnexpectedError> {
        let password = password.clone();
        self.run(move |inner| {
            let _ = inner.verify(password.expose(), &inner.dummy);
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHEAP: Argon2Params = Argon2Params {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };

    fn pw(s: &str) -> Password {
        Password::parse_candidate(s, "password").unwrap()
    }

    #[tokio::test]
    async fn hash_is_phc_argon2id_and_verifies() {
        let hasher = Argon2Hasher::new(CHEAP, 2).unwrap();
        let hash = hasher.hash(&pw("correct horse battery")).await.unwrap();
        assert!(
            hash.as_str().starts_with("$argon2id$v=19$m=64,t=1,p=1$"),
            "{}",
            hash.as_str()
        );
        assert_eq!(
            hasher.verify(&pw("correct horse battery"), &hash).await.unwrap(),
            PasswordVerification::Valid
        );
        assert_eq!(
            hasher.verify(&pw("correct horse batterY"), &hash).await.unwrap(),
            PasswordVerification::Invalid
        );
        // Salted: the same password hashes differently.
        assert_ne!(hasher.hash(&pw("correct horse battery")).await.unwrap(), hash);
    }

    #[tokio::test]
    async fn default_parameters_are_owasps() {
        let hasher = Argon2Hasher::new(Argon2Params::default(), 1).unwrap();
        let hash = hasher.hash(&pw("correct horse battery")).await.unwrap();
        assert!(
            hash.as_str().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{}",
            hash.as_str()
        );
    }

    #[tokio::test]
    async fn old_parameters_still_verify_and_ask_for_rehash() {
        let old = Argon2Hasher::new(CHEAP, 1).unwrap();
        let hash = old.hash(&pw("correct horse battery")).await.unwrap();
        let raised = Argon2Hasher::new(
            Argon2Params {
                memory_kib: 128,
                ..CHEAP
            },
            1,
        )
        .unwrap();
        assert_eq!(
            raised.verify(&pw("correct horse battery"), &hash).await.unwrap(),
            PasswordVerification::ValidNeedsRehash
        );
        assert_eq!(
            raised.verify(&pw("wrong"), &hash).await.unwrap(),
            PasswordVerification::Invalid
        );
    }

    #[tokio::test]
    async fn unreadable_hashes_never_verify() {
        let hasher = Argon2Hasher::new(CHEAP, 1).unwrap();
        for stored in [
            "",
            "plaintext",
            "$argon2id$v=19$m=64,t=1,p=1$bad",
            "$2b$12$abcdefghijklmnopqrstuv",
        ] {
            assert_eq!(
                hasher
                    .verify(&pw("plaintext"), &PasswordHash::new(stored.into()))
                    .await
                    .unwrap(),
                PasswordVerification::Invalid
            );
        }
        hasher.verify_dummy(&pw("anything")).await.unwrap();
    }

    #[test]
    fn invalid_configuration_is_refused() {
        assert!(matches!(
            Argon2Hasher::new(CHEAP, 0),
            Err(HasherError::ZeroConcurrency)
        ));
        let zero = Argon2Params {
            iterations: 0,
            ..CHEAP
        };
        assert!(matches!(
            Argon2Hasher::new(zero, 1),
            Err(HasherError::InvalidParams(_))
        ));
    }
}
