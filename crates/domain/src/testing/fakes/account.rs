//! [`AccountRepository`] over the in-memory store.

use chrono::{DateTime, Utc};

use super::store::InMemoryStore;
use crate::account::*;
use crate::audit::AuditEvent;
use crate::error::UnexpectedError;

#[derive(Debug, Clone)]
pub struct InMemoryAccountRepository(pub(super) InMemoryStore);

fn matches_login(user: &User, login: &LoginId) -> bool {
    match login {
        LoginId::Email(email) => user.email == *email,
        LoginId::Username(name) => user.username.as_str().eq_ignore_ascii_case(name.as_str()),
    }
}

impl AccountRepository for InMemoryAccountRepository {
    async fn create(&self, new: &NewUser, audit: &AuditEvent) -> Result<User, CreateUserError> {
        let mut state = self.0.state();
        if state.users.values().any(|(u, _)| u.email == new.email) {
            return Err(CreateUserError::EmailTaken);
        }
        let by_name = LoginId::Username(new.username.clone());
        if state.users.values().any(|(u, _)| matches_login(u, &by_name)) {
            return Err(CreateUserError::UsernameTaken);
        }
        let user = User {
            id: new.id,
            username: new.username.clone(),
            email: new.email.clone(),
            created_at: new.created_at,
            updated_at: new.created_at,
        };
        state
            .users
            .insert(new.id, (user.clone(), new.password_hash.clone()));
        state.audit.push(audit.clone());
        Ok(user)
    }

    async fn find_by_id(&self, id: UserId) -> Result<Option<User>, UnexpectedError> {
        Ok(self.0.state().users.get(&id).map(|(u, _)| u.clone()))
    }

    async fn find_credentials_by_login(
        &self,
        login: &LoginId,
    ) -> Result<Option<UserCredentials>, UnexpectedError> {
        let state = self.0.state();
        Ok(state
            .users
            .values()
            .find(|(u, _)| matches_login(u, login))
            .map(|(user, hash)| UserCredentials {
                user: user.clone(),
                password_hash: hash.clone(),
                disabled: state.disabled.contains_key(&user.id),
            }))
    }

    async fn find_credentials_by_id(&self, id: UserId) -> Result<Option<UserCredentials>, UnexpectedError> {
        let state = self.0.state();
        Ok(state.users.get(&id).map(|(user, hash)| UserCredentials {
            user: user.clone(),
            password_hash: hash.clone(),
            disabled: state.disabled.contains_key(&user.id),
        }))
    }

    async fn update_password_hash(&self, id: UserId, hash: &PasswordHash) -> Result<bool, UnexpectedError> {
        Ok(match self.0.state().users.get_mut(&id) {
            Some((_, stored)) => {
                *stored = hash.clone();
                true
            }
            None => false,
        })
    }

    async fn change_password(
        &self,
        id: UserId,
        hash: &PasswordHash,
        at: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> Result<bool, UnexpectedError> {
        let mut state = self.0.state();
        let Some((user, stored)) = state.users.get_mut(&id) else {
            return Ok(false);
        };
        *stored = hash.clone();
        user.updated_at = at;
        for session in state.sessions.values_mut() {
            if session.user_id == id && session.revoked_at.is_none() {
                session.revoked_at = Some(at);
            }
        }
        state.audit.push(audit.clone());
        Ok(true)
    }

    async fn delete(&self, id: UserId, audit: &AuditEvent) -> Result<bool, UnexpectedError> {
        let mut state = self.0.state();
        let existed = state.users.remove(&id).is_some();
        if !existed {
            return Ok(false);
        }
        state.audit.push(audit.clone());
        state.devices.retain(|_, d| d.device.owner != id);
        state.configs.retain(|scope, _| scope.owner() != id);
        state.api_keys.retain(|_, (k, _)| k.owner != id);
        state.admins.remove(&id);
        state.disabled.remove(&id);
        state.signals.retain(|r| r.signal.owner != id);
        let sessions: Vec<SessionId> = state
            .sessions
            .values()
            .filter(|s| s.user_id == id)
            .map(|s| s.id)
            .collect();
        state.sessions.retain(|_, s| s.user_id != id);
        state
            .refresh_tokens
            .retain(|_, (t, _)| !sessions.contains(&t.session_id));
        Ok(existed)
    }
}
