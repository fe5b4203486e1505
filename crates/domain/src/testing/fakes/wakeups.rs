//! [`SignalWakeups`] over the in-memory store, moving a fixed clock.

use chrono::Duration;

use super::{FixedClock, InMemoryStore};
use crate::device::*;
use crate::signal::*;

/// Wake-ups over the in-memory store. Waiting does not sleep: it returns at
/// once if something was published for the device, else it moves the fixed
/// clock on by the timeout.
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
    seen: u64,
}

impl SignalWakeups for FakeWakeups {
    type Subscription = FakeSubscription;

    fn subscribe(&self, device: DeviceId) -> FakeSubscription {
        let seen = self.store.state().published.get(&device).copied().unwrap_or(0);
        FakeSubscription {
            wakeups: self.clone(),
            device,
            seen,
        }
    }
}

impl WakeupSubscription for FakeSubscription {
    async fn wait(&mut self, timeout: std::time::Duration) -> Wake {
        let now = self
            .wakeups
            .store
            .state()
            .published
            .get(&self.device)
            .copied()
            .unwrap_or(0);
        if now != self.seen {
            self.seen = now;
            Wake::Notified
        } else {
            self.wakeups
                .clock
                .advance(Duration::from_std(timeout).unwrap_or_else(|_| Duration::seconds(1)));
            Wake::TimedOut
        }
    }
}
