use chrono::{DateTime, Utc};
use diesel::dsl::exists;
use diesel::prelude::*;
use diesel_async::{AsyncConnection as _, RunQueryDsl};
use eagate_domain::UnexpectedError;
use eagate_domain::account::{
    NewRefreshToken, RefreshTokenHash, RefreshTokenRecord, RevocationReason, Session, SessionId,
    SessionRepository,
};
use eagate_domain::audit::AuditEvent;
use tracing::instrument;

use super::audit::insert_event;
use super::conn;
use crate::error::DbError;
use crate::pool::PgPool;
use crate::rows::{NewRefreshTokenRow, NewSessionRow, RefreshTokenRow, SessionRow};
use crate::schema::{account_disabled, refresh_tokens, sessions};

/// [`SessionRepository`] on PostgreSQL.
#[derive(Clone)]
pub struct PgSessionRepository {
    pool: PgPool,
}

impl std::fmt::Debug for PgSessionRepository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgSessionRepository").finish_non_exhaustive()
    }
}

impl PgSessionRepository {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

impl SessionRepository for PgSessionRepository {
    #[instrument(name = "db.sessions.create", skip_all, err(Display))]
    async fn create(
        &self,
        session: &Session,
        first_token: &NewRefreshToken,
        audit: &AuditEvent,
    ) -> Result<(), UnexpectedError> {
        let mut conn = conn(&self.pool).await?;
        let session = NewSessionRow::from(session);
        let token = NewRefreshTokenRow::from(first_token);
        conn.transaction::<_, diesel::result::Error, _>(async |conn| {
            diesel::insert_into(sessions::table)
                .values(&session)
                .execute(conn)
                .await?;
            diesel::insert_into(refresh_tokens::table)
                .values(&token)
                .execute(conn)
                .await?;
            insert_event(conn, audit).await?;
            Ok(())
        })
        .await
        .map_err(DbError::from)?;
        Ok(())
    }

    #[instrument(name = "db.sessions.find", skip_all, err(Display))]
    async fn find(&self, id: SessionId) -> Result<Option<Session>, UnexpectedError> {
        let mut conn = conn(&self.pool).await?;
        // A disabled account's sessions count as revoked.
        let row: Option<(SessionRow, Option<DateTime<Utc>>)> = sessions::table
            .left_join(account_disabled::table.on(account_disabled::user_id.eq(sessions::user_id)))
            .filter(sessions::id.eq(id.as_uuid()))
            .select((SessionRow::as_select(), account_disabled::disabled_at.nullable()))
            .first(&mut conn)
            .await
            .optional()
            .map_err(DbError::from)?;
        Ok(row.map(|(row, disabled)| {
            let mut session = Session::from(row);
            session.revoked_at = session.revoked_at.or(disabled);
            session
        }))
    }

    #[instrument(name = "db.refresh_tokens.find", skip_all, err(Display))]
    async fn find_refresh_token(
        &self,
        hash: &RefreshTokenHash,
    ) -> Result<Option<RefreshTokenRecord>, UnexpectedError> {
        let mut conn = conn(&self.pool).await?;
        let row = refresh_tokens::table
            .inner_join(sessions::table)
            .left_join(account_disabled::table.on(account_disabled::user_id.eq(sessions::user_id)))
            .filter(refresh_tokens::token_hash.eq(hash.as_bytes()))
            .select((
                RefreshTokenRow::as_select(),
                SessionRow::as_select(),
                account_disabled::disabled_at.nullable(),
            ))
            .first::<(RefreshTokenRow, SessionRow, Option<DateTime<Utc>>)>(&mut conn)
            .await
            .optional()
            .map_err(DbError::from)?;
        Ok(row.map(|(token, session, disabled)| RefreshTokenRecord {
            session: session.into(),
            expires_at: token.expires_at,
            rotated_at: token.rotated_at,
            account_disabled: disabled.is_some(),
        }))
    }

    #[instrument(name = "db.refresh_tokens.rotate", skip_all, err(Display))]
    async fn rotate_refresh_token(
        &self,
        old: &RefreshTokenHash,
        new: &NewRefreshToken,
        at: DateTime<Utc>,
    ) -> Result<bool, UnexpectedError> {
        let mut conn = conn(&self.pool).await?;
        let old = old.as_bytes();
        let new = NewRefreshTokenRow::from(new);
        let rotated = conn
            .transaction::<_, diesel::result::Error, _>(async |conn| {
                // The conditional UPDATE is the arbiter: of two concurrent
                // rotations only one sees `rotated_at IS NULL`.
                let live_session = exists(
                    sessions::table
                        .filter(sessions::id.eq(refresh_tokens::session_id))
                        .filter(sessions::revoked_at.is_null()),
                );
                let n = diesel::update(refresh_tokens::table)
                    .filter(refresh_tokens::token_hash.eq(old))
                    .filter(refresh_tokens::rotated_at.is_null())
                    .filter(live_session)
                    .set(refresh_tokens::rotated_at.eq(at))
                    .execute(conn)
                    .await?;
                if n == 0 {
                    return Ok(false);
                }
                diesel::insert_into(refresh_tokens::table)
                    .values(&new)
                    .execute(conn)
                    .await?;
                Ok(true)
            })
            .await
            .map_err(DbError::from)?;
        Ok(rotated)
    }

    #[instrument(name = "db.sessions.revoke", skip_all, err(Display))]
    async fn revoke(
        &self,
        id: SessionId,
        at: DateTime<Utc>,
        reason: RevocationReason,
    ) -> Result<(), UnexpectedError> {
        let mut conn = conn(&self.pool).await?;
        diesel::update(sessions::table.find(id.as_uuid()))
            .filter(sessions::revoked_at.is_null())
            .set((
                sessions::revoked_at.eq(at),
                sessions::revoked_reason.eq(reason.as_str()),
            ))
            .execute(&mut conn)
            .await
            .map_err(DbError::from)?;
        Ok(())
    }
}
