//! Device activity (last seen, last poll, the latest heartbeat, first
//! deliveries) coalesced in memory and written in batches: a request never
//! waits for an activity write, and a busy fleet costs one statement per
//! flush interval instead of one per request.
//!
//! What a crash can lose: the activity of at most one flush interval
//! (timestamps, the latest heartbeat, when a signal was first delivered) —
//! never a signal, an acknowledgement or a secret change, which are written
//! before their request is answered.

use foldhash::HashMap;
use std::collections::hash_map::Entry;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use tracing::instrument;

use crate::device::{DeviceId, DeviceRepository, Heartbeat};
use crate::error::UnexpectedError;
use crate::signal::{SignalId, SignalRepository};

/// What one device did since the last flush.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeviceActivity {
    /// The latest authenticated request.
    pub seen_at: Option<DateTime<Utc>>,
    /// The latest poll.
    pub polled_at: Option<DateTime<Utc>>,
    /// The latest heartbeat.
    pub heartbeat: Option<Heartbeat>,
    /// Signals returned by a poll, with the time of the first such poll.
    pub delivered: Vec<(SignalId, DateTime<Utc>)>,
}

impl DeviceActivity {
    /// Folds `later` into `self`, keeping the latest of each.
    fn merge(&mut self, later: Self) {
        self.seen_at = self.seen_at.max(later.seen_at);
        self.polled_at = self.polled_at.max(later.polled_at);
        match (&self.heartbeat, later.heartbeat) {
            (Some(mine), Some(theirs)) if mine.received_at > theirs.received_at => {}
            (_, Some(theirs)) => self.heartbeat = Some(theirs),
            (_, None) => {}
        }
        for (signal, at) in later.delivered {
            self.deliver(signal, at);
        }
    }

    fn deliver(&mut self, signal: SignalId, at: DateTime<Utc>) {
        match self.delivered.iter_mut().find(|(s, _)| *s == signal) {
            Some((_, first)) => *first = (*first).min(at),
            None => self.delivered.push((signal, at)),
        }
    }
}

const SHARDS: usize = 16;

/// Activity waiting to be written, per device. Shared by the use cases that
/// record activity and the task that flushes it.
#[derive(Debug)]
pub struct ActivityBuffer {
    shards: Vec<Mutex<HashMap<DeviceId, DeviceActivity>>>,
}

impl Default for ActivityBuffer {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }
}

impl ActivityBuffer {
    fn shard(&self, device: DeviceId) -> MutexGuard<'_, HashMap<DeviceId, DeviceActivity>> {
        let i = usize::from(device.as_uuid().as_bytes()[15]) % SHARDS;
        self.shards[i].lock().unwrap_or_else(|p| p.into_inner())
    }

    fn update(&self, device: DeviceId, f: impl FnOnce(&mut DeviceActivity)) {
        f(self.shard(device).entry(device).or_default());
    }

    pub fn seen(&self, device: DeviceId, at: DateTime<Utc>) {
        self.update(device, |a| a.seen_at = a.seen_at.max(Some(at)));
    }

    pub fn polled(&self, device: DeviceId, at: DateTime<Utc>, delivered: &[SignalId]) {
        self.update(device, |a| {
            a.polled_at = a.polled_at.max(Some(at));
            for signal in delivered {
                a.deliver(*signal, at);
            }
        });
    }

    pub fn heartbeat(&self, device: DeviceId, heartbeat: Heartbeat) {
        self.update(device, |a| {
            a.merge(DeviceActivity {
                heartbeat: Some(heartbeat),
                ..DeviceActivity::default()
            });
        });
    }

    /// Takes everything recorded so far.
    pub fn drain(&self) -> Vec<(DeviceId, DeviceActivity)> {
        let mut out = Vec::new();
        for shard in &self.shards {
            let mut shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            out.extend(shard.drain());
        }
        out
    }

    /// Puts back activity whose write failed, under anything recorded
    /// since, so the next flush retries it.
    pub fn restore(&self, batch: Vec<(DeviceId, DeviceActivity)>) {
        for (device, earlier) in batch {
            let mut shard = self.shard(device);
            match shard.entry(device) {
                Entry::Occupied(mut e) => {
                    let later = std::mem::replace(e.get_mut(), earlier);
                    e.get_mut().merge(later);
                }
                Entry::Vacant(e) => {
                    e.insert(earlier);
                }
            }
        }
    }

    /// Devices with activity waiting.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Writes buffered activity: run [`ActivityWriter::flush`] every flush
/// interval and once at shutdown.
#[derive(Debug, Clone)]
pub struct ActivityWriter<D, S> {
    buffer: Arc<ActivityBuffer>,
    devices: D,
    signals: S,
}

impl<D: DeviceRepository, S: SignalRepository> ActivityWriter<D, S> {
    pub fn new(buffer: Arc<ActivityBuffer>, devices: D, signals: S) -> Self {
        Self {
            buffer,
            devices,
            signals,
        }
    }

    /// Writes everything buffered so far; returns how many devices it
    /// covered. On failure the activity goes back into the buffer for the
    /// next flush (writes are idempotent: times only move forward).
    #[instrument(level = "debug", skip_all)]
    pub async fn flush(&self) -> Result<usize, UnexpectedError> {
        let batch = self.buffer.drain();
        if batch.is_empty() {
            return Ok(0);
        }
        let delivered: Vec<(DeviceId, SignalId, DateTime<Utc>)> = batch
            .iter()
            .flat_map(|(device, a)| a.delivered.iter().map(move |(s, at)| (*device, *s, *at)))
            .collect();
        let written = async {
            self.devices.record_activity(&batch).await?;
            if !delivered.is_empty() {
                self.signals.mark_delivered(&delivered).await?;
            }
            Ok::<_, UnexpectedError>(())
        }
        .await;
        match written {
            Ok(()) => Ok(batch.len()),
            Err(e) => {
                self.buffer.restore(batch);
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;

    use super::*;

    fn at(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + s, 0).unwrap()
    }

    fn device(n: u8) -> DeviceId {
        DeviceId::from_uuid(uuid::Uuid::from_bytes([n; 16]))
    }

    fn heartbeat(version: &str, s: i64) -> Heartbeat {
        Heartbeat {
            ea_version: Some(version.into()),
            terminal_build: None,
            broker: None,
            account_login: None,
            balance: None,
            equity: None,
            received_at: at(s),
        }
    }

    #[test]
    fn activity_is_coalesced_per_device_keeping_the_latest() {
        let buffer = ActivityBuffer::default();
        let signal = SignalId::from_uuid(uuid::Uuid::from_bytes([9; 16]));
        buffer.seen(device(1), at(5));
        buffer.seen(device(1), at(3));
        buffer.polled(device(1), at(4), &[signal]);
        buffer.polled(device(1), at(6), &[signal]);
        buffer.heartbeat(device(1), heartbeat("1.0", 7));
        buffer.heartbeat(device(2), heartbeat("2.0", 1));
        assert_eq!(buffer.len(), 2);
        let mut batch = buffer.drain();
        batch.sort_by_key(|(d, _)| *d);
        assert!(buffer.is_empty(), "drained");
        let (_, one) = &batch[0];
        assert_eq!(one.seen_at, Some(at(5)), "latest seen wins");
        assert_eq!(one.polled_at, Some(at(6)));
        assert_eq!(one.delivered, vec![(signal, at(4))], "first delivery kept");
        assert_eq!(one.heartbeat.as_ref().unwrap().ea_version.as_deref(), Some("1.0"));
        assert_eq!(
            batch[1].1.heartbeat.as_ref().unwrap().ea_version.as_deref(),
            Some("2.0")
        );
    }

    #[test]
    fn a_failed_flush_is_restored_under_newer_activity() {
        let buffer = ActivityBuffer::default();
        buffer.seen(device(1), at(1));
        buffer.heartbeat(device(1), heartbeat("old", 1));
        let failed = buffer.drain();
        // Newer activity arrives while the write fails.
        buffer.seen(device(1), at(9));
        buffer.heartbeat(device(1), heartbeat("new", 9));
        buffer.restore(failed);
        let batch = buffer.drain();
        assert_eq!(batch.len(), 1);
        assert_eq!(batch[0].1.seen_at, Some(at(9)));
        assert_eq!(
            batch[0].1.heartbeat.as_ref().unwrap().ea_version.as_deref(),
            Some("new"),
            "the restored heartbeat does not overwrite a newer one"
        );
    }
}
