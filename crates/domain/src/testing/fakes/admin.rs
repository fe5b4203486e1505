//! [`AdminRepository`] over the in-memory store.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::store::InMemoryStore;
use crate::access::{AdminRepository, FleetStats, Role};
use crate::account::{Email, UserId};
use crate::audit::AuditEvent;
use crate::error::UnexpectedError;

#[derive(Debug, Clone)]
pub struct InMemoryAdminRepository(pub(super) InMemoryStore);

impl AdminRepository for InMemoryAdminRepository {
    async fn role_of(&self, user: UserId) -> Result<Role, UnexpectedError> {
        let state = self.0.state();
        Ok(
            if state.users.contains_key(&user) && state.admins.contains(&user) {
                Role::Admin
            } else {
                Role::Owner
            },
        )
    }

    async fn account_by_email(&self, email: &Email) -> Result<Option<UserId>, UnexpectedError> {
        Ok(self
            .0
            .state()
            .users
            .values()
            .find(|(u, _)| u.email == *email)
            .map(|(u, _)| u.id))
    }

    async fn set_role(&self, user: UserId, role: Role, audit: &AuditEvent) -> Result<bool, UnexpectedError> {
        let mut state = self.0.state();
        if !state.users.contains_key(&user) {
            return Ok(false);
        }
        let changed = match role {
            Role::Admin => state.admins.insert(user),
            Role::Owner => state.admins.remove(&user),
        };
        if changed {
            state.audit.push(audit.clone());
        }
        Ok(changed)
    }

    async fn fleet_stats(&self, since: DateTime<Utc>) -> Result<FleetStats, UnexpectedError> {
        let state = self.0.state();
        let mut per_day = BTreeMap::new();
        for record in state.signals.iter().filter(|r| r.signal.created_at >= since) {
            *per_day.entry(record.signal.created_at.date_naive()).or_insert(0) += 1;
        }
        let revoked = state
            .devices
            .values()
            .filter(|r| r.device.revoked_at.is_some())
            .count() as u64;
        Ok(FleetStats {
            accounts: state.users.len() as u64,
            admins: state
                .admins
                .iter()
                .filter(|u| state.users.contains_key(u))
                .count() as u64,
            devices_active: state.devices.len() as u64 - revoked,
            devices_revoked: revoked,
            signals_per_day: per_day.into_iter().collect(),
        })
    }
}
