//! In-memory fakes of every port, one module per concept.
//!
//! The repository fakes share one [`InMemoryStore`], so cascades and
//! cross-table updates behave as in PostgreSQL. Crypto fakes are
//! transparent (readable outputs) and deterministic.

mod account;
mod admin;
mod api_keys;
mod audit;
mod bundle;
mod cache;
mod clock;
mod config;
mod device;
mod nonce;
mod password;
mod ratelimit;
mod secrets;
mod session;
mod signal;
mod store;
mod tokens;
mod wakeups;
mod world;

pub use account::InMemoryAccountRepository;
pub use admin::InMemoryAdminRepository;
pub use api_keys::{FakeApiKeys, InMemoryApiKeyRepository};
pub use audit::InMemoryAuditLog;
pub use bundle::{InMemoryBundleStore, InMemoryDeploymentRepository};
pub use cache::FakeDeviceCache;
pub use clock::{FixedClock, SequentialIds};
pub use config::InMemoryConfigRepository;
pub use device::InMemoryDeviceRepository;
pub use nonce::FakeReplayGuard;
pub use password::FakeHasher;
pub use ratelimit::FakeRateLimiter;
pub use secrets::{FakeDeviceSecrets, FakeSealer, FakeVerifier, fake_mac};
pub use session::InMemorySessionRepository;
pub use signal::InMemorySignalRepository;
pub use store::InMemoryStore;
pub use tokens::{FakeAccessTokens, FakeRefreshTokens};
pub use wakeups::{FakeSubscription, FakeWakeups};
pub use world::{FakeAccountService, FakeAccountWorld, FakeDeviceService};

/// Every port contract, run against the fakes: one test per rule.
#[cfg(test)]
mod contracts {
    use super::*;

    crate::account_repository_contract!(async {
        let store = InMemoryStore::default();
        ((), store.accounts(), store.sessions())
    });

    crate::session_repository_contract!(async {
        let store = InMemoryStore::default();
        ((), store.accounts(), store.sessions())
    });

    crate::audit_log_contract!(async {
        let store = InMemoryStore::default();
        ((), store.accounts(), store.audit())
    });

    crate::device_repository_contract!(async {
        let store = InMemoryStore::default();
        ((), store.accounts(), store.devices(), store.audit())
    });

    crate::config_repository_contract!(async {
        let store = InMemoryStore::default();
        ((), store.accounts(), store.devices(), store.configs())
    });

    crate::bundle_store_contract!(async {
        let store = InMemoryStore::default();
        (
            (),
            store.accounts(),
            store.devices(),
            store.bundles(),
            store.deployments(),
        )
    });

    crate::deployment_repository_contract!(async {
        let store = InMemoryStore::default();
        (
            (),
            store.accounts(),
            store.devices(),
            store.bundles(),
            store.deployments(),
        )
    });

    crate::api_key_repository_contract!(async {
        let store = InMemoryStore::default();
        ((), store.accounts(), store.api_keys(), store.audit())
    });

    crate::admin_repository_contract!(async {
        let store = InMemoryStore::default();
        (
            (),
            store.accounts(),
            store.sessions(),
            store.devices(),
            store.signals(),
            store.api_keys(),
            store.admin(),
        )
    });

    crate::api_key_factory_contract!(async { ((), FakeApiKeys::default()) });

    crate::signal_repository_contract!(async {
        let store = InMemoryStore::default();
        ((), store.accounts(), store.devices(), store.signals())
    });

    crate::signal_wakeups_contract!(async {
        let store = InMemoryStore::default();
        let wakeups = store.wakeups(FixedClock::default_start());
        ((), store.accounts(), store.devices(), store.signals(), wakeups)
    });

    crate::replay_guard_contract!(async { ((), FakeReplayGuard::default()) });

    crate::device_cache_contract!(async { ((), FakeDeviceCache::default()) });

    crate::password_hasher_contract!(async { ((), FakeHasher::with_cost(2), FakeHasher::with_cost(1)) });

    crate::access_token_issuer_contract!(async { ((), FakeAccessTokens) });

    crate::refresh_token_factory_contract!(async { ((), FakeRefreshTokens::default()) });

    crate::device_secret_factory_contract!(async { ((), FakeDeviceSecrets::default()) });

    crate::secret_sealer_contract!(async { ((), FakeSealer::new("k1"), FakeSealer::rotated("k2", &["k1"])) });

    crate::signature_verifier_contract!(async {
        let sealer = FakeSealer::new("k1");
        ((), sealer.clone(), FakeVerifier(sealer), fake_mac)
    });

    /// The all-rules functions run every rule on one shared store: rules
    /// must not depend on what the store held before them.
    #[tokio::test]
    async fn every_rule_also_holds_on_a_store_shared_by_all_rules() {
        use crate::testing::contracts::*;
        let store = InMemoryStore::default();
        let (accounts, sessions, devices, audit, signals) = (
            store.accounts(),
            store.sessions(),
            store.devices(),
            store.audit(),
            store.signals(),
        );
        account_repository_contract(&accounts, &sessions).await;
        session_repository_contract(&accounts, &sessions).await;
        audit_log_contract(&accounts, &audit).await;
        device_repository_contract(&accounts, &devices, &audit).await;
        signal_repository_contract(&accounts, &devices, &signals).await;
        config_repository_contract(&accounts, &devices, &store.configs()).await;
        bundle_store_contract(&accounts, &devices, &store.bundles(), &store.deployments()).await;
        deployment_repository_contract(&accounts, &devices, &store.bundles(), &store.deployments()).await;
        api_key_repository_contract(&accounts, &store.api_keys(), &audit).await;
        admin_repository_contract(
            &accounts,
            &sessions,
            &devices,
            &signals,
            &store.api_keys(),
            &store.admin(),
        )
        .await;
        let wakeups = store.wakeups(FixedClock::default_start());
        wakeups::signal_wakeups_contract(&accounts, &devices, &signals, &wakeups).await;
        replay_guard_contract(&FakeReplayGuard::default()).await;
        device_cache_contract(&FakeDeviceCache::default()).await;
    }
}
