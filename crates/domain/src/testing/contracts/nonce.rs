//! The [`ReplayGuard`] contract.

use chrono::{Duration, Utc};
use uuid::Uuid;

use crate::device::*;
use crate::ratelimit::RateLimit;

fn policy(limit: u32) -> AdmissionPolicy {
    AdmissionPolicy {
        window: Duration::minutes(5),
        rate: RateLimit::per_minute(limit),
    }
}

/// Everything a [`ReplayGuard`] must do (expiry and concurrency are tested
/// per adapter: they depend on real time and real parallelism).
pub async fn nonce_store_contract(guard: &impl ReplayGuard) {
    let (a, b) = (
        DeviceId::from_uuid(Uuid::now_v7()),
        DeviceId::from_uuid(Uuid::now_v7()),
    );
    let now = Utc::now();
    let roomy = policy(100);
    let admit =
        |device, nonce: &'static str| async move { guard.admit(device, nonce, now, &roomy).await.unwrap() };
    assert_eq!(
        admit(a, "contract-nonce-0001").await,
        Admission::Admitted,
        "a new nonce"
    );
    assert_eq!(
        admit(a, "contract-nonce-0001").await,
        Admission::Replayed,
        "the same nonce again"
    );
    assert_eq!(
        admit(b, "contract-nonce-0001").await,
        Admission::Admitted,
        "nonces are per device"
    );
    assert_eq!(
        admit(a, "contract-nonce-0002").await,
        Admission::Admitted,
        "another nonce"
    );
    assert_eq!(admit(b, "contract-nonce-0001").await, Admission::Replayed);

    // The device's rate: the request over it is throttled, its nonce spent;
    // replays are not counted; other devices are not affected.
    let (c, d) = (
        DeviceId::from_uuid(Uuid::now_v7()),
        DeviceId::from_uuid(Uuid::now_v7()),
    );
    let tight = policy(2);
    for n in ["rate-nonce-0001", "rate-nonce-0002"] {
        assert_eq!(guard.admit(c, n, now, &tight).await.unwrap(), Admission::Admitted);
    }
    assert_eq!(
        guard.admit(c, "rate-nonce-0001", now, &tight).await.unwrap(),
        Admission::Replayed,
        "a replay is refused as such, not counted"
    );
    match guard.admit(c, "rate-nonce-0003", now, &tight).await.unwrap() {
        Admission::Throttled(decision) => {
            assert!(!decision.allowed && decision.remaining == 0, "{decision:?}");
            assert!(decision.reset_after <= tight.rate.window, "{decision:?}");
        }
        other => panic!("the third request in the window must be throttled, got {other:?}"),
    }
    assert_eq!(
        guard.admit(c, "rate-nonce-0003", now, &tight).await.unwrap(),
        Admission::Replayed,
        "a throttled request's nonce is spent"
    );
    assert_eq!(
        guard.admit(d, "rate-nonce-0003", now, &tight).await.unwrap(),
        Admission::Admitted,
        "one device's rate does not limit another"
    );
}
