use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sql_types::{BigInt, Bytea, Uuid as SqlUuid};
use diesel_async::{AsyncConnection as _, RunQueryDsl};
use eagate_domain::UnexpectedError;
use eagate_domain::account::UserId;
use eagate_domain::audit::AuditEvent;
use eagate_domain::bundle::{
    BeginUploadError, Bundle, BundleId, BundleName, BundleStore, BundleVersion, DeleteBundleError, NewBundle,
    ReleaseNotes, STALE_UPLOAD, Sha256Hex,
};
use eagate_domain::device::DeviceId;
use eagate_domain::pagination::{Page, PageRequest};
use tracing::instrument;
use uuid::Uuid;

use super::audit::insert_event;
use super::conn;
use crate::error::DbError;
use crate::pool::PgPool;
use crate::schema::{bundles, deployment_devices, deployments};

const NAME_VERSION_INDEX: &str = "bundles_owner_name_version";

/// [`BundleStore`] on PostgreSQL: metadata in `bundles`, the file in
/// `bundle_chunks` rows keyed by their byte offset. Neither direction ever
/// holds more than a chunk or a requested range in memory.
#[derive(Clone)]
pub struct PgBundleStore {
    pool: PgPool,
}

impl std::fmt::Debug for PgBundleStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgBundleStore").finish_non_exhaustive()
    }
}

impl PgBundleStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = bundles, check_for_backend(diesel::pg::Pg))]
pub(crate) struct BundleRow {
    id: Uuid,
    owner_id: Uuid,
    name: String,
    version: String,
    notes: String,
    size_bytes: Option<i64>,
    sha256: Option<String>,
    created_at: chrono::DateTime<chrono::Utc>,
}

impl TryFrom<BundleRow> for Bundle {
    type Error = UnexpectedError;

    fn try_from(r: BundleRow) -> Result<Self, UnexpectedError> {
        let corrupt = |what: &str| UnexpectedError::msg(format!("stored bundle {}: invalid {what}", r.id));
        Ok(Self {
            id: BundleId::from_uuid(r.id),
            owner: UserId::from_uuid(r.owner_id),
            name: BundleName::parse(&r.name).map_err(|_| corrupt("name"))?,
            version: BundleVersion::parse(&r.version).map_err(|_| corrupt("version"))?,
            notes: ReleaseNotes::parse(&r.notes).map_err(|_| corrupt("notes"))?,
            size: r
                .size_bytes
                .and_then(|s| u64::try_from(s).ok())
                .ok_or_else(|| corrupt("size"))?,
            sha256: r
                .sha256
                .as_deref()
                .and_then(|s| Sha256Hex::parse(s).ok())
                .ok_or_else(|| corrupt("digest"))?,
            created_at: r.created_at,
        })
    }
}

#[derive(Debug, QueryableByName)]
struct ChunkRow {
    #[diesel(sql_type = BigInt)]
    start: i64,
    #[diesel(sql_type = Bytea)]
    data: Vec<u8>,
}

fn offset(n: u64) -> Result<i64, UnexpectedError> {
    i64::try_from(n).map_err(|_| UnexpectedError::msg("bundle offset out of range"))
}

#[derive(Debug, QueryableByName)]
struct StoredRow {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Why a delete's transaction rolled back.
enum DeleteFailure {
    NotFound,
    Db(DieselError),
}

impl From<DieselError> for DeleteFailure {
    fn from(e: DieselError) -> Self {
        Self::Db(e)
    }
}

impl BundleStore for PgBundleStore {
    #[instrument(name = "db.bundles.begin", skip_all)]
    async fn begin(&self, new: &NewBundle) -> Result<(), BeginUploadError> {
        let mut conn = conn(&self.pool).await.map_err(UnexpectedError::from)?;
        let inserted = conn
            .transaction::<_, DieselError, _>(async |conn| {
                // An upload cut off by a crash never completes: after a
                // while it stops holding its name and version.
                diesel::delete(
                    bundles::table.filter(
                        bundles::owner_id
                            .eq(new.owner.as_uuid())
                            .and(bundles::name.eq(new.name.as_str()))
                            .and(bundles::version.eq(new.version.as_str()))
                            .and(bundles::completed_at.is_null())
                            .and(bundles::created_at.lt(new.created_at - STALE_UPLOAD)),
                    ),
                )
                .execute(conn)
                .await?;
                diesel::insert_into(bundles::table)
                    .values((
                        bundles::id.eq(new.id.as_uuid()),
                        bundles::owner_id.eq(new.owner.as_uuid()),
                        bundles::name.eq(new.name.as_str()),
                        bundles::version.eq(new.version.as_str()),
                        bundles::notes.eq(new.notes.as_str()),
                        bundles::created_at.eq(new.created_at),
                    ))
                    .execute(conn)
                    .await
            })
            .await
            .map_err(DbError::from);
        match inserted {
            Ok(_) => Ok(()),
            Err(e) if e.unique_violation() == Some(NAME_VERSION_INDEX) => Err(BeginUploadError::VersionTaken),
            Err(e) => Err(BeginUploadError::Unexpected(e.into())),
        }
    }

    #[instrument(name = "db.bundles.append", skip_all, fields(bytes = data.len()), err(Display))]
    async fn append(&self, id: BundleId, start: u64, data: &[u8]) -> Result<(), UnexpectedError> {
        let mut conn = conn(&self.pool).await?;
        // Only into an upload in progress.
        let inserted = diesel::sql_query(
            "INSERT INTO bundle_chunks (bundle_id, start, data) \
             SELECT id, $2, $3 FROM bundles WHERE id = $1 AND completed_at IS NULL",
        )
        .bind::<SqlUuid, _>(id.as_uuid())
        .bind::<BigInt, _>(offset(start)?)
        .bind::<Bytea, _>(data)
        .execute(&mut conn)
        .await
        .map_err(DbError::from)?;
        if inserted == 1 {
            Ok(())
        } else {
            Err(UnexpectedError::msg("no such upload in progress"))
        }
    }

    #[instrument(name = "db.bundles.complete", skip_all, err(Display))]
    async fn complete(
        &self,
        id: BundleId,
        size: u64,
        sha256: &Sha256Hex,
        audit: &AuditEvent,
    ) -> Result<Bundle, UnexpectedError> {
        let mut conn = conn(&self.pool).await?;
        let size = offset(size)?;
        let row = conn
            .transaction::<_, DieselError, _>(async |conn| {
                let row = diesel::update(
                    bundles::table.filter(bundles::id.eq(id.as_uuid()).and(bundles::completed_at.is_null())),
                )
                .set((
                    bundles::size_bytes.eq(size),
                    bundles::sha256.eq(sha256.as_str()),
                    bundles::completed_at.eq(audit.occurred_at),
                ))
                .returning(BundleRow::as_returning())
                .get_result(conn)
                .await?;
                insert_event(conn, audit).await?;
                Ok(row)
            })
            .await
            .map_err(DbError::from)?;
        row.try_into()
    }

    #[instrument(name = "db.bundles.abandon", skip_all, err(Display))]
    async fn abandon(&self, id: BundleId) -> Result<(), UnexpectedError> {
        let mut conn = conn(&self.pool).await?;
        diesel::delete(
            bundles::table.filter(bundles::id.eq(id.as_uuid()).and(bundles::completed_at.is_null())),
        )
        .execute(&mut conn)
        .await
        .map_err(DbError::from)?;
        Ok(())
    }

    #[instrument(name = "db.bundles.drop_stale_uploads", skip_all, err(Display))]
    async fn drop_stale_uploads(&self, now: chrono::DateTime<chrono::Utc>) -> Result<u64, UnexpectedError> {
        let mut conn = conn(&self.pool).await?;
        // The chunks go with their row (ON DELETE CASCADE).
        let dropped = diesel::delete(
            bundles::table.filter(
                bundles::completed_at
                    .is_null()
                    .and(bundles::created_at.lt(now - STALE_UPLOAD)),
            ),
        )
        .execute(&mut conn)
        .await
        .map_err(DbError::from)?;
        Ok(dropped as u64)
    }

    #[instrument(name = "db.bundles.stored_bytes", skip_all, err(Display))]
    async fn stored_bytes(&self, owner: UserId) -> Result<u64, UnexpectedError> {
        let mut conn = conn(&self.pool).await?;
        // COALESCE evaluates the chunk sum only for uploads in progress.
        let row: StoredRow = diesel::sql_query(
            "SELECT COALESCE(SUM(COALESCE(b.size_bytes, \
               (SELECT COALESCE(SUM(octet_length(c.data)), 0) FROM bundle_chunks c WHERE c.bundle_id = b.id))), 0)::bigint AS n \
             FROM bundles b WHERE b.owner_id = $1",
        )
        .bind::<SqlUuid, _>(owner.as_uuid())
        .get_result(&mut conn)
        .await
        .map_err(DbError::from)?;
        u64::try_from(row.n).map_err(|_| UnexpectedError::msg("negative stored size"))
    }

    #[instrument(name = "db.bundles.get", skip_all, err(Display))]
    async fn get(&self, owner: UserId, id: BundleId) -> Result<Option<Bundle>, UnexpectedError> {
        let mut conn = conn(&self.pool).await?;
        bundles::table
            .filter(bundles::id.eq(id.as_uuid()))
            .filter(bundles::owner_id.eq(owner.as_uuid()))
            .filter(bundles::completed_at.is_not_null())
            .select(BundleRow::as_select())
            .first(&mut conn)
            .await
            .optional()
            .map_err(DbError::from)?
            .map(Bundle::try_from)
            .transpose()
    }

    #[instrument(name = "db.bundles.list", skip_all, err(Display))]
    async fn list(&self, owner: UserId, page: &PageRequest) -> Result<Page<Bundle>, UnexpectedError> {
        let mut conn = conn(&self.pool).await?;
        let mut query = bundles::table
            .filter(bundles::owner_id.eq(owner.as_uuid()))
            .filter(bundles::completed_at.is_not_null())
            .order((bundles::created_at.desc(), bundles::id.desc()))
            .limit(i64::from(page.limit) + 1)
            .select(BundleRow::as_select())
            .into_boxed();
        if let Some(after) = page.after {
            query = query.filter(
                bundles::created_at
                    .lt(after.at)
                    .or(bundles::created_at.eq(after.at).and(bundles::id.lt(after.id))),
            );
        }
        let items = query
            .load(&mut conn)
            .await
            .map_err(DbError::from)?
            .into_iter()
            .map(Bundle::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_overfetch(items, page.limit, Bundle::cursor))
    }

    #[instrument(name = "db.bundles.delete", skip_all)]
    async fn delete(&self, owner: UserId, id: BundleId, audit: &AuditEvent) -> Result<(), DeleteBundleError> {
        let mut conn = conn(&self.pool).await.map_err(UnexpectedError::from)?;
        let result = conn
            .transaction::<_, DeleteFailure, _>(async |conn| {
                let deleted = diesel::delete(
                    bundles::table.filter(
                        bundles::id
                            .eq(id.as_uuid())
                            .and(bundles::owner_id.eq(owner.as_uuid()))
                            .and(bundles::completed_at.is_not_null()),
                    ),
                )
                .execute(conn)
                .await?;
                if deleted == 0 {
                    return Err(DeleteFailure::NotFound);
                }
                insert_event(conn, audit).await?;
                Ok(())
            })
            .await;
        match result {
            Ok(()) => Ok(()),
            Err(DeleteFailure::NotFound) => Err(DeleteBundleError::NotFound),
            // deployments.bundle_id has no cascade: a deployment holds it.
            Err(DeleteFailure::Db(DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _))) => {
                Err(DeleteBundleError::InUse)
            }
            Err(DeleteFailure::Db(e)) => Err(DeleteBundleError::Unexpected(DbError::from(e).into())),
        }
    }

    #[instrument(name = "db.bundles.deployed_to", skip_all, err(Display))]
    async fn deployed_to(&self, device: DeviceId, id: BundleId) -> Result<Option<Bundle>, UnexpectedError> {
        let mut conn = conn(&self.pool).await?;
        let reached = deployment_devices::table
            .inner_join(deployments::table)
            .filter(deployments::bundle_id.eq(id.as_uuid()))
            .filter(deployment_devices::device_id.eq(device.as_uuid()))
            .filter(deployment_devices::started_at.is_not_null());
        bundles::table
            .filter(bundles::id.eq(id.as_uuid()))
            .filter(bundles::completed_at.is_not_null())
            .filter(diesel::dsl::exists(reached))
            .select(BundleRow::as_select())
            .first(&mut conn)
            .await
            .optional()
            .map_err(DbError::from)?
            .map(Bundle::try_from)
            .transpose()
    }

    #[instrument(name = "db.bundles.read", skip_all, err(Display))]
    async fn read(&self, id: BundleId, from: u64, max: u32) -> Result<Vec<u8>, UnexpectedError> {
        let mut conn = conn(&self.pool).await?;
        let start = offset(from)?;
        let end = start.saturating_add(i64::from(max));
        // The chunks overlapping [start, end), in order.
        let chunks: Vec<ChunkRow> = diesel::sql_query(
            "SELECT c.start, c.data FROM bundle_chunks c JOIN bundles b ON b.id = c.bundle_id \
             WHERE c.bundle_id = $1 AND b.completed_at IS NOT NULL \
               AND c.start < $3 AND c.start + octet_length(c.data) > $2 \
             ORDER BY c.start",
        )
        .bind::<SqlUuid, _>(id.as_uuid())
        .bind::<BigInt, _>(start)
        .bind::<BigInt, _>(end)
        .load(&mut conn)
        .await
        .map_err(DbError::from)?;
        let mut out = Vec::with_capacity(max.min(4 * 1024 * 1024) as usize);
        for c in chunks {
            let len = c.data.len() as i64;
            let from = (start - c.start).clamp(0, len) as usize;
            let to = (end - c.start).clamp(0, len) as usize;
            out.extend_from_slice(&c.data[from..to]);
        }
        Ok(out)
    }
}
