use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Date, Timestamptz};
use diesel_async::{AsyncConnection as _, RunQueryDsl};
use eagate_domain::UnexpectedError;
use eagate_domain::access::{AdminRepository, FleetStats, Role};
use eagate_domain::account::{Email, UserId};
use eagate_domain::audit::AuditEvent;
use tracing::instrument;
use uuid::Uuid;

use super::audit::insert_event;
use super::conn;
use crate::error::DbError;
use crate::pool::PgPool;
use crate::schema::{account_roles, users};

/// [`AdminRepository`] on PostgreSQL: `account_roles` holds the
/// administrators; counts are read from the tables themselves.
#[derive(Clone)]
pub struct PgAdminRepository {
    pool: PgPool,
}

impl std::fmt::Debug for PgAdminRepository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgAdminRepository").finish_non_exhaustive()
    }
}

impl PgAdminRepository {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[derive(Debug, QueryableByName)]
struct CountsRow {
    #[diesel(sql_type = BigInt)]
    accounts: i64,
    #[diesel(sql_type = BigInt)]
    admins: i64,
    #[diesel(sql_type = BigInt)]
    devices_active: i64,
    #[diesel(sql_type = BigInt)]
    devices_revoked: i64,
}

#[derive(Debug, QueryableByName)]
struct DayRow {
    #[diesel(sql_type = Date)]
    day: NaiveDate,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl AdminRepository for PgAdminRepository {
    #[instrument(name = "db.admin.role_of", skip_all, err(Display))]
    async fn role_of(&self, user: UserId) -> Result<Role, UnexpectedError> {
        let mut conn = conn(&self.pool).await?;
        let admin = account_roles::table
            .find(user.as_uuid())
            .select(account_roles::user_id)
            .first::<Uuid>(&mut conn)
            .await
            .optional()
            .map_err(DbError::from)?;
        Ok(if admin.is_some() { Role::Admin } else { Role::Owner })
    }

    #[instrument(name = "db.admin.account_by_email", skip_all, err(Display))]
    async fn account_by_email(&self, email: &Email) -> Result<Option<UserId>, UnexpectedError> {
        let mut conn = conn(&self.pool).await?;
        Ok(users::table
            .filter(users::email.eq(email.as_str()))
            .select(users::id)
            .first::<Uuid>(&mut conn)
            .await
            .optional()
            .map_err(DbError::from)?
            .map(UserId::from_uuid))
    }

    #[instrument(name = "db.admin.set_role", skip_all, err(Display))]
    async fn set_role(&self, user: UserId, role: Role, audit: &AuditEvent) -> Result<bool, UnexpectedError> {
        let mut conn = conn(&self.pool).await?;
        let id = user.as_uuid();
        let at = audit.occurred_at;
        let changed = conn
            .transaction::<_, diesel::result::Error, _>(async |conn| {
                let changed = match role {
                    Role::Admin => {
                        // Only an existing account (the join), once (the conflict).
                        diesel::sql_query(
                            "INSERT INTO account_roles (user_id, role, granted_at) \
                             SELECT id, 'admin', $2 FROM users WHERE id = $1 \
                             ON CONFLICT (user_id) DO NOTHING",
                        )
                        .bind::<diesel::sql_types::Uuid, _>(id)
                        .bind::<Timestamptz, _>(at)
                        .execute(conn)
                        .await?
                    }
                    Role::Owner => {
                        diesel::delete(account_roles::table.find(id))
                            .execute(conn)
                            .await?
                    }
                } > 0;
                if changed {
                    insert_event(conn, audit).await?;
                }
                Ok(changed)
            })
            .await
            .map_err(DbError::from)?;
        Ok(changed)
    }

    #[instrument(name = "db.admin.fleet_stats", skip_all, err(Display))]
    async fn fleet_stats(&self, since: DateTime<Utc>) -> Result<FleetStats, UnexpectedError> {
        let mut conn = conn(&self.pool).await?;
        let counts: CountsRow = diesel::sql_query(
            "SELECT (SELECT count(*) FROM users) AS accounts, \
                    (SELECT count(*) FROM account_roles) AS admins, \
                    (SELECT count(*) FROM devices WHERE revoked_at IS NULL) AS devices_active, \
                    (SELECT count(*) FROM devices WHERE revoked_at IS NOT NULL) AS devices_revoked",
        )
        .get_result(&mut conn)
        .await
        .map_err(DbError::from)?;
        let days: Vec<DayRow> = diesel::sql_query(
            "SELECT (created_at AT TIME ZONE 'UTC')::date AS day, count(*) AS n \
             FROM signals WHERE created_at >= $1 GROUP BY 1 ORDER BY 1",
        )
        .bind::<Timestamptz, _>(since)
        .load(&mut conn)
        .await
        .map_err(DbError::from)?;
        Ok(FleetStats {
            accounts: count(counts.accounts),
            admins: count(counts.admins),
            devices_active: count(counts.devices_active),
            devices_revoked: count(counts.devices_revoked),
            signals_per_day: days.into_iter().map(|d| (d.day, count(d.n))).collect(),
        })
    }
}
