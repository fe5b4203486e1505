//! [`AdminRepository`] over the in-memory store.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::store::{InMemoryStore, State};
use crate::access::{AccountSummary, AdminRepository, AuditFilter, FleetStats, Role};
use crate::account::{Email, UserId};
use crate::audit::AuditEvent;
use crate::error::UnexpectedError;
use crate::pagination::{Page, PageRequest};

fn summary(state: &State, u: &crate::account::User) -> AccountSummary {
    AccountSummary {
        id: u.id,
        username: u.username.clone(),
        email: u.email.clone(),
        role: if state.admins.contains(&u.id) {
            Role::Admin
        } else {
            Role::Owner
        },
        created_at: u.created_at,
        disabled_at: state.disabled.get(&u.id).copied(),
    }
}

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

    async fn list_accounts(
        &self,
        search: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<AccountSummary>, UnexpectedError> {
        let state = self.0.state();
        let needle = search.map(str::to_lowercase);
        let mut accounts: Vec<AccountSummary> = state
            .users
            .values()
            .map(|(u, _)| u)
            .filter(|u| {
                needle.as_deref().is_none_or(|n| {
                    u.username.as_str().to_lowercase().contains(n)
                        || u.email.as_str().to_lowercase().contains(n)
                })
            })
            .filter(|u| {
                page.after
                    .is_none_or(|c| (u.created_at, u.id.as_uuid()) < (c.at, c.id))
            })
            .map(|u| summary(&state, u))
            .collect();
        accounts.sort_by_key(|a| std::cmp::Reverse((a.created_at, a.id)));
        accounts.truncate(page.limit as usize + 1);
        Ok(Page::from_overfetch(accounts, page.limit, AccountSummary::cursor))
    }

    async fn audit(
        &self,
        filter: &AuditFilter,
        page: &PageRequest,
    ) -> Result<Page<AuditEvent>, UnexpectedError> {
        let state = self.0.state();
        let mut events: Vec<AuditEvent> = state
            .audit
            .iter()
            .filter(|e| filter.matches(e))
            .filter(|e| page.after.is_none_or(|c| (e.occurred_at, e.id) < (c.at, c.id)))
            .cloned()
            .collect();
        events.sort_by_key(|e| std::cmp::Reverse((e.occurred_at, e.id)));
        events.truncate(page.limit as usize + 1);
        Ok(Page::from_overfetch(events, page.limit, AuditEvent::cursor))
    }

    async fn set_disabled(
        &self,
        user: UserId,
        disabled: bool,
        at: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> Result<Option<AccountSummary>, UnexpectedError> {
        let mut state = self.0.state();
        if !state.users.contains_key(&user) {
            return Ok(None);
        }
        let changed = if disabled {
            let fresh = !state.disabled.contains_key(&user);
            state.disabled.entry(user).or_insert(at);
            fresh
        } else {
            state.disabled.remove(&user).is_some()
        };
        if changed {
            state.audit.push(audit.clone());
        }
        let u = state.users.get(&user).map(|(u, _)| u.clone());
        Ok(u.map(|u| summary(&state, &u)))
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
