//! The device use cases.

use std::collections::BTreeMap;

use chrono::Duration;
use tracing::instrument;

use super::error::*;
use super::model::*;
use super::ports::*;
use crate::account::UserId;
use crate::audit::{AuditAction, AuditEvent, ClientInfo};
use crate::clock::Clock;
use crate::error::UnexpectedError;
use crate::id::IdGenerator;
use crate::pagination::{Page, PageRequest};
use crate::validation::{FieldError, ValidationErrors};

/// Limits on devices.
#[derive(Debug, Clone, Copy)]
pub struct DevicePolicy {
    /// Active devices one account may have.
    pub max_active_devices: u32,
    /// The longest grace period a rotated-away secret may keep working.
    pub max_rotation_grace: Duration,
}

impl DevicePolicy {
    /// Validates a rotation's `grace_seconds` (default 0, at most
    /// `max_rotation_grace`), in seconds.
    pub fn rotation_grace(&self, grace_seconds: Option<i64>) -> Result<i64, FieldError> {
        let max = self.max_rotation_grace.num_seconds();
        let grace = grace_seconds.unwrap_or(0);
        if (0..=max).contains(&grace) {
            Ok(grace)
        } else {
            Err(FieldError::new(
                "grace_seconds",
                "out_of_range",
                format!("must be from 0 to {max}"),
            ))
        }
    }
}

impl Default for DevicePolicy {
    fn default() -> Self {
        Self {
            max_active_devices: 50,
            max_rotation_grace: Duration::seconds(86_400),
        }
    }
}

/// What a master-key rotation did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResealReport {
    /// Devices whose secrets were examined.
    pub examined: u64,
    /// Devices re-sealed under the current key.
    pub resealed: u64,
    /// Devices whose secrets changed concurrently (already under the
    /// current key as a result).
    pub raced: u64,
}

/// Device registration and lifecycle.
#[derive(Debug, Clone)]
pub struct DeviceService<D, F, S, C, I> {
    devices: D,
    secrets: F,
    sealer: S,
    clock: C,
    ids: I,
    policy: DevicePolicy,
}

impl<D, F, S, C, I> DeviceService<D, F, S, C, I>
where
    D: DeviceRepository,
    F: DeviceSecretFactory,
    S: SecretSealer,
    C: Clock,
    I: IdGenerator,
{
    pub fn new(devices: D, secrets: F, sealer: S, clock: C, ids: I, policy: DevicePolicy) -> Self {
        Self {
            devices,
            secrets,
            sealer,
            clock,
            ids,
            policy,
        }
    }

    fn audit(
        &self,
        action: AuditAction,
        owner: UserId,
        device: DeviceId,
        client: &ClientInfo,
        details: BTreeMap<String, String>,
    ) -> AuditEvent {
        AuditEvent {
            id: self.ids.new_id(),
            occurred_at: self.clock.now(),
            action,
            user_id: Some(owner),
            device_id: Some(device),
            client: client.clone(),
            details,
        }
    }

    /// Registers a device and returns it with its secret, which is shown
    /// this once and never again.
    #[instrument(skip_all, fields(user_id = %owner))]
    pub async fn register(
        &self,
        owner: UserId,
        name: &str,
        client: &ClientInfo,
    ) -> Result<DeviceWithSecret, RegisterDeviceError> {
        let name = DeviceName::parse(name).map_err(|e| RegisterDeviceError::Invalid(e.into()))?;
        let id = DeviceId::from_uuid(self.ids.new_id());
        let secret = self.secrets.generate()?;
        let new = NewDevice {
            id,
            owner,
            name: name.clone(),
            secret: self.sealer.seal(id, &secret)?,
            fingerprint: self.secrets.fingerprint(&secret),
            created_at: self.clock.now(),
        };
        let details = BTreeMap::from([("name".to_owned(), name.as_str().to_owned())]);
        let audit = self.audit(AuditAction::DeviceRegistered, owner, id, client, details);
        let max = self.policy.max_active_devices;
        let device = self
            .devices
            .insert(&new, max, &audit)
            .await
            .map_err(|e| match e {
                InsertDeviceError::NameTaken => RegisterDeviceError::NameTaken,
                InsertDeviceError::LimitReached => RegisterDeviceError::LimitReached { max },
                InsertDeviceError::Unexpected(e) => RegisterDeviceError::Unexpected(e),
            })?;
        tracing::info!(device_id = %device.id, "device registered");
        Ok(DeviceWithSecret { device, secret })
    }

    #[instrument(skip_all, fields(user_id = %owner, device_id = %id))]
    pub async fn get(&self, owner: UserId, id: DeviceId) -> Result<Device, GetDeviceError> {
        self.devices
            .find(owner, id)
            .await?
            .ok_or(GetDeviceError::NotFound)
    }

    /// The owner's devices, newest first. `status`, `limit` and `cursor` come
    /// straight from the query string and are validated here.
    #[instrument(skip_all, fields(user_id = %owner))]
    pub async fn list(
        &self,
        owner: UserId,
        status: Option<&str>,
        limit: Option<&str>,
        cursor: Option<&str>,
    ) -> Result<Page<Device>, ListDevicesError> {
        let mut errors = ValidationErrors::new();
        let status = status.and_then(|s| errors.collect(DeviceStatus::parse(s)));
        let page = match PageRequest::parse(limit, cursor) {
            Ok(page) => Some(page),
            Err(e) => {
                e.into_iter().for_each(|e| errors.push(e));
                None
            }
        };
        let Some(page) = page.filter(|_| errors.is_empty()) else {
            return Err(ListDevicesError::Invalid(errors));
        };
        Ok(self.devices.list(owner, status, &page).await?)
    }

    #[instrument(skip_all, fields(user_id = %owner, device_id = %id))]
    pub async fn rename(
        &self,
        owner: UserId,
        id: DeviceId,
        name: &str,
        client: &ClientInfo,
    ) -> Result<Device, RenameDeviceError> {
        let name = DeviceName::parse(name).map_err(|e| RenameDeviceError::Invalid(e.into()))?;
        let current = self
            .devices
            .find(owner, id)
            .await?
            .ok_or(RenameDeviceError::NotFound)?;
        if current.status() == DeviceStatus::Revoked {
            return Err(RenameDeviceError::Revoked);
        }
        let details = BTreeMap::from([
            ("from".to_owned(), current.name.as_str().to_owned()),
            ("to".to_owned(), name.as_str().to_owned()),
        ]);
        let audit = self.audit(AuditAction::DeviceRenamed, owner, id, client, details);
        self.devices
            .rename(owner, id, &name, self.clock.now(), &audit)
            .await
            .map_err(|e| match e {
                UpdateDeviceError::NotFound => RenameDeviceError::NotFound,
                UpdateDeviceError::Revoked => RenameDeviceError::Revoked,
                UpdateDeviceError::NameTaken => RenameDeviceError::NameTaken,
                UpdateDeviceError::Unexpected(e) => RenameDeviceError::Unexpected(e),
            })
    }

    /// Gives the device a new secret, shown this once. The previous secret
    /// keeps working for `grace_seconds` (default 0, at most the policy's
    /// maximum) so a running EA can be switched over without downtime.
    #[instrument(skip_all, fields(user_id = %owner, device_id = %id))]
    pub async fn rotate_secret(
        &self,
        owner: UserId,
        id: DeviceId,
        grace_seconds: Option<i64>,
        client: &ClientInfo,
    ) -> Result<DeviceWithSecret, RotateSecretError> {
        let grace = self
            .policy
            .rotation_grace(grace_seconds)
            .map_err(|e| RotateSecretError::Invalid(e.into()))?;
        let secret = self.secrets.generate()?;
        let now = self.clock.now();
        let rotation = SecretRotation {
            secret: self.sealer.seal(id, &secret)?,
            fingerprint: self.secrets.fingerprint(&secret),
            previous_valid_until: (grace > 0).then(|| now + Duration::seconds(grace)),
            at: now,
        };
        let details = BTreeMap::from([
            ("grace_seconds".to_owned(), grace.to_string()),
            ("fingerprint".to_owned(), rotation.fingerprint.as_str().to_owned()),
        ]);
        let audit = self.audit(AuditAction::DeviceSecretRotated, owner, id, client, details);
        let device = self
            .devices
            .rotate_secret(owner, id, &rotation, &audit)
            .await
            .map_err(|e| match e {
                UpdateDeviceError::NotFound => RotateSecretError::NotFound,
                UpdateDeviceError::Revoked => RotateSecretError::Revoked,
                // Rotation does not touch the name.
                UpdateDeviceError::NameTaken => RotateSecretError::Unexpected(UnexpectedError::msg(
                    "device repository reported a name conflict on secret rotation",
                )),
                UpdateDeviceError::Unexpected(e) => RotateSecretError::Unexpected(e),
            })?;
        tracing::info!(grace_seconds = grace, "device secret rotated");
        Ok(DeviceWithSecret { device, secret })
    }

    /// Revokes a device for good. Revoking a revoked device changes nothing.
    #[instrument(skip_all, fields(user_id = %owner, device_id = %id))]
    pub async fn revoke(
        &self,
        owner: UserId,
        id: DeviceId,
        client: &ClientInfo,
    ) -> Result<Device, RevokeDeviceError> {
        let audit = self.audit(AuditAction::DeviceRevoked, owner, id, client, BTreeMap::new());
        match self.devices.revoke(owner, id, self.clock.now(), &audit).await {
            Ok(Revocation::Revoked(device)) => {
                tracing::info!("device revoked");
                Ok(device)
            }
            Ok(Revocation::AlreadyRevoked(device)) => Ok(device),
            Err(UpdateDeviceError::NotFound) => Err(RevokeDeviceError::NotFound),
            Err(UpdateDeviceError::Unexpected(e)) => Err(RevokeDeviceError::Unexpected(e)),
            Err(e @ (UpdateDeviceError::Revoked | UpdateDeviceError::NameTaken)) => {
                Err(RevokeDeviceError::Unexpected(UnexpectedError::msg(format!(
                    "device repository reported {e} on revocation"
                ))))
            }
        }
    }

    /// Re-seals every stored device secret that is not under the current
    /// master key, without changing any secret. Safe to run while serving
    /// and to re-run after an interruption.
    #[instrument(skip_all, fields(key_id = %self.sealer.current_key_id()))]
    pub async fn reseal_all(&self) -> Result<ResealReport, UnexpectedError> {
        const BATCH: u32 = 500;
        let current_key = self.sealer.current_key_id().to_owned();
        let mut report = ResealReport::default();
        let mut after = None;
        loop {
            let batch = self.devices.stored_secrets(after, BATCH).await?;
            let Some(last) = batch.last() else {
                break;
            };
            after = Some(last.device);
            for stored in &batch {
                report.examined += 1;
                let stale = |s: &SealedSecret| s.key_id != current_key;
                if !stale(&stored.current) && !stored.previous.as_ref().is_some_and(stale) {
                    continue;
                }
                let reseal = |sealed: &SealedSecret| -> Result<SealedSecret, UnexpectedError> {
                    let secret = self.sealer.open(stored.device, sealed).map_err(|e| {
                        UnexpectedError::msg(format!(
                            "cannot open the secret of device {}: {e}",
                            stored.device
                        ))
                    })?;
                    self.sealer.seal(stored.device, &secret)
                };
                let current = reseal(&stored.current)?;
                let previous = stored.previous.as_ref().map(reseal).transpose()?;
                if self.devices.reseal(stored, &current, previous.as_ref()).await? {
                    report.resealed += 1;
                } else {
                    report.raced += 1;
                }
            }
        }
        tracing::info!(?report, "device secrets re-sealed");
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::{Registration, UserId};
    use crate::audit::AuditLog as _;
    use crate::testing::{FakeAccountWorld, FakeSealer};

    async fn world_with_user(name: &str) -> (FakeAccountWorld, UserId) {
        let world = FakeAccountWorld::new();
        let user = register(&world, name).await;
        (world, user)
    }

    async fn register(world: &FakeAccountWorld, name: &str) -> UserId {
        let reg =
            Registration::parse(&format!("{name}@example.com"), name, "a long enough password").unwrap();
        world
            .service
            .register(reg, &ClientInfo::default())
            .await
            .unwrap()
            .id
    }

    fn client() -> ClientInfo {
        ClientInfo::new(Some("198.51.100.4".parse().unwrap()), Some("MetaTrader/5"))
    }

    fn actions(world: &FakeAccountWorld) -> Vec<AuditAction> {
        world.store.audit_events().iter().map(|e| e.action).collect()
    }

    #[tokio::test]
    async fn register_returns_the_secret_once_and_stores_it_sealed() {
        let (world, ann) = world_with_user("ann").await;
        let devices = world.devices(FakeSealer::new("k1"), DevicePolicy::default());
        let created = devices.register(ann, "  Main MT5 ", &client()).await.unwrap();
        assert_eq!(created.device.name.as_str(), "Main MT5");
        assert!(created.secret.expose().starts_with("eags_"));
        assert_eq!(created.device.secret_fingerprint.as_str(), "fp-1");
        let stored = world.store.devices().stored_secrets(None, 10).await.unwrap();
        assert_eq!(stored[0].current.key_id, "k1");
        let event = world.store.audit_events().pop().unwrap();
        assert_eq!(event.action, AuditAction::DeviceRegistered);
        assert_eq!(event.device_id, Some(created.device.id));
        assert_eq!(event.client, client());
        assert_eq!(event.details["name"], "Main MT5");
    }

    #[tokio::test]
    async fn names_and_limits_are_enforced() {
        let (world, ann) = world_with_user("ann").await;
        let policy = DevicePolicy {
            max_active_devices: 2,
            ..DevicePolicy::default()
        };
        let devices = world.devices(FakeSealer::new("k1"), policy);
        assert!(matches!(
            devices.register(ann, " ", &client()).await,
            Err(RegisterDeviceError::Invalid(_))
        ));
        let first = devices.register(ann, "One", &client()).await.unwrap();
        assert!(matches!(
            devices.register(ann, "ONE", &client()).await,
            Err(RegisterDeviceError::NameTaken)
        ));
        devices.register(ann, "Two", &client()).await.unwrap();
        assert!(matches!(
            devices.register(ann, "Three", &client()).await,
            Err(RegisterDeviceError::LimitReached { max: 2 })
        ));
        // Revoking frees both the slot and the name.
        devices.revoke(ann, first.device.id, &client()).await.unwrap();
        devices.register(ann, "one", &client()).await.unwrap();
    }

    #[tokio::test]
    async fn other_owners_devices_do_not_exist() {
        let (world, ann) = world_with_user("ann").await;
        let bob = register(&world, "bob").await;
        let devices = world.devices(FakeSealer::new("k1"), DevicePolicy::default());
        let d = devices.register(ann, "Ann's", &client()).await.unwrap().device;
        assert!(matches!(
            devices.get(bob, d.id).await,
            Err(GetDeviceError::NotFound)
        ));
        assert!(matches!(
            devices.rename(bob, d.id, "Mine", &client()).await,
            Err(RenameDeviceError::NotFound)
        ));
        assert!(matches!(
            devices.rotate_secret(bob, d.id, None, &client()).await,
            Err(RotateSecretError::NotFound)
        ));
        assert!(matches!(
            devices.revoke(bob, d.id, &client()).await,
            Err(RevokeDeviceError::NotFound)
        ));
        assert_eq!(devices.get(ann, d.id).await.unwrap(), d);
    }

    #[tokio::test]
    async fn rename_records_old_and_new_names_and_refuses_revoked_devices() {
        let (world, ann) = world_with_user("ann").await;
        let devices = world.devices(FakeSealer::new("k1"), DevicePolicy::default());
        let d = devices.register(ann, "Old", &client()).await.unwrap().device;
        devices.register(ann, "Taken", &client()).await.unwrap();
        assert!(matches!(
            devices.rename(ann, d.id, "taken", &client()).await,
            Err(RenameDeviceError::NameTaken)
        ));
        assert!(matches!(
            devices.rename(ann, d.id, "\u{0}", &client()).await,
            Err(RenameDeviceError::Invalid(_))
        ));
        let renamed = devices.rename(ann, d.id, "New", &client()).await.unwrap();
        assert_eq!(renamed.name.as_str(), "New");
        let event = world.store.audit_events().pop().unwrap();
        assert_eq!(
            (event.details["from"].as_str(), event.details["to"].as_str()),
            ("Old", "New")
        );
        devices.revoke(ann, d.id, &client()).await.unwrap();
        assert!(matches!(
            devices.rename(ann, d.id, "Again", &client()).await,
            Err(RenameDeviceError::Revoked)
        ));
    }

    #[tokio::test]
    async fn rotation_changes_the_fingerprint_and_honours_the_grace_limit() {
        let (world, ann) = world_with_user("ann").await;
        let devices = world.devices(FakeSealer::new("k1"), DevicePolicy::default());
        let created = devices.register(ann, "EA", &client()).await.unwrap();
        let id = created.device.id;
        for bad in [-1, 86_401] {
            assert!(matches!(
                devices.rotate_secret(ann, id, Some(bad), &client()).await,
                Err(RotateSecretError::Invalid(_))
            ));
        }
        let rotated = devices
            .rotate_secret(ann, id, Some(600), &client())
            .await
            .unwrap();
        assert_ne!(rotated.secret, created.secret);
        assert_ne!(
            rotated.device.secret_fingerprint,
            created.device.secret_fingerprint
        );
        let sealer = FakeSealer::new("k1");
        let stored = world.store.devices().stored_secrets(None, 10).await.unwrap();
        assert_eq!(sealer.open(id, &stored[0].current).unwrap(), rotated.secret);
        assert_eq!(
            sealer.open(id, stored[0].previous.as_ref().unwrap()).unwrap(),
            created.secret
        );
        // Without grace the previous secret is dropped.
        devices.rotate_secret(ann, id, None, &client()).await.unwrap();
        let stored = world.store.devices().stored_secrets(None, 10).await.unwrap();
        assert!(stored[0].previous.is_none());
        devices.revoke(ann, id, &client()).await.unwrap();
        assert!(matches!(
            devices.rotate_secret(ann, id, None, &client()).await,
            Err(RotateSecretError::Revoked)
        ));
    }

    #[tokio::test]
    async fn revocation_is_permanent_and_recorded_once() {
        let (world, ann) = world_with_user("ann").await;
        let devices = world.devices(FakeSealer::new("k1"), DevicePolicy::default());
        let d = devices.register(ann, "EA", &client()).await.unwrap().device;
        let revoked = devices.revoke(ann, d.id, &client()).await.unwrap();
        assert_eq!(revoked.status(), DeviceStatus::Revoked);
        devices.revoke(ann, d.id, &client()).await.unwrap();
        let revocations = actions(&world)
            .iter()
            .filter(|a| **a == AuditAction::DeviceRevoked)
            .count();
        assert_eq!(revocations, 1);
    }

    #[tokio::test]
    async fn listing_validates_its_parameters() {
        let (world, ann) = world_with_user("ann").await;
        let devices = world.devices(FakeSealer::new("k1"), DevicePolicy::default());
        match devices
            .list(ann, Some("deleted"), Some("0"), Some("garbage"))
            .await
        {
            Err(ListDevicesError::Invalid(errors)) => {
                let fields: Vec<_> = errors.errors().iter().map(|e| e.field).collect();
                assert_eq!(fields, ["status", "limit", "cursor"]);
            }
            other => panic!("expected validation errors, got {other:?}"),
        }
        for n in 0..3 {
            world.clock.advance(Duration::seconds(1));
            devices
                .register(ann, &format!("EA {n}"), &client())
                .await
                .unwrap();
        }
        let page = devices.list(ann, Some("active"), Some("2"), None).await.unwrap();
        assert_eq!(page.items[0].name.as_str(), "EA 2");
        let cursor = page.next.unwrap().to_string();
        let rest = devices.list(ann, None, Some("2"), Some(&cursor)).await.unwrap();
        assert_eq!(rest.items.len(), 1);
        assert_eq!(rest.items[0].name.as_str(), "EA 0");
    }

    #[tokio::test]
    async fn reseal_moves_every_secret_to_the_current_key_without_changing_it() {
        let (world, ann) = world_with_user("ann").await;
        let old = world.devices(FakeSealer::new("k1"), DevicePolicy::default());
        let a = old.register(ann, "A", &client()).await.unwrap();
        let b = old.register(ann, "B", &client()).await.unwrap();
        let b2 = old
            .rotate_secret(ann, b.device.id, Some(3600), &client())
            .await
            .unwrap();

        let mut both = FakeSealer::new("k2");
        both.known.push("k1".into());
        let new = world.devices(both, DevicePolicy::default());
        let report = new.reseal_all().await.unwrap();
        assert_eq!(
            report,
            ResealReport {
                examined: 2,
                resealed: 2,
                raced: 0
            }
        );
        assert_eq!(new.reseal_all().await.unwrap().resealed, 0, "idempotent");

        // Only k2 is needed now, and every secret is unchanged.
        let k2_only = FakeSealer::new("k2");
        let stored = world.store.devices().stored_secrets(None, 10).await.unwrap();
        let find = |id| stored.iter().find(|s| s.device == id).unwrap();
        assert_eq!(
            k2_only.open(a.device.id, &find(a.device.id).current).unwrap(),
            a.secret
        );
        assert_eq!(
            k2_only.open(b.device.id, &find(b.device.id).current).unwrap(),
            b2.secret
        );
        let previous = find(b.device.id).previous.clone().unwrap();
        assert_eq!(k2_only.open(b.device.id, &previous).unwrap(), b.secret);

        // A secret whose key is gone cannot be re-sealed: the error says which.
        let lost = world.devices(FakeSealer::new("k3"), DevicePolicy::default());
        let error = lost.reseal_all().await.unwrap_err().to_string();
        assert!(error.contains("k2"), "{error}");
    }

    #[tokio::test]
    async fn account_events_are_audited() {
        let (world, ann) = world_with_user("ann").await;
        let attempt = |p: &str| crate::account::LoginAttempt::parse("ann", p).unwrap();
        world
            .service
            .login(attempt("wrong password"), &client())
            .await
            .unwrap_err();
        world
            .service
            .login(
                crate::account::LoginAttempt::parse("ghost", "whatever").unwrap(),
                &client(),
            )
            .await
            .unwrap_err();
        world
            .service
            .login(attempt("a long enough password"), &client())
            .await
            .unwrap();
        assert_eq!(
            actions(&world),
            [
                AuditAction::AccountRegistered,
                AuditAction::LoginFailed,
                AuditAction::LoginFailed,
                AuditAction::LoginSucceeded
            ]
        );
        let events = world.store.audit_events();
        assert_eq!(events[1].user_id, Some(ann));
        assert_eq!(events[2].user_id, None, "unknown accounts are not attributed");
        let trail = world
            .store
            .audit()
            .list_for_user(ann, &PageRequest::first(10))
            .await
            .unwrap();
        assert_eq!(trail.items.len(), 3);
    }
}
