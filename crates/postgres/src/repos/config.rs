use std::collections::HashMap;

use diesel::prelude::*;
use diesel::sql_types::{Array, Int4, Jsonb, Nullable, Uuid as SqlUuid};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl};
use eagate_domain::UnexpectedError;
use eagate_domain::account::UserId;
use eagate_domain::audit::AuditEvent;
use eagate_domain::config::{
    ConfigChange, ConfigLayer, ConfigRepository, ConfigScope, ConfigVersion, CurrentConfig, EffectiveConfig,
    WriteConfigError,
};
use eagate_domain::device::DeviceId;
use eagate_domain::pagination::{Page, PageRequest};
use tracing::instrument;
use uuid::Uuid;

use super::audit::insert_event;
use super::conn;
use crate::error::DbError;
use crate::pool::PgPool;
use crate::schema::{config_versions, device_config_revisions, devices};

const VERSION_INDEX: &str = "config_versions_scope_version";

/// [`ConfigRepository`] on PostgreSQL: every version is a row of
/// `config_versions`; a write bumps `devices.config_revision`, whose trigger
/// notifies every instance's cache on commit.
#[derive(Clone)]
pub struct PgConfigRepository {
    pool: PgPool,
}

impl std::fmt::Debug for PgConfigRepository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgConfigRepository").finish_non_exhaustive()
    }
}

impl PgConfigRepository {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = config_versions, check_for_backend(diesel::pg::Pg))]
struct VersionRow {
    owner_id: Uuid,
    device_id: Option<Uuid>,
    version: i32,
    document: serde_json::Value,
    change: String,
    rolled_back_to: Option<i32>,
    created_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = config_versions)]
struct NewVersionRow {
    owner_id: Uuid,
    device_id: Option<Uuid>,
    version: i32,
    document: serde_json::Value,
    change: &'static str,
    rolled_back_to: Option<i32>,
    created_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, QueryableByName)]
struct LatestRow {
    #[diesel(sql_type = Nullable<SqlUuid>)]
    device_id: Option<Uuid>,
    #[diesel(sql_type = Int4)]
    version: i32,
    #[diesel(sql_type = Jsonb)]
    document: serde_json::Value,
}

fn layer(document: &serde_json::Value) -> Result<ConfigLayer, UnexpectedError> {
    ConfigLayer::parse(document)
        .map_err(|e| UnexpectedError::msg(format!("stored configuration is not valid: {e}")))
}

fn version_number(v: i32) -> Result<u32, UnexpectedError> {
    u32::try_from(v)
        .map_err(|_| UnexpectedError::msg(format!("stored configuration version {v} is negative")))
}

impl TryFrom<VersionRow> for ConfigVersion {
    type Error = UnexpectedError;

    fn try_from(r: VersionRow) -> Result<Self, UnexpectedError> {
        let owner = UserId::from_uuid(r.owner_id);
        let change = match (r.change.as_str(), r.rolled_back_to) {
            ("replaced", _) => ConfigChange::Replaced,
            ("patched", _) => ConfigChange::Patched,
            ("rolled_back", Some(to)) => ConfigChange::RolledBack {
                to: version_number(to)?,
            },
            (other, _) => {
                return Err(UnexpectedError::msg(format!(
                    "stored change {other:?} is not valid"
                )));
            }
        };
        Ok(Self {
            scope: match r.device_id {
                None => ConfigScope::Account(owner),
                Some(d) => ConfigScope::Device(owner, DeviceId::from_uuid(d)),
            },
            version: version_number(r.version)?,
            layer: layer(&r.document)?,
            change,
            created_at: r.created_at,
        })
    }
}

fn scope_filter(
    scope: ConfigScope,
) -> Box<dyn BoxableExpression<config_versions::table, diesel::pg::Pg, SqlType = diesel::sql_types::Bool>> {
    let owner = config_versions::owner_id.eq(scope.owner().as_uuid());
    match scope.device() {
        None => Box::new(owner.and(config_versions::device_id.is_null())),
        Some(d) => Box::new(owner.and(config_versions::device_id.eq(d.as_uuid()).assume_not_null())),
    }
}

async fn latest(conn: &mut AsyncPgConnection, scope: ConfigScope) -> Result<CurrentConfig, UnexpectedError> {
    let row: Option<(i32, serde_json::Value)> = config_versions::table
        .filter(scope_filter(scope))
        .order(config_versions::version.desc())
        .select((config_versions::version, config_versions::document))
        .first(conn)
        .await
        .optional()
        .map_err(DbError::from)?;
    match row {
        None => Ok(CurrentConfig::default()),
        Some((version, document)) => Ok(CurrentConfig {
            version: version_number(version)?,
            layer: layer(&document)?,
        }),
    }
}

async fn owns(
    conn: &mut AsyncPgConnection,
    owner: UserId,
    device: DeviceId,
) -> Result<bool, UnexpectedError> {
    let found: Option<Uuid> = devices::table
        .filter(
            devices::id
                .eq(device.as_uuid())
                .and(devices::owner_id.eq(owner.as_uuid())),
        )
        .select(devices::id)
        .first(conn)
        .await
        .optional()
        .map_err(DbError::from)?;
    Ok(found.is_some())
}

/// The effective configurations of the owner's `devices` that exist: two
/// queries whatever their number (revisions; the latest documents).
async fn effective_of(
    conn: &mut AsyncPgConnection,
    owner: UserId,
    ids: &[DeviceId],
) -> Result<Vec<(DeviceId, EffectiveConfig)>, UnexpectedError> {
    let uuids: Vec<Uuid> = ids.iter().map(DeviceId::as_uuid).collect();
    let revisions: Vec<(Uuid, Option<i64>)> = devices::table
        .left_join(device_config_revisions::table)
        .filter(
            devices::owner_id
                .eq(owner.as_uuid())
                .and(devices::id.eq_any(&uuids)),
        )
        .select((devices::id, device_config_revisions::revision.nullable()))
        .load(conn)
        .await
        .map_err(DbError::from)?;
    if revisions.is_empty() {
        return Ok(Vec::new());
    }
    let latest: Vec<LatestRow> = diesel::sql_query(
        "SELECT DISTINCT ON (device_id) device_id, version, document FROM config_versions \
         WHERE owner_id = $1 AND (device_id IS NULL OR device_id = ANY($2)) \
         ORDER BY device_id, version DESC",
    )
    .bind::<SqlUuid, _>(owner.as_uuid())
    .bind::<Array<SqlUuid>, _>(&uuids)
    .load(conn)
    .await
    .map_err(DbError::from)?;
    let mut account = CurrentConfig::default();
    let mut per_device: HashMap<Uuid, CurrentConfig> = HashMap::new();
    for row in latest {
        let current = CurrentConfig {
            version: version_number(row.version)?,
            layer: layer(&row.document)?,
        };
        match row.device_id {
            None => account = current,
            Some(d) => {
                per_device.insert(d, current);
            }
        }
    }
    Ok(revisions
        .into_iter()
        .map(|(id, revision)| {
            let device = per_device.remove(&id).unwrap_or_default();
            (
                DeviceId::from_uuid(id),
                EffectiveConfig::merge(&account, Some(&device), revision.unwrap_or(0)),
            )
        })
        .collect())
}

/// Why a write's transaction rolled back.
enum WriteFailure {
    NotFound,
    Mismatch(u32),
    Db(diesel::result::Error),
    Corrupt(UnexpectedError),
}

impl From<diesel::result::Error> for WriteFailure {
    fn from(e: diesel::result::Error) -> Self {
        Self::Db(e)
    }
}

impl ConfigRepository for PgConfigRepository {
    #[instrument(name = "db.configs.current", skip_all, err(Display))]
    async fn current(&self, scope: ConfigScope) -> Result<Option<CurrentConfig>, UnexpectedError> {
        let mut conn = conn(&self.pool).await?;
        if let ConfigScope::Device(owner, device) = scope
            && !owns(&mut conn, owner, device).await?
        {
            return Ok(None);
        }
        Ok(Some(latest(&mut conn, scope).await?))
    }

    #[instrument(name = "db.configs.effective", skip_all, err(Display))]
    async fn effective(
        &self,
        owner: UserId,
        device: DeviceId,
    ) -> Result<Option<EffectiveConfig>, UnexpectedError> {
        let mut conn = conn(&self.pool).await?;
        Ok(effective_of(&mut conn, owner, &[device])
            .await?
            .pop()
            .map(|(_, e)| e))
    }

    #[instrument(name = "db.configs.effective_for_devices", skip_all, fields(devices = devices.len()), err(Display))]
    async fn effective_for_devices(
        &self,
        owner: UserId,
        devices: &[DeviceId],
    ) -> Result<Vec<(DeviceId, EffectiveConfig)>, UnexpectedError> {
        let mut conn = conn(&self.pool).await?;
        effective_of(&mut conn, owner, devices).await
    }

    #[instrument(name = "db.configs.write", skip_all)]
    async fn write(
        &self,
        new: &ConfigVersion,
        expected: u32,
        audit: &AuditEvent,
    ) -> Result<(), WriteConfigError> {
        let mut conn = conn(&self.pool).await.map_err(UnexpectedError::from)?;
        let scope = new.scope;
        let owner = scope.owner().as_uuid();
        let version = i32::try_from(new.version)
            .map_err(|_| UnexpectedError::msg("configuration version out of range"))?;
        let row = NewVersionRow {
            owner_id: owner,
            device_id: scope.device().map(|d| d.as_uuid()),
            version,
            document: new.layer.to_json(),
            change: new.change.as_str(),
            rolled_back_to: match new.change {
                ConfigChange::RolledBack { to } => Some(
                    i32::try_from(to)
                        .map_err(|_| UnexpectedError::msg("configuration version out of range"))?,
                ),
                _ => None,
            },
            created_at: new.created_at,
        };
        let result = conn
            .transaction::<_, WriteFailure, _>(async |conn| {
                // A new revision for the device, or every device of the
                // owner; for a device, the revision row's lock queues
                // concurrent writers.
                let bumped = diesel::sql_query(
                    "INSERT INTO device_config_revisions (device_id, revision) \
                     SELECT id, 1 FROM devices WHERE owner_id = $1 AND ($2::uuid IS NULL OR id = $2) \
                     ON CONFLICT (device_id) DO UPDATE SET revision = device_config_revisions.revision + 1",
                )
                .bind::<SqlUuid, _>(owner)
                .bind::<Nullable<SqlUuid>, _>(scope.device().map(|d| d.as_uuid()))
                .execute(conn)
                .await?;
                if scope.device().is_some() && bumped == 0 {
                    return Err(WriteFailure::NotFound);
                }
                let current = latest(conn, scope).await.map_err(WriteFailure::Corrupt)?.version;
                if current != expected || new.version != expected.saturating_add(1) {
                    return Err(WriteFailure::Mismatch(current));
                }
                diesel::insert_into(config_versions::table)
                    .values(&row)
                    .execute(conn)
                    .await?;
                insert_event(conn, audit).await?;
                Ok(())
            })
            .await;
        match result {
            Ok(()) => Ok(()),
            Err(WriteFailure::NotFound) => Err(WriteConfigError::NotFound),
            Err(WriteFailure::Mismatch(current)) => Err(WriteConfigError::VersionMismatch { current }),
            Err(WriteFailure::Corrupt(e)) => Err(e.into()),
            Err(WriteFailure::Db(e)) => {
                let e = DbError::from(e);
                if e.unique_violation() == Some(VERSION_INDEX) {
                    // A concurrent write took the version.
                    let current = latest(&mut conn, scope).await?.version;
                    Err(WriteConfigError::VersionMismatch { current })
                } else {
                    Err(WriteConfigError::Unexpected(e.into()))
                }
            }
        }
    }

    #[instrument(name = "db.configs.history", skip_all, err(Display))]
    async fn history(
        &self,
        scope: ConfigScope,
        page: &PageRequest,
    ) -> Result<Option<Page<ConfigVersion>>, UnexpectedError> {
        let mut conn = conn(&self.pool).await?;
        if let ConfigScope::Device(owner, device) = scope
            && !owns(&mut conn, owner, device).await?
        {
            return Ok(None);
        }
        let mut query = config_versions::table
            .filter(scope_filter(scope))
            .order(config_versions::version.desc())
            .limit(i64::from(page.limit) + 1)
            .select(VersionRow::as_select())
            .into_boxed();
        if let Some(after) = page.after {
            let before = i32::try_from(after.id.as_u128()).unwrap_or(i32::MAX);
            query = query.filter(config_versions::version.lt(before));
        }
        let rows = query.load(&mut conn).await.map_err(DbError::from)?;
        let items = rows
            .into_iter()
            .map(ConfigVersion::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(Page::from_overfetch(
            items,
            page.limit,
            ConfigVersion::cursor,
        )))
    }

    #[instrument(name = "db.configs.version", skip_all, err(Display))]
    async fn version(
        &self,
        scope: ConfigScope,
        version: u32,
    ) -> Result<Option<ConfigVersion>, UnexpectedError> {
        let mut conn = conn(&self.pool).await?;
        let Ok(version) = i32::try_from(version) else {
            return Ok(None);
        };
        let row = config_versions::table
            .filter(scope_filter(scope))
            .filter(config_versions::version.eq(version))
            .select(VersionRow::as_select())
            .first(&mut conn)
            .await
            .optional()
            .map_err(DbError::from)?;
        row.map(ConfigVersion::try_from).transpose()
    }
}
