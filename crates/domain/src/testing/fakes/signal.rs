//! [`SignalRepository`] over the in-memory store.

use chrono::{DateTime, Utc};

use super::store::{InMemoryStore, SignalRecord};
use crate::account::*;
use crate::device::*;
use crate::error::UnexpectedError;
use crate::pagination::{Page, PageRequest};
use crate::signal::*;

#[derive(Debug, Clone)]
pub struct InMemorySignalRepository(pub(super) InMemoryStore);

fn with_deliveries(r: &SignalRecord) -> SignalWithDeliveries {
    SignalWithDeliveries {
        signal: r.signal.clone(),
        deliveries: r.deliveries.clone(),
    }
}

impl SignalRepository for InMemorySignalRepository {
    async fn insert(&self, new: &NewSignal) -> Result<SignalWithDeliveries, InsertSignalError> {
        let mut state = self.0.state();
        if let Some((key, _)) = &new.idempotency
            && state.signals.iter().any(|r| {
                r.signal.owner == new.signal.owner && r.idempotency.as_ref().is_some_and(|(k, _)| k == key)
            })
        {
            return Err(InsertSignalError::DuplicateKey);
        }
        let record = SignalRecord {
            signal: new.signal.clone(),
            deliveries: new
                .deliveries
                .iter()
                .map(|(d, adaptation)| Delivery {
                    signal_id: new.signal.id,
                    device_id: *d,
                    first_polled_at: None,
                    ack: None,
                    cancelled_at: None,
                    adaptation: Some(adaptation.clone()),
                })
                .collect(),
            idempotency: new.idempotency.clone(),
        };
        for (d, adaptation) in &new.deliveries {
            if let Some(order) = adaptation.apply(&new.signal.order) {
                let signal = Signal {
                    order,
                    ..new.signal.clone()
                };
                state.published.entry(*d).or_default().push(signal);
            }
        }
        let out = with_deliveries(&record);
        state.signals.push(record);
        Ok(out)
    }

    async fn find_by_idempotency_key(
        &self,
        owner: UserId,
        key: &str,
    ) -> Result<Option<(SignalWithDeliveries, String)>, UnexpectedError> {
        Ok(self.0.state().signals.iter().find_map(|r| match &r.idempotency {
            Some((k, description)) if r.signal.owner == owner && k == key => {
                Some((with_deliveries(r), description.clone()))
            }
            _ => None,
        }))
    }

    async fn find(
        &self,
        owner: UserId,
        id: SignalId,
    ) -> Result<Option<SignalWithDeliveries>, UnexpectedError> {
        Ok(self
            .0
            .state()
            .signals
            .iter()
            .find(|r| r.signal.owner == owner && r.signal.id == id)
            .map(with_deliveries))
    }

    async fn list(
        &self,
        owner: UserId,
        page: &PageRequest,
    ) -> Result<Page<SignalWithDeliveries>, UnexpectedError> {
        let state = self.0.state();
        let mut all: Vec<SignalWithDeliveries> = state
            .signals
            .iter()
            .filter(|r| r.signal.owner == owner)
            .filter(|r| {
                page.after
                    .is_none_or(|c| (r.signal.created_at, r.signal.id.as_uuid()) < (c.at, c.id))
            })
            .map(with_deliveries)
            .collect();
        all.sort_by_key(|s| std::cmp::Reverse((s.signal.created_at, s.signal.id)));
        all.truncate(page.limit as usize + 1);
        Ok(Page::from_overfetch(all, page.limit, |s| s.signal.cursor()))
    }

    async fn cancel(
        &self,
        owner: UserId,
        id: SignalId,
        at: DateTime<Utc>,
    ) -> Result<Option<SignalWithDeliveries>, UnexpectedError> {
        let mut state = self.0.state();
        let Some(r) = state
            .signals
            .iter_mut()
            .find(|r| r.signal.owner == owner && r.signal.id == id)
        else {
            return Ok(None);
        };
        r.signal.cancelled_at.get_or_insert(at);
        for d in &mut r.deliveries {
            if d.ack.is_none() {
                d.cancelled_at.get_or_insert(at);
            }
        }
        Ok(Some(with_deliveries(r)))
    }

    async fn active_devices(&self, owner: UserId) -> Result<Vec<DeviceId>, UnexpectedError> {
        let mut ids: Vec<DeviceId> = self
            .0
            .state()
            .devices
            .values()
            .filter(|r| r.device.owner == owner && r.device.revoked_at.is_none())
            .map(|r| r.device.id)
            .collect();
        ids.sort();
        Ok(ids)
    }

    async fn pending_for_device(
        &self,
        device: DeviceId,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Signal>, UnexpectedError> {
        let state = self.0.state();
        let mut pending: Vec<Signal> = state
            .signals
            .iter()
            .filter(|r| !r.signal.is_expired(now))
            .filter_map(|r| {
                let d = r
                    .deliveries
                    .iter()
                    .find(|d| d.device_id == device && d.ack.is_none() && d.cancelled_at.is_none())?;
                match &d.adaptation {
                    None => Some(r.signal.clone()),
                    Some(a) => a.apply(&r.signal.order).map(|order| Signal {
                        order,
                        ..r.signal.clone()
                    }),
                }
            })
            .collect();
        pending.sort_by_key(|s| (s.created_at, s.id));
        pending.truncate(limit as usize);
        Ok(pending)
    }

    async fn mark_delivered(
        &self,
        deliveries: &[(DeviceId, SignalId, DateTime<Utc>)],
    ) -> Result<(), UnexpectedError> {
        let mut state = self.0.state();
        for (device, signal, at) in deliveries {
            for r in state.signals.iter_mut().filter(|r| r.signal.id == *signal) {
                for d in r.deliveries.iter_mut().filter(|d| d.device_id == *device) {
                    d.first_polled_at.get_or_insert(*at);
                }
            }
        }
        Ok(())
    }

    async fn acknowledge(
        &self,
        device: DeviceId,
        signal: SignalId,
        ack: &Ack,
    ) -> Result<AckRecord, UnexpectedError> {
        let mut state = self.0.state();
        let delivery = state
            .signals
            .iter_mut()
            .filter(|r| r.signal.id == signal)
            .flat_map(|r| r.deliveries.iter_mut())
            .find(|d| d.device_id == device);
        let Some(delivery) = delivery else {
            return Ok(AckRecord::NotFound);
        };
        if let Some(existing) = &delivery.ack {
            return Ok(AckRecord::Existing(existing.clone()));
        }
        delivery.ack = Some(ack.clone());
        if let Some(r) = state.devices.get_mut(&device) {
            r.device.last_ack_at = Some(ack.at);
        }
        Ok(AckRecord::Recorded(ack.clone()))
    }
}
