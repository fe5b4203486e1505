//! [`DeviceStateCache`] in process memory: sharded maps with a per-shard
//! epoch (a change to any device of a shard refuses the in-flight fills of
//! that shard — harmless, the next request fills again), a maximum age per
//! entry as a safety net, and a size bound per map.

use foldhash::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use eagate_domain::cache::{Change, DeviceStateCache, Lookup, Ticket};
use eagate_domain::device::{DeviceCredentials, DeviceId};

const SHARDS: usize = 32;

#[derive(Debug, Default)]
struct Shard {
    epoch: u64,
    credentials: HashMap<DeviceId, (Instant, Option<Arc<DeviceCredentials>>)>,
    idle: HashMap<DeviceId, Instant>,
}

impl Shard {
    fn forget(&mut self) {
        self.epoch += 1;
        self.credentials.clear();
        self.idle.clear();
    }
}

/// Limits of the cache.
#[derive(Debug, Clone, Copy)]
pub struct CacheLimits {
    /// An entry older than this is a miss, whatever notifications say.
    pub max_age: Duration,
    /// Devices whose credentials (or absence) are kept; beyond it, entries
    /// are evicted.
    pub max_devices: usize,
}

impl Default for CacheLimits {
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(60),
            max_devices: 100_000,
        }
    }
}

/// The per-instance device cache. Not live until the change feed says it
/// is (`set_live(true)` once notifications flow).
#[derive(Debug)]
pub struct InMemoryDeviceCache {
    shards: Vec<Mutex<Shard>>,
    live: AtomicBool,
    limits: CacheLimits,
    per_shard: usize,
}

impl InMemoryDeviceCache {
    pub fn new(limits: CacheLimits) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            live: AtomicBool::new(false),
            limits,
            per_shard: limits.max_devices.div_ceil(SHARDS).max(1),
        }
    }

    fn shard(&self, device: DeviceId) -> MutexGuard<'_, Shard> {
        // UUIDv7's last bytes are random.
        let i = usize::from(device.as_uuid().as_bytes()[15]) % SHARDS;
        self.shards[i].lock().unwrap_or_else(|p| p.into_inner())
    }

    fn fresh(&self, at: Instant) -> bool {
        at.elapsed() < self.limits.max_age
    }

    pub fn is_live(&self) -> bool {
        self.live.load(Ordering::Acquire)
    }

    /// Devices whose credentials are cached (live entries and stale ones not
    /// yet evicted), for metrics.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).credentials.len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Makes room for one more entry: drops expired ones, else an arbitrary one.
fn make_room<V>(map: &mut HashMap<DeviceId, V>, cap: usize, expired: impl Fn(&V) -> bool) {
    if map.len() < cap {
        return;
    }
    map.retain(|_, v| !expired(v));
    if map.len() >= cap
        && let Some(victim) = map.keys().next().copied()
    {
        map.remove(&victim);
    }
}

impl DeviceStateCache for InMemoryDeviceCache {
    fn credentials(&self, device: DeviceId) -> Lookup<Option<Arc<DeviceCredentials>>> {
        let shard = self.shard(device);
        match shard.credentials.get(&device) {
            Some((at, found)) if self.is_live() && self.fresh(*at) => Lookup::Hit(found.clone()),
            _ => Lookup::Miss(Ticket::new(device, shard.epoch)),
        }
    }

    fn fill_credentials(&self, ticket: Ticket, credentials: Option<Arc<DeviceCredentials>>) {
        let mut shard = self.shard(ticket.device());
        if !self.is_live() || shard.epoch != ticket.epoch() {
            return;
        }
        let max_age = self.limits.max_age;
        make_room(&mut shard.credentials, self.per_shard, |(at, _)| {
            at.elapsed() >= max_age
        });
        shard
            .credentials
            .insert(ticket.device(), (Instant::now(), credentials));
    }

    fn idle(&self, device: DeviceId) -> Lookup<()> {
        let shard = self.shard(device);
        match shard.idle.get(&device) {
            Some(at) if self.is_live() && self.fresh(*at) => Lookup::Hit(()),
            _ => Lookup::Miss(Ticket::new(device, shard.epoch)),
        }
    }

    fn fill_idle(&self, ticket: Ticket) {
        let mut shard = self.shard(ticket.device());
        if !self.is_live() || shard.epoch != ticket.epoch() {
            return;
        }
        let max_age = self.limits.max_age;
        make_room(&mut shard.idle, self.per_shard, |at| at.elapsed() >= max_age);
        shard.idle.insert(ticket.device(), Instant::now());
    }

    fn apply(&self, change: Change) {
        match change {
            Change::Device(device) => {
                let mut shard = self.shard(device);
                shard.epoch += 1;
                shard.credentials.remove(&device);
                shard.idle.remove(&device);
            }
            Change::Published(device) => {
                let mut shard = self.shard(device);
                shard.epoch += 1;
                shard.idle.remove(&device);
            }
            Change::Everything => {
                for shard in &self.shards {
                    shard.lock().unwrap_or_else(|p| p.into_inner()).forget();
                }
            }
        }
    }

    fn set_live(&self, live: bool) {
        // Forget under every lock before flipping, so no fill issued before
        // the flip can land after it.
        let mut guards: Vec<MutexGuard<'_, Shard>> = self
            .shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()))
            .collect();
        for shard in &mut guards {
            shard.forget();
        }
        self.live.store(live, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    fn cache() -> InMemoryDeviceCache {
        InMemoryDeviceCache::new(CacheLimits::default())
    }

    eagate_domain::device_cache_contract!(async { ((), cache()) });

    #[test]
    fn it_starts_not_live() {
        let cache = cache();
        let d = DeviceId::from_uuid(Uuid::now_v7());
        let Lookup::Miss(t) = cache.idle(d) else {
            panic!("a miss")
        };
        cache.fill_idle(t);
        assert!(
            matches!(cache.idle(d), Lookup::Miss(_)),
            "nothing is cached before the change feed is live"
        );
    }

    #[test]
    fn entries_expire_after_their_maximum_age() {
        let cache = InMemoryDeviceCache::new(CacheLimits {
            max_age: Duration::from_millis(30),
            max_devices: 100,
        });
        cache.set_live(true);
        let d = DeviceId::from_uuid(Uuid::now_v7());
        let Lookup::Miss(t) = cache.idle(d) else {
            panic!("a miss")
        };
        cache.fill_idle(t);
        assert!(matches!(cache.idle(d), Lookup::Hit(())));
        std::thread::sleep(Duration::from_millis(40));
        assert!(matches!(cache.idle(d), Lookup::Miss(_)), "too old to trust");
    }

    #[test]
    fn the_cache_is_bounded() {
        let cache = InMemoryDeviceCache::new(CacheLimits {
            max_age: Duration::from_secs(60),
            max_devices: SHARDS * 2,
        });
        cache.set_live(true);
        for _ in 0..SHARDS * 20 {
            let d = DeviceId::from_uuid(Uuid::now_v7());
            let Lookup::Miss(t) = cache.credentials(d) else {
                panic!("a miss")
            };
            cache.fill_credentials(t, None);
        }
        assert!(cache.len() <= SHARDS * 2, "{}", cache.len());
    }
}
