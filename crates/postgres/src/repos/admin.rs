use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Date, Timestamptz};
use diesel_async::{AsyncConnection as _, RunQueryDsl};
use eagate_domain::UnexpectedError;
use eagate_domain::access::{AccountSummary, AdminRepository, AuditFilter, FleetStats, Role};
use eagate_domain::account::{Email, UserId};
use eagate_domain::audit::AuditEvent;
use eagate_domain::pagination::{Page, PageRequest};
use tracing::instrument;
use uuid::Uuid;

use super::audit::insert_event;
use super::conn;
use crate::error::DbError;
use crate::pool::PgPool;
use crate::rows::{AuditRow, UserRow};
use crate::schema::{account_disabled, account_roles, audit_events, users};

/// `%`, `_` and `\` matched literally in a LIKE pattern.
fn like_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

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

fn summary((row, admin, disabled_at): (UserRow, Option<Uuid>, Option<DateTime<Utc>>)) -> AccountSummary {
    let user = row.into_user();
    AccountSummary {
        id: user.id,
        username: user.username,
        email: user.email,
        role: if admin.is_some() { Role::Admin } else { Role::Owner },
        created_at: user.created_at,
        disabled_at,
    }
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

    #[instrument(name = "db.admin.list_accounts", skip_all, err(Display))]
    async fn list_accounts(
        &self,
        search: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<AccountSummary>, UnexpectedError> {
        let mut conn = conn(&self.pool).await?;
        let mut query = users::table
            .left_join(account_roles::table)
            .left_join(account_disabled::table)
            .select((
                UserRow::as_select(),
                account_roles::user_id.nullable(),
                account_disabled::disabled_at.nullable(),
            ))
            .order((users::created_at.desc(), users::id.desc()))
            .limit(i64::from(page.limit) + 1)
            .into_boxed();
        if let Some(search) = search {
            let pattern = like_literal(search);
            query = query.filter(
                users::username
                    .ilike(pattern.clone())
                    .or(users::email.ilike(pattern)),
            );
        }
        if let Some(after) = page.after {
            query = query.filter(
                users::created_at
                    .lt(after.at)
                    .or(users::created_at.eq(after.at).and(users::id.lt(after.id))),
            );
        }
        let rows: Vec<(UserRow, Option<Uuid>, Option<DateTime<Utc>>)> =
            query.load(&mut conn).await.map_err(DbError::from)?;
        let accounts = rows.into_iter().map(summary).collect();
        Ok(Page::from_overfetch(accounts, page.limit, AccountSummary::cursor))
    }

    #[instrument(name = "db.admin.audit", skip_all, err(Display))]
    async fn audit(
        &self,
        filter: &AuditFilter,
        page: &PageRequest,
    ) -> Result<Page<AuditEvent>, UnexpectedError> {
        let mut conn = conn(&self.pool).await?;
        let mut query = audit_events::table
            .select(AuditRow::as_select())
            .order((audit_events::occurred_at.desc(), audit_events::id.desc()))
            .limit(i64::from(page.limit) + 1)
            .into_boxed();
        if let Some(actor) = filter.actor {
            query = query.filter(audit_events::user_id.eq(actor.as_uuid()));
        }
        if let Some(action) = filter.action {
            query = query.filter(audit_events::action.eq(action.as_str()));
        }
        if let Some(device) = filter.device {
            query = query.filter(audit_events::device_id.eq(device.as_uuid()));
        }
        if let Some(from) = filter.from {
            query = query.filter(audit_events::occurred_at.ge(from));
        }
        if let Some(to) = filter.to {
            query = query.filter(audit_events::occurred_at.lt(to));
        }
        if let Some(after) = page.after {
            query = query.filter(
                audit_events::occurred_at
                    .lt(after.at)
                    .or(audit_events::occurred_at
                        .eq(after.at)
                        .and(audit_events::id.lt(after.id))),
            );
        }
        let rows = query.load(&mut conn).await.map_err(DbError::from)?;
        let events = rows
            .into_iter()
            .map(AuditEvent::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_overfetch(events, page.limit, AuditEvent::cursor))
    }

    #[instrument(name = "db.admin.set_disabled", skip_all, err(Display))]
    async fn set_disabled(
        &self,
        user: UserId,
        disabled: bool,
        at: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> Result<Option<AccountSummary>, UnexpectedError> {
        let mut conn = conn(&self.pool).await?;
        let id = user.as_uuid();
        let row = conn
            .transaction::<_, diesel::result::Error, _>(async |conn| {
                // The trigger on account_disabled notifies every instance's
                // device cache on commit.
                let changed = if disabled {
                    diesel::insert_into(account_disabled::table)
                        .values((
                            account_disabled::user_id.eq(id),
                            account_disabled::disabled_at.eq(at),
                        ))
                        .on_conflict_do_nothing()
                        .execute(conn)
                        .await
                } else {
                    diesel::delete(account_disabled::table.find(id))
                        .execute(conn)
                        .await
                };
                let changed = match changed {
                    Ok(n) => n > 0,
                    // No such account (the foreign key).
                    Err(diesel::result::Error::DatabaseError(
                        diesel::result::DatabaseErrorKind::ForeignKeyViolation,
                        _,
                    )) => return Ok(None),
                    Err(e) => return Err(e),
                };
                if changed {
                    insert_event(conn, audit).await?;
                }
                users::table
                    .left_join(account_roles::table)
                    .left_join(account_disabled::table)
                    .filter(users::id.eq(id))
                    .select((
                        UserRow::as_select(),
                        account_roles::user_id.nullable(),
                        account_disabled::disabled_at.nullable(),
                    ))
                    .first::<(UserRow, Option<Uuid>, Option<DateTime<Utc>>)>(conn)
                    .await
                    .optional()
            })
            .await
            .map_err(DbError::from)?;
        Ok(row.map(summary))
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
