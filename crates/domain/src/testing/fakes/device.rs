//! [`DeviceRepository`] over the in-memory store.

use chrono::{DateTime, Utc};

use super::store::{DeviceRecord, InMemoryStore, State};
use crate::account::*;
use crate::audit::AuditEvent;
use crate::device::*;
use crate::error::UnexpectedError;
use crate::pagination::{Page, PageRequest};

#[derive(Debug, Clone)]
pub struct InMemoryDeviceRepository(pub(super) InMemoryStore);

fn owned(state: &State, owner: UserId, id: DeviceId) -> Option<&DeviceRecord> {
    state.devices.get(&id).filter(|r| r.device.owner == owner)
}

fn name_taken(state: &State, owner: UserId, name: &DeviceName, except: Option<DeviceId>) -> bool {
    state.devices.values().any(|r| {
        r.device.owner == owner
            && r.device.revoked_at.is_none()
            && Some(r.device.id) != except
            && r.device.name.key() == name.key()
    })
}

impl DeviceRepository for InMemoryDeviceRepository {
    async fn insert(
        &self,
        new: &NewDevice,
        max_active: u32,
        audit: &AuditEvent,
    ) -> Result<Device, InsertDeviceError> {
        let mut state = self.0.state();
        if !state.users.contains_key(&new.owner) {
            return Err(UnexpectedError::msg("foreign key violation: no such user").into());
        }
        if name_taken(&state, new.owner, &new.name, None) {
            return Err(InsertDeviceError::NameTaken);
        }
        let active = state
            .devices
            .values()
            .filter(|r| r.device.owner == new.owner && r.device.revoked_at.is_none())
            .count();
        if active >= max_active as usize {
            return Err(InsertDeviceError::LimitReached);
        }
        let device = Device {
            id: new.id,
            owner: new.owner,
            name: new.name.clone(),
            created_at: new.created_at,
            updated_at: new.created_at,
            revoked_at: None,
            last_seen_at: None,
            last_poll_at: None,
            last_ack_at: None,
            secret_fingerprint: new.fingerprint.clone(),
            last_heartbeat: None,
        };
        state.devices.insert(
            new.id,
            DeviceRecord {
                device: device.clone(),
                current: new.secret.clone(),
                previous: None,
                config_revision: 0,
                deployment_revision: 0,
            },
        );
        state.audit.push(audit.clone());
        Ok(device)
    }

    async fn find(&self, owner: UserId, id: DeviceId) -> Result<Option<Device>, UnexpectedError> {
        Ok(owned(&self.0.state(), owner, id).map(|r| r.device.clone()))
    }

    async fn list(
        &self,
        owner: UserId,
        status: Option<DeviceStatus>,
        page: &PageRequest,
    ) -> Result<Page<Device>, UnexpectedError> {
        let state = self.0.state();
        let mut devices: Vec<Device> = state
            .devices
            .values()
            .map(|r| &r.device)
            .filter(|d| d.owner == owner && status.is_none_or(|s| d.status() == s))
            .filter(|d| {
                page.after
                    .is_none_or(|c| (d.created_at, d.id.as_uuid()) < (c.at, c.id))
            })
            .cloned()
            .collect();
        devices.sort_by_key(|d| std::cmp::Reverse((d.created_at, d.id)));
        devices.truncate(page.limit as usize + 1);
        Ok(Page::from_overfetch(devices, page.limit, Device::cursor))
    }

    async fn rename(
        &self,
        owner: UserId,
        id: DeviceId,
        name: &DeviceName,
        at: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> Result<Device, UpdateDeviceError> {
        let mut state = self.0.state();
        let record = owned(&state, owner, id).ok_or(UpdateDeviceError::NotFound)?;
        if record.device.revoked_at.is_some() {
            return Err(UpdateDeviceError::Revoked);
        }
        if name_taken(&state, owner, name, Some(id)) {
            return Err(UpdateDeviceError::NameTaken);
        }
        let record = state.devices.get_mut(&id).ok_or(UpdateDeviceError::NotFound)?;
        record.device.name = name.clone();
        record.device.updated_at = at;
        let device = record.device.clone();
        state.audit.push(audit.clone());
        Ok(device)
    }

    async fn rotate_secret(
        &self,
        owner: UserId,
        id: DeviceId,
        rotation: &SecretRotation,
        audit: &AuditEvent,
    ) -> Result<Device, UpdateDeviceError> {
        let mut state = self.0.state();
        let record = owned(&state, owner, id).ok_or(UpdateDeviceError::NotFound)?;
        if record.device.revoked_at.is_some() {
            return Err(UpdateDeviceError::Revoked);
        }
        let record = state.devices.get_mut(&id).ok_or(UpdateDeviceError::NotFound)?;
        let replaced = std::mem::replace(&mut record.current, rotation.secret.clone());
        record.previous = rotation.previous_valid_until.map(|until| (replaced, until));
        record.device.secret_fingerprint = rotation.fingerprint.clone();
        record.device.updated_at = rotation.at;
        let device = record.device.clone();
        state.audit.push(audit.clone());
        Ok(device)
    }

    async fn revoke(
        &self,
        owner: UserId,
        id: DeviceId,
        at: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> Result<Revocation, UpdateDeviceError> {
        let mut state = self.0.state();
        if owned(&state, owner, id).is_none() {
            return Err(UpdateDeviceError::NotFound);
        }
        let record = state.devices.get_mut(&id).ok_or(UpdateDeviceError::NotFound)?;
        if record.device.revoked_at.is_some() {
            return Ok(Revocation::AlreadyRevoked(record.device.clone()));
        }
        record.device.revoked_at = Some(at);
        record.device.updated_at = at;
        record.previous = None;
        let device = record.device.clone();
        state.audit.push(audit.clone());
        Ok(Revocation::Revoked(device))
    }

    async fn find_credentials(&self, id: DeviceId) -> Result<Option<DeviceCredentials>, UnexpectedError> {
        let state = self.0.state();
        Ok(state.devices.get(&id).map(|r| DeviceCredentials {
            id,
            owner: r.device.owner,
            name: r.device.name.clone(),
            // A disabled owner's devices count as revoked.
            revoked: r.device.revoked_at.is_some() || state.disabled.contains_key(&r.device.owner),
            current: r.current.clone(),
            previous: r.previous.clone(),
            config_revision: r.config_revision,
            deployment_revision: r.deployment_revision,
        }))
    }

    async fn record_activity(
        &self,
        batch: &[(DeviceId, crate::activity::DeviceActivity)],
    ) -> Result<(), UnexpectedError> {
        let mut state = self.0.state();
        for (id, activity) in batch {
            let Some(r) = state.devices.get_mut(id) else {
                continue;
            };
            r.device.last_seen_at = r.device.last_seen_at.max(activity.seen_at);
            r.device.last_poll_at = r.device.last_poll_at.max(activity.polled_at);
            if let Some(heartbeat) = &activity.heartbeat
                && r.device
                    .last_heartbeat
                    .as_ref()
                    .is_none_or(|stored| stored.received_at <= heartbeat.received_at)
            {
                r.device.last_heartbeat = Some(heartbeat.clone());
            }
        }
        Ok(())
    }

    async fn stored_secrets(
        &self,
        after: Option<DeviceId>,
        limit: u32,
    ) -> Result<Vec<StoredSecrets>, UnexpectedError> {
        let state = self.0.state();
        let mut all: Vec<StoredSecrets> = state
            .devices
            .values()
            .filter(|r| r.device.revoked_at.is_none())
            .filter(|r| after.is_none_or(|a| r.device.id > a))
            .map(|r| StoredSecrets {
                device: r.device.id,
                current: r.current.clone(),
                previous: r.previous.as_ref().map(|(s, _)| s.clone()),
            })
            .collect();
        all.sort_by_key(|s| s.device);
        all.truncate(limit as usize);
        Ok(all)
    }

    async fn reseal(
        &self,
        expected: &StoredSecrets,
        current: &SealedSecret,
        previous: Option<&SealedSecret>,
    ) -> Result<bool, UnexpectedError> {
        let mut state = self.0.state();
        let Some(record) = state.devices.get_mut(&expected.device) else {
            return Ok(false);
        };
        let same = record.current == expected.current
            && record.previous.as_ref().map(|(s, _)| s) == expected.previous.as_ref();
        if !same {
            return Ok(false);
        }
        record.current = current.clone();
        if let (Some((stored, _)), Some(new)) = (record.previous.as_mut(), previous) {
            *stored = new.clone();
        }
        Ok(true)
    }
}
