//! A readable [`PasswordHasher`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::secrets::hex;
use crate::account::*;
use crate::error::UnexpectedError;

/// A readable "hasher" for domain tests: `fake$<cost>$<salt>$<password in
/// hex>`, the salt a counter (so two hashes of one password differ, as
/// salted ones do). A hash with a cost other than `current_cost` verifies
/// as needing a rehash.
#[derive(Debug, Clone)]
pub struct FakeHasher {
    pub current_cost: u32,
    dummy_verifications: Arc<AtomicU64>,
    verifications: Arc<AtomicU64>,
    salts: Arc<AtomicU64>,
}

impl Default for FakeHasher {
    fn default() -> Self {
        Self {
            current_cost: 1,
            dummy_verifications: Arc::default(),
            verifications: Arc::default(),
            salts: Arc::default(),
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

    /// How many passwords were checked (`verify` and `verify_dummy`).
    pub fn verifications(&self) -> u64 {
        self.verifications.load(Ordering::Relaxed) + self.dummy_verifications()
    }

    /// How many times `verify_dummy` ran.
    pub fn dummy_verifications(&self) -> u64 {
        self.dummy_verifications.load(Ordering::Relaxed)
    }

    fn encode(&self, password: &Password) -> PasswordHash {
        let salt = self.salts.fetch_add(1, Ordering::Relaxed) + 1;
        PasswordHash::new(format!(
            "fake${}${salt}${}",
            self.current_cost,
            hex(password.expose())
        ))
    }
}

impl PasswordHasher for FakeHasher {
    async fn hash(&self, password: &Password) -> Result<PasswordHash, UnexpectedError> {
        Ok(self.encode(password))
    }

    async fn verify(
        &self,
        password: &Password,
        hash: &PasswordHash,
    ) -> Result<PasswordVerification, UnexpectedError> {
        self.verifications.fetch_add(1, Ordering::Relaxed);
        let mut parts = hash.as_str().split('$');
        let (Some("fake"), Some(cost), Some(_salt), Some(stored), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Ok(PasswordVerification::Invalid);
        };
        if stored != hex(password.expose()) {
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
