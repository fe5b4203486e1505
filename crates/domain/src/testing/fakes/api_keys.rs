//! [`ApiKeyRepository`] over the in-memory store, and a transparent
//! [`ApiKeyFactory`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};

use super::store::{InMemoryStore, State};
use crate::access::*;
use crate::account::UserId;
use crate::audit::AuditEvent;
use crate::error::UnexpectedError;
use crate::pagination::{Cursor, Page, PageRequest};

#[derive(Debug, Clone)]
pub struct InMemoryApiKeyRepository(pub(super) InMemoryStore);

fn cursor(key: &ApiKey) -> Cursor {
    Cursor::new(key.created_at, key.id.as_uuid())
}

fn owned(state: &mut State, owner: UserId, id: ApiKeyId) -> Option<&mut (ApiKey, ApiKeyHash)> {
    state.api_keys.get_mut(&id).filter(|(k, _)| k.owner == owner)
}

impl ApiKeyRepository for InMemoryApiKeyRepository {
    async fn create(&self, new: &NewApiKey, audit: &AuditEvent) -> Result<(), CreateApiKeyStoreError> {
        let mut state = self.0.state();
        if !state.users.contains_key(&new.key.owner) {
            return Err(UnexpectedError::msg("no such owner (foreign key)").into());
        }
        let taken = state
            .api_keys
            .values()
            .any(|(k, _)| k.owner == new.key.owner && !k.is_revoked() && k.name.key() == new.key.name.key());
        if taken {
            return Err(CreateApiKeyStoreError::NameTaken);
        }
        state
            .api_keys
            .insert(new.key.id, (new.key.clone(), new.hash.clone()));
        state.audit.push(audit.clone());
        Ok(())
    }

    async fn list(&self, owner: UserId, page: &PageRequest) -> Result<Page<ApiKey>, UnexpectedError> {
        let state = self.0.state();
        let mut keys: Vec<ApiKey> = state
            .api_keys
            .values()
            .map(|(k, _)| k)
            .filter(|k| k.owner == owner)
            .filter(|k| {
                page.after
                    .is_none_or(|c| (k.created_at, k.id.as_uuid()) < (c.at, c.id))
            })
            .cloned()
            .collect();
        keys.sort_by_key(|k| std::cmp::Reverse((k.created_at, k.id)));
        keys.truncate(page.limit as usize + 1);
        Ok(Page::from_overfetch(keys, page.limit, cursor))
    }

    async fn find_by_hash(&self, hash: &ApiKeyHash) -> Result<Option<ApiKey>, UnexpectedError> {
        let state = self.0.state();
        Ok(state.api_keys.values().find(|(_, h)| h == hash).map(|(k, _)| {
            let mut key = k.clone();
            // A disabled owner's keys count as revoked.
            if let Some(at) = state.disabled.get(&key.owner) {
                key.revoked_at = key.revoked_at.or(Some(*at));
            }
            key
        }))
    }

    async fn revoke(
        &self,
        owner: UserId,
        id: ApiKeyId,
        at: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> Result<Option<ApiKey>, UnexpectedError> {
        let mut state = self.0.state();
        let Some((key, _)) = owned(&mut state, owner, id) else {
            return Ok(None);
        };
        let changed = key.revoked_at.is_none();
        if changed {
            key.revoked_at = Some(at);
        }
        let key = key.clone();
        if changed {
            state.audit.push(audit.clone());
        }
        Ok(Some(key))
    }

    async fn rotate(
        &self,
        owner: UserId,
        id: ApiKeyId,
        new: &GeneratedApiKey,
        at: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> Result<ApiKey, RotateApiKeyStoreError> {
        let mut state = self.0.state();
        let Some((key, hash)) = owned(&mut state, owner, id) else {
            return Err(RotateApiKeyStoreError::NotFound);
        };
        if key.is_revoked() {
            return Err(RotateApiKeyStoreError::Revoked);
        }
        key.prefix = new.secret.display_prefix();
        key.rotated_at = Some(at);
        *hash = new.hash.clone();
        let key = key.clone();
        state.audit.push(audit.clone());
        Ok(key)
    }

    async fn record_last_used(&self, batch: &[(ApiKeyId, DateTime<Utc>)]) -> Result<(), UnexpectedError> {
        let mut state = self.0.state();
        for (id, at) in batch {
            if let Some((key, _)) = state.api_keys.get_mut(id) {
                key.last_used_at = key.last_used_at.max(Some(*at));
            }
        }
        Ok(())
    }
}

/// Keys `eag_live_fake<n>` (padded to the real length is not needed);
/// the hash is the key's bytes reversed, so tests can tell them apart
/// and a hash is never a key.
#[derive(Debug, Clone, Default)]
pub struct FakeApiKeys(Arc<AtomicU64>);

impl ApiKeyFactory for FakeApiKeys {
    fn generate(&self) -> Result<GeneratedApiKey, UnexpectedError> {
        let n = self.0.fetch_add(1, Ordering::Relaxed);
        let secret = format!("{}fake{n:040}", ApiKeySecret::PREFIX);
        let hash = self
            .hash(&secret)
            .ok_or_else(|| UnexpectedError::msg("fake key format"))?;
        Ok(GeneratedApiKey {
            secret: ApiKeySecret::new(secret),
            hash,
        })
    }

    fn hash(&self, presented: &str) -> Option<ApiKeyHash> {
        let body = presented.strip_prefix(ApiKeySecret::PREFIX)?;
        (body.starts_with("fake") && body.len() == 44)
            .then(|| ApiKeyHash::new(presented.bytes().rev().collect()))
    }
}
