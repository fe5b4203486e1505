//! [`ReplayGuard`] in process memory: per device, the nonces whose requests
//! can still arrive (until their timestamp leaves the acceptance window) and
//! a fixed-window request counter.
//!
//! Memory is bounded three ways: a nonce is kept only until `signed_at +
//! window`; a device holds at most [`AdmissionPolicy::nonce_quota`] nonces
//! (beyond that it is throttled, so one tenant cannot crowd out another);
//! and the whole guard holds at most `max_bytes` (beyond that it refuses,
//! failing closed). A nonce costs [`NONCE_BYTES`]: it is kept as a keyed
//! 64-bit hash, not as text.

use std::cmp::Reverse;
use std::collections::hash_map::Entry;
use std::collections::BinaryHeap;

use foldhash::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use eagate_domain::UnexpectedError;
use eagate_domain::device::{Admission, AdmissionPolicy, DeviceId, ReplayGuard};
use eagate_domain::ratelimit::{RateDecision, decide};

const SHARDS: usize = 32;

/// What one remembered nonce costs, approximately: its hash-map slot and
/// its expiry-heap slot, with the maps' spare capacity.
pub const NONCE_BYTES: usize = 48;

/// What a device's ledger costs besides its nonces.
pub const DEVICE_BYTES: usize = 160;

/// How often each shard is swept of expired nonces and idle devices.
const SWEEP_EVERY: Duration = Duration::from_secs(5);

#[derive(Debug)]
struct Ledger {
    /// Nonce hash → expiry (Unix seconds).
    nonces: HashMap<u64, i64>,
    /// Expiries, soonest first, for purging.
    expiries: BinaryHeap<Reverse<(i64, u64)>>,
    window_start: Instant,
    window: Duration,
    count: u64,
}

impl Ledger {
    fn new(now: Instant) -> Self {
        Self {
            nonces: HashMap::default(),
            expiries: BinaryHeap::new(),
            window_start: now,
            window: Duration::ZERO,
            count: 0,
        }
    }

    /// Forgets nonces whose requests can no longer arrive; returns how many.
    fn purge(&mut self, now_unix: i64) -> usize {
        let mut purged = 0;
        while let Some(Reverse((expiry, hash))) = self.expiries.peek().copied() {
            if expiry > now_unix {
                break;
            }
            self.expiries.pop();
            if self.nonces.get(&hash) == Some(&expiry) {
                self.nonces.remove(&hash);
                purged += 1;
            }
        }
        purged
    }

    fn idle(&self, now: Instant) -> bool {
        self.nonces.is_empty() && now.duration_since(self.window_start) >= self.window
    }
}

#[derive(Debug)]
struct Shard {
    ledgers: HashMap<DeviceId, Ledger>,
    swept: Instant,
}

/// Nonces and device rates in process memory (one instance). Several
/// instances must share them instead: use the Redis adapter.
#[derive(Debug)]
pub struct InMemoryReplayGuard {
    shards: Vec<Mutex<Shard>>,
    hasher: RandomState,
    /// Requests signed before this may have been seen by an earlier process
    /// whose memory is gone.
    since: DateTime<Utc>,
    max_bytes: usize,
    bytes: AtomicUsize,
}

impl InMemoryReplayGuard {
    /// A guard holding at most `max_bytes`, remembering from now on.
    pub fn new(max_bytes: usize) -> Self {
        Self::remembering_since(max_bytes, Utc::now())
    }

    /// A guard whose memory begins at `since` (whole seconds: a request
    /// signed in the second the guard started is accepted).
    pub fn remembering_since(max_bytes: usize, since: DateTime<Utc>) -> Self {
        let now = Instant::now();
        Self {
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        ledgers: HashMap::default(),
                        swept: now,
                    })
                })
                .collect(),
            hasher: RandomState::new(),
            since: DateTime::from_timestamp(since.timestamp(), 0).unwrap_or(since),
            max_bytes,
            bytes: AtomicUsize::new(0),
        }
    }

    /// Approximate bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Nonces held (after purging expired ones), for tests and metrics.
    pub fn len(&self) -> usize {
        let now = Utc::now().timestamp();
        self.shards
            .iter()
            .map(|s| {
                let mut shard = lock(s);
                shard
                    .ledgers
                    .values_mut()
                    .map(|l| {
                        let purged = l.purge(now);
                        self.release(purged * NONCE_BYTES);
                        l.nonces.len()
                    })
                    .sum::<usize>()
            })
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn release(&self, bytes: usize) {
        if bytes > 0 {
            self.bytes.fetch_sub(bytes, Ordering::Relaxed);
        }
    }

    fn reserve(&self, bytes: usize) -> Result<(), UnexpectedError> {
        let held = self.bytes.fetch_add(bytes, Ordering::Relaxed);
        if held + bytes > self.max_bytes {
            self.bytes.fetch_sub(bytes, Ordering::Relaxed);
            return Err(UnexpectedError::unavailable(
                "the in-memory nonce store is full; raise EAGATE_NONCE_MEMORY_MB or use Redis",
            ));
        }
        Ok(())
    }

    fn sweep(&self, shard: &mut Shard, now: Instant, now_unix: i64) {
        let mut freed = 0;
        shard.ledgers.retain(|_, ledger| {
            freed += ledger.purge(now_unix) * NONCE_BYTES;
            if ledger.idle(now) {
                freed += DEVICE_BYTES;
                false
            } else {
                true
            }
        });
        shard.swept = now;
        self.release(freed);
    }

    fn admit_now(
        &self,
        device: DeviceId,
        nonce: &str,
        signed_at: DateTime<Utc>,
        policy: &AdmissionPolicy,
    ) -> Result<Admission, UnexpectedError> {
        if signed_at < self.since {
            return Ok(Admission::PredatesMemory { since: self.since });
        }
        let now = Instant::now();
        let now_unix = Utc::now().timestamp();
        let expiry = signed_at.timestamp().saturating_add(policy.window.num_seconds()) + 1;
        let hash = self.hasher.hash_one(nonce);
        let mut shard = lock(&self.shards[usize::from(device.as_uuid().as_bytes()[15]) % SHARDS]);
        if now.duration_since(shard.swept) >= SWEEP_EVERY {
            self.sweep(&mut shard, now, now_unix);
        }
        let ledger = match shard.ledgers.entry(device) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                self.reserve(DEVICE_BYTES)?;
                e.insert(Ledger::new(now))
            }
        };
        self.release(ledger.purge(now_unix) * NONCE_BYTES);
        if ledger.nonces.contains_key(&hash) {
            return Ok(Admission::Replayed);
        }
        let rate = policy.rate;
        if now.duration_since(ledger.window_start) >= ledger.window {
            ledger.window_start = now;
            ledger.window = rate.window;
            ledger.count = 0;
        }
        let reset_after = ledger
            .window
            .saturating_sub(now.duration_since(ledger.window_start))
            .max(Duration::from_millis(1));
        if ledger.nonces.len() as u64 >= policy.nonce_quota() {
            // More nonces than its rate allows in the window: this device
            // alone waits for its oldest to expire.
            return Ok(Admission::Throttled(RateDecision {
                allowed: false,
                limit: rate.limit,
                remaining: 0,
                reset_after,
            }));
        }
        self.reserve(NONCE_BYTES)?;
        ledger.nonces.insert(hash, expiry);
        ledger.expiries.push(Reverse((expiry, hash)));
        ledger.count += 1;
        let decision = decide(ledger.count, rate, reset_after);
        Ok(if decision.allowed {
            Admission::Admitted
        } else {
            Admission::Throttled(decision)
        })
    }
}

fn lock(m: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl ReplayGuard for InMemoryReplayGuard {
    async fn admit(
        &self,
        device: DeviceId,
        nonce: &str,
        signed_at: DateTime<Utc>,
        policy: &AdmissionPolicy,
    ) -> Result<Admission, UnexpectedError> {
        self.admit_now(device, nonce, signed_at, policy)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use eagate_domain::ratelimit::RateLimit;
    use uuid::Uuid;

    use super::*;

    fn device() -> DeviceId {
        DeviceId::from_uuid(Uuid::now_v7())
    }

    fn policy(window_seconds: i64, per_second: u32) -> AdmissionPolicy {
        AdmissionPolicy {
            window: chrono::Duration::seconds(window_seconds),
            rate: RateLimit::per_second(per_second),
        }
    }

    const MIB: usize = 1 << 20;

    eagate_domain::replay_guard_contract!(async { ((), InMemoryReplayGuard::new(MIB)) });

    #[test]
    fn a_nonce_is_kept_only_until_its_timestamp_leaves_the_window() {
        let guard = InMemoryReplayGuard::remembering_since(MIB, Utc::now() - chrono::Duration::hours(1));
        let d = device();
        let now = Utc::now();
        let p = policy(300, 1000);
        // Signed 299 s ago: still acceptable for a second or two.
        let old = now - chrono::Duration::seconds(299);
        assert_eq!(guard.admit_now(d, "n-old", old, &p).unwrap(), Admission::Admitted);
        // Signed 400 s ago (a request the skew check would have refused):
        // its expiry has passed, so it is forgotten at once.
        let ancient = now - chrono::Duration::seconds(400);
        assert_eq!(
            guard.admit_now(d, "n-ancient", ancient, &p).unwrap(),
            Admission::Admitted
        );
        assert_eq!(
            guard.len(),
            1,
            "only the nonce whose request can still arrive is kept"
        );
        assert_eq!(guard.bytes(), DEVICE_BYTES + NONCE_BYTES);
    }

    #[test]
    fn a_restart_refuses_requests_signed_before_it() {
        let start = Utc::now();
        let guard = InMemoryReplayGuard::remembering_since(MIB, start);
        let d = device();
        let p = policy(300, 1000);
        let captured = start - chrono::Duration::seconds(30);
        assert_eq!(
            guard.admit_now(d, "captured", captured, &p).unwrap(),
            Admission::PredatesMemory {
                since: DateTime::from_timestamp(start.timestamp(), 0).unwrap()
            }
        );
        assert_eq!(
            guard.admit_now(d, "fresh", start, &p).unwrap(),
            Admission::Admitted
        );
    }

    #[test]
    fn one_device_at_its_quota_is_throttled_and_others_are_not() {
        // 2 requests/s over a 1 s window: a quota of a handful of nonces.
        let guard = InMemoryReplayGuard::new(MIB);
        let p = policy(1, 2);
        let quota = p.nonce_quota();
        let (noisy, quiet) = (device(), device());
        let now = Utc::now();
        let mut admitted = 0;
        for n in 0..quota * 3 {
            // A new rate window each time, so only the quota can stop it.
            let shard = &guard.shards[usize::from(noisy.as_uuid().as_bytes()[15]) % SHARDS];
            if let Some(l) = lock(shard).ledgers.get_mut(&noisy) {
                l.window = Duration::ZERO;
            }
            if guard.admit_now(noisy, &format!("n{n}"), now, &p).unwrap() == Admission::Admitted {
                admitted += 1;
            }
        }
        assert_eq!(admitted, quota, "the noisy device gets exactly its quota");
        assert_eq!(
            guard.admit_now(quiet, "n0", now, &p).unwrap(),
            Admission::Admitted
        );
    }

    #[test]
    fn a_full_guard_fails_closed() {
        let guard = InMemoryReplayGuard::new(DEVICE_BYTES + 3 * NONCE_BYTES);
        let d = device();
        let p = policy(300, 1000);
        let now = Utc::now();
        for n in 0..3 {
            assert_eq!(
                guard.admit_now(d, &format!("n{n}"), now, &p).unwrap(),
                Admission::Admitted
            );
        }
        let full = guard.admit_now(d, "n3", now, &p).unwrap_err();
        assert!(full.is_unavailable(), "{full}");
        assert!(guard.bytes() <= DEVICE_BYTES + 3 * NONCE_BYTES);
        assert_eq!(
            guard.admit_now(d, "n0", now, &p).unwrap(),
            Admission::Replayed,
            "still remembered"
        );
    }

    #[test]
    fn idle_devices_are_swept() {
        let guard = InMemoryReplayGuard::remembering_since(MIB, Utc::now() - chrono::Duration::hours(1));
        let p = policy(1, 1000);
        let old = Utc::now() - chrono::Duration::seconds(30);
        for _ in 0..50 {
            guard.admit_now(device(), "n", old, &p).unwrap();
        }
        for shard in &guard.shards {
            let mut shard = lock(shard);
            let now = Instant::now() + Duration::from_secs(2);
            guard.sweep(&mut shard, now, Utc::now().timestamp());
        }
        assert_eq!(guard.bytes(), 0, "expired nonces and idle devices are freed");
    }

    #[test]
    fn concurrent_identical_nonces_have_exactly_one_winner() {
        let guard = Arc::new(InMemoryReplayGuard::new(MIB));
        let d = device();
        let now = Utc::now();
        let threads: Vec<_> = (0..50)
            .map(|_| {
                let guard = Arc::clone(&guard);
                std::thread::spawn(move || {
                    guard
                        .admit_now(d, "the-same-nonce", now, &policy(300, 1000))
                        .unwrap()
                })
            })
            .collect();
        let wins = threads
            .into_iter()
            .map(|t| t.join().unwrap())
            .filter(|a| *a == Admission::Admitted)
            .count();
        assert_eq!(wins, 1);
    }
}
