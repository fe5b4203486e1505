//! Services wired entirely to fakes, with handles to the fakes.

use super::*;
use crate::account::*;
use crate::device::*;

/// The account service wired entirely to fakes.
pub type FakeAccountService = AccountService<
    InMemoryAccountRepository,
    InMemorySessionRepository,
    FakeHasher,
    FakeAccessTokens,
    FakeRefreshTokens,
    InMemoryAuditLog,
    FakeRateLimiter,
    FixedClock,
    SequentialIds,
>;

/// Handles to the fakes behind a [`FakeAccountService`].
#[derive(Debug, Clone)]
pub struct FakeAccountWorld {
    pub store: InMemoryStore,
    pub hasher: FakeHasher,
    /// Password checks counted per account.
    pub guesses: FakeRateLimiter,
    pub clock: FixedClock,
    pub service: FakeAccountService,
}

impl FakeAccountWorld {
    pub fn new() -> Self {
        Self::with_hasher(FakeHasher::default())
    }

    pub fn with_hasher(hasher: FakeHasher) -> Self {
        let store = InMemoryStore::default();
        let clock = FixedClock::default_start();
        let guesses = FakeRateLimiter::default();
        let service = AccountService::new(
            store.accounts(),
            store.sessions(),
            hasher.clone(),
            FakeAccessTokens,
            FakeRefreshTokens::default(),
            store.audit(),
            guesses.clone(),
            clock.clone(),
            SequentialIds::default(),
            AccountPolicy::default(),
        );
        Self {
            store,
            hasher,
            guesses,
            clock,
            service,
        }
    }
}

impl Default for FakeAccountWorld {
    fn default() -> Self {
        Self::new()
    }
}

/// The device service wired entirely to fakes.
pub type FakeDeviceService =
    DeviceService<InMemoryDeviceRepository, FakeDeviceSecrets, FakeSealer, FixedClock, SequentialIds>;

impl FakeAccountWorld {
    /// A device service sharing this world's store, clock and ids.
    pub fn devices(&self, sealer: FakeSealer, policy: DevicePolicy) -> FakeDeviceService {
        DeviceService::new(
            self.store.devices(),
            FakeDeviceSecrets::default(),
            sealer,
            self.clock.clone(),
            SequentialIds::after(1_000_000),
            policy,
        )
    }
}
