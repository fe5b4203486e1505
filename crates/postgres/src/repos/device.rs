use chrono::{DateTime, Utc};
use diesel::dsl::count_star;
use diesel::prelude::*;
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl};
use eagate_domain::UnexpectedError;
use eagate_domain::account::UserId;
use eagate_domain::audit::AuditEvent;
use eagate_domain::device::{
    Activity, Device, DeviceCredentials, DeviceId, DeviceName, DeviceRepository, DeviceStatus, Heartbeat,
    InsertDeviceError, NewDevice, Revocation, SealedSecret, SecretRotation, StoredSecrets, UpdateDeviceError,
};
use eagate_domain::pagination::{Page, PageRequest};
use tracing::instrument;
use uuid::Uuid;

use super::audit::insert_event;
use super::conn;
use crate::error::DbError;
use crate::pool::PgPool;
use crate::rows::{CredentialsRow, DeviceRow, HeartbeatRow, NewDeviceRow, SecretsRow};
use crate::schema::{device_heartbeats, devices, users};

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
        let row = devices::table
            .find(id.as_uuid())
            .select(CredentialsRow::as_select())
            .first(&mut conn)
            .await
            .optional()
            .map_err(DbError::from)?;
        Ok(row.map(DeviceCredentials::from))
    }

    #[instrument(name = "db.devices.record_activity", skip_all, err(Display))]
    async fn record_activity(
        &self,
        id: DeviceId,
        activity: Activity,
        at: DateTime<Utc>,
        min_interval: chrono::Duration,
    ) -> Result<(), UnexpectedError> {
        let mut conn = conn(&self.pool).await?;
        let target = devices::table.find(id.as_uuid());
        let cutoff = at - min_interval;
        // One conditional UPDATE per column: a write only when the stored
        // time is older than the interval, so instances coalesce too.
        let updated = match activity {
            Activity::Seen => {
                diesel::update(target)
                    .filter(
                        devices::last_seen_at
                            .is_null()
                            .or(devices::last_seen_at.le(cutoff)),
                    )
                    .set(devices::last_seen_at.eq(at))
                    .execute(&mut conn)
                    .await
            }
            Activity::Poll => {
                diesel::update(target)
                    .filter(
                        devices::last_poll_at
                            .is_null()
                            .or(devices::last_poll_at.le(cutoff)),
                    )
                    .set(devices::last_poll_at.eq(at))
                    .execute(&mut conn)
                    .await
            }
            Activity::Ack => {
                diesel::update(target)
                    .filter(devices::last_ack_at.is_null().or(devices::last_ack_at.le(cutoff)))
                    .set(devices::last_ack_at.eq(at))
                    .execute(&mut conn)
                    .await
            }
        };
        updated.map_err(DbError::from)?;
        Ok(())
    }

    #[instrument(name = "db.devices.record_heartbeat", skip_all, err(Display))]
    async fn record_heartbeat(&self, id: DeviceId, heartbeat: &Heartbeat) -> Result<(), UnexpectedError> {
        let mut conn = conn(&self.pool).await?;
        let row = HeartbeatRow::new(id, heartbeat);
        diesel::insert_into(device_heartbeats::table)
            .values(&row)
            .on_conflict(device_heartbeats::device_id)
            .do_update()
            .set((
                device_heartbeats::received_at.eq(row.received_at),
                device_heartbeats::heartbeat.eq(&row.heartbeat),
            ))
            .execute(&mut conn)
            .await
            .map_err(DbError::from)?;
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
