//! [`AuditLog`] over the in-memory store.

use super::store::InMemoryStore;
use crate::account::*;
use crate::audit::{AuditEvent, AuditLog};
use crate::error::UnexpectedError;
use crate::pagination::{Page, PageRequest};

#[derive(Debug, Clone)]
pub struct InMemoryAuditLog(pub(super) InMemoryStore);

impl AuditLog for InMemoryAuditLog {
    async fn record(&self, event: &AuditEvent) -> Result<(), UnexpectedError> {
        self.0.state().audit.push(event.clone());
        Ok(())
    }

    async fn list_for_user(
        &self,
        user: UserId,
        page: &PageRequest,
    ) -> Result<Page<AuditEvent>, UnexpectedError> {
        let state = self.0.state();
        let mut events: Vec<AuditEvent> = state
            .audit
            .iter()
            .filter(|e| e.user_id == Some(user))
            .filter(|e| page.after.is_none_or(|c| (e.occurred_at, e.id) < (c.at, c.id)))
            .cloned()
            .collect();
        events.sort_by_key(|e| std::cmp::Reverse((e.occurred_at, e.id)));
        events.truncate(page.limit as usize + 1);
        Ok(Page::from_overfetch(events, page.limit, AuditEvent::cursor))
    }
}
