//! The configuration use cases: the owner reads, replaces, patches, lists
//! and rolls back documents; a device reads its effective configuration.

use std::collections::BTreeMap;

use serde_json::Value;
use tracing::instrument;

use super::error::*;
use super::model::*;
use super::ports::*;
use crate::account::UserId;
use crate::audit::{AuditAction, AuditEvent, ClientInfo};
use crate::clock::Clock;
use crate::device::AuthenticatedDevice;
use crate::id::IdGenerator;
use crate::pagination::{Page, PageRequest};
use crate::validation::{FieldError, ValidationErrors};

/// The `If-Match` of a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    /// `"<version>"`: write only if the document is at this version.
    Version(u32),
    /// `*`: whatever the current version.
    Any,
}

impl Precondition {
    /// Parses an `If-Match` header: one strong entity tag (`"3"`) or `*`.
    /// Missing: 428, so no write overwrites a change its author never saw.
    pub fn parse(header: Option<&str>) -> Result<Self, ConfigError> {
        let Some(raw) = header else {
            return Err(ConfigError::PreconditionRequired);
        };
        let raw = raw.trim();
        if raw == "*" {
            return Ok(Self::Any);
        }
        raw.strip_prefix('"')
            .and_then(|r| r.strip_suffix('"'))
            .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|v| v.parse::<u32>().ok())
            .map(Self::Version)
            .ok_or_else(|| {
                ConfigError::Invalid(
                    FieldError::new(
                        "If-Match",
                        "invalid",
                        "must be the document's ETag (a version in double quotes, e.g. \"3\") or *",
                    )
                    .into(),
                )
            })
    }
}

/// The device's answer to `GET /device/config`.
#[derive(Debug, Clone, PartialEq)]
pub enum DeviceConfigAnswer {
    /// The device's `If-None-Match` names the current revision.
    NotModified {
        revision: i64,
    },
    Config(EffectiveConfig),
}

/// The entity tag of a device's effective configuration at `revision`.
pub fn device_etag(revision: i64) -> String {
    format!("\"r{revision}\"")
}

/// Whether an `If-None-Match` header matches `etag` (weak comparison, as
/// RFC 9110 asks for `If-None-Match`).
pub fn none_match_hits(header: &str, etag: &str) -> bool {
    header
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

/// Reading and changing configurations.
#[derive(Debug, Clone)]
pub struct ConfigService<R, C, I> {
    configs: R,
    clock: C,
    ids: I,
}

impl<R, C, I> ConfigService<R, C, I>
where
    R: ConfigRepository,
    C: Clock,
    I: IdGenerator,
{
    pub fn new(configs: R, clock: C, ids: I) -> Self {
        Self { configs, clock, ids }
    }

    /// The scope's own document and its effective values (for the account
    /// default: over the built-in values).
    #[instrument(skip_all, fields(user_id = %scope.owner()))]
    pub async fn get(&self, scope: ConfigScope) -> Result<(CurrentConfig, EffectiveConfig), ConfigError> {
        match scope {
            ConfigScope::Account(_) => {
                let current = self.current(scope).await?;
                let effective = EffectiveConfig::merge(&current, None, 0);
                Ok((current, effective))
            }
            ConfigScope::Device(owner, device) => {
                let current = self.current(scope).await?;
                let effective = self
                    .configs
                    .effective(owner, device)
                    .await?
                    .ok_or(ConfigError::NotFound)?;
                Ok((current, effective))
            }
        }
    }

    async fn current(&self, scope: ConfigScope) -> Result<CurrentConfig, ConfigError> {
        self.configs.current(scope).await?.ok_or(ConfigError::NotFound)
    }

    /// Replaces the scope's document.
    #[instrument(skip_all, fields(user_id = %scope.owner()))]
    pub async fn replace(
        &self,
        scope: ConfigScope,
        if_match: Option<&str>,
        document: &Value,
        client: &ClientInfo,
    ) -> Result<(CurrentConfig, EffectiveConfig), ConfigError> {
        let precondition = Precondition::parse(if_match)?;
        let layer = ConfigLayer::parse(document).map_err(ConfigError::Invalid)?;
        self.write(scope, precondition, layer, ConfigChange::Replaced, client)
            .await
    }

    /// Applies a merge patch to the scope's document (`sizing` is replaced
    /// whole; see [`patch_document`]).
    #[instrument(skip_all, fields(user_id = %scope.owner()))]
    pub async fn patch(
        &self,
        scope: ConfigScope,
        if_match: Option<&str>,
        patch: &Value,
        client: &ClientInfo,
    ) -> Result<(CurrentConfig, EffectiveConfig), ConfigError> {
        let precondition = Precondition::parse(if_match)?;
        if !patch.is_object() {
            return Err(ConfigError::Invalid(
                FieldError::new(
                    "document",
                    "invalid",
                    "a merge patch of the configuration must be a JSON object",
                )
                .into(),
            ));
        }
        let current = self.current(scope).await?;
        if let Precondition::Version(v) = precondition
            && v != current.version
        {
            return Err(ConfigError::PreconditionFailed {
                current: current.version,
            });
        }
        let layer =
            ConfigLayer::parse_patch(&current.layer.to_json(), patch).map_err(ConfigError::Invalid)?;
        self.write(
            scope,
            Precondition::Version(current.version),
            layer,
            ConfigChange::Patched,
            client,
        )
        .await
    }

    /// Makes a copy of an earlier version the current document.
    #[instrument(skip_all, fields(user_id = %scope.owner()))]
    pub async fn rollback(
        &self,
        scope: ConfigScope,
        if_match: Option<&str>,
        to: u32,
        client: &ClientInfo,
    ) -> Result<(CurrentConfig, EffectiveConfig), ConfigError> {
        let precondition = Precondition::parse(if_match)?;
        let layer = if to == 0 {
            // Version 0, the empty document a scope starts with.
            self.current(scope).await?;
            ConfigLayer::default()
        } else {
            match self.configs.version(scope, to).await? {
                Some(found) => found.layer,
                None => {
                    self.current(scope).await?;
                    return Err(ConfigError::VersionNotFound);
                }
            }
        };
        self.write(
            scope,
            precondition,
            layer,
            ConfigChange::RolledBack { to },
            client,
        )
        .await
    }

    async fn write(
        &self,
        scope: ConfigScope,
        precondition: Precondition,
        layer: ConfigLayer,
        change: ConfigChange,
        client: &ClientInfo,
    ) -> Result<(CurrentConfig, EffectiveConfig), ConfigError> {
        // `*` writes over whatever is current; a concurrent write still
        // loses the race cleanly (412) instead of being overwritten.
        let expected = match precondition {
            Precondition::Version(v) => v,
            Precondition::Any => self.current(scope).await?.version,
        };
        let Some(version) = expected.checked_add(1) else {
            return Err(ConfigError::PreconditionFailed { current: expected });
        };
        let now = self.clock.now();
        let new = ConfigVersion {
            scope,
            version,
            layer,
            change,
            created_at: now,
        };
        let mut details = BTreeMap::from([
            (
                "scope".to_owned(),
                if scope.device().is_some() {
                    "device"
                } else {
                    "account"
                }
                .to_owned(),
            ),
            ("change".to_owned(), change.as_str().to_owned()),
            ("version".to_owned(), version.to_string()),
        ]);
        if let ConfigChange::RolledBack { to } = change {
            details.insert("rolled_back_to".to_owned(), to.to_string());
        }
        let audit = AuditEvent {
            id: self.ids.new_id(),
            occurred_at: now,
            action: AuditAction::ConfigChanged,
            user_id: Some(scope.owner()),
            device_id: scope.device(),
            client: client.clone(),
            details,
        };
        match self.configs.write(&new, expected, &audit).await {
            Ok(()) => {
                tracing::info!(version, change = change.as_str(), "configuration changed");
                self.get(scope).await
            }
            Err(WriteConfigError::NotFound) => Err(ConfigError::NotFound),
            Err(WriteConfigError::VersionMismatch { current }) => {
                Err(ConfigError::PreconditionFailed { current })
            }
            Err(WriteConfigError::Unexpected(e)) => Err(e.into()),
        }
    }

    /// The scope's stored versions, newest first.
    #[instrument(skip_all, fields(user_id = %scope.owner()))]
    pub async fn history(
        &self,
        scope: ConfigScope,
        limit: Option<&str>,
        cursor: Option<&str>,
    ) -> Result<Page<ConfigVersion>, ConfigError> {
        let page = PageRequest::parse(limit, cursor).map_err(|errors| {
            let mut all = ValidationErrors::new();
            errors.into_iter().for_each(|e| all.push(e));
            ConfigError::Invalid(all)
        })?;
        self.configs
            .history(scope, &page)
            .await?
            .ok_or(ConfigError::NotFound)
    }

    /// The calling device's effective configuration, or `NotModified`
    /// without reading storage when `If-None-Match` names the revision the
    /// device authenticated with (cached per instance).
    #[instrument(level = "debug", skip_all, fields(device_id = %caller.id))]
    pub async fn for_device(
        &self,
        caller: &AuthenticatedDevice,
        if_none_match: Option<&str>,
    ) -> Result<DeviceConfigAnswer, ConfigError> {
        let etag = device_etag(caller.config_revision);
        if if_none_match.is_some_and(|h| none_match_hits(h, &etag)) {
            return Ok(DeviceConfigAnswer::NotModified {
                revision: caller.config_revision,
            });
        }
        let effective = self
            .configs
            .effective(caller.owner, caller.id)
            .await?
            .ok_or(ConfigError::NotFound)?;
        // This instance may not have heard of the latest change yet, while
        // the device has: compare with what storage says too.
        if if_none_match.is_some_and(|h| none_match_hits(h, &device_etag(effective.revision))) {
            return Ok(DeviceConfigAnswer::NotModified {
                revision: effective.revision,
            });
        }
        Ok(DeviceConfigAnswer::Config(effective))
    }

    pub fn owner_scope(owner: UserId, device: Option<crate::device::DeviceId>) -> ConfigScope {
        match device {
            Some(d) => ConfigScope::Device(owner, d),
            None => ConfigScope::Account(owner),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::account::Registration;
    use crate::device::{DeviceId, DevicePolicy, DeviceRepository as _};
    use crate::testing::{FakeAccountWorld, FakeSealer, FixedClock, InMemoryConfigRepository, SequentialIds};

    type Service = ConfigService<InMemoryConfigRepository, FixedClock, SequentialIds>;

    async fn rig() -> (FakeAccountWorld, Service, UserId, DeviceId) {
        let world = FakeAccountWorld::new();
        let reg = Registration::parse("o@example.com", "owner", "a long enough password").unwrap();
        let owner = world
            .service
            .register(reg, &ClientInfo::default())
            .await
            .unwrap()
            .id;
        let device = world
            .devices(FakeSealer::new("k1"), DevicePolicy::default())
            .register(owner, "EA", &ClientInfo::default())
            .await
            .unwrap()
            .device
            .id;
        let service = ConfigService::new(
            world.store.configs(),
            world.clock.clone(),
            SequentialIds::after(500),
        );
        (world, service, owner, device)
    }

    fn client() -> ClientInfo {
        ClientInfo::default()
    }

    #[test]
    fn if_match_is_required_and_must_be_a_version_or_a_star() {
        assert!(matches!(
            Precondition::parse(None),
            Err(ConfigError::PreconditionRequired)
        ));
        assert_eq!(
            Precondition::parse(Some("\"3\"")).unwrap(),
            Precondition::Version(3)
        );
        assert_eq!(Precondition::parse(Some("*")).unwrap(), Precondition::Any);
        for bad in [
            "3",
            "W/\"3\"",
            "\"\"",
            "\"-1\"",
            "\"3",
            "\"99999999999\"",
            "\"r3\"",
        ] {
            assert!(
                matches!(Precondition::parse(Some(bad)), Err(ConfigError::Invalid(_))),
                "{bad}"
            );
        }
        assert!(none_match_hits("\"r1\", W/\"r2\"", "\"r2\""));
        assert!(none_match_hits("*", "\"r2\""));
        assert!(!none_match_hits("\"r20\"", "\"r2\""));
    }

    #[tokio::test]
    async fn writes_need_the_current_version_and_each_is_audited() {
        let (world, service, owner, device) = rig().await;
        let scope = ConfigScope::Device(owner, device);
        let doc = json!({"max_lot": 1.0});
        assert!(matches!(
            service.replace(scope, None, &doc, &client()).await,
            Err(ConfigError::PreconditionRequired)
        ));
        let (current, effective) = service
            .replace(scope, Some("\"0\""), &doc, &client())
            .await
            .unwrap();
        assert_eq!(current.version, 1);
        assert_eq!(effective.values.max_lot, Some(1.0));
        assert!(matches!(
            service.replace(scope, Some("\"0\""), &doc, &client()).await,
            Err(ConfigError::PreconditionFailed { current: 1 })
        ));
        assert!(matches!(
            service
                .patch(scope, Some("\"0\""), &json!({"mode": "paused"}), &client())
                .await,
            Err(ConfigError::PreconditionFailed { current: 1 })
        ));
        let (patched, _) = service
            .patch(scope, Some("\"1\""), &json!({"mode": "paused"}), &client())
            .await
            .unwrap();
        assert_eq!(patched.layer.to_json(), json!({"mode": "paused", "max_lot": 1.0}));
        let events: Vec<_> = world
            .store
            .audit_events()
            .into_iter()
            .filter(|e| e.action == AuditAction::ConfigChanged)
            .collect();
        assert_eq!(events.len(), 2, "one event per change, none for refused writes");
        assert_eq!(events[1].details["change"], "patched");
        assert_eq!(events[1].details["version"], "2");
        assert_eq!(events[1].device_id, Some(device));
    }

    #[tokio::test]
    async fn an_invalid_document_or_patch_changes_nothing() {
        let (_world, service, owner, device) = rig().await;
        let scope = ConfigScope::Device(owner, device);
        assert!(matches!(
            service
                .replace(scope, Some("*"), &json!({"mode": "sideways"}), &client())
                .await,
            Err(ConfigError::Invalid(_))
        ));
        assert!(matches!(
            service.patch(scope, Some("*"), &json!(["mode"]), &client()).await,
            Err(ConfigError::Invalid(_))
        ));
        assert!(matches!(
            service
                .patch(scope, Some("*"), &json!({"max_lot": -1}), &client())
                .await,
            Err(ConfigError::Invalid(_))
        ));
        assert_eq!(service.get(scope).await.unwrap().0.version, 0);
    }

    #[tokio::test]
    async fn rollback_copies_an_earlier_version_forward() {
        let (_world, service, owner, _device) = rig().await;
        let scope = ConfigScope::Account(owner);
        service
            .replace(scope, Some("*"), &json!({"mode": "close_only"}), &client())
            .await
            .unwrap();
        service
            .replace(scope, Some("*"), &json!({"mode": "paused"}), &client())
            .await
            .unwrap();
        let (back, effective) = service
            .rollback(scope, Some("\"2\""), 1, &client())
            .await
            .unwrap();
        assert_eq!(back.version, 3, "a rollback is a new version");
        assert_eq!(effective.mode(), Mode::CloseOnly);
        let (empty, _) = service
            .rollback(scope, Some("\"3\""), 0, &client())
            .await
            .unwrap();
        assert_eq!(
            empty.layer,
            ConfigLayer::default(),
            "version 0 is the empty document"
        );
        assert!(matches!(
            service.rollback(scope, Some("*"), 42, &client()).await,
            Err(ConfigError::VersionNotFound)
        ));
        let history = service.history(scope, Some("2"), None).await.unwrap();
        assert_eq!(
            history.items.iter().map(|v| v.version).collect::<Vec<_>>(),
            [4, 3]
        );
        assert_eq!(history.items[1].change, ConfigChange::RolledBack { to: 1 });
        let cursor = history.next.unwrap().to_string();
        let rest = service.history(scope, Some("2"), Some(&cursor)).await.unwrap();
        assert_eq!(rest.items.iter().map(|v| v.version).collect::<Vec<_>>(), [2, 1]);
    }

    #[tokio::test]
    async fn another_owners_device_is_not_found() {
        let (world, service, _owner, device) = rig().await;
        let reg = Registration::parse("x@example.com", "other", "a long enough password").unwrap();
        let other = world
            .service
            .register(reg, &ClientInfo::default())
            .await
            .unwrap()
            .id;
        let scope = ConfigScope::Device(other, device);
        assert!(matches!(service.get(scope).await, Err(ConfigError::NotFound)));
        assert!(matches!(
            service.replace(scope, Some("*"), &json!({}), &client()).await,
            Err(ConfigError::NotFound)
        ));
        assert!(matches!(
            service.history(scope, None, None).await,
            Err(ConfigError::NotFound)
        ));
        assert!(matches!(
            service.rollback(scope, Some("*"), 1, &client()).await,
            Err(ConfigError::NotFound)
        ));
    }

    #[tokio::test]
    async fn a_device_is_answered_not_modified_from_its_cached_revision() {
        let (world, service, owner, device) = rig().await;
        let creds = world
            .store
            .devices()
            .find_credentials(device)
            .await
            .unwrap()
            .unwrap();
        let caller = AuthenticatedDevice {
            id: device,
            owner,
            name: creds.name.clone(),
            config_revision: creds.config_revision,
            deployment_revision: creds.deployment_revision,
        };
        let DeviceConfigAnswer::Config(first) = service.for_device(&caller, None).await.unwrap() else {
            panic!("a first fetch returns the configuration");
        };
        let etag = device_etag(first.revision);
        assert_eq!(
            service.for_device(&caller, Some(&etag)).await.unwrap(),
            DeviceConfigAnswer::NotModified {
                revision: first.revision
            }
        );
        service
            .replace(
                ConfigScope::Account(owner),
                Some("*"),
                &json!({"mode": "paused"}),
                &client(),
            )
            .await
            .unwrap();
        let newer = world
            .store
            .devices()
            .find_credentials(device)
            .await
            .unwrap()
            .unwrap();
        let caller = AuthenticatedDevice {
            config_revision: newer.config_revision,
            ..caller
        };
        let DeviceConfigAnswer::Config(second) = service.for_device(&caller, Some(&etag)).await.unwrap()
        else {
            panic!("a changed configuration is sent again");
        };
        assert_eq!(second.mode(), Mode::Paused);
        assert_ne!(device_etag(second.revision), etag);
    }

    /// A repository that fails the test when read: the 304 path must not
    /// touch storage (the idle fast path).
    struct Untouchable;

    impl ConfigRepository for Untouchable {
        async fn current(&self, _: ConfigScope) -> Result<Option<CurrentConfig>, crate::UnexpectedError> {
            panic!("read storage")
        }
        async fn effective(
            &self,
            _: UserId,
            _: DeviceId,
        ) -> Result<Option<EffectiveConfig>, crate::UnexpectedError> {
            panic!("read storage")
        }
        async fn effective_for_devices(
            &self,
            _: UserId,
            _: &[DeviceId],
        ) -> Result<Vec<(DeviceId, EffectiveConfig)>, crate::UnexpectedError> {
            panic!("read storage")
        }
        async fn write(&self, _: &ConfigVersion, _: u32, _: &AuditEvent) -> Result<(), WriteConfigError> {
            panic!("wrote storage")
        }
        async fn history(
            &self,
            _: ConfigScope,
            _: &PageRequest,
        ) -> Result<Option<Page<ConfigVersion>>, crate::UnexpectedError> {
            panic!("read storage")
        }
        async fn version(
            &self,
            _: ConfigScope,
            _: u32,
        ) -> Result<Option<ConfigVersion>, crate::UnexpectedError> {
            panic!("read storage")
        }
    }

    #[tokio::test]
    async fn an_unchanged_configuration_is_answered_without_reading_storage() {
        let service = ConfigService::new(Untouchable, FixedClock::default_start(), SequentialIds::default());
        let caller = AuthenticatedDevice {
            id: DeviceId::from_uuid(uuid::Uuid::now_v7()),
            owner: UserId::from_uuid(uuid::Uuid::now_v7()),
            name: crate::device::DeviceName::parse("EA").unwrap(),
            config_revision: 12,
            deployment_revision: 0,
        };
        assert_eq!(
            service.for_device(&caller, Some("\"r12\"")).await.unwrap(),
            DeviceConfigAnswer::NotModified { revision: 12 }
        );
    }
}
