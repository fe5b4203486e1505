//! The [`ReplayGuard`] contract. Expiry, restarts and concurrency are
//! tested per adapter: they depend on real time and real parallelism.

use chrono::{DateTime, Duration, Utc};

use super::fixtures::{unknown_device, unknown_user};
use crate::device::*;
use crate::ratelimit::RateLimit;

fn policy(per_minute: u32) -> AdmissionPolicy {
    AdmissionPolicy {
        window: Duration::minutes(5),
        rate: RateLimit::per_minute(per_minute),
    }
}

async fn admit(guard: &impl ReplayGuard, device: DeviceId, nonce: &str, per_minute: u32) -> Admission {
    let now: DateTime<Utc> = Utc::now();
    guard
        .admit(device, unknown_user(), nonce, now, &policy(per_minute))
        .await
        .unwrap_or_else(|e| panic!("admit({nonce:?}) failed: {e}"))
}

pub async fn a_new_nonce_is_admitted(guard: &impl ReplayGuard) {
    assert_eq!(
        admit(guard, unknown_device(), "contract-nonce-0001", 100).await,
        Admission::Admitted,
        "a nonce never seen before must be admitted"
    );
}

pub async fn a_replayed_nonce_is_refused(guard: &impl ReplayGuard) {
    let device = unknown_device();
    admit(guard, device, "contract-nonce-0001", 100).await;
    for _ in 0..2 {
        assert_eq!(
            admit(guard, device, "contract-nonce-0001", 100).await,
            Admission::Replayed,
            "the same nonce for the same device must be refused, and stay refused"
        );
    }
}

pub async fn nonces_are_per_device(guard: &impl ReplayGuard) {
    let (a, b) = (unknown_device(), unknown_device());
    admit(guard, a, "contract-nonce-0001", 100).await;
    assert_eq!(
        admit(guard, b, "contract-nonce-0001", 100).await,
        Admission::Admitted,
        "another device's use of a nonce must not block this device"
    );
    assert_eq!(
        admit(guard, b, "contract-nonce-0001", 100).await,
        Admission::Replayed,
        "each device remembers its own nonces"
    );
}

pub async fn different_nonces_of_one_device_are_independent(guard: &impl ReplayGuard) {
    let device = unknown_device();
    admit(guard, device, "contract-nonce-0001", 100).await;
    assert_eq!(
        admit(guard, device, "contract-nonce-0002", 100).await,
        Admission::Admitted,
        "a different nonce of the same device must be admitted"
    );
}

pub async fn a_device_over_its_rate_is_throttled_and_its_nonce_spent(guard: &impl ReplayGuard) {
    let device = unknown_device();
    for nonce in ["rate-nonce-0001", "rate-nonce-0002"] {
        assert_eq!(
            admit(guard, device, nonce, 2).await,
            Admission::Admitted,
            "within the rate"
        );
    }
    match admit(guard, device, "rate-nonce-0003", 2).await {
        Admission::Throttled(decision) => {
            assert!(
                !decision.allowed && decision.remaining == 0 && decision.limit == 2,
                "a throttled decision says the limit is used up: {decision:?}"
            );
            assert!(
                decision.reset_after > std::time::Duration::ZERO
                    && decision.reset_after <= std::time::Duration::from_secs(60),
                "it says when the window resets: {decision:?}"
            );
        }
        other => panic!("the request over the device's rate must be throttled, got {other:?}"),
    }
    assert_eq!(
        admit(guard, device, "rate-nonce-0003", 2).await,
        Admission::Replayed,
        "a throttled request's nonce is spent (a retry must use a new one)"
    );
}

pub async fn replays_are_not_counted_against_the_rate(guard: &impl ReplayGuard) {
    let device = unknown_device();
    admit(guard, device, "count-nonce-0001", 2).await;
    for _ in 0..3 {
        admit(guard, device, "count-nonce-0001", 2).await;
    }
    assert_eq!(
        admit(guard, device, "count-nonce-0002", 2).await,
        Admission::Admitted,
        "refused replays must not use up the device's rate"
    );
}

pub async fn one_devices_rate_does_not_limit_another(guard: &impl ReplayGuard) {
    let (busy, quiet) = (unknown_device(), unknown_device());
    for n in 0..3 {
        admit(guard, busy, &format!("busy-nonce-{n:04}"), 2).await;
    }
    assert_eq!(
        admit(guard, quiet, "quiet-nonce-0001", 2).await,
        Admission::Admitted,
        "a device over its rate must not throttle another"
    );
}

/// Runs every rule in order on one guard; prefer
/// [`replay_guard_contract!`](crate::replay_guard_contract), which gives
/// each rule a test of its own.
pub async fn replay_guard_contract(guard: &impl ReplayGuard) {
    a_new_nonce_is_admitted(guard).await;
    a_replayed_nonce_is_refused(guard).await;
    nonces_are_per_device(guard).await;
    different_nonces_of_one_device_are_independent(guard).await;
    a_device_over_its_rate_is_throttled_and_its_nonce_spent(guard).await;
    replays_are_not_counted_against_the_rate(guard).await;
    one_devices_rate_does_not_limit_another(guard).await;
}

/// One `#[tokio::test]` per [`ReplayGuard`] rule, in a module
/// `replay_guard_contract`. `$setup`: an async block returning
/// `(guard, replay_guard)`.
#[macro_export]
macro_rules! replay_guard_contract {
    ($setup:expr) => {
        $crate::__contract_cases!(
            replay_guard_contract,
            nonce,
            $setup,
            (store),
            [
                a_new_nonce_is_admitted,
                a_replayed_nonce_is_refused,
                nonces_are_per_device,
                different_nonces_of_one_device_are_independent,
                a_device_over_its_rate_is_throttled_and_its_nonce_spent,
                replays_are_not_counted_against_the_rate,
                one_devices_rate_does_not_limit_another,
            ]
        );
    };
}
