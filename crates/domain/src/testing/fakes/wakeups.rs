//! [`SignalWakeups`] over the in-memory store, moving a fixed clock.

use chrono::Duration;

use super::{FixedClock, InMemoryStore};
use crate::device::*;
use crate::signal::*;

/// Wake-ups over the in-memory store. Waiting does not sleep: it returns at
/// once with what was published for the device since subscribing, else it
/// moves the fixed clock on by the timeout. A device's newer subscription
/// supersedes the older one.
#[derive(Debug, Clone)]
pub struct FakeWakeups {
    store: InMemoryStore,
    clock: FixedClock,
}

impl FakeWakeups {
    pub(super) fn new(store: InMemoryStore, clock: FixedClock) -> Self {
        Self { store, clock }
    }
}

#[derive(Debug)]
pub struct FakeSubscription {
    wakeups: FakeWakeups,
    device: DeviceId,
    generation: u64,
    seen: usize,
}

impl SignalWakeups for FakeWakeups {
    type Subscription = FakeSubscription;

    fn subscribe(&self, device: DeviceId) -> FakeSubscription {
        let mut state = self.store.state();
        let seen = state.published.get(&device).map_or(0, Vec::len);
        let generation = state.subscriptions.entry(device).or_default();
        *generation += 1;
        FakeSubscription {
            wakeups: self.clone(),
            device,
            generation: *generation,
            seen,
        }
    }
}

impl WakeupSubscription for FakeSubscription {
    async fn wait(&mut self, timeout: std::time::Duration) -> Wake {
        let published = {
            let state = self.wakeups.store.state();
            if state.subscriptions.get(&self.device) != Some(&self.generation) {
                return Wake::Superseded;
            }
            let all = state.published.get(&self.device).cloned().unwrap_or_default();
            all[self.seen.min(all.len())..].to_vec()
        };
        if published.is_empty() {
            self.wakeups
                .clock
                .advance(Duration::from_std(timeout).unwrap_or_else(|_| Duration::seconds(1)));
            Wake::TimedOut
        } else {
            self.seen += published.len();
            Wake::Published(published)
        }
    }
}
