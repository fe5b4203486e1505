use std::collections::HashMap;

use diesel::prelude::*;
use diesel::result::Error as DieselError;
use diesel::sql_types::{Array, Uuid as SqlUuid};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl};
use eagate_domain::UnexpectedError;
use eagate_domain::account::UserId;
use eagate_domain::audit::AuditEvent;
use eagate_domain::bundle::{BundleId, BundleVersion};
use eagate_domain::deployment::{
    AbortRule, Deployment, DeploymentId, DeploymentRepository, DeploymentState, DeviceProgress,
    DeviceSelection, Label, Rollout, SaveDeploymentError, Target, TargetStatus,
};
use eagate_domain::device::DeviceId;
use eagate_domain::pagination::{Page, PageRequest};
use tracing::instrument;
use uuid::Uuid;

use super::audit::insert_event;
use super::conn;
use crate::error::DbError;
use crate::pool::PgPool;
use crate::schema::{bundles, deployment_devices, deployments, device_heartbeats, device_labels, devices};

/// Rows per multi-row insert (each row binds 8 parameters; PostgreSQL
/// allows 65535 per statement).
const INSERT_BATCH: usize = 1000;

/// [`DeploymentRepository`] on PostgreSQL: `deployments` (with a revision
/// for optimistic concurrency) and one `deployment_devices` row per device.
#[derive(Clone)]
pub struct PgDeploymentRepository {
    pool: PgPool,
}

impl std::fmt::Debug for PgDeploymentRepository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgDeploymentRepository").finish_non_exhaustive()
    }
}

impl PgDeploymentRepository {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = deployments, check_for_backend(diesel::pg::Pg))]
struct DeploymentRow {
    id: Uuid,
    owner_id: Uuid,
    bundle_id: Uuid,
    target: String,
    waves: Vec<Option<i32>>,
    abort_failure_percent: Option<i32>,
    abort_min_finished: Option<i32>,
    timeout_minutes: Option<i32>,
    state: String,
    current_wave: i32,
    revision: i64,
    created_at: chrono::DateTime<chrono::Utc>,
    updated_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, QueryableByName)]
struct SweptRow {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    owner_id: Uuid,
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    id: Uuid,
}

#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = deployment_devices, check_for_backend(diesel::pg::Pg))]
struct ProgressRow {
    deployment_id: Uuid,
    device_id: Uuid,
    position: i32,
    wave: i32,
    status: String,
    reason: Option<String>,
    started_at: Option<chrono::DateTime<chrono::Utc>>,
    updated_at: chrono::DateTime<chrono::Utc>,
}

fn number(n: u32) -> Result<i32, UnexpectedError> {
    i32::try_from(n).map_err(|_| UnexpectedError::msg("number out of range"))
}

fn unsigned(n: i32, what: &str) -> Result<u32, UnexpectedError> {
    u32::try_from(n).map_err(|_| UnexpectedError::msg(format!("stored {what} {n} is negative")))
}

fn deployment_row(d: &Deployment) -> Result<DeploymentRow, UnexpectedError> {
    Ok(DeploymentRow {
        id: d.id.as_uuid(),
        owner_id: d.owner.as_uuid(),
        bundle_id: d.bundle.as_uuid(),
        target: d.target.to_stored(),
        waves: d.rollout.waves.iter().map(|w| Some(i32::from(*w))).collect(),
        abort_failure_percent: d.rollout.abort.map(|a| i32::from(a.failure_percent)),
        abort_min_finished: d.rollout.abort.map(|a| number(a.min_finished)).transpose()?,
        timeout_minutes: d.rollout.timeout_minutes.map(number).transpose()?,
        state: d.state.as_str().to_owned(),
        current_wave: number(d.current_wave)?,
        revision: d.revision,
        created_at: d.created_at,
        updated_at: d.updated_at,
    })
}

fn progress_row(
    id: DeploymentId,
    position: usize,
    p: &DeviceProgress,
) -> Result<ProgressRow, UnexpectedError> {
    Ok(ProgressRow {
        deployment_id: id.as_uuid(),
        device_id: p.device.as_uuid(),
        position: i32::try_from(position).map_err(|_| UnexpectedError::msg("too many devices"))?,
        wave: number(p.wave)?,
        status: p.status.as_str().to_owned(),
        reason: p.reason.clone(),
        started_at: p.started_at,
        updated_at: p.updated_at,
    })
}

/// Changes the deployment revision of `devices` (in id order, so
/// concurrent writers lock rows in one order); their caches learn of it on
/// commit.
async fn bump_revisions(conn: &mut AsyncPgConnection, mut devices: Vec<Uuid>) -> QueryResult<()> {
    if devices.is_empty() {
        return Ok(());
    }
    devices.sort();
    diesel::sql_query(
        "INSERT INTO device_deployment_revisions (device_id, revision) \
         SELECT d, 1 FROM unnest($1::uuid[]) AS d \
         ON CONFLICT (device_id) DO UPDATE SET revision = device_deployment_revisions.revision + 1",
    )
    .bind::<Array<SqlUuid>, _>(devices)
    .execute(conn)
    .await
    .map(drop)
}

fn ea_version(heartbeat: Option<serde_json::Value>) -> Option<String> {
    heartbeat?.get("ea_version")?.as_str().map(str::to_owned)
}

/// The deployments of `rows` with their bundle's version and their
/// devices (each with its latest EA version): two more queries whatever
/// their number.
async fn assemble(
    conn: &mut AsyncPgConnection,
    rows: Vec<DeploymentRow>,
) -> Result<Vec<Deployment>, UnexpectedError> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let bundle_ids: Vec<Uuid> = rows.iter().map(|r| r.bundle_id).collect();
    let versions: HashMap<Uuid, String> = bundles::table
        .filter(bundles::id.eq_any(&bundle_ids))
        .select((bundles::id, bundles::version))
        .load::<(Uuid, String)>(conn)
        .await
        .map_err(DbError::from)?
        .into_iter()
        .collect();
    let progress: Vec<(ProgressRow, Option<serde_json::Value>)> = deployment_devices::table
        .left_join(
            device_heartbeats::table.on(device_heartbeats::device_id.eq(deployment_devices::device_id)),
        )
        .filter(deployment_devices::deployment_id.eq_any(&ids))
        .order((deployment_devices::deployment_id, deployment_devices::position))
        .select((ProgressRow::as_select(), device_heartbeats::heartbeat.nullable()))
        .load(conn)
        .await
        .map_err(DbError::from)?;
    let mut per: HashMap<Uuid, Vec<DeviceProgress>> = HashMap::new();
    for (p, heartbeat) in progress {
        let status = TargetStatus::parse(&p.status)
            .ok_or_else(|| UnexpectedError::msg(format!("stored status {:?} is not valid", p.status)))?;
        per.entry(p.deployment_id).or_default().push(DeviceProgress {
            device: DeviceId::from_uuid(p.device_id),
            wave: unsigned(p.wave, "wave")?,
            status,
            reason: p.reason,
            started_at: p.started_at,
            updated_at: p.updated_at,
            ea_version: ea_version(heartbeat),
        });
    }
    rows.into_iter()
        .map(|r| {
            let corrupt =
                |what: &str| UnexpectedError::msg(format!("stored deployment {}: invalid {what}", r.id));
            let version = versions.get(&r.bundle_id).ok_or_else(|| corrupt("bundle"))?;
            let waves = r
                .waves
                .iter()
                .map(|w| w.and_then(|w| u8::try_from(w).ok()))
                .collect::<Option<Vec<u8>>>()
                .ok_or_else(|| corrupt("waves"))?;
            let abort = match (r.abort_failure_percent, r.abort_min_finished) {
                (Some(p), Some(m)) => Some(AbortRule {
                    failure_percent: u8::try_from(p).map_err(|_| corrupt("abort threshold"))?,
                    min_finished: unsigned(m, "abort minimum")?,
                }),
                _ => None,
            };
            Ok(Deployment {
                id: DeploymentId::from_uuid(r.id),
                owner: UserId::from_uuid(r.owner_id),
                bundle: BundleId::from_uuid(r.bundle_id),
                bundle_version: BundleVersion::parse(version).map_err(|_| corrupt("bundle version"))?,
                target: Target::from_stored(&r.target).ok_or_else(|| corrupt("target"))?,
                rollout: Rollout {
                    waves,
                    abort,
                    timeout_minutes: r.timeout_minutes.map(|t| unsigned(t, "timeout")).transpose()?,
                },
                state: DeploymentState::parse(&r.state).ok_or_else(|| corrupt("state"))?,
                current_wave: unsigned(r.current_wave, "wave")?,
                revision: r.revision,
                created_at: r.created_at,
                updated_at: r.updated_at,
                devices: per.remove(&r.id).unwrap_or_default(),
            })
        })
        .collect()
}

async fn one(
    conn: &mut AsyncPgConnection,
    row: Option<DeploymentRow>,
) -> Result<Option<Deployment>, UnexpectedError> {
    match row {
        None => Ok(None),
        Some(row) => Ok(assemble(conn, vec![row]).await?.pop()),
    }
}

/// Why a save's transaction rolled back.
enum SaveFailure {
    Conflict,
    Db(DieselError),
    Invalid(UnexpectedError),
}

impl From<DieselError> for SaveFailure {
    fn from(e: DieselError) -> Self {
        Self::Db(e)
    }
}

impl DeploymentRepository for PgDeploymentRepository {
    #[instrument(name = "db.deployments.active_devices", skip_all, err(Display))]
    async fn active_devices(
        &self,
        owner: UserId,
        only: DeviceSelection<'_>,
    ) -> Result<Vec<(DeviceId, Option<String>)>, UnexpectedError> {
        let mut conn = conn(&self.pool).await?;
        let mut query = devices::table
            .left_join(device_heartbeats::table)
            .filter(devices::owner_id.eq(owner.as_uuid()))
            .filter(devices::revoked_at.is_null())
            .order((devices::created_at, devices::id))
            .select((devices::id, device_heartbeats::heartbeat.nullable()))
            .into_boxed();
        match only {
            DeviceSelection::All => {}
            DeviceSelection::Ids(ids) => {
                let ids: Vec<Uuid> = ids.iter().map(DeviceId::as_uuid).collect();
                query = query.filter(devices::id.eq_any(ids));
            }
            DeviceSelection::Label(label) => {
                let labelled = device_labels::table
                    .filter(device_labels::label.eq(label.as_str().to_owned()))
                    .select(device_labels::device_id);
                query = query.filter(devices::id.eq_any(labelled));
            }
        }
        let rows: Vec<(Uuid, Option<serde_json::Value>)> =
            query.load(&mut conn).await.map_err(DbError::from)?;
        Ok(rows
            .into_iter()
            .map(|(id, heartbeat)| (DeviceId::from_uuid(id), ea_version(heartbeat)))
            .collect())
    }

    #[instrument(name = "db.deployments.set_labels", skip_all, err(Display))]
    async fn set_labels(
        &self,
        owner: UserId,
        device: DeviceId,
        labels: &[Label],
        audit: &AuditEvent,
    ) -> Result<bool, UnexpectedError> {
        let mut conn = conn(&self.pool).await?;
        let id = device.as_uuid();
        let rows: Vec<(Uuid, String)> = labels.iter().map(|l| (id, l.as_str().to_owned())).collect();
        let found = conn
            .transaction::<_, DieselError, _>(async |conn| {
                // Locks the device row: concurrent replacements queue.
                let owned: Option<Uuid> = devices::table
                    .filter(devices::id.eq(id).and(devices::owner_id.eq(owner.as_uuid())))
                    .select(devices::id)
                    .for_update()
                    .first(conn)
                    .await
                    .optional()?;
                if owned.is_none() {
                    return Ok(false);
                }
                diesel::delete(device_labels::table.filter(device_labels::device_id.eq(id)))
                    .execute(conn)
                    .await?;
                let values: Vec<_> = rows
                    .iter()
                    .map(|(d, l)| {
                        (
                            device_labels::device_id.eq(*d),
                            device_labels::label.eq(l.as_str()),
                        )
                    })
                    .collect();
                if !values.is_empty() {
                    diesel::insert_into(device_labels::table)
                        .values(&values)
                        .on_conflict_do_nothing()
                        .execute(conn)
                        .await?;
                }
                insert_event(conn, audit).await?;
                Ok(true)
            })
            .await
            .map_err(DbError::from)?;
        Ok(found)
    }

    #[instrument(name = "db.deployments.labels", skip_all, err(Display))]
    async fn labels(&self, owner: UserId, device: DeviceId) -> Result<Option<Vec<Label>>, UnexpectedError> {
        let mut conn = conn(&self.pool).await?;
        let owned: Option<Uuid> = devices::table
            .filter(
                devices::id
                    .eq(device.as_uuid())
                    .and(devices::owner_id.eq(owner.as_uuid())),
            )
            .select(devices::id)
            .first(&mut conn)
            .await
            .optional()
            .map_err(DbError::from)?;
        if owned.is_none() {
            return Ok(None);
        }
        let raw: Vec<String> = device_labels::table
            .filter(device_labels::device_id.eq(device.as_uuid()))
            .order(device_labels::label)
            .select(device_labels::label)
            .load(&mut conn)
            .await
            .map_err(DbError::from)?;
        raw.iter()
            .map(|l| {
                Label::parse(l).map_err(|_| UnexpectedError::msg(format!("stored label {l:?} is not valid")))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    #[instrument(name = "db.deployments.create", skip_all, fields(devices = deployment.devices.len()), err(Display))]
    async fn create(&self, deployment: &Deployment, audit: &[AuditEvent]) -> Result<(), UnexpectedError> {
        let row = deployment_row(deployment)?;
        let progress = deployment
            .devices
            .iter()
            .enumerate()
            .map(|(i, p)| progress_row(deployment.id, i, p))
            .collect::<Result<Vec<_>, _>>()?;
        let mut conn = conn(&self.pool).await?;
        conn.transaction::<_, DieselError, _>(async |conn| {
            diesel::insert_into(deployments::table)
                .values(&row)
                .execute(conn)
                .await?;
            for batch in progress.chunks(INSERT_BATCH) {
                diesel::insert_into(deployment_devices::table)
                    .values(batch)
                    .execute(conn)
                    .await?;
            }
            bump_revisions(conn, progress.iter().map(|p| p.device_id).collect()).await?;
            for event in audit {
                insert_event(conn, event).await?;
            }
            Ok(())
        })
        .await
        .map_err(DbError::from)?;
        Ok(())
    }

    #[instrument(name = "db.deployments.get", skip_all, err(Display))]
    async fn get(&self, owner: UserId, id: DeploymentId) -> Result<Option<Deployment>, UnexpectedError> {
        let mut conn = conn(&self.pool).await?;
        let row = deployments::table
            .filter(deployments::id.eq(id.as_uuid()))
            .filter(deployments::owner_id.eq(owner.as_uuid()))
            .select(DeploymentRow::as_select())
            .first(&mut conn)
            .await
            .optional()
            .map_err(DbError::from)?;
        one(&mut conn, row).await
    }

    #[instrument(name = "db.deployments.list", skip_all, err(Display))]
    async fn list(&self, owner: UserId, page: &PageRequest) -> Result<Page<Deployment>, UnexpectedError> {
        let mut conn = conn(&self.pool).await?;
        let mut query = deployments::table
            .filter(deployments::owner_id.eq(owner.as_uuid()))
            .order((deployments::created_at.desc(), deployments::id.desc()))
            .limit(i64::from(page.limit) + 1)
            .select(DeploymentRow::as_select())
            .into_boxed();
        if let Some(after) = page.after {
            query = query.filter(
                deployments::created_at.lt(after.at).or(deployments::created_at
                    .eq(after.at)
                    .and(deployments::id.lt(after.id))),
            );
        }
        let rows = query.load(&mut conn).await.map_err(DbError::from)?;
        let items = assemble(&mut conn, rows).await?;
        Ok(Page::from_overfetch(items, page.limit, Deployment::cursor))
    }

    #[instrument(name = "db.deployments.claim_for_sweep", skip_all, err(Display))]
    async fn claim_for_sweep(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        limit: u32,
    ) -> Result<Vec<(UserId, DeploymentId)>, UnexpectedError> {
        let mut conn = conn(&self.pool).await?;
        // One statement: pick the batch (rows another instance is claiming
        // or saving right now are skipped, not waited for) and mark it.
        let rows: Vec<SweptRow> = diesel::sql_query(
            "UPDATE deployments SET swept_at = $1 WHERE id IN ( \
               SELECT id FROM deployments WHERE state = 'running' \
               ORDER BY swept_at NULLS FIRST, id LIMIT $2 FOR UPDATE SKIP LOCKED) \
             RETURNING owner_id, id",
        )
        .bind::<diesel::sql_types::Timestamptz, _>(now)
        .bind::<diesel::sql_types::BigInt, _>(i64::from(limit))
        .load(&mut conn)
        .await
        .map_err(DbError::from)?;
        Ok(rows
            .into_iter()
            .map(|r| (UserId::from_uuid(r.owner_id), DeploymentId::from_uuid(r.id)))
            .collect())
    }

    #[instrument(name = "db.deployments.open_for_device", skip_all, err(Display))]
    async fn open_for_device(&self, device: DeviceId) -> Result<Option<Deployment>, UnexpectedError> {
        let mut conn = conn(&self.pool).await?;
        let row = deployments::table
            .inner_join(deployment_devices::table)
            .filter(deployment_devices::device_id.eq(device.as_uuid()))
            .filter(
                deployment_devices::status
                    .eq_any([TargetStatus::Pending.as_str(), TargetStatus::Downloading.as_str()]),
            )
            .filter(deployments::state.eq(DeploymentState::Running.as_str()))
            .order((deployments::created_at.desc(), deployments::id.desc()))
            .select(DeploymentRow::as_select())
            .first(&mut conn)
            .await
            .optional()
            .map_err(DbError::from)?;
        one(&mut conn, row).await
    }

    #[instrument(name = "db.deployments.get_for_device", skip_all, err(Display))]
    async fn get_for_device(
        &self,
        device: DeviceId,
        id: DeploymentId,
    ) -> Result<Option<Deployment>, UnexpectedError> {
        let mut conn = conn(&self.pool).await?;
        let row = deployments::table
            .inner_join(deployment_devices::table)
            .filter(deployments::id.eq(id.as_uuid()))
            .filter(deployment_devices::device_id.eq(device.as_uuid()))
            .select(DeploymentRow::as_select())
            .first(&mut conn)
            .await
            .optional()
            .map_err(DbError::from)?;
        one(&mut conn, row).await
    }

    #[instrument(name = "db.deployments.save", skip_all, fields(changed = changed.len()))]
    async fn save(
        &self,
        deployment: &Deployment,
        changed: &[DeviceProgress],
        audit: &[AuditEvent],
    ) -> Result<(), SaveDeploymentError> {
        let mut conn = conn(&self.pool).await.map_err(UnexpectedError::from)?;
        let id = deployment.id.as_uuid();
        let current_wave = number(deployment.current_wave)?;
        let result = conn
            .transaction::<_, SaveFailure, _>(async |conn| {
                let updated = diesel::update(
                    deployments::table.filter(
                        deployments::id
                            .eq(id)
                            .and(deployments::revision.eq(deployment.revision)),
                    ),
                )
                .set((
                    deployments::state.eq(deployment.state.as_str()),
                    deployments::current_wave.eq(current_wave),
                    deployments::updated_at.eq(deployment.updated_at),
                    deployments::revision.eq(deployments::revision + 1),
                ))
                .execute(conn)
                .await?;
                if updated == 0 {
                    return Err(SaveFailure::Conflict);
                }
                for p in changed {
                    diesel::update(
                        deployment_devices::table.filter(
                            deployment_devices::deployment_id
                                .eq(id)
                                .and(deployment_devices::device_id.eq(p.device.as_uuid())),
                        ),
                    )
                    .set((
                        deployment_devices::wave.eq(number(p.wave).map_err(SaveFailure::Invalid)?),
                        deployment_devices::status.eq(p.status.as_str()),
                        deployment_devices::reason.eq(p.reason.as_deref()),
                        deployment_devices::started_at.eq(p.started_at),
                        deployment_devices::updated_at.eq(p.updated_at),
                    ))
                    .execute(conn)
                    .await?;
                }
                bump_revisions(conn, changed.iter().map(|p| p.device.as_uuid()).collect()).await?;
                for event in audit {
                    insert_event(conn, event).await?;
                }
                Ok(())
            })
            .await;
        match result {
            Ok(()) => Ok(()),
            Err(SaveFailure::Conflict) => Err(SaveDeploymentError::Conflict),
            Err(SaveFailure::Invalid(e)) => Err(e.into()),
            Err(SaveFailure::Db(e)) => Err(SaveDeploymentError::Unexpected(DbError::from(e).into())),
        }
    }
}
