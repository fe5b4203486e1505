//! [`ReplayGuard`] in process memory: per device, the nonces whose requests
//! can still arrive (until their timestamp leaves the acceptance window) and
//! a fixed-window request counter.
//!
//! Memory is bounded four ways: a nonce is kept only until `signed_at +
//! window`; a device holds at most [`AdmissionPolicy::nonce_quota`] nonces
//! (beyond that it is throttled); once more than half of the guard is in
//! use, an account holding more than its fair share — `max_bytes` divided
//! by one more than the number of accounts holding anything, so there is
//! always room for one more — is throttled (so a few accounts cannot crowd
//! out another, however many devices they have); and the whole guard holds
//! at most `max_bytes` (beyond that it refuses, failing closed). A nonce
//! costs [`NONCE_BYTES`]: it is kept as a keyed 64-bit hash, not as text.
//! The fair share costs a good request one atomic load and one atomic
//! add; the account table is only touched when a device's ledger is made
//! or swept.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::collections::hash_map::Entry;

use foldhash::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use eagate_domain::UnexpectedError;
use eagate_domain::account::UserId;
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
    owner: UserId,
    /// Bytes held by every ledger of the owner's account.
    account: Arc<AtomicUsize>,
}

impl Ledger {
    fn new(now: Instant, owner: UserId, account: Arc<AtomicUsize>) -> Self {
        Self {
            nonces: HashMap::default(),
            expiries: BinaryHeap::new(),
            window_start: now,
            window: Duration::ZERO,
            count: 0,
            owner,
            account,
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

/// One account's bytes and how many device ledgers share them.
#[derive(Debug)]
struct Account {
    bytes: Arc<AtomicUsize>,
    ledgers: usize,
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
    /// Accounts holding anything. Locked only when a ledger is made or
    /// swept, always after its shard.
    accounts: Mutex<HashMap<UserId, Account>>,
    active_accounts: AtomicUsize,
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
            accounts: Mutex::default(),
            active_accounts: AtomicUsize::new(0),
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
                        self.purge(l, now);
                        l.nonces.len()
                    })
                    .sum::<usize>()
            })
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes held by `owner`'s account (tests).
    #[cfg(test)]
    fn account_bytes(&self, owner: UserId) -> usize {
        self.accounts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&owner)
            .map_or(0, |a| a.bytes.load(Ordering::Relaxed))
    }

    fn release(&self, bytes: usize) {
        if bytes > 0 {
            self.bytes.fetch_sub(bytes, Ordering::Relaxed);
        }
    }

    /// Forgets the ledger's expired nonces and frees their bytes.
    fn purge(&self, ledger: &mut Ledger, now_unix: i64) {
        let freed = ledger.purge(now_unix) * NONCE_BYTES;
        if freed > 0 {
            ledger.account.fetch_sub(freed, Ordering::Relaxed);
            self.release(freed);
        }
    }

    /// A ledger for a device of `owner`, counted in its account.
    fn open_ledger(&self, owner: UserId, now: Instant) -> Result<Ledger, UnexpectedError> {
        self.reserve(DEVICE_BYTES)?;
        let mut accounts = self.accounts.lock().unwrap_or_else(|p| p.into_inner());
        let account = accounts.entry(owner).or_insert_with(|| {
            self.active_accounts.fetch_add(1, Ordering::Relaxed);
            Account {
                bytes: Arc::default(),
                ledgers: 0,
            }
        });
        account.ledgers += 1;
        account.bytes.fetch_add(DEVICE_BYTES, Ordering::Relaxed);
        Ok(Ledger::new(now, owner, Arc::clone(&account.bytes)))
    }

    /// Frees an idle ledger (no nonces left) from its account.
    fn close_ledger(&self, ledger: &Ledger) {
        ledger.account.fetch_sub(DEVICE_BYTES, Ordering::Relaxed);
        let mut accounts = self.accounts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(account) = accounts.get_mut(&ledger.owner) {
            account.ledgers = account.ledgers.saturating_sub(1);
            if account.ledgers == 0 {
                accounts.remove(&ledger.owner);
                self.active_accounts.fetch_sub(1, Ordering::Relaxed);
            }
        }
        self.release(DEVICE_BYTES);
    }

    /// Whether an account holding `held` bytes is over its fair share of a
    /// crowded guard (more than half in use).
    fn over_fair_share(&self, held: usize) -> bool {
        self.bytes.load(Ordering::Relaxed) > self.max_bytes / 2
            && held >= self.max_bytes / (self.active_accounts.load(Ordering::Relaxed) + 1)
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
        shard.ledgers.retain(|_, ledger| {
            self.purge(ledger, now_unix);
            if ledger.idle(now) {
                self.close_ledger(ledger);
                false
            } else {
                true
            }
        });
        shard.swept = now;
    }

    fn admit_now(
        &self,
        device: DeviceId,
        owner: UserId,
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
            Entry::Vacant(e) => e.insert(self.open_ledger(owner, now)?),
        };
        self.purge(ledger, now_unix);
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
        if ledger.nonces.len() as u64 >= policy.nonce_quota()
            || self.over_fair_share(ledger.account.load(Ordering::Relaxed))
        {
            // More nonces than its rate allows in the window, or its
            // account holds more than its share of a crowded guard: this
            // device alone waits for its oldest nonces to expire.
            return Ok(Admission::Throttled(RateDecision {
                allowed: false,
                limit: rate.limit,
                remaining: 0,
                reset_after,
            }));
        }
        self.reserve(NONCE_BYTES)?;
        ledger.account.fetch_add(NONCE_BYTES, Ordering::Relaxed);
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
        owner: UserId,
        nonce: &str,
        signed_at: DateTime<Utc>,
        policy: &AdmissionPolicy,
    ) -> Result<Admission, UnexpectedError> {
        self.admit_now(device, owner, nonce, signed_at, policy)
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

    /// The one account of the tests that are not about accounts.
    fn owner() -> UserId {
        UserId::from_uuid(Uuid::nil())
    }

    fn account() -> UserId {
        UserId::from_uuid(Uuid::now_v7())
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
        assert_eq!(
            guard.admit_now(d, owner(), "n-old", old, &p).unwrap(),
            Admission::Admitted
        );
        // Signed 400 s ago (a request the skew check would have refused):
        // its expiry has passed, so it is forgotten at once.
        let ancient = now - chrono::Duration::seconds(400);
        assert_eq!(
            guard.admit_now(d, owner(), "n-ancient", ancient, &p).unwrap(),
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
            guard.admit_now(d, owner(), "captured", captured, &p).unwrap(),
            Admission::PredatesMemory {
                since: DateTime::from_timestamp(start.timestamp(), 0).unwrap()
            }
        );
        assert_eq!(
            guard.admit_now(d, owner(), "fresh", start, &p).unwrap(),
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
            if guard
                .admit_now(noisy, owner(), &format!("n{n}"), now, &p)
                .unwrap()
                == Admission::Admitted
            {
                admitted += 1;
            }
        }
        assert_eq!(admitted, quota, "the noisy device gets exactly its quota");
        assert_eq!(
            guard.admit_now(quiet, owner(), "n0", now, &p).unwrap(),
            Admission::Admitted
        );
    }

    #[test]
    fn a_full_guard_fails_closed() {
        // Four accounts, each well within its fair share, fill it.
        let guard = InMemoryReplayGuard::new(4 * (DEVICE_BYTES + NONCE_BYTES));
        let p = policy(300, 1000);
        let now = Utc::now();
        let (first, first_owner) = (device(), account());
        assert_eq!(
            guard.admit_now(first, first_owner, "n0", now, &p).unwrap(),
            Admission::Admitted
        );
        for _ in 0..3 {
            assert_eq!(
                guard.admit_now(device(), account(), "n0", now, &p).unwrap(),
                Admission::Admitted
            );
        }
        let full = guard.admit_now(device(), account(), "n0", now, &p).unwrap_err();
        assert!(full.is_unavailable(), "{full}");
        // (The first account is over its share of the crowded guard by now.)
        let more = guard.admit_now(first, first_owner, "n1", now, &p);
        assert!(!matches!(more, Ok(Admission::Admitted)), "{more:?}");
        assert!(guard.bytes() <= 4 * (DEVICE_BYTES + NONCE_BYTES));
        assert_eq!(
            guard.admit_now(first, first_owner, "n0", now, &p).unwrap(),
            Admission::Replayed,
            "still remembered"
        );
    }

    #[test]
    fn accounts_over_their_fair_share_of_a_crowded_guard_are_throttled_and_others_are_not() {
        // Room for 100 nonces and four devices.
        let max = 100 * NONCE_BYTES + 4 * DEVICE_BYTES;
        let guard = InMemoryReplayGuard::new(max);
        let p = policy(300, 1000);
        let now = Utc::now();
        let hoarders: Vec<(DeviceId, UserId)> = (0..3).map(|_| (device(), account())).collect();
        let mut admitted = 0;
        for n in 0..100 {
            for (d, owner) in &hoarders {
                match guard.admit_now(*d, *owner, &format!("h{n}"), now, &p) {
                    Ok(Admission::Admitted) => admitted += 1,
                    Ok(Admission::Throttled(_)) => {}
                    other => panic!("a hoarder is throttled, never refused: {other:?}"),
                }
            }
        }
        // Each stops at its share of the guard (a quarter: three accounts
        // and room for one more), give or take the nonce that crossed it.
        for (_, owner) in &hoarders {
            assert!(
                guard.account_bytes(*owner) <= max / 4 + NONCE_BYTES,
                "{}",
                guard.account_bytes(*owner)
            );
        }
        assert!(admitted < 100, "{admitted}");
        let (victim, victim_owner) = (device(), account());
        for n in 0..10 {
            assert_eq!(
                guard
                    .admit_now(victim, victim_owner, &format!("v{n}"), now, &p)
                    .unwrap(),
                Admission::Admitted,
                "another account is served"
            );
        }
        let late = guard.admit_now(hoarders[0].0, hoarders[0].1, "h-late", now, &p);
        assert!(
            matches!(late, Ok(Admission::Throttled(_))),
            "the hoarder is still throttled: {late:?}"
        );
    }

    #[test]
    fn idle_devices_are_swept() {
        let guard = InMemoryReplayGuard::remembering_since(MIB, Utc::now() - chrono::Duration::hours(1));
        let p = policy(1, 1000);
        let old = Utc::now() - chrono::Duration::seconds(30);
        for _ in 0..50 {
            guard.admit_now(device(), owner(), "n", old, &p).unwrap();
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
                        .admit_now(d, owner(), "the-same-nonce", now, &policy(300, 1000))
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
