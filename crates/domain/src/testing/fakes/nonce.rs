//! [`ReplayGuard`] in memory, with switches for the failure modes.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use super::store::lock;
use crate::account::UserId;
use crate::device::*;
use crate::error::UnexpectedError;
use crate::ratelimit::decide;

#[derive(Debug, Default)]
struct Seen {
    nonces: HashSet<(DeviceId, String)>,
    /// Requests admitted per device (one window: the fake has no time).
    counts: HashMap<DeviceId, u64>,
}

/// A replay guard over a set: nonces never expire, each device's rate
/// window never resets, and it can remember only from `since` or be
/// switched to "unreachable".
#[derive(Debug, Clone, Default)]
pub struct FakeReplayGuard {
    seen: Arc<Mutex<Seen>>,
    since: Arc<Mutex<Option<DateTime<Utc>>>>,
    down: Arc<std::sync::atomic::AtomicBool>,
}

impl FakeReplayGuard {
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::Relaxed);
    }

    /// Requests signed before `since` predate the guard's memory.
    pub fn remember_since(&self, since: DateTime<Utc>) {
        *lock(&self.since) = Some(since);
    }
}

impl ReplayGuard for FakeReplayGuard {
    async fn admit(
        &self,
        device: DeviceId,
        _owner: UserId,
        nonce: &str,
        signed_at: DateTime<Utc>,
        policy: &AdmissionPolicy,
    ) -> Result<Admission, UnexpectedError> {
        if self.down.load(Ordering::Relaxed) {
            return Err(UnexpectedError::unavailable("replay guard unreachable"));
        }
        if let Some(since) = *lock(&self.since)
            && signed_at < since
        {
            return Ok(Admission::PredatesMemory { since });
        }
        let mut seen = lock(&self.seen);
        if !seen.nonces.insert((device, nonce.to_owned())) {
            return Ok(Admission::Replayed);
        }
        let count = seen.counts.entry(device).or_default();
        *count += 1;
        let decision = decide(*count, policy.rate, policy.rate.window);
        Ok(if decision.allowed {
            Admission::Admitted
        } else {
            Admission::Throttled(decision)
        })
    }
}
