use chrono::{DateTime, Utc};
use diesel::dsl::count_star;
use diesel::prelude::*;
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl};
use eagate_domain::UnexpectedError;
use eagate_domain::account::UserId;
use eagate_domain::activity::DeviceActivity;
use eagate_domain::audit::AuditEvent;
use eagate_domain::device::{
    Device, DeviceCredentials, DeviceId, DeviceName, DeviceRepository, DeviceStatus, InsertDeviceError,
    NewDevice, Revocation, SealedSecret, SecretRotation, StoredSecrets, UpdateDeviceError,
};
use eagate_domain::pagination::{Page, PageRequest};
use tracing::instrument;
use uuid::Uuid;

use super::audit::insert_event;
use super::conn;
use crate::error::DbError;
use crate::pool::PgPool;
use crate::rows::{CredentialsRow, DeviceRow, HeartbeatRow, NewDeviceRow, SecretsRow};
use crate::schema::{
    account_disabled, device_config_revisions, device_deployment_revisions, device_heartbeats, devices, users,
};

const NAME_KEY_INDEX: &str = "devices_owner_name_active_key";

/// [`DeviceRepository`] on PostgreSQL.
#[derive(Clone)]
pub struct PgDeviceRepository {
    pool: PgPool,
}

impl std::fmt::Debug for PgDeviceRepository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgDeviceRepository").finish_non_exhaustive()
    }
}

impl PgDeviceRepository {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

/// Failures inside device transactions.
#[derive(Debug, thiserror::Error)]
enum TxError {
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
    #[error("name taken")]
    NameTaken,
    #[error("limit reached")]
    LimitReached,
    #[error("not found")]
    NotFound,
    #[error("revoked")]
    Revoked,
}

impl TxError {
    fn from_db(e: diesel::result::Error) -> Self {
        match DbError::from(e) {
            err if err.unique_violation() == Some(NAME_KEY_INDEX) => Self::NameTaken,
            DbError::Query(e) => Self::Db(e),
            DbError::Pool(_) => Self::Db(diesel::result::Error::BrokenTransactionManager),
        }
    }
}

impl From<TxError> for UpdateDeviceError {
    fn from(e: TxError) -> Self {
        match e {
            TxError::NameTaken => Self::NameTaken,
            TxError::NotFound => Self::NotFound,
            TxError::Revoked => Self::Revoked,
            TxError::LimitReached => Self::Unexpected(UnexpectedError::msg("device limit on an update")),
            TxError::Db(e) => Self::Unexpected(DbError::from(e).into()),
        }
    }
}

/// Tells apart a device that is not the owner's (or does not exist) from
/// one that is revoked, after a conditional update matched nothing.
async fn missing_or_revoked(conn: &mut AsyncPgConnection, owner: Uuid, id: Uuid) -> Result<Device, TxError> {
    let row = devices::table
        .filter(devices::id.eq(id).and(devices::owner_id.eq(owner)))
        .select(DeviceRow::as_select())
        .first(conn)
        .await
        .optional()?;
    match row {
        Some(row) => Ok(with_heartbeat(conn, row).await?),
        None => Err(TxError::NotFound),
    }
}

/// Completes a device row (from `RETURNING`) with its latest heartbeat.
async fn with_heartbeat(conn: &mut AsyncPgConnection, row: DeviceRow) -> QueryResult<Device> {
    let heartbeat = device_heartbeats::table
        .find(row.id)
        .select(HeartbeatRow::as_select())
        .first(conn)
        .await
        .optional()?;
    Ok(row.into_device(heartbeat))
}

impl DeviceRepository for PgDeviceRepository {
    #[instrument(name = "db.devices.insert", skip_all, err(Display))]
    async fn insert(
        &self,
        device: &NewDevice,
        max_active: u32,
        audit: &AuditEvent,
    ) -> Result<Device, InsertDeviceError> {
        let mut conn = conn(&self.pool).await.map_err(UnexpectedError::from)?;
        let row = NewDeviceRow::from(device);
        let owner = device.owner.as_uuid();
        let result = conn
            .transaction::<_, TxError, _>(async |conn| {
                // Lock the owner: concurrent registrations for one account
                // take turns, so the limit cannot be overshot.
                users::table
                    .find(owner)
                    .select(users::id)
                    .for_update()
                    .first::<Uuid>(conn)
                    .await?;
                let active: i64 = devices::table
                    .filter(devices::owner_id.eq(owner).and(devices::revoked_at.is_null()))
                    .select(count_star())
                    .first(conn)
                    .await?;
                if active >= i64::from(max_active) {
                    return Err(TxError::LimitReached);
                }
                let stored = diesel::insert_into(devices::table)
                    .values(&row)
                    .returning(DeviceRow::as_returning())
                    .get_result(conn)
                    .await
                    .map_err(TxError::from_db)?;
                insert_event(conn, audit).await?;
                Ok(stored.into_device(None))
            })
            .await;
        result.map_err(|e| match e {
            TxError::NameTaken => InsertDeviceError::NameTaken,
            TxError::LimitReached => InsertDeviceError::LimitReached,
            TxError::Db(e) => InsertDeviceError::Unexpected(DbError::from(e).into()),
            other @ (TxError::NotFound | TxError::Revoked) => {
                InsertDeviceError::Unexpected(UnexpectedError::new(other))
            }
        })
    }

    #[instrument(name = "db.devices.find", skip_all, err(Display))]
    async fn find(&self, owner: UserId, id: DeviceId) -> Result<Option<Device>, UnexpectedError> {
        let mut conn = conn(&self.pool).await?;
        let row = devices::table
            .left_join(device_heartbeats::table)
            .filter(
                devices::id
                    .eq(id.as_uuid())
                    .and(devices::owner_id.eq(owner.as_uuid())),
            )
            .select((DeviceRow::as_select(), Option::<HeartbeatRow>::as_select()))
            .first::<(DeviceRow, Option<HeartbeatRow>)>(&mut conn)
            .await
            .optional()
            .map_err(DbError::from)?;
        Ok(row.map(|(device, heartbeat)| device.into_device(heartbeat)))
    }

    #[instrument(name = "db.devices.list", skip_all, err(Display))]
    async fn list(
        &self,
        owner: UserId,
        status: Option<DeviceStatus>,
        page: &PageRequest,
    ) -> Result<Page<Device>, UnexpectedError> {
        let mut conn = conn(&self.pool).await?;
        let mut query = devices::table
            .left_join(device_heartbeats::table)
            .filter(devices::owner_id.eq(owner.as_uuid()))
            .select((DeviceRow::as_select(), Option::<HeartbeatRow>::as_select()))
            .order((devices::created_at.desc(), devices::id.desc()))
            .limit(i64::from(page.limit) + 1)
            .into_boxed();
        query = match status {
            Some(DeviceStatus::Active) => query.filter(devices::revoked_at.is_null()),
            Some(DeviceStatus::Revoked) => query.filter(devices::revoked_at.is_not_null()),
            None => query,
        };
        if let Some(after) = page.after {
            query = query.filter(
                devices::created_at
                    .lt(after.at)
                    .or(devices::created_at.eq(after.at).and(devices::id.lt(after.id))),
            );
        }
        let rows: Vec<(DeviceRow, Option<HeartbeatRow>)> =
            query.load(&mut conn).await.map_err(DbError::from)?;
        let devices: Vec<Device> = rows.into_iter().map(|(d, h)| d.into_device(h)).collect();
        Ok(Page::from_overfetch(devices, page.limit, Device::cursor))
    }

    #[instrument(name = "db.devices.rename", skip_all, err(Display))]
    async fn rename(
        &self,
        owner: UserId,
        id: DeviceId,
        name: &DeviceName,
        at: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> Result<Device, UpdateDeviceError> {
        let mut conn = conn(&self.pool).await.map_err(UnexpectedError::from)?;
        let (owner, id) = (owner.as_uuid(), id.as_uuid());
        let (name, key) = (name.as_str(), name.key());
        let result = conn
            .transaction::<_, TxError, _>(async |conn| {
                let updated = diesel::update(devices::table)
                    .filter(devices::id.eq(id).and(devices::owner_id.eq(owner)))
                    .filter(devices::revoked_at.is_null())
                    .set((
                        devices::name.eq(name),
                        devices::name_key.eq(&key),
                        devices::updated_at.eq(at),
                    ))
                    .returning(DeviceRow::as_returning())
                    .get_result(conn)
                    .await
                    .optional()
                    .map_err(TxError::from_db)?;
                let Some(row) = updated else {
                    missing_or_revoked(conn, owner, id).await?;
                    return Err(TxError::Revoked);
                };
                insert_event(conn, audit).await?;
                Ok(with_heartbeat(conn, row).await?)
            })
            .await;
        Ok(result?)
    }

    #[instrument(name = "db.devices.rotate_secret", skip_all, err(Display))]
    async fn rotate_secret(
        &self,
        owner: UserId,
        id: DeviceId,
        rotation: &SecretRotation,
        audit: &AuditEvent,
    ) -> Result<Device, UpdateDeviceError> {
        let mut conn = conn(&self.pool).await.map_err(UnexpectedError::from)?;
        let (owner, id) = (owner.as_uuid(), id.as_uuid());
        let result = conn
            .transaction::<_, TxError, _>(async |conn| {
                let target = devices::table
                    .filter(devices::id.eq(id).and(devices::owner_id.eq(owner)))
                    .filter(devices::revoked_at.is_null());
                let new_secret = (
                    devices::secret_key_id.eq(&rotation.secret.key_id),
                    devices::secret_sealed.eq(&rotation.secret.ciphertext),
                    devices::secret_fingerprint.eq(rotation.fingerprint.as_str()),
                    devices::updated_at.eq(rotation.at),
                );
                // SET expressions read the row as it was: the current secret
                // becomes the previous one.
                let updated = match rotation.previous_valid_until {
                    Some(until) => diesel::update(target)
                        .set((
                            devices::prev_secret_key_id.eq(devices::secret_key_id.nullable()),
                            devices::prev_secret_sealed.eq(devices::secret_sealed.nullable()),
                            devices::prev_secret_expires_at.eq(until),
                            new_secret,
                        ))
                        .returning(DeviceRow::as_returning())
                        .get_result(conn)
                        .await
                        .optional()?,
                    None => diesel::update(target)
                        .set((
                            devices::prev_secret_key_id.eq(None::<String>),
                            devices::prev_secret_sealed.eq(None::<Vec<u8>>),
                            devices::prev_secret_expires_at.eq(None::<DateTime<Utc>>),
                            new_secret,
                        ))
                        .returning(DeviceRow::as_returning())
                        .get_result(conn)
                        .await
                        .optional()?,
                };
                let Some(row) = updated else {
                    missing_or_revoked(conn, owner, id).await?;
                    return Err(TxError::Revoked);
                };
                insert_event(conn, audit).await?;
                Ok(with_heartbeat(conn, row).await?)
            })
            .await;
        Ok(result?)
    }

    #[instrument(name = "db.devices.revoke", skip_all, err(Display))]
    async fn revoke(
        &self,
        owner: UserId,
        id: DeviceId,
        at: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> Result<Revocation, UpdateDeviceError> {
        let mut conn = conn(&self.pool).await.map_err(UnexpectedError::from)?;
        let (owner, id) = (owner.as_uuid(), id.as_uuid());
        let result = conn
            .transaction::<_, TxError, _>(async |conn| {
                let updated = diesel::update(devices::table)
                    .filter(devices::id.eq(id).and(devices::owner_id.eq(owner)))
                    .filter(devices::revoked_at.is_null())
                    .set((
                        devices::revoked_at.eq(at),
                        devices::updated_at.eq(at),
                        devices::prev_secret_key_id.eq(None::<String>),
                        devices::prev_secret_sealed.eq(None::<Vec<u8>>),
                        devices::prev_secret_expires_at.eq(None::<DateTime<Utc>>),
                    ))
                    .returning(DeviceRow::as_returning())
                    .get_result(conn)
                    .await
                    .optional()?;
                match updated {
                    Some(row) => {
                        insert_event(conn, audit).await?;
                        Ok(Revocation::Revoked(with_heartbeat(conn, row).await?))
                    }
                    None => Ok(Revocation::AlreadyRevoked(
                        missing_or_revoked(conn, owner, id).await?,
                    )),
                }
            })
            .await;
        Ok(result?)
    }

    #[instrument(name = "db.devices.find_credentials", skip_all, err(Display))]
    async fn find_credentials(&self, id: DeviceId) -> Result<Option<DeviceCredentials>, UnexpectedError> {
        let mut conn = conn(&self.pool).await?;
        // A disabled owner's devices count as revoked (the trigger on
        // account_disabled tells every instance's cache).
        // (credentials, config revision, deployment revision, owner disabled at)
        type Row = (CredentialsRow, Option<i64>, Option<i64>, Option<DateTime<Utc>>);
        let row: Option<Row> = devices::table
            .left_join(device_config_revisions::table)
            .left_join(device_deployment_revisions::table)
            .left_join(account_disabled::table.on(account_disabled::user_id.eq(devices::owner_id)))
            .filter(devices::id.eq(id.as_uuid()))
            .select((
                CredentialsRow::as_select(),
                device_config_revisions::revision.nullable(),
                device_deployment_revisions::revision.nullable(),
                account_disabled::disabled_at.nullable(),
            ))
            .first(&mut conn)
            .await
            .optional()
            .map_err(DbError::from)?;
        Ok(row.map(|(r, config, deployment, disabled)| {
            let mut credentials = r.with_revisions(config, deployment);
            credentials.revoked |= disabled.is_some();
            credentials
        }))
    }

    #[instrument(name = "db.devices.record_activity", skip_all, fields(devices = batch.len()), err(Display))]
    async fn record_activity(&self, batch: &[(DeviceId, DeviceActivity)]) -> Result<(), UnexpectedError> {
        use diesel::sql_types::{Array, Jsonb, Nullable, Timestamptz, Uuid as SqlUuid};
        let mut conn = conn(&self.pool).await?;
        let times: Vec<_> = batch
            .iter()
            .filter(|(_, a)| a.seen_at.is_some() || a.polled_at.is_some())
            .collect();
        if !times.is_empty() {
            // One statement for the whole batch; times only move forward
            // (GREATEST ignores NULL), and rows already newer are not
            // rewritten.
            diesel::sql_query(
                "UPDATE devices AS d \
                 SET last_seen_at = GREATEST(d.last_seen_at, v.seen), \
                     last_poll_at = GREATEST(d.last_poll_at, v.polled) \
                 FROM unnest($1::uuid[], $2::timestamptz[], $3::timestamptz[]) AS v(id, seen, polled) \
                 WHERE d.id = v.id \
                   AND ((v.seen IS NOT NULL AND (d.last_seen_at IS NULL OR v.seen > d.last_seen_at)) \
                     OR (v.polled IS NOT NULL AND (d.last_poll_at IS NULL OR v.polled > d.last_poll_at)))",
            )
            .bind::<Array<SqlUuid>, _>(times.iter().map(|(id, _)| id.as_uuid()).collect::<Vec<_>>())
            .bind::<Array<Nullable<Timestamptz>>, _>(times.iter().map(|(_, a)| a.seen_at).collect::<Vec<_>>())
            .bind::<Array<Nullable<Timestamptz>>, _>(
                times.iter().map(|(_, a)| a.polled_at).collect::<Vec<_>>(),
            )
            .execute(&mut conn)
            .await
            .map_err(DbError::from)?;
        }
        let beats: Vec<HeartbeatRow> = batch
            .iter()
            .filter_map(|(id, a)| a.heartbeat.as_ref().map(|h| HeartbeatRow::new(*id, h)))
            .collect();
        if !beats.is_empty() {
            // Devices deleted meanwhile are skipped by the join; an older
            // heartbeat never replaces a newer one.
            diesel::sql_query(
                "INSERT INTO device_heartbeats (device_id, received_at, heartbeat) \
                 SELECT v.id, v.at, v.beat \
                 FROM unnest($1::uuid[], $2::timestamptz[], $3::jsonb[]) AS v(id, at, beat) \
                 JOIN devices AS d ON d.id = v.id \
                 ON CONFLICT (device_id) DO UPDATE \
                 SET received_at = EXCLUDED.received_at, heartbeat = EXCLUDED.heartbeat \
                 WHERE device_heartbeats.received_at <= EXCLUDED.received_at",
            )
            .bind::<Array<SqlUuid>, _>(beats.iter().map(|b| b.device_id).collect::<Vec<_>>())
            .bind::<Array<Timestamptz>, _>(beats.iter().map(|b| b.received_at).collect::<Vec<_>>())
            .bind::<Array<Jsonb>, _>(beats.into_iter().map(|b| b.heartbeat).collect::<Vec<_>>())
            .execute(&mut conn)
            .await
            .map_err(DbError::from)?;
        }
        Ok(())
    }

    #[instrument(name = "db.devices.stored_secrets", skip_all, err(Display))]
    async fn stored_secrets(
        &self,
        after: Option<DeviceId>,
        limit: u32,
    ) -> Result<Vec<StoredSecrets>, UnexpectedError> {
        let mut conn = conn(&self.pool).await?;
        let mut query = devices::table
            .filter(devices::revoked_at.is_null())
            .select(SecretsRow::as_select())
            .order(devices::id)
            .limit(i64::from(limit))
            .into_boxed();
        if let Some(after) = after {
            query = query.filter(devices::id.gt(after.as_uuid()));
        }
        let rows = query.load(&mut conn).await.map_err(DbError::from)?;
        Ok(rows.into_iter().map(StoredSecrets::from).collect())
    }

    #[instrument(name = "db.devices.reseal", skip_all, err(Display))]
    async fn reseal(
        &self,
        expected: &StoredSecrets,
        current: &SealedSecret,
        previous: Option<&SealedSecret>,
    ) -> Result<bool, UnexpectedError> {
        let mut conn = conn(&self.pool).await?;
        let expected_prev = expected.previous.as_ref();
        let target = devices::table
            .filter(devices::id.eq(expected.device.as_uuid()))
            .filter(devices::secret_key_id.eq(&expected.current.key_id))
            .filter(devices::secret_sealed.eq(&expected.current.ciphertext))
            .filter(devices::prev_secret_key_id.is_not_distinct_from(expected_prev.map(|p| p.key_id.clone())))
            .filter(
                devices::prev_secret_sealed.is_not_distinct_from(expected_prev.map(|p| p.ciphertext.clone())),
            );
        let n = diesel::update(target)
            .set((
                devices::secret_key_id.eq(&current.key_id),
                devices::secret_sealed.eq(&current.ciphertext),
                devices::prev_secret_key_id.eq(previous.map(|p| p.key_id.clone())),
                devices::prev_secret_sealed.eq(previous.map(|p| p.ciphertext.clone())),
            ))
            .execute(&mut conn)
            .await
            .map_err(DbError::from)?;
        Ok(n == 1)
    }
}
