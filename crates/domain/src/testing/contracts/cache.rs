//! The [`DeviceStateCache`] contract, one function per rule. Maximum age
//! and size limits are tested per adapter (they depend on real time).

use std::sync::Arc;

use uuid::Uuid;

use crate::account::UserId;
use crate::cache::*;
use crate::device::*;

fn device() -> DeviceId {
    DeviceId::from_uuid(Uuid::now_v7())
}

fn credentials(id: DeviceId, revoked: bool) -> Arc<DeviceCredentials> {
    Arc::new(DeviceCredentials {
        id,
        owner: UserId::from_uuid(Uuid::now_v7()),
        name: DeviceName::parse("Contract EA").unwrap(),
        revoked,
        current: SealedSecret {
            key_id: "k1".into(),
            ciphertext: vec![1, 2, 3],
        },
        previous: None,
        config_revision: 0,
        deployment_revision: 0,
    })
}

fn ticket<T: std::fmt::Debug>(lookup: Lookup<T>, what: &str) -> Ticket {
    match lookup {
        Lookup::Miss(ticket) => ticket,
        Lookup::Hit(found) => panic!("{what}: expected a miss, got a hit {found:?}"),
    }
}

fn hit_credentials(cache: &impl DeviceStateCache, id: DeviceId) -> Option<Option<bool>> {
    match cache.credentials(id) {
        Lookup::Hit(found) => Some(found.map(|c| c.revoked)),
        Lookup::Miss(_) => None,
    }
}

fn is_idle(cache: &impl DeviceStateCache, id: DeviceId) -> bool {
    matches!(cache.idle(id), Lookup::Hit(()))
}

/// A fill with a fresh ticket is served until a change names the device;
/// "does not exist" is cached too.
pub async fn cache_serves_what_was_filled(cache: &impl DeviceStateCache) {
    cache.set_live(true);
    let (a, missing) = (device(), device());
    let t = ticket(cache.credentials(a), "an unknown device");
    cache.fill_credentials(t, Some(credentials(a, false)));
    assert_eq!(
        hit_credentials(cache, a),
        Some(Some(false)),
        "a filled entry is a hit"
    );
    let t = ticket(cache.credentials(missing), "a missing device");
    cache.fill_credentials(t, None);
    assert_eq!(hit_credentials(cache, missing), Some(None), "absence is cached");
    let t = ticket(cache.idle(a), "idle before any fill");
    cache.fill_idle(t);
    assert!(is_idle(cache, a), "idle is a hit after a fill");
}

/// A value read before a change must not be stored after it.
pub async fn cache_refuses_a_fill_that_raced_a_change(cache: &impl DeviceStateCache) {
    cache.set_live(true);
    let a = device();
    let stale = ticket(cache.credentials(a), "first lookup");
    cache.apply(Change::Device(a));
    cache.fill_credentials(stale, Some(credentials(a, false)));
    assert_eq!(
        hit_credentials(cache, a),
        None,
        "credentials read before a change are not kept"
    );
    let stale = ticket(cache.idle(a), "idle lookup");
    cache.apply(Change::Published(a));
    cache.fill_idle(stale);
    assert!(!is_idle(cache, a), "an idle read before a publish is not kept");
    let stale = ticket(cache.idle(a), "idle lookup");
    cache.apply(Change::Everything);
    cache.fill_idle(stale);
    assert!(!is_idle(cache, a), "a read before `Everything` is not kept");
}

/// Each change forgets exactly what it makes stale.
pub async fn cache_forgets_what_a_change_names(cache: &impl DeviceStateCache) {
    cache.set_live(true);
    let (a, b) = (device(), device());
    for id in [a, b] {
        let t = ticket(cache.credentials(id), "credentials");
        cache.fill_credentials(t, Some(credentials(id, false)));
        let t = ticket(cache.idle(id), "idle");
        cache.fill_idle(t);
    }
    cache.apply(Change::Published(a));
    assert!(!is_idle(cache, a), "a publish ends idleness");
    assert_eq!(
        hit_credentials(cache, a),
        Some(Some(false)),
        "a publish does not touch credentials"
    );
    cache.apply(Change::Device(a));
    assert_eq!(
        hit_credentials(cache, a),
        None,
        "a device change forgets credentials"
    );
    assert!(is_idle(cache, b), "another device is untouched");
    assert_eq!(
        hit_credentials(cache, b),
        Some(Some(false)),
        "another device keeps its credentials"
    );
    cache.apply(Change::Everything);
    assert!(
        !is_idle(cache, b) && hit_credentials(cache, b).is_none(),
        "everything is forgotten"
    );
}

/// While notifications may be missed, nothing is served or kept.
pub async fn cache_keeps_nothing_while_not_live(cache: &impl DeviceStateCache) {
    cache.set_live(true);
    let a = device();
    let t = ticket(cache.credentials(a), "credentials");
    cache.fill_credentials(t, Some(credentials(a, false)));
    cache.set_live(false);
    assert_eq!(hit_credentials(cache, a), None, "not live: a miss");
    let t = ticket(cache.credentials(a), "credentials while not live");
    cache.fill_credentials(t, Some(credentials(a, true)));
    let t = ticket(cache.idle(a), "idle while not live");
    cache.fill_idle(t);
    assert_eq!(
        hit_credentials(cache, a),
        None,
        "fills are ignored while not live"
    );
    assert!(!is_idle(cache, a), "idle fills are ignored while not live");
    cache.set_live(true);
    assert_eq!(hit_credentials(cache, a), None, "live again, starting empty");
    let t = ticket(cache.credentials(a), "credentials");
    cache.fill_credentials(t, Some(credentials(a, true)));
    assert_eq!(
        hit_credentials(cache, a),
        Some(Some(true)),
        "live again: fills are kept"
    );
}

/// Runs every rule in order on one cache; prefer
/// [`device_cache_contract!`](crate::device_cache_contract), which gives
/// each rule a test of its own.
pub async fn device_cache_contract(cache: &impl DeviceStateCache) {
    cache_serves_what_was_filled(cache).await;
    cache_refuses_a_fill_that_raced_a_change(cache).await;
    cache_forgets_what_a_change_names(cache).await;
    cache_keeps_nothing_while_not_live(cache).await;
}

/// One `#[tokio::test]` per [`DeviceStateCache`] rule, in a module
/// `device_cache_contract`. `$setup`: an async block returning
/// `(guard, cache)`.
#[macro_export]
macro_rules! device_cache_contract {
    ($setup:expr) => {
        $crate::__contract_cases!(
            device_cache_contract,
            cache,
            $setup,
            (cache),
            [
                cache_serves_what_was_filled,
                cache_refuses_a_fill_that_raced_a_change,
                cache_forgets_what_a_change_names,
                cache_keeps_nothing_while_not_live,
            ]
        );
    };
}
