use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection as _, RunQueryDsl};
use eagate_domain::UnexpectedError;
use eagate_domain::account::{
    AccountRepository, CreateUserError, LoginId, NewUser, PasswordHash, RevocationReason, User,
    UserCredentials, UserId,
};
use eagate_domain::audit::AuditEvent;
use tracing::instrument;

use super::audit::insert_event;
use super::conn;
use crate::error::DbError;
use crate::pool::PgPool;
use crate::rows::{NewUserRow, UserRow};
use crate::schema::{account_disabled, sessions, users};

diesel::define_sql_function!(fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text);

/// Credentials, disabled when `account_disabled` has a row for the user.
fn with_disabled((row, disabled): (UserRow, Option<uuid::Uuid>)) -> UserCredentials {
    let mut credentials = row.into_credentials();
    credentials.disabled = disabled.is_some();
    credentials
}

/// [`AccountRepository`] on PostgreSQL.
#[derive(Clone)]
pub struct PgAccountRepository {
    pool: PgPool,
}

impl std::fmt::Debug for PgAccountRepository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgAccountRepository").finish_non_exhaustive()
    }
}

impl PgAccountRepository {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

impl AccountRepository for PgAccountRepository {
    #[instrument(name = "db.users.create", skip_all, err(Display))]
    async fn create(&self, user: &NewUser, audit: &AuditEvent) -> Result<User, CreateUserError> {
        let mut conn = conn(&self.pool).await.map_err(UnexpectedError::from)?;
        let row = NewUserRow::from(user);
        let inserted = conn
            .transaction::<_, diesel::result::Error, _>(async |conn| {
                let user = diesel::insert_into(users::table)
                    .values(&row)
                    .returning(UserRow::as_returning())
                    .get_result(conn)
                    .await?;
                insert_event(conn, audit).await?;
                Ok(user)
            })
            .await
            .map_err(DbError::from);
        match inserted {
            Ok(row) => Ok(row.into_user()),
            Err(e) => Err(match e.unique_violation() {
                Some("users_email_key") => CreateUserError::EmailTaken,
                Some("users_username_lower_key") => CreateUserError::UsernameTaken,
                _ => CreateUserError::Unexpected(e.into()),
            }),
        }
    }

    #[instrument(name = "db.users.find_by_id", skip_all, err(Display))]
    async fn find_by_id(&self, id: UserId) -> Result<Option<User>, UnexpectedError> {
        Ok(self.find_credentials_by_id(id).await?.map(|c| c.user))
    }

    #[instrument(name = "db.users.find_by_login", skip_all, err(Display))]
    async fn find_credentials_by_login(
        &self,
        login: &LoginId,
    ) -> Result<Option<UserCredentials>, UnexpectedError> {
        let mut conn = conn(&self.pool).await?;
        let query = users::table
            .left_join(account_disabled::table)
            .select((UserRow::as_select(), account_disabled::user_id.nullable()))
            .into_boxed();
        let query = match login {
            LoginId::Email(email) => query.filter(users::email.eq(email.as_str())),
            LoginId::Username(name) => {
                query.filter(lower(users::username).eq(name.as_str().to_ascii_lowercase()))
            }
        };
        let row = query.first(&mut conn).await.optional().map_err(DbError::from)?;
        Ok(row.map(with_disabled))
    }

    #[instrument(name = "db.users.find_credentials_by_id", skip_all, err(Display))]
    async fn find_credentials_by_id(&self, id: UserId) -> Result<Option<UserCredentials>, UnexpectedError> {
        let mut conn = conn(&self.pool).await?;
        let row = users::table
            .left_join(account_disabled::table)
            .filter(users::id.eq(id.as_uuid()))
            .select((UserRow::as_select(), account_disabled::user_id.nullable()))
            .first(&mut conn)
            .await
            .optional()
            .map_err(DbError::from)?;
        Ok(row.map(with_disabled))
    }

    #[instrument(name = "db.users.update_password_hash", skip_all, err(Display))]
    async fn update_password_hash(&self, id: UserId, hash: &PasswordHash) -> Result<bool, UnexpectedError> {
        let mut conn = conn(&self.pool).await?;
        let n = diesel::update(users::table.find(id.as_uuid()))
            .set(users::password_hash.eq(hash.as_str()))
            .execute(&mut conn)
            .await
            .map_err(DbError::from)?;
        Ok(n == 1)
    }

    #[instrument(name = "db.users.change_password", skip_all, err(Display))]
    async fn change_password(
        &self,
        id: UserId,
        hash: &PasswordHash,
        at: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> Result<bool, UnexpectedError> {
        let mut conn = conn(&self.pool).await?;
        let user_id = id.as_uuid();
        let hash = hash.as_str();
        let changed = conn
            .transaction::<_, diesel::result::Error, _>(async |conn| {
                let n = diesel::update(users::table.find(user_id))
                    .set((users::password_hash.eq(hash), users::updated_at.eq(at)))
                    .execute(conn)
                    .await?;
                if n == 0 {
                    return Ok(false);
                }
                diesel::update(sessions::table)
                    .filter(sessions::user_id.eq(user_id).and(sessions::revoked_at.is_null()))
                    .set((
                        sessions::revoked_at.eq(at),
                        sessions::revoked_reason.eq(RevocationReason::PasswordChanged.as_str()),
                    ))
                    .execute(conn)
                    .await?;
                insert_event(conn, audit).await?;
                Ok(true)
            })
            .await
            .map_err(DbError::from)?;
        Ok(changed)
    }

    #[instrument(name = "db.users.delete", skip_all, err(Display))]
    async fn delete(&self, id: UserId, audit: &AuditEvent) -> Result<bool, UnexpectedError> {
        let mut conn = conn(&self.pool).await?;
        let user_id = id.as_uuid();
        let deleted = conn
            .transaction::<_, diesel::result::Error, _>(async |conn| {
                let n = diesel::delete(users::table.find(user_id)).execute(conn).await?;
                if n == 1 {
                    insert_event(conn, audit).await?;
                }
                Ok(n == 1)
            })
            .await
            .map_err(DbError::from)?;
        Ok(deleted)
    }
}
