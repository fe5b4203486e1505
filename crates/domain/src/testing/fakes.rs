use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Duration, TimeZone, Utc};
use uuid::Uuid;

use crate::account::*;
use crate::audit::{AuditEvent, AuditLog};
use crate::clock::Clock;
use crate::device::*;
use crate::error::UnexpectedError;
use crate::id::IdGenerator;
use crate::pagination::{Page, PageRequest};
use crate::signal::*;

/// A clock that only moves when told to.
#[derive(Debug, Clone)]
pub struct FixedClock(Arc<Mutex<DateTime<Utc>>>);

impl FixedClock {
    pub fn new(now: DateTime<Utc>) -> Self {
        Self(Arc::new(Mutex::new(now)))
    }

    /// 2026-01-01T00:00:00Z.
    pub fn default_start() -> Self {
        Self::new(
            Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
                .single()
                .unwrap_or_default(),
        )
    }

    pub fn advance(&self, by: Duration) {
        let mut now = lock(&self.0);
        *now += by;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        *lock(&self.0)
    }
}

/// Ids 00000000-0000-0000-0000-000000000001, ...2, ...
#[derive(Debug, Clone, Default)]
pub struct SequentialIds(Arc<AtomicU64>);

impl IdGenerator for SequentialIds {
    fn new_id(&self) -> Uuid {
        Uuid::from_u128(u128::from(self.0.fetch_add(1, Ordering::Relaxed) + 1))
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[derive(Debug, Clone)]
struct DeviceRecord {
    device: Device,
    current: SealedSecret,
    previous: Option<(SealedSecret, DateTime<Utc>)>,
}

#[derive(Debug, Clone)]
struct SignalRecord {
    signal: Signal,
    deliveries: Vec<Delivery>,
    idempotency: Option<(String, String)>,
}

#[derive(Debug, Default)]
struct State {
    signals: Vec<SignalRecord>,
    /// Per device, how many signals were published for it (wake-ups).
    published: HashMap<DeviceId, u64>,
    users: HashMap<UserId, (User, PasswordHash)>,
    sessions: HashMap<SessionId, Session>,
    refresh_tokens: HashMap<RefreshTokenHash, (NewRefreshToken, Option<DateTime<Utc>>)>,
    devices: HashMap<DeviceId, DeviceRecord>,
    audit: Vec<AuditEvent>,
}

/// One in-memory database behind both repository fakes, so cascades and
/// cross-table updates behave as in PostgreSQL.
#[derive(Debug, Clone, Default)]
pub struct InMemoryStore(Arc<Mutex<State>>);

impl InMemoryStore {
    pub fn accounts(&self) -> InMemoryAccountRepository {
        InMemoryAccountRepository(self.clone())
    }

    pub fn sessions(&self) -> InMemorySessionRepository {
        InMemorySessionRepository(self.clone())
    }

    pub fn devices(&self) -> InMemoryDeviceRepository {
        InMemoryDeviceRepository(self.clone())
    }

    pub fn audit(&self) -> InMemoryAuditLog {
        InMemoryAuditLog(self.clone())
    }

    pub fn signals(&self) -> InMemorySignalRepository {
        InMemorySignalRepository(self.clone())
    }

    /// Wake-ups that, instead of sleeping, move `clock` on by the timeout.
    pub fn wakeups(&self, clock: FixedClock) -> FakeWakeups {
        FakeWakeups {
            store: self.clone(),
            clock,
        }
    }

    /// Every audit event recorded, oldest first.
    pub fn audit_events(&self) -> Vec<AuditEvent> {
        self.state().audit.clone()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.0)
    }
}

#[derive(Debug, Clone)]
pub struct InMemoryAccountRepository(InMemoryStore);

#[derive(Debug, Clone)]
pub struct InMemorySessionRepository(InMemoryStore);

#[derive(Debug, Clone)]
pub struct InMemoryDeviceRepository(InMemoryStore);

#[derive(Debug, Clone)]
pub struct InMemoryAuditLog(InMemoryStore);

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
        Ok(self
            .0
            .state()
            .users
            .values()
            .find(|(u, _)| matches_login(u, login))
            .map(|(user, hash)| UserCredentials {
                user: user.clone(),
                password_hash: hash.clone(),
            }))
    }

    async fn find_credentials_by_id(&self, id: UserId) -> Result<Option<UserCredentials>, UnexpectedError> {
        Ok(self.0.state().users.get(&id).map(|(user, hash)| UserCredentials {
            user: user.clone(),
            password_hash: hash.clone(),
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
        Ok(self.0.state().sessions.get(&id).cloned())
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

/// A transparent "hasher" for domain tests: `fake$<cost>$<password>`. A hash
/// with a cost other than `current_cost` verifies as needing a rehash.
#[derive(Debug, Clone)]
pub struct FakeHasher {
    pub current_cost: u32,
    dummy_verifications: Arc<AtomicU64>,
}

impl Default for FakeHasher {
    fn default() -> Self {
        Self {
            current_cost: 1,
            dummy_verifications: Arc::default(),
        }
    }
}

impl FakeHasher {
    pub fn with_cost(current_cost: u32) -> Self {
        Self {
            current_cost,
            ..Self::default()
        }
    }

    /// How many times `verify_dummy` ran.
    pub fn dummy_verifications(&self) -> u64 {
        self.dummy_verifications.load(Ordering::Relaxed)
    }

    fn encode(cost: u32, password: &Password) -> PasswordHash {
        PasswordHash::new(format!(
            "fake${cost}${}",
            String::from_utf8_lossy(password.expose())
        ))
    }
}

impl PasswordHasher for FakeHasher {
    async fn hash(&self, password: &Password) -> Result<PasswordHash, UnexpectedError> {
        Ok(Self::encode(self.current_cost, password))
    }

    async fn verify(
        &self,
        password: &Password,
        hash: &PasswordHash,
    ) -> Result<PasswordVerification, UnexpectedError> {
        let mut parts = hash.as_str().splitn(3, '$');
        let (Some("fake"), Some(cost), Some(stored)) = (parts.next(), parts.next(), parts.next()) else {
            return Ok(PasswordVerification::Invalid);
        };
        if stored.as_bytes() != password.expose() {
            Ok(PasswordVerification::Invalid)
        } else if cost == self.current_cost.to_string() {
            Ok(PasswordVerification::Valid)
        } else {
            Ok(PasswordVerification::ValidNeedsRehash)
        }
    }

    async fn verify_dummy(&self, _password: &Password) -> Result<(), UnexpectedError> {
        self.dummy_verifications.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// Unsigned access tokens: `fake.<user>.<session>.<iat>.<exp>`. Verification
/// checks only the shape and the expiry.
#[derive(Debug, Clone, Copy, Default)]
pub struct FakeAccessTokens;

impl AccessTokenIssuer for FakeAccessTokens {
    fn issue(&self, c: &AccessClaims) -> Result<AccessToken, UnexpectedError> {
        Ok(AccessToken::new(format!(
            "fake.{}.{}.{}.{}",
            c.user_id,
            c.session_id,
            c.issued_at.timestamp(),
            c.expires_at.timestamp()
        )))
    }

    fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<AccessClaims, InvalidAccessToken> {
        let parts: Vec<&str> = token.split('.').collect();
        let [_, user, session, iat, exp] = parts.as_slice() else {
            return Err(InvalidAccessToken);
        };
        let uuid = |s: &str| Uuid::parse_str(s).map_err(|_| InvalidAccessToken);
        let time = |s: &str| {
            s.parse::<i64>()
                .ok()
                .and_then(|t| DateTime::from_timestamp(t, 0))
                .ok_or(InvalidAccessToken)
        };
        let claims = AccessClaims {
            user_id: UserId::from_uuid(uuid(user)?),
            session_id: SessionId::from_uuid(uuid(session)?),
            issued_at: time(iat)?,
            expires_at: time(exp)?,
        };
        if claims.expires_at <= now {
            return Err(InvalidAccessToken);
        }
        Ok(claims)
    }
}

/// Refresh tokens `rt-1`, `rt-2`, ... stored under `digest:<token>`.
#[derive(Debug, Clone, Default)]
pub struct FakeRefreshTokens(Arc<AtomicU64>);

impl RefreshTokenFactory for FakeRefreshTokens {
    fn generate(&self) -> Result<RefreshToken, UnexpectedError> {
        Ok(RefreshToken::new(format!(
            "rt-{}",
            self.0.fetch_add(1, Ordering::Relaxed) + 1
        )))
    }

    fn digest(&self, token: &str) -> RefreshTokenHash {
        RefreshTokenHash::new(format!("digest:{token}").into_bytes())
    }
}

/// The account service wired entirely to fakes.
pub type FakeAccountService = AccountService<
    InMemoryAccountRepository,
    InMemorySessionRepository,
    FakeHasher,
    FakeAccessTokens,
    FakeRefreshTokens,
    InMemoryAuditLog,
    FixedClock,
    SequentialIds,
>;

/// Handles to the fakes behind a [`FakeAccountService`].
#[derive(Debug, Clone)]
pub struct FakeAccountWorld {
    pub store: InMemoryStore,
    pub hasher: FakeHasher,
    pub clock: FixedClock,
    pub service: FakeAccountService,
}

impl FakeAccountWorld {
    pub fn new() -> Self {
        Self::with_hasher(FakeHasher::default())
    }

    pub fn with_hasher(hasher: FakeHasher) -> Self {
        let store = InMemoryStore::default();
        let clock = FixedClock::default_start();
        let service = AccountService::new(
            store.accounts(),
            store.sessions(),
            hasher.clone(),
            FakeAccessTokens,
            FakeRefreshTokens::default(),
            store.audit(),
            clock.clone(),
            SequentialIds::default(),
            AccountPolicy::default(),
        );
        Self {
            store,
            hasher,
            clock,
            service,
        }
    }
}

impl Default for FakeAccountWorld {
    fn default() -> Self {
        Self::new()
    }
}

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
        Ok(self.0.state().devices.get(&id).map(|r| DeviceCredentials {
            id,
            owner: r.device.owner,
            name: r.device.name.clone(),
            revoked: r.device.revoked_at.is_some(),
            current: r.current.clone(),
            previous: r.previous.clone(),
            last_seen_at: r.device.last_seen_at,
            last_poll_at: r.device.last_poll_at,
        }))
    }

    async fn record_activity(
        &self,
        id: DeviceId,
        activity: Activity,
        at: DateTime<Utc>,
        min_interval: Duration,
    ) -> Result<(), UnexpectedError> {
        if let Some(r) = self.0.state().devices.get_mut(&id) {
            let field = match activity {
                Activity::Seen => &mut r.device.last_seen_at,
                Activity::Poll => &mut r.device.last_poll_at,
                Activity::Ack => &mut r.device.last_ack_at,
            };
            if field.is_none_or(|last| last <= at - min_interval) {
                *field = Some(at);
            }
        }
        Ok(())
    }

    async fn record_heartbeat(&self, id: DeviceId, heartbeat: &Heartbeat) -> Result<(), UnexpectedError> {
        if let Some(r) = self.0.state().devices.get_mut(&id) {
            r.device.last_heartbeat = Some(heartbeat.clone());
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

/// Device secrets `eags_fake-<n>`, fingerprinted as `fp-<n>`.
#[derive(Debug, Clone, Default)]
pub struct FakeDeviceSecrets(Arc<AtomicU64>);

impl DeviceSecretFactory for FakeDeviceSecrets {
    fn generate(&self) -> Result<DeviceSecret, UnexpectedError> {
        Ok(DeviceSecret::new(format!(
            "eags_fake-{}",
            self.0.fetch_add(1, Ordering::Relaxed) + 1
        )))
    }

    fn fingerprint(&self, secret: &DeviceSecret) -> SecretFingerprint {
        SecretFingerprint::new(secret.expose().replace("eags_fake-", "fp-"))
    }
}

/// A transparent "sealer": `<device id>|<secret>` under a named key. It
/// binds the device like the real one, and can switch keys.
#[derive(Debug, Clone)]
pub struct FakeSealer {
    pub key_id: String,
    /// Keys that can still open.
    pub known: Vec<String>,
}

impl FakeSealer {
    pub fn new(key_id: &str) -> Self {
        Self {
            key_id: key_id.to_owned(),
            known: vec![key_id.to_owned()],
        }
    }
}

impl SecretSealer for FakeSealer {
    fn seal(&self, device: DeviceId, secret: &DeviceSecret) -> Result<SealedSecret, UnexpectedError> {
        Ok(SealedSecret {
            key_id: self.key_id.clone(),
            ciphertext: format!("{device}|{}", secret.expose()).into_bytes(),
        })
    }

    fn open(&self, device: DeviceId, sealed: &SealedSecret) -> Result<DeviceSecret, OpenSecretError> {
        if !self.known.contains(&sealed.key_id) {
            return Err(OpenSecretError::UnknownKey(sealed.key_id.clone()));
        }
        let text = String::from_utf8(sealed.ciphertext.clone()).map_err(|_| OpenSecretError::Corrupt)?;
        let (bound, secret) = text.split_once('|').ok_or(OpenSecretError::Corrupt)?;
        if bound != device.to_string() {
            return Err(OpenSecretError::Corrupt);
        }
        Ok(DeviceSecret::new(secret.to_owned()))
    }

    fn current_key_id(&self) -> &str {
        &self.key_id
    }
}

/// The device service wired entirely to fakes.
pub type FakeDeviceService =
    DeviceService<InMemoryDeviceRepository, FakeDeviceSecrets, FakeSealer, FixedClock, SequentialIds>;

impl FakeAccountWorld {
    /// A device service sharing this world's store, clock and ids.
    pub fn devices(&self, sealer: FakeSealer, policy: DevicePolicy) -> FakeDeviceService {
        DeviceService::new(
            self.store.devices(),
            FakeDeviceSecrets::default(),
            sealer,
            self.clock.clone(),
            SequentialIds(Arc::new(AtomicU64::new(1_000_000))),
            policy,
        )
    }
}

/// A stand-in MAC for domain tests (the domain has no HMAC): 32 bytes
/// derived from the secret and the message with std's hasher. Not secure;
/// only deterministic.
pub fn fake_mac(secret: &str, message: &str) -> [u8; 32] {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut out = [0u8; 32];
    for (i, chunk) in out.chunks_mut(8).enumerate() {
        let mut h = DefaultHasher::new();
        (i, secret, message).hash(&mut h);
        chunk.copy_from_slice(&h.finish().to_le_bytes());
    }
    out
}

/// Verifies [`fake_mac`]s, opening secrets with a [`FakeSealer`].
#[derive(Debug, Clone)]
pub struct FakeVerifier(pub FakeSealer);

impl SignatureVerifier for FakeVerifier {
    fn verify(
        &self,
        device: DeviceId,
        sealed: &SealedSecret,
        message: &str,
        signature: &[u8; 32],
    ) -> Result<bool, UnexpectedError> {
        let secret = self.0.open(device, sealed).map_err(UnexpectedError::new)?;
        Ok(fake_mac(secret.expose(), message) == *signature)
    }
}

/// A nonce store in a set; can be switched to "unreachable".
#[derive(Debug, Clone, Default)]
pub struct FakeNonceStore {
    seen: Arc<Mutex<std::collections::HashSet<(DeviceId, String)>>>,
    down: Arc<std::sync::atomic::AtomicBool>,
}

impl FakeNonceStore {
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::Relaxed);
    }
}

impl NonceStore for FakeNonceStore {
    async fn check_and_record(
        &self,
        device: DeviceId,
        nonce: &str,
        _ttl: Duration,
    ) -> Result<bool, UnexpectedError> {
        if self.down.load(Ordering::Relaxed) {
            return Err(UnexpectedError::msg("nonce store unreachable"));
        }
        Ok(lock(&self.seen).insert((device, nonce.to_owned())))
    }
}

#[derive(Debug, Clone)]
pub struct InMemorySignalRepository(InMemoryStore);

fn with_deliveries(r: &SignalRecord) -> SignalWithDeliveries {
    SignalWithDeliveries {
        signal: r.signal.clone(),
        deliveries: r.deliveries.clone(),
    }
}

impl SignalRepository for InMemorySignalRepository {
    async fn insert(&self, new: &NewSignal) -> Result<SignalWithDeliveries, InsertSignalError> {
        let mut state = self.0.state();
        if let Some((key, _)) = &new.idempotency
            && state.signals.iter().any(|r| {
                r.signal.owner == new.signal.owner && r.idempotency.as_ref().is_some_and(|(k, _)| k == key)
            })
        {
            return Err(InsertSignalError::DuplicateKey);
        }
        let record = SignalRecord {
            signal: new.signal.clone(),
            deliveries: new
                .devices
                .iter()
                .map(|d| Delivery {
                    signal_id: new.signal.id,
                    device_id: *d,
                    first_polled_at: None,
                    ack: None,
                    cancelled_at: None,
                })
                .collect(),
            idempotency: new.idempotency.clone(),
        };
        for d in &new.devices {
            *state.published.entry(*d).or_default() += 1;
        }
        let out = with_deliveries(&record);
        state.signals.push(record);
        Ok(out)
    }

    async fn find_by_idempotency_key(
        &self,
        owner: UserId,
        key: &str,
    ) -> Result<Option<(SignalWithDeliveries, String)>, UnexpectedError> {
        Ok(self.0.state().signals.iter().find_map(|r| match &r.idempotency {
            Some((k, description)) if r.signal.owner == owner && k == key => {
                Some((with_deliveries(r), description.clone()))
            }
            _ => None,
        }))
    }

    async fn find(
        &self,
        owner: UserId,
        id: SignalId,
    ) -> Result<Option<SignalWithDeliveries>, UnexpectedError> {
        Ok(self
            .0
            .state()
            .signals
            .iter()
            .find(|r| r.signal.owner == owner && r.signal.id == id)
            .map(with_deliveries))
    }

    async fn list(
        &self,
        owner: UserId,
        page: &PageRequest,
    ) -> Result<Page<SignalWithDeliveries>, UnexpectedError> {
        let state = self.0.state();
        let mut all: Vec<SignalWithDeliveries> = state
            .signals
            .iter()
            .filter(|r| r.signal.owner == owner)
            .filter(|r| {
                page.after
                    .is_none_or(|c| (r.signal.created_at, r.signal.id.as_uuid()) < (c.at, c.id))
            })
            .map(with_deliveries)
            .collect();
        all.sort_by_key(|s| std::cmp::Reverse((s.signal.created_at, s.signal.id)));
        all.truncate(page.limit as usize + 1);
        Ok(Page::from_overfetch(all, page.limit, |s| s.signal.cursor()))
    }

    async fn cancel(
        &self,
        owner: UserId,
        id: SignalId,
        at: DateTime<Utc>,
    ) -> Result<Option<SignalWithDeliveries>, UnexpectedError> {
        let mut state = self.0.state();
        let Some(r) = state
            .signals
            .iter_mut()
            .find(|r| r.signal.owner == owner && r.signal.id == id)
        else {
            return Ok(None);
        };
        r.signal.cancelled_at.get_or_insert(at);
        for d in &mut r.deliveries {
            if d.ack.is_none() {
                d.cancelled_at.get_or_insert(at);
            }
        }
        Ok(Some(with_deliveries(r)))
    }

    async fn active_devices(&self, owner: UserId) -> Result<Vec<DeviceId>, UnexpectedError> {
        let mut ids: Vec<DeviceId> = self
            .0
            .state()
            .devices
            .values()
            .filter(|r| r.device.owner == owner && r.device.revoked_at.is_none())
            .map(|r| r.device.id)
            .collect();
        ids.sort();
        Ok(ids)
    }

    async fn pending_for_device(
        &self,
        device: DeviceId,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Signal>, UnexpectedError> {
        let state = self.0.state();
        let mut pending: Vec<Signal> = state
            .signals
            .iter()
            .filter(|r| !r.signal.is_expired(now))
            .filter(|r| {
                r.deliveries
                    .iter()
                    .any(|d| d.device_id == device && d.ack.is_none() && d.cancelled_at.is_none())
            })
            .map(|r| r.signal.clone())
            .collect();
        pending.sort_by_key(|s| (s.created_at, s.id));
        pending.truncate(limit as usize);
        Ok(pending)
    }

    async fn mark_delivered(
        &self,
        device: DeviceId,
        signals: &[SignalId],
        at: DateTime<Utc>,
    ) -> Result<(), UnexpectedError> {
        let mut state = self.0.state();
        for r in state
            .signals
            .iter_mut()
            .filter(|r| signals.contains(&r.signal.id))
        {
            for d in r.deliveries.iter_mut().filter(|d| d.device_id == device) {
                d.first_polled_at.get_or_insert(at);
            }
        }
        Ok(())
    }

    async fn acknowledge(
        &self,
        device: DeviceId,
        signal: SignalId,
        ack: &Ack,
    ) -> Result<AckRecord, UnexpectedError> {
        let mut state = self.0.state();
        let delivery = state
            .signals
            .iter_mut()
            .filter(|r| r.signal.id == signal)
            .flat_map(|r| r.deliveries.iter_mut())
            .find(|d| d.device_id == device);
        let Some(delivery) = delivery else {
            return Ok(AckRecord::NotFound);
        };
        if let Some(existing) = &delivery.ack {
            return Ok(AckRecord::Existing(existing.clone()));
        }
        delivery.ack = Some(ack.clone());
        if let Some(r) = state.devices.get_mut(&device) {
            r.device.last_ack_at = Some(ack.at);
        }
        Ok(AckRecord::Recorded(ack.clone()))
    }
}

/// Wake-ups over the in-memory store. Waiting does not sleep: it returns at
/// once if something was published for the device, else it moves the fixed
/// clock on by the timeout.
#[derive(Debug, Clone)]
pub struct FakeWakeups {
    store: InMemoryStore,
    clock: FixedClock,
}

#[derive(Debug)]
pub struct FakeSubscription {
    wakeups: FakeWakeups,
    device: DeviceId,
    seen: u64,
}

impl SignalWakeups for FakeWakeups {
    type Subscription = FakeSubscription;

    fn subscribe(&self, device: DeviceId) -> FakeSubscription {
        let seen = self.store.state().published.get(&device).copied().unwrap_or(0);
        FakeSubscription {
            wakeups: self.clone(),
            device,
            seen,
        }
    }
}

impl WakeupSubscription for FakeSubscription {
    async fn wait(&mut self, timeout: std::time::Duration) -> Wake {
        let now = self
            .wakeups
            .store
            .state()
            .published
            .get(&self.device)
            .copied()
            .unwrap_or(0);
        if now != self.seen {
            self.seen = now;
            Wake::Notified
        } else {
            self.wakeups
                .clock
                .advance(Duration::from_std(timeout).unwrap_or_else(|_| Duration::seconds(1)));
            Wake::TimedOut
        }
    }
}
