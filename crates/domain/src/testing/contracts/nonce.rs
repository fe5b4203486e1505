//! The [`NonceStore`] contract. Expiry and concurrency are tested per
//! adapter: they depend on real time and real parallelism.

use chrono::Duration;

use super::fixtures::unknown_device;
use crate::device::*;

const TTL: Duration = Duration::minutes(10);

async fn record(store: &impl NonceStore, device: DeviceId, nonce: &str) -> bool {
    store
        .check_and_record(device, nonce, TTL)
        .await
        .unwrap_or_else(|e| panic!("check_and_record({nonce:?}) failed: {e}"))
}

pub async fn a_new_nonce_is_accepted(store: &impl NonceStore) {
    assert!(
        record(store, unknown_device(), "contract-nonce-0001").await,
        "a nonce never seen before must be accepted (true)"
    );
}

pub async fn a_replayed_nonce_is_refused(store: &impl NonceStore) {
    let device = unknown_device();
    record(store, device, "contract-nonce-0001").await;
    assert!(
        !record(store, device, "contract-nonce-0001").await,
        "the same nonce for the same device must be refused (false) while unexpired"
    );
    assert!(
        !record(store, device, "contract-nonce-0001").await,
        "a refused replay must stay refused"
    );
}

pub async fn nonces_are_per_device(store: &impl NonceStore) {
    let (a, b) = (unknown_device(), unknown_device());
    record(store, a, "contract-nonce-0001").await;
    assert!(
        record(store, b, "contract-nonce-0001").await,
        "another device's use of a nonce must not block this device"
    );
    assert!(
        !record(store, b, "contract-nonce-0001").await,
        "each device remembers its own nonces"
    );
}

pub async fn different_nonces_of_one_device_are_independent(store: &impl NonceStore) {
    let device = unknown_device();
    record(store, device, "contract-nonce-0001").await;
    assert!(
        record(store, device, "contract-nonce-0002").await,
        "a different nonce of the same device must be accepted"
    );
}

/// Runs every rule in order on one store; prefer
/// [`nonce_store_contract!`](crate::nonce_store_contract), which gives each
/// rule a test of its own.
pub async fn nonce_store_contract(store: &impl NonceStore) {
    a_new_nonce_is_accepted(store).await;
    a_replayed_nonce_is_refused(store).await;
    nonces_are_per_device(store).await;
    different_nonces_of_one_device_are_independent(store).await;
}

/// One `#[tokio::test]` per [`NonceStore`] rule, in a module
/// `nonce_store_contract`. `$setup`: an async block returning
/// `(guard, store)`.
#[macro_export]
macro_rules! nonce_store_contract {
    ($setup:expr) => {
        $crate::__contract_cases!(
            nonce_store_contract,
            nonce,
            $setup,
            (store),
            [
                a_new_nonce_is_accepted,
                a_replayed_nonce_is_refused,
                nonces_are_per_device,
                different_nonces_of_one_device_are_independent,
            ]
        );
    };
}
