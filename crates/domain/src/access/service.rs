//! API keys: create, list, revoke, rotate; authenticate a presented key;
//! record refused uses; coalesce last-use times.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use tracing::instrument;

use super::error::*;
use super::model::*;
use super::policy::{Action, Denied, Principal, authorize};
use super::ports::{ApiKeyFactory, ApiKeyRepository};
use crate::account::UserId;
use crate::audit::{AuditAction, AuditEvent, AuditLog, ClientInfo};
use crate::clock::Clock;
use crate::error::UnexpectedError;
use crate::id::IdGenerator;
use crate::pagination::{Page, PageRequest};
use crate::validation::ValidationErrors;

/// Limits on keys.
#[derive(Debug, Clone, Copy)]
pub struct ApiKeyPolicy {
    /// The latest expiry a key may be given, from its creation.
    pub max_lifetime: Duration,
}

impl Default for ApiKeyPolicy {
    fn default() -> Self {
        Self {
            max_lifetime: Duration::days(5 * 365),
        }
    }
}

/// What a client asks for when creating a key (unvalidated).
#[derive(Debug, Clone, Default)]
pub struct CreateApiKeyInput {
    pub name: String,
    pub scopes: Vec<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub allowed_cidrs: Vec<String>,
}

/// A [`CreateApiKeyInput`] that passed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidApiKeyInput {
    pub name: ApiKeyName,
    pub scopes: Scopes,
    pub expires_at: Option<DateTime<Utc>>,
    pub allowed: AllowedNetworks,
}

impl CreateApiKeyInput {
    /// Validates every field at `now`, collecting every error (what
    /// [`ApiKeyService::create`] checks before anything else).
    pub fn parse(
        &self,
        now: DateTime<Utc>,
        max_lifetime: Duration,
    ) -> Result<ValidApiKeyInput, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let name = errors.collect(ApiKeyName::parse(&self.name));
        let scopes = errors.collect(Scopes::parse(&self.scopes));
        let expires_at = errors.collect(parse_expiry(self.expires_at, now, max_lifetime));
        let allowed = errors.collect(AllowedNetworks::parse(&self.allowed_cidrs));
        match (name, scopes, expires_at, allowed) {
            (Some(name), Some(scopes), Some(expires_at), Some(allowed)) => Ok(ValidApiKeyInput {
                name,
                scopes,
                expires_at,
                allowed,
            }),
            _ => Err(errors),
        }
    }
}

/// A key and its secret, shown this once.
#[derive(Debug, Clone)]
pub struct CreatedApiKey {
    pub key: ApiKey,
    pub secret: ApiKeySecret,
}

/// Last-use times waiting to be written: one write per key per flush,
/// however many requests it made.
#[derive(Debug, Default)]
pub struct ApiKeyUsage(Mutex<HashMap<ApiKeyId, DateTime<Utc>>>);

impl ApiKeyUsage {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ApiKeyId, DateTime<Utc>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn used(&self, key: ApiKeyId, at: DateTime<Utc>) {
        let mut map = self.lock();
        let entry = map.entry(key).or_insert(at);
        *entry = (*entry).max(at);
    }

    /// Takes everything recorded so far.
    pub fn drain(&self) -> Vec<(ApiKeyId, DateTime<Utc>)> {
        self.lock().drain().collect()
    }

    /// Puts back a batch whose write failed (keeping later uses).
    pub fn restore(&self, batch: Vec<(ApiKeyId, DateTime<Utc>)>) {
        for (key, at) in batch {
            self.used(key, at);
        }
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The API-key use cases.
#[derive(Debug, Clone)]
pub struct ApiKeyService<R, F, L, C, I> {
    keys: R,
    factory: F,
    audit: L,
    clock: C,
    ids: I,
    usage: Arc<ApiKeyUsage>,
    policy: ApiKeyPolicy,
}

impl<R, F, L, C, I> ApiKeyService<R, F, L, C, I>
where
    R: ApiKeyRepository,
    F: ApiKeyFactory,
    L: AuditLog,
    C: Clock,
    I: IdGenerator,
{
    pub fn new(keys: R, factory: F, audit: L, clock: C, ids: I, policy: ApiKeyPolicy) -> Self {
        Self {
            keys,
            factory,
            audit,
            clock,
            ids,
            usage: Arc::default(),
            policy,
        }
    }

    pub fn usage(&self) -> &Arc<ApiKeyUsage> {
        &self.usage
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    fn event(
        &self,
        action: AuditAction,
        owner: UserId,
        client: &ClientInfo,
        details: BTreeMap<String, String>,
    ) -> AuditEvent {
        AuditEvent {
            id: self.ids.new_id(),
            occurred_at: self.clock.now(),
            action,
            user_id: Some(owner),
            device_id: None,
            client: client.clone(),
            details,
        }
    }

    fn details(key: &ApiKey) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("api_key_id".to_owned(), key.id.to_string()),
            ("name".to_owned(), key.name.as_str().to_owned()),
            ("prefix".to_owned(), key.prefix.clone()),
        ])
    }

    /// Creates a key; its secret is returned this once.
    #[instrument(skip_all, fields(user_id = %owner))]
    pub async fn create(
        &self,
        owner: UserId,
        input: &CreateApiKeyInput,
        client: &ClientInfo,
    ) -> Result<CreatedApiKey, CreateApiKeyError> {
        let now = self.clock.now();
        let ValidApiKeyInput {
            name,
            scopes,
            expires_at,
            allowed,
        } = input
            .parse(now, self.policy.max_lifetime)
            .map_err(CreateApiKeyError::Invalid)?;
        let generated = self.factory.generate()?;
        let key = ApiKey {
            id: ApiKeyId::from_uuid(self.ids.new_id()),
            owner,
            name,
            prefix: generated.secret.display_prefix(),
            scopes,
            allowed,
            created_at: now,
            expires_at,
            last_used_at: None,
            rotated_at: None,
            revoked_at: None,
        };
        let mut details = Self::details(&key);
        details.insert("scopes".to_owned(), key.scopes.names().join(" "));
        let audit = self.event(AuditAction::ApiKeyCreated, owner, client, details);
        let new = NewApiKey {
            key,
            hash: generated.hash,
        };
        self.keys.create(&new, &audit).await.map_err(|e| match e {
            CreateApiKeyStoreError::NameTaken => CreateApiKeyError::NameTaken,
            CreateApiKeyStoreError::Unexpected(e) => CreateApiKeyError::Unexpected(e),
        })?;
        Ok(CreatedApiKey {
            key: new.key,
            secret: generated.secret,
        })
    }

    /// The owner's keys, newest first (never a secret or a hash).
    #[instrument(skip_all, fields(user_id = %owner))]
    pub async fn list(
        &self,
        owner: UserId,
        limit: Option<&str>,
        cursor: Option<&str>,
    ) -> Result<Page<ApiKey>, ListApiKeysError> {
        let page = PageRequest::parse(limit, cursor).map_err(|errors| {
            let mut all = ValidationErrors::new();
            errors.into_iter().for_each(|e| all.push(e));
            ListApiKeysError::Invalid(all)
        })?;
        Ok(self.keys.list(owner, &page).await?)
    }

    /// Revokes a key: it stops working at once, on every instance.
    /// Revoking a revoked key changes nothing and answers the same.
    #[instrument(skip_all, fields(user_id = %owner, api_key_id = %id))]
    pub async fn revoke(
        &self,
        owner: UserId,
        id: ApiKeyId,
        client: &ClientInfo,
    ) -> Result<ApiKey, RevokeApiKeyError> {
        let audit = self.event(
            AuditAction::ApiKeyRevoked,
            owner,
            client,
            BTreeMap::from([("api_key_id".to_owned(), id.to_string())]),
        );
        self.keys
            .revoke(owner, id, self.clock.now(), &audit)
            .await?
            .ok_or(RevokeApiKeyError::NotFound)
    }

    /// Gives the key a new secret (returned this once); the old one stops
    /// working at once. Name, scopes, expiry and allowlist stay.
    #[instrument(skip_all, fields(user_id = %owner, api_key_id = %id))]
    pub async fn rotate(
        &self,
        owner: UserId,
        id: ApiKeyId,
        client: &ClientInfo,
    ) -> Result<CreatedApiKey, RotateApiKeyError> {
        let generated = self.factory.generate()?;
        let audit = self.event(
            AuditAction::ApiKeyRotated,
            owner,
            client,
            BTreeMap::from([
                ("api_key_id".to_owned(), id.to_string()),
                ("prefix".to_owned(), generated.secret.display_prefix()),
            ]),
        );
        let key = self
            .keys
            .rotate(owner, id, &generated, self.clock.now(), &audit)
            .await
            .map_err(|e| match e {
                RotateApiKeyStoreError::NotFound => RotateApiKeyError::NotFound,
                RotateApiKeyStoreError::Revoked => RotateApiKeyError::Revoked,
                RotateApiKeyStoreError::Unexpected(e) => RotateApiKeyError::Unexpected(e),
            })?;
        Ok(CreatedApiKey {
            key,
            secret: generated.secret,
        })
    }

    /// Checks a presented key: format, existence, revocation, expiry and
    /// the client's address. A refused use of an existing key is audited.
    /// A good one is noted for the coalesced last-use time.
    #[instrument(skip_all)]
    pub async fn authenticate(
        &self,
        presented: &str,
        ip: Option<IpAddr>,
        client: &ClientInfo,
    ) -> Result<Principal, ApiKeyAuthError> {
        let hash = self.factory.hash(presented).ok_or(ApiKeyAuthError::Invalid)?;
        let key = self
            .keys
            .find_by_hash(&hash)
            .await?
            .ok_or(ApiKeyAuthError::Invalid)?;
        let now = self.clock.now();
        let refused = if key.is_revoked() {
            Some(ApiKeyAuthError::Revoked)
        } else if key.is_expired(now) {
            Some(ApiKeyAuthError::Expired)
        } else if !key.allowed.allows(ip) {
            Some(ApiKeyAuthError::AddressNotAllowed)
        } else {
            None
        };
        if let Some(error) = refused {
            let reason = match &error {
                ApiKeyAuthError::Revoked => "revoked",
                ApiKeyAuthError::Expired => "expired",
                ApiKeyAuthError::AddressNotAllowed => "address_not_allowed",
                ApiKeyAuthError::Invalid | ApiKeyAuthError::Unexpected(_) => "invalid",
            };
            self.record_refusal(&key, reason, client).await?;
            return Err(error);
        }
        self.usage.used(key.id, now);
        Ok(Principal::ApiKey {
            key: key.id,
            owner: key.owner,
            scopes: key.scopes,
        })
    }

    /// Applies the policy; a key refused by it is audited (a session
    /// refused is not: it is the owner's own account).
    #[instrument(skip_all, fields(action = %action))]
    pub async fn authorize(
        &self,
        principal: &Principal,
        action: Action,
        client: &ClientInfo,
    ) -> Result<(), AuthorizeError> {
        let Err(denied) = authorize(principal, action) else {
            return Ok(());
        };
        if let Principal::ApiKey { key, owner, .. } = principal {
            let mut details = BTreeMap::from([
                ("api_key_id".to_owned(), key.to_string()),
                ("reason".to_owned(), denied.code().to_owned()),
                ("action".to_owned(), action.to_string()),
            ]);
            if let Denied::MissingScope(scope) = denied {
                details.insert("scope".to_owned(), scope.as_str().to_owned());
            }
            self.audit
                .record(&self.event(AuditAction::ApiKeyRefused, *owner, client, details))
                .await?;
        }
        Err(AuthorizeError::Denied(denied))
    }

    async fn record_refusal(
        &self,
        key: &ApiKey,
        reason: &str,
        client: &ClientInfo,
    ) -> Result<(), UnexpectedError> {
        let details = BTreeMap::from([
            ("api_key_id".to_owned(), key.id.to_string()),
            ("reason".to_owned(), reason.to_owned()),
        ]);
        self.audit
            .record(&self.event(AuditAction::ApiKeyRefused, key.owner, client, details))
            .await
    }

    /// Writes the coalesced last-use times; on failure they go back for
    /// the next flush. Returns how many keys it covered.
    #[instrument(level = "debug", skip_all)]
    pub async fn flush_usage(&self) -> Result<usize, UnexpectedError> {
        let batch = self.usage.drain();
        if batch.is_empty() {
            return Ok(0);
        }
        match self.keys.record_last_used(&batch).await {
            Ok(()) => Ok(batch.len()),
            Err(e) => {
                self.usage.restore(batch);
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;

    use super::*;
    use crate::testing::contracts::fixtures::registered;
    use crate::testing::*;

    type Service =
        ApiKeyService<InMemoryApiKeyRepository, FakeApiKeys, InMemoryAuditLog, FixedClock, SequentialIds>;

    fn service(store: &InMemoryStore, clock: &FixedClock) -> Service {
        ApiKeyService::new(
            store.api_keys(),
            FakeApiKeys::default(),
            store.audit(),
            clock.clone(),
            SequentialIds::default(),
            ApiKeyPolicy::default(),
        )
    }

    fn input(name: &str, scopes: &[&str]) -> CreateApiKeyInput {
        CreateApiKeyInput {
            name: name.to_owned(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            ..CreateApiKeyInput::default()
        }
    }

    fn client() -> ClientInfo {
        ClientInfo::new(Some("203.0.113.7".parse().unwrap()), Some("script/1.0"))
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    fn actions(store: &InMemoryStore) -> Vec<&'static str> {
        store.audit_events().iter().map(|e| e.action.as_str()).collect()
    }

    #[tokio::test]
    async fn a_created_key_authenticates_as_its_owner_with_its_scopes() {
        let store = InMemoryStore::default();
        let clock = FixedClock::default_start();
        let keys = service(&store, &clock);
        let owner = registered(&store.accounts()).await.id;
        let created = keys
            .create(owner, &input("CI", &["signals:publish"]), &client())
            .await
            .unwrap();
        assert!(created.secret.expose().starts_with("eag_live_"));
        assert_eq!(created.key.prefix, created.secret.display_prefix());
        let principal = keys
            .authenticate(created.secret.expose(), ip("198.51.100.1"), &client())
            .await
            .unwrap();
        assert_eq!(principal.user_id(), owner);
        assert_eq!(
            keys.authorize(&principal, Action::PublishSignal, &client())
                .await
                .ok(),
            Some(())
        );
        let denied = keys.authorize(&principal, Action::ListDevices, &client()).await;
        assert!(matches!(
            denied,
            Err(AuthorizeError::Denied(Denied::MissingScope(Scope::DevicesRead)))
        ));
        let events = store.audit_events();
        let refused = events.last().unwrap();
        assert_eq!(refused.action, AuditAction::ApiKeyRefused);
        assert_eq!(refused.details["scope"], "devices:read");
        assert_eq!(actions(&store)[1..], ["api_key.created", "api_key.refused"]);
    }

    #[tokio::test]
    async fn invalid_input_names_every_field() {
        let store = InMemoryStore::default();
        let clock = FixedClock::default_start();
        let keys = service(&store, &clock);
        let owner = registered(&store.accounts()).await.id;
        let bad = CreateApiKeyInput {
            name: " ".to_owned(),
            scopes: vec!["root".to_owned()],
            expires_at: Some(clock.now() - Duration::seconds(1)),
            allowed_cidrs: vec!["10.0.0.1/8".to_owned()],
        };
        let Err(CreateApiKeyError::Invalid(errors)) = keys.create(owner, &bad, &client()).await else {
            panic!("invalid input is refused");
        };
        let fields: Vec<&str> = errors.errors().iter().map(|e| e.field).collect();
        assert_eq!(fields, ["name", "scopes", "expires_at", "allowed_cidrs"]);
    }

    #[tokio::test]
    async fn expired_revoked_and_disallowed_keys_are_refused_and_audited() {
        let store = InMemoryStore::default();
        let clock = FixedClock::default_start();
        let keys = service(&store, &clock);
        let owner = registered(&store.accounts()).await.id;
        let mut limited = input("office", &["signals:read"]);
        limited.allowed_cidrs = vec!["203.0.113.0/24".to_owned()];
        limited.expires_at = Some(clock.now() + Duration::hours(1));
        let created = keys.create(owner, &limited, &client()).await.unwrap();
        let secret = created.secret.expose();
        assert!(
            keys.authenticate(secret, ip("203.0.113.9"), &client())
                .await
                .is_ok()
        );
        assert!(matches!(
            keys.authenticate(secret, ip("198.51.100.1"), &client()).await,
            Err(ApiKeyAuthError::AddressNotAllowed)
        ));
        assert!(matches!(
            keys.authenticate(secret, None, &client()).await,
            Err(ApiKeyAuthError::AddressNotAllowed)
        ));
        clock.advance(Duration::hours(1));
        assert!(matches!(
            keys.authenticate(secret, ip("203.0.113.9"), &client()).await,
            Err(ApiKeyAuthError::Expired)
        ));
        let other = keys
            .create(owner, &input("other", &["signals:read"]), &client())
            .await
            .unwrap();
        keys.revoke(owner, other.key.id, &client()).await.unwrap();
        assert!(matches!(
            keys.authenticate(other.secret.expose(), None, &client()).await,
            Err(ApiKeyAuthError::Revoked)
        ));
        let reasons: Vec<String> = store
            .audit_events()
            .iter()
            .filter(|e| e.action == AuditAction::ApiKeyRefused)
            .map(|e| e.details["reason"].clone())
            .collect();
        assert_eq!(
            reasons,
            ["address_not_allowed", "address_not_allowed", "expired", "revoked"]
        );
        assert!(matches!(
            keys.authenticate("eag_live_garbage", None, &client()).await,
            Err(ApiKeyAuthError::Invalid)
        ));
    }

    #[tokio::test]
    async fn rotation_replaces_the_secret_and_revocation_is_idempotent() {
        let store = InMemoryStore::default();
        let clock = FixedClock::default_start();
        let keys = service(&store, &clock);
        let owner = registered(&store.accounts()).await.id;
        let stranger = registered(&store.accounts()).await.id;
        let first = keys
            .create(owner, &input("CI", &["devices:read"]), &client())
            .await
            .unwrap();
        assert!(matches!(
            keys.rotate(stranger, first.key.id, &client()).await,
            Err(RotateApiKeyError::NotFound)
        ));
        let rotated = keys.rotate(owner, first.key.id, &client()).await.unwrap();
        assert_ne!(rotated.secret, first.secret);
        assert_eq!(rotated.key.prefix, rotated.secret.display_prefix());
        assert!(matches!(
            keys.authenticate(first.secret.expose(), None, &client()).await,
            Err(ApiKeyAuthError::Invalid)
        ));
        assert!(
            keys.authenticate(rotated.secret.expose(), None, &client())
                .await
                .is_ok()
        );
        assert!(matches!(
            keys.revoke(stranger, first.key.id, &client()).await,
            Err(RevokeApiKeyError::NotFound)
        ));
        let revoked = keys.revoke(owner, first.key.id, &client()).await.unwrap();
        let again = keys.revoke(owner, first.key.id, &client()).await.unwrap();
        assert_eq!(revoked.revoked_at, again.revoked_at);
        assert!(matches!(
            keys.rotate(owner, first.key.id, &client()).await,
            Err(RotateApiKeyError::Revoked)
        ));
        assert_eq!(
            actions(&store)[2..],
            ["api_key.created", "api_key.rotated", "api_key.revoked"]
        );
        // The name is free again once the key is revoked.
        assert!(
            keys.create(owner, &input("ci", &["devices:read"]), &client())
                .await
                .is_ok()
        );
        assert!(matches!(
            keys.create(owner, &input("CI", &["devices:read"]), &client())
                .await,
            Err(CreateApiKeyError::NameTaken)
        ));
    }

    #[tokio::test]
    async fn last_use_is_coalesced_into_one_write_per_flush() {
        let store = InMemoryStore::default();
        let clock = FixedClock::default_start();
        let keys = service(&store, &clock);
        let owner = registered(&store.accounts()).await.id;
        let created = keys
            .create(owner, &input("CI", &["devices:read"]), &client())
            .await
            .unwrap();
        for _ in 0..5 {
            keys.authenticate(created.secret.expose(), None, &client())
                .await
                .unwrap();
            clock.advance(Duration::seconds(1));
        }
        assert_eq!(keys.usage().len(), 1, "five uses, one pending write");
        assert_eq!(keys.flush_usage().await.unwrap(), 1);
        assert_eq!(keys.flush_usage().await.unwrap(), 0, "nothing left");
        let page = keys.list(owner, None, None).await.unwrap();
        assert_eq!(
            page.items[0].last_used_at,
            Some(clock.now() - Duration::seconds(1)),
            "the latest use"
        );
        let usage = ApiKeyUsage::default();
        let at = Utc.timestamp_opt(1_800_000_000, 0).unwrap();
        usage.used(created.key.id, at);
        let batch = usage.drain();
        usage.used(created.key.id, at + Duration::seconds(5));
        usage.restore(batch);
        assert_eq!(usage.drain(), [(created.key.id, at + Duration::seconds(5))]);
    }
}
