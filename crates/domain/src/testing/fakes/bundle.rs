//! [`BundleStore`] and [`DeploymentRepository`] over the in-memory store.

use super::store::{BundleRecord, InMemoryStore, State};
use crate::account::UserId;
use crate::audit::AuditEvent;
use crate::bundle::*;
use crate::deployment::*;
use crate::device::DeviceId;
use crate::error::UnexpectedError;
use crate::pagination::{Page, PageRequest};

#[derive(Debug, Clone)]
pub struct InMemoryBundleStore(pub(super) InMemoryStore);

#[derive(Debug, Clone)]
pub struct InMemoryDeploymentRepository(pub(super) InMemoryStore);

fn completed(r: &BundleRecord) -> Option<Bundle> {
    let (size, sha256) = r.done.clone()?;
    Some(Bundle {
        id: r.new.id,
        owner: r.new.owner,
        name: r.new.name.clone(),
        version: r.new.version.clone(),
        notes: r.new.notes.clone(),
        size,
        sha256,
        created_at: r.new.created_at,
    })
}

impl BundleStore for InMemoryBundleStore {
    async fn begin(&self, new: &NewBundle) -> Result<(), BeginUploadError> {
        let mut state = self.0.state();
        if !state.users.contains_key(&new.owner) {
            return Err(UnexpectedError::msg("foreign key violation: no such user").into());
        }
        let same = |r: &BundleRecord| {
            r.new.owner == new.owner && r.new.name == new.name && r.new.version == new.version
        };
        state.bundles.retain(|_, r| {
            !(same(r) && r.done.is_none() && r.new.created_at + STALE_UPLOAD < new.created_at)
        });
        if state.bundles.values().any(same) {
            return Err(BeginUploadError::VersionTaken);
        }
        state.bundles.insert(
            new.id,
            BundleRecord {
                new: new.clone(),
                done: None,
                data: Vec::new(),
            },
        );
        Ok(())
    }

    async fn append(&self, id: BundleId, start: u64, data: &[u8]) -> Result<(), UnexpectedError> {
        let mut state = self.0.state();
        let r = state
            .bundles
            .get_mut(&id)
            .filter(|r| r.done.is_none())
            .ok_or_else(|| UnexpectedError::msg("no such upload in progress"))?;
        if r.data.len() as u64 != start || data.is_empty() {
            return Err(UnexpectedError::msg("chunk out of order"));
        }
        r.data.extend_from_slice(data);
        Ok(())
    }

    async fn complete(
        &self,
        id: BundleId,
        size: u64,
        sha256: &Sha256Hex,
        audit: &AuditEvent,
    ) -> Result<Bundle, UnexpectedError> {
        let mut state = self.0.state();
        let r = state
            .bundles
            .get_mut(&id)
            .filter(|r| r.done.is_none() && r.data.len() as u64 == size)
            .ok_or_else(|| UnexpectedError::msg("no such upload in progress of that size"))?;
        r.done = Some((size, sha256.clone()));
        let bundle = completed(r).ok_or_else(|| UnexpectedError::msg("not completed"))?;
        state.audit.push(audit.clone());
        Ok(bundle)
    }

    async fn abandon(&self, id: BundleId) -> Result<(), UnexpectedError> {
        let mut state = self.0.state();
        if state.bundles.get(&id).is_some_and(|r| r.done.is_none()) {
            state.bundles.remove(&id);
        }
        Ok(())
    }

    async fn drop_stale_uploads(&self, now: chrono::DateTime<chrono::Utc>) -> Result<u64, UnexpectedError> {
        let mut state = self.0.state();
        let before = state.bundles.len();
        state
            .bundles
            .retain(|_, r| r.done.is_some() || r.new.created_at + STALE_UPLOAD >= now);
        Ok((before - state.bundles.len()) as u64)
    }

    async fn stored_bytes(&self, owner: UserId) -> Result<u64, UnexpectedError> {
        Ok(self
            .0
            .state()
            .bundles
            .values()
            .filter(|r| r.new.owner == owner)
            .map(|r| r.done.as_ref().map_or(r.data.len() as u64, |(size, _)| *size))
            .sum())
    }

    async fn get(&self, owner: UserId, id: BundleId) -> Result<Option<Bundle>, UnexpectedError> {
        Ok(self
            .0
            .state()
            .bundles
            .get(&id)
            .filter(|r| r.new.owner == owner)
            .and_then(completed))
    }

    async fn list(&self, owner: UserId, page: &PageRequest) -> Result<Page<Bundle>, UnexpectedError> {
        let state = self.0.state();
        let mut items: Vec<Bundle> = state
            .bundles
            .values()
            .filter(|r| r.new.owner == owner)
            .filter_map(completed)
            .filter(|b| {
                page.after
                    .is_none_or(|c| (b.created_at, b.id.as_uuid()) < (c.at, c.id))
            })
            .collect();
        items.sort_by_key(|b| std::cmp::Reverse((b.created_at, b.id)));
        items.truncate(page.limit as usize + 1);
        Ok(Page::from_overfetch(items, page.limit, Bundle::cursor))
    }

    async fn delete(&self, owner: UserId, id: BundleId, audit: &AuditEvent) -> Result<(), DeleteBundleError> {
        let mut state = self.0.state();
        if !state
            .bundles
            .get(&id)
            .is_some_and(|r| r.new.owner == owner && r.done.is_some())
        {
            return Err(DeleteBundleError::NotFound);
        }
        if state.deployments.values().any(|d| d.bundle == id) {
            return Err(DeleteBundleError::InUse);
        }
        state.bundles.remove(&id);
        state.audit.push(audit.clone());
        Ok(())
    }

    async fn deployed_to(&self, device: DeviceId, id: BundleId) -> Result<Option<Bundle>, UnexpectedError> {
        let state = self.0.state();
        let deployed = state.deployments.values().any(|d| {
            d.bundle == id
                && d.devices
                    .iter()
                    .any(|p| p.device == device && p.started_at.is_some())
        });
        Ok(state.bundles.get(&id).filter(|_| deployed).and_then(completed))
    }

    async fn read(&self, id: BundleId, offset: u64, max: u32) -> Result<Vec<u8>, UnexpectedError> {
        let state = self.0.state();
        let r = state
            .bundles
            .get(&id)
            .filter(|r| r.done.is_some())
            .ok_or_else(|| UnexpectedError::msg("no such bundle"))?;
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(r.data.len());
        let end = start.saturating_add(max as usize).min(r.data.len());
        Ok(r.data[start..end].to_vec())
    }
}

/// The deployment as stored, with each device's latest EA version.
fn loaded(state: &State, d: &Deployment) -> Deployment {
    let mut d = d.clone();
    for p in &mut d.devices {
        p.ea_version = state
            .devices
            .get(&p.device)
            .and_then(|r| r.device.last_heartbeat.as_ref())
            .and_then(|h| h.ea_version.clone());
    }
    d
}

impl DeploymentRepository for InMemoryDeploymentRepository {
    async fn active_devices(
        &self,
        owner: UserId,
        only: DeviceSelection<'_>,
    ) -> Result<Vec<(DeviceId, Option<String>)>, UnexpectedError> {
        let state = self.0.state();
        let mut devices: Vec<_> = state
            .devices
            .values()
            .filter(|r| r.device.owner == owner && r.device.revoked_at.is_none())
            .filter(|r| match only {
                DeviceSelection::All => true,
                DeviceSelection::Ids(ids) => ids.contains(&r.device.id),
                DeviceSelection::Label(l) => state.labels.get(&r.device.id).is_some_and(|ls| ls.contains(l)),
            })
            .map(|r| &r.device)
            .collect();
        devices.sort_by_key(|d| (d.created_at, d.id));
        Ok(devices
            .into_iter()
            .map(|d| (d.id, d.last_heartbeat.as_ref().and_then(|h| h.ea_version.clone())))
            .collect())
    }

    async fn set_labels(
        &self,
        owner: UserId,
        device: DeviceId,
        labels: &[Label],
        audit: &AuditEvent,
    ) -> Result<bool, UnexpectedError> {
        let mut state = self.0.state();
        if state.devices.get(&device).is_none_or(|r| r.device.owner != owner) {
            return Ok(false);
        }
        let mut sorted = labels.to_vec();
        sorted.sort();
        sorted.dedup();
        state.labels.insert(device, sorted);
        state.audit.push(audit.clone());
        Ok(true)
    }

    async fn labels(&self, owner: UserId, device: DeviceId) -> Result<Option<Vec<Label>>, UnexpectedError> {
        let state = self.0.state();
        if state.devices.get(&device).is_none_or(|r| r.device.owner != owner) {
            return Ok(None);
        }
        Ok(Some(state.labels.get(&device).cloned().unwrap_or_default()))
    }

    async fn create(&self, deployment: &Deployment, audit: &[AuditEvent]) -> Result<(), UnexpectedError> {
        let mut state = self.0.state();
        if !state.bundles.contains_key(&deployment.bundle) {
            return Err(UnexpectedError::msg("foreign key violation: no such bundle"));
        }
        let mut stored = deployment.clone();
        stored.devices.iter_mut().for_each(|p| p.ea_version = None);
        for p in &deployment.devices {
            if let Some(r) = state.devices.get_mut(&p.device) {
                r.deployment_revision += 1;
            }
        }
        state.deployments.insert(deployment.id, stored);
        state.audit.extend_from_slice(audit);
        Ok(())
    }

    async fn get(&self, owner: UserId, id: DeploymentId) -> Result<Option<Deployment>, UnexpectedError> {
        let state = self.0.state();
        Ok(state
            .deployments
            .get(&id)
            .filter(|d| d.owner == owner)
            .map(|d| loaded(&state, d)))
    }

    async fn list(&self, owner: UserId, page: &PageRequest) -> Result<Page<Deployment>, UnexpectedError> {
        let state = self.0.state();
        let mut items: Vec<Deployment> = state
            .deployments
            .values()
            .filter(|d| d.owner == owner)
            .filter(|d| {
                page.after
                    .is_none_or(|c| (d.created_at, d.id.as_uuid()) < (c.at, c.id))
            })
            .map(|d| loaded(&state, d))
            .collect();
        items.sort_by_key(|d| std::cmp::Reverse((d.created_at, d.id)));
        items.truncate(page.limit as usize + 1);
        Ok(Page::from_overfetch(items, page.limit, Deployment::cursor))
    }

    async fn claim_for_sweep(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        limit: u32,
    ) -> Result<Vec<(UserId, DeploymentId)>, UnexpectedError> {
        let mut state = self.0.state();
        let mut running: Vec<(Option<chrono::DateTime<chrono::Utc>>, DeploymentId, UserId)> = state
            .deployments
            .values()
            .filter(|d| d.state == DeploymentState::Running)
            .map(|d| (state.swept.get(&d.id).copied(), d.id, d.owner))
            .collect();
        // None (never swept) sorts first.
        running.sort();
        running.truncate(limit as usize);
        for (_, id, _) in &running {
            state.swept.insert(*id, now);
        }
        Ok(running.into_iter().map(|(_, id, owner)| (owner, id)).collect())
    }

    async fn open_for_device(&self, device: DeviceId) -> Result<Option<Deployment>, UnexpectedError> {
        let state = self.0.state();
        Ok(state
            .deployments
            .values()
            .filter(|d| d.state == DeploymentState::Running)
            .filter(|d| d.progress_of(device).is_some_and(|p| p.status.is_open()))
            .max_by_key(|d| (d.created_at, d.id))
            .map(|d| loaded(&state, d)))
    }

    async fn get_for_device(
        &self,
        device: DeviceId,
        id: DeploymentId,
    ) -> Result<Option<Deployment>, UnexpectedError> {
        let state = self.0.state();
        Ok(state
            .deployments
            .get(&id)
            .filter(|d| d.progress_of(device).is_some())
            .map(|d| loaded(&state, d)))
    }

    async fn save(
        &self,
        deployment: &Deployment,
        changed: &[DeviceProgress],
        audit: &[AuditEvent],
    ) -> Result<(), SaveDeploymentError> {
        let mut state = self.0.state();
        let stored = state
            .deployments
            .get_mut(&deployment.id)
            .ok_or_else(|| UnexpectedError::msg("no such deployment"))?;
        if stored.revision != deployment.revision {
            return Err(SaveDeploymentError::Conflict);
        }
        stored.state = deployment.state;
        stored.current_wave = deployment.current_wave;
        stored.updated_at = deployment.updated_at;
        stored.revision += 1;
        for c in changed {
            if let Some(p) = stored.devices.iter_mut().find(|p| p.device == c.device) {
                *p = DeviceProgress {
                    ea_version: None,
                    ..c.clone()
                };
            }
        }
        for c in changed {
            if let Some(r) = state.devices.get_mut(&c.device) {
                r.deployment_revision += 1;
            }
        }
        state.audit.extend_from_slice(audit);
        Ok(())
    }
}
