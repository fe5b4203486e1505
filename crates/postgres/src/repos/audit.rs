use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use eagate_domain::UnexpectedError;
use eagate_domain::account::UserId;
use eagate_domain::audit::{AuditEvent, AuditLog};
use eagate_domain::pagination::{Page, PageRequest};
use tracing::instrument;

use super::conn;
use crate::error::DbError;
use crate::pool::PgPool;
use crate::rows::AuditRow;
use crate::schema::audit_events;

/// Appends an audit event on `conn` (inside the caller's transaction).
pub(crate) async fn insert_event(conn: &mut AsyncPgConnection, event: &AuditEvent) -> QueryResult<()> {
    diesel::insert_into(audit_events::table)
        .values(AuditRow::from(event))
        .execute(conn)
        .await
        .map(drop)
}

/// [`AuditLog`] on PostgreSQL.
#[derive(Clone)]
pub struct PgAuditLog {
    pool: PgPool,
}

impl std::fmt::Debug for PgAuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgAuditLog").finish_non_exhaustive()
    }
}

impl PgAuditLog {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

impl AuditLog for PgAuditLog {
    #[instrument(name = "db.audit.record", skip_all, err(Display))]
    async fn record(&self, event: &AuditEvent) -> Result<(), UnexpectedError> {
        let mut conn = conn(&self.pool).await?;
        insert_event(&mut conn, event).await.map_err(DbError::from)?;
        Ok(())
    }

    #[instrument(name = "db.audit.list", skip_all, err(Display))]
    async fn list_for_user(
        &self,
        user: UserId,
        page: &PageRequest,
    ) -> Result<Page<AuditEvent>, UnexpectedError> {
        let mut conn = conn(&self.pool).await?;
        let mut query = audit_events::table
            .filter(audit_events::user_id.eq(user.as_uuid()))
            .select(AuditRow::as_select())
            .order((audit_events::occurred_at.desc(), audit_events::id.desc()))
            .limit(i64::from(page.limit) + 1)
            .into_boxed();
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
}
