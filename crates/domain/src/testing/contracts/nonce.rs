//! The [`NonceStore`] contract.

use chrono::Duration;
use uuid::Uuid;

use crate::device::*;

/// Everything a [`NonceStore`] must do (expiry and concurrency are tested
/// per adapter: they depend on real time and real parallelism).
pub async fn nonce_store_contract(store: &impl NonceStore) {
    let (a, b) = (
        DeviceId::from_uuid(Uuid::now_v7()),
        DeviceId::from_uuid(Uuid::now_v7()),
    );
    let ttl = Duration::minutes(10);
    assert!(
        store
            .check_and_record(a, "contract-nonce-0001", ttl)
            .await
            .unwrap(),
        "new"
    );
    assert!(
        !store
            .check_and_record(a, "contract-nonce-0001", ttl)
            .await
            .unwrap(),
        "replayed"
    );
    assert!(
        store
            .check_and_record(b, "contract-nonce-0001", ttl)
            .await
            .unwrap(),
        "per device"
    );
    assert!(
        store
            .check_and_record(a, "contract-nonce-0002", ttl)
            .await
            .unwrap(),
        "per nonce"
    );
    assert!(
        !store
            .check_and_record(b, "contract-nonce-0001", ttl)
            .await
            .unwrap()
    );
}
