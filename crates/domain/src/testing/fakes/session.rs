//! [`SessionRepository`] over the in-memory store.

use chrono::{DateTime, Utc};

use super::store::{InMemoryStore, State};
use crate::account::*;
use crate::audit::AuditEvent;
use crate::error::UnexpectedError;

#[derive(Debug, Clone)]
pub struct InMemorySessionRepository(pub(super) InMemoryStore);

impl SessionRepository for InMemorySessionRepository {
    async fn create(
        &self,
        session: &Session,
        first: &NewRefreshToken,
        audit: &AuditEvent,
    ) -> Result<(), UnexpectedError> {
        let mut state = self.0.state();
        if !state.users.contains_key(&session.user_id) {
            return Err(UnexpectedError::msg("foreign key violation: no such user"));
        }
        state.sessions.insert(session.id, session.clone());
        state
            .refresh_tokens
            .insert(first.hash.clone(), (first.clone(), None));
        state.audit.push(audit.clone());
        Ok(())
    }

    async fn find(&self, id: SessionId) -> Result<Option<Session>, UnexpectedError> {
        let state = self.0.state();
        Ok(state.sessions.get(&id).cloned().map(|mut s| {
            // A disabled account's sessions count as revoked.
            if let Some(at) = state.disabled.get(&s.user_id) {
                s.revoked_at = s.revoked_at.or(Some(*at));
            }
            s
        }))
    }

    async fn find_refresh_token(
        &self,
        hash: &RefreshTokenHash,
    ) -> Result<Option<RefreshTokenRecord>, UnexpectedError> {
        let state = self.0.state();
        Ok(state.refresh_tokens.get(hash).and_then(|(token, rotated_at)| {
            state
                .sessions
                .get(&token.session_id)
                .map(|session| RefreshTokenRecord {
                    session: session.clone(),
                    expires_at: token.expires_at,
                    rotated_at: *rotated_at,
                    account_disabled: state.disabled.contains_key(&session.user_id),
                })
        }))
    }

    async fn rotate_refresh_token(
        &self,
        old: &RefreshTokenHash,
        new: &NewRefreshToken,
        at: DateTime<Utc>,
    ) -> Result<bool, UnexpectedError> {
        let mut state = self.0.state();
        let State {
            sessions,
            refresh_tokens,
            ..
        } = &mut *state;
        let Some((token, rotated_at)) = refresh_tokens.get_mut(old) else {
            return Ok(false);
        };
        let live = sessions.get(&token.session_id).is_some_and(Session::is_active);
        if rotated_at.is_some() || !live {
            return Ok(false);
        }
        *rotated_at = Some(at);
        refresh_tokens.insert(new.hash.clone(), (new.clone(), None));
        Ok(true)
    }

    async fn revoke(
        &self,
        id: SessionId,
        at: DateTime<Utc>,
        _reason: RevocationReason,
    ) -> Result<(), UnexpectedError> {
        if let Some(session) = self.0.state().sessions.get_mut(&id) {
            session.revoked_at.get_or_insert(at);
        }
        Ok(())
    }
}
