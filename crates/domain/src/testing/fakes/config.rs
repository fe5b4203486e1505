//! [`ConfigRepository`] over the in-memory store.

use super::store::{InMemoryStore, State};
use crate::account::UserId;
use crate::audit::AuditEvent;
use crate::config::*;
use crate::device::DeviceId;
use crate::error::UnexpectedError;
use crate::pagination::{Page, PageRequest};

#[derive(Debug, Clone)]
pub struct InMemoryConfigRepository(pub(super) InMemoryStore);

fn exists(state: &State, scope: ConfigScope) -> bool {
    match scope {
        ConfigScope::Account(owner) => state.users.contains_key(&owner),
        ConfigScope::Device(owner, device) => state
            .devices
            .get(&device)
            .is_some_and(|r| r.device.owner == owner),
    }
}

fn current(state: &State, scope: ConfigScope) -> CurrentConfig {
    state
        .configs
        .get(&scope)
        .and_then(|versions| versions.last())
        .map(|v| CurrentConfig {
            version: v.version,
            layer: v.layer.clone(),
        })
        .unwrap_or_default()
}

fn effective(state: &State, owner: UserId, device: DeviceId) -> Option<EffectiveConfig> {
    let record = state.devices.get(&device).filter(|r| r.device.owner == owner)?;
    Some(EffectiveConfig::merge(
        &current(state, ConfigScope::Account(owner)),
        Some(&current(state, ConfigScope::Device(owner, device))),
        record.config_revision,
    ))
}

impl ConfigRepository for InMemoryConfigRepository {
    async fn current(&self, scope: ConfigScope) -> Result<Option<CurrentConfig>, UnexpectedError> {
        let state = self.0.state();
        Ok(match scope {
            ConfigScope::Account(_) => Some(current(&state, scope)),
            ConfigScope::Device(..) => exists(&state, scope).then(|| current(&state, scope)),
        })
    }

    async fn effective(
        &self,
        owner: UserId,
        device: DeviceId,
    ) -> Result<Option<EffectiveConfig>, UnexpectedError> {
        Ok(effective(&self.0.state(), owner, device))
    }

    async fn effective_for_devices(
        &self,
        owner: UserId,
        devices: &[DeviceId],
    ) -> Result<Vec<(DeviceId, EffectiveConfig)>, UnexpectedError> {
        let state = self.0.state();
        Ok(devices
            .iter()
            .filter_map(|d| effective(&state, owner, *d).map(|e| (*d, e)))
            .collect())
    }

    async fn write(
        &self,
        new: &ConfigVersion,
        expected: u32,
        audit: &AuditEvent,
    ) -> Result<(), WriteConfigError> {
        let mut state = self.0.state();
        if !exists(&state, new.scope) {
            return match new.scope {
                ConfigScope::Account(_) => {
                    Err(UnexpectedError::msg("foreign key violation: no such user").into())
                }
                ConfigScope::Device(..) => Err(WriteConfigError::NotFound),
            };
        }
        let now = current(&state, new.scope).version;
        if now != expected || new.version != expected + 1 {
            return Err(WriteConfigError::VersionMismatch { current: now });
        }
        state.configs.entry(new.scope).or_default().push(new.clone());
        let owner = new.scope.owner();
        for r in state.devices.values_mut() {
            if r.device.owner == owner && new.scope.device().is_none_or(|d| d == r.device.id) {
                r.config_revision += 1;
            }
        }
        state.audit.push(audit.clone());
        Ok(())
    }

    async fn history(
        &self,
        scope: ConfigScope,
        page: &PageRequest,
    ) -> Result<Option<Page<ConfigVersion>>, UnexpectedError> {
        let state = self.0.state();
        if !exists(&state, scope) && scope.device().is_some() {
            return Ok(None);
        }
        let mut versions: Vec<ConfigVersion> = state
            .configs
            .get(&scope)
            .map(|v| v.iter().rev().cloned().collect())
            .unwrap_or_default();
        if let Some(after) = page.after {
            versions.retain(|v| u128::from(v.version) < after.id.as_u128());
        }
        versions.truncate(page.limit as usize + 1);
        Ok(Some(Page::from_overfetch(
            versions,
            page.limit,
            ConfigVersion::cursor,
        )))
    }

    async fn version(
        &self,
        scope: ConfigScope,
        version: u32,
    ) -> Result<Option<ConfigVersion>, UnexpectedError> {
        let state = self.0.state();
        if !exists(&state, scope) {
            return Ok(None);
        }
        Ok(state
            .configs
            .get(&scope)
            .and_then(|v| v.iter().find(|c| c.version == version).cloned()))
    }
}
