//! A transparent [`PasswordHasher`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::account::*;
use crate::error::UnexpectedError;

/// A transparent "hasher" for domain tests: `fake$<cost>$<password>`. A hash
/// with a cost other than `current_cost` verifies as needing a rehash.
#[derive(Debug, Clone)]
pub struct FakeHasher {
    pub current_cost: u32,
    dummy_verifications: Arc<AtomicU64>,
}

impl Default for FakeHasher {
    fn default() -> Self {
        Self {
            current_cost: 1,
            dummy_verifications: Arc::default(),
        }
    }
}

impl FakeHasher {
    pub fn with_cost(current_cost: u32) -> Self {
        Self {
            current_cost,
            ..Self::default()
        }
    }

    /// How many times `verify_dummy` ran.
    pub fn dummy_verifications(&self) -> u64 {
        self.dummy_verifications.load(Ordering::Relaxed)
    }

    fn encode(cost: u32, password: &Password) -> PasswordHash {
        PasswordHash::new(format!(
            "fake${cost}${}",
            String::from_utf8_lossy(password.expose())
        ))
    }
}

impl PasswordHasher for FakeHasher {
    async fn hash(&self, password: &Password) -> Result<PasswordHash, UnexpectedError> {
        Ok(Self::encode(self.current_cost, password))
    }

    async fn verify(
        &self,
        password: &Password,
        hash: &PasswordHash,
    ) -> Result<PasswordVerification, UnexpectedError> {
        let mut parts = hash.as_str().splitn(3, '$');
        let (Some("fake"), Some(cost), Some(stored)) = (parts.next(), parts.next(), parts.next()) else {
            return Ok(PasswordVerification::Invalid);
        };
        if stored.as_bytes() != password.expose() {
            Ok(PasswordVerification::Invalid)
        } else if cost == self.current_cost.to_string() {
            Ok(PasswordVerification::Valid)
        } else {
            Ok(PasswordVerification::ValidNeedsRehash)
        }
    }

    async fn verify_dummy(&self, _password: &Password) -> Result<(), UnexpectedError> {
        self.dummy_verifications.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}
