use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use eagate_domain::UnexpectedError;
use eagate_domain::device::{DeviceId, NonceStore};

const SHARDS: usize = 16;

type Key = (DeviceId, Box<str>);

#[derive(Debug, Default)]
struct Shard {
    expiry: HashMap<Key, Instant>,
    /// Insertion order, for purging expired entries from the front. Entries
    /// share one TTL, so insertion order is expiry order.
    order: VecDeque<(Instant, Key)>,
}

impl Shard {
    fn purge(&mut self, now: Instant) {
        while let Some((at, _)) = self.order.front() {
            if *at > now {
                break;
            }
            if let Some((at, key)) = self.order.pop_front()
                && self.expiry.get(&key) == Some(&at)
            {
                self.expiry.remove(&key);
            }
        }
    }
}

/// Nonces in process memory: sharded maps with expiry, at most `capacity`
/// live entries. When full it refuses (fails closed) rather than forget a
/// nonce that could then be replayed.
#[derive(Debug)]
pub struct InMemoryNonceStore {
    shards: Vec<Mutex<Shard>>,
    per_shard: usize,
    hasher: RandomState,
}

impl InMemoryNonceStore {
    pub fn new(capacity: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            per_shard: capacity.div_ceil(SHARDS).max(1),
            hasher: RandomState::new(),
        }
    }

    fn shard(&self, key: &Key) -> MutexGuard<'_, Shard> {
        let i = (self.hasher.hash_one(key) as usize) % SHARDS;
        self.shards[i].lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Live entries (after purging expired ones), for tests and metrics.
    pub fn len(&self) -> usize {
        let now = Instant::now();
        self.shards
            .iter()
            .map(|s| {
                let mut s = s.lock().unwrap_or_else(|p| p.into_inner());
                s.purge(now);
                s.expiry.len()
            })
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn record(&self, device: DeviceId, nonce: &str, ttl: Duration) -> Result<bool, UnexpectedError> {
        let key: Key = (device, nonce.into());
        let now = Instant::now();
        let mut shard = self.shard(&key);
        shard.purge(now);
        if shard.expiry.len() >= self.per_shard && !shard.expiry.contains_key(&key) {
            return Err(UnexpectedError::msg(
                "the in-memory nonce store is full; raise EAGATE_NONCE_CAPACITY or use Redis",
            ));
        }
        let until = now + ttl;
        match shard.expiry.entry(key.clone()) {
            Entry::Occupied(e) if *e.get() > now => Ok(false),
            Entry::Occupied(mut e) => {
                e.insert(until);
                shard.order.push_back((until, key));
                Ok(true)
            }
            Entry::Vacant(e) => {
                e.insert(until);
                shard.order.push_back((until, key));
                Ok(true)
            }
        }
    }
}

impl NonceStore for InMemoryNonceStore {
    async fn check_and_record(
        &self,
        device: DeviceId,
        nonce: &str,
        ttl: chrono::Duration,
    ) -> Result<bool, UnexpectedError> {
        let ttl = ttl
            .to_std()
            .map_err(|_| UnexpectedError::msg("negative nonce TTL"))?;
        self.record(device, nonce, ttl)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use uuid::Uuid;

    use super::*;

    fn device() -> DeviceId {
        DeviceId::from_uuid(Uuid::now_v7())
    }

    const MINUTE: chrono::Duration = chrono::Duration::minutes(1);

    eagate_domain::nonce_store_contract!(async { ((), InMemoryNonceStore::new(1000)) });

    #[tokio::test]
    async fn len_counts_live_entries() {
        let store = InMemoryNonceStore::new(1000);
        let (a, b) = (device(), device());
        for (d, nonce) in [
            (a, "nonce-0000000001"),
            (a, "nonce-0000000001"),
            (a, "nonce-0000000002"),
            (b, "nonce-0000000001"),
        ] {
            store.check_and_record(d, nonce, MINUTE).await.unwrap();
        }
        assert_eq!(store.len(), 3, "three distinct (device, nonce) pairs, one replay");
    }

    #[tokio::test]
    async fn entries_expire_and_memory_is_reclaimed() {
        let store = InMemoryNonceStore::new(1000);
        let d = device();
        let short = chrono::Duration::milliseconds(30);
        for n in 0..10 {
            assert!(
                store
                    .check_and_record(d, &format!("nonce-{n:010}"), short)
                    .await
                    .unwrap()
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(60)).await;
        assert_eq!(store.len(), 0);
        assert!(
            store
                .check_and_record(d, "nonce-0000000000", short)
                .await
                .unwrap(),
            "expired"
        );
    }

    #[tokio::test]
    async fn a_full_store_fails_closed() {
        let store = InMemoryNonceStore::new(SHARDS);
        let d = device();
        let mut refused = 0;
        for n in 0..200 {
            if store
                .check_and_record(d, &format!("nonce-{n:010}"), MINUTE)
                .await
                .is_err()
            {
                refused += 1;
            }
        }
        assert!(refused > 0);
        assert!(store.len() <= SHARDS);
    }

    #[test]
    fn concurrent_identical_nonces_have_exactly_one_winner() {
        let store = Arc::new(InMemoryNonceStore::new(1000));
        let d = device();
        let threads: Vec<_> = (0..50)
            .map(|_| {
                let store = Arc::clone(&store);
                std::thread::spawn(move || {
                    store
                        .record(d, "the-same-nonce-01", Duration::from_secs(60))
                        .unwrap()
                })
            })
            .collect();
        let wins = threads
            .into_iter()
            .map(|t| t.join().unwrap())
            .filter(|won| *won)
            .count();
        assert_eq!(wins, 1, "of 50 concurrent uses of one nonce exactly one must win");
    }
}
