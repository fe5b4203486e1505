use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl};
use eagate_domain::UnexpectedError;
use eagate_domain::access::{
    AllowedNetworks, ApiKey, ApiKeyHash, ApiKeyId, ApiKeyName, ApiKeyRepository, CreateApiKeyStoreError,
    GeneratedApiKey, NewApiKey, RotateApiKeyStoreError, Scopes,
};
use eagate_domain::account::UserId;
use eagate_domain::audit::AuditEvent;
use eagate_domain::pagination::{Cursor, Page, PageRequest};
use tracing::instrument;
use uuid::Uuid;

use super::audit::insert_event;
use super::conn;
use crate::error::DbError;
use crate::pool::PgPool;
use crate::schema::{account_disabled, api_keys};

const ACTIVE_NAME_INDEX: &str = "api_keys_active_name";

/// [`ApiKeyRepository`] on PostgreSQL (`api_keys`). Every lookup reads the
/// table, so a revocation is seen by every instance at once.
#[derive(Clone)]
pub struct PgApiKeyRepository {
    pool: PgPool,
}

impl std::fmt::Debug for PgApiKeyRepository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgApiKeyRepository").finish_non_exhaustive()
    }
}

impl PgApiKeyRepository {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = api_keys, check_for_backend(diesel::pg::Pg))]
struct ApiKeyRow {
    id: Uuid,
    owner_id: Uuid,
    name: String,
    prefix: String,
    scopes: Vec<Option<String>>,
    allowed_cidrs: Vec<Option<String>>,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    last_used_at: Option<DateTime<Utc>>,
    rotated_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

impl TryFrom<ApiKeyRow> for ApiKey {
    type Error = UnexpectedError;

    fn try_from(row: ApiKeyRow) -> Result<Self, Self::Error> {
        let corrupt = |what: &str, e: &dyn std::fmt::Display| {
            UnexpectedError::msg(format!("api_keys row {}: {what}: {e}", row.id))
        };
        let scopes: Vec<String> = row.scopes.iter().flatten().cloned().collect();
        let cidrs: Vec<String> = row.allowed_cidrs.iter().flatten().cloned().collect();
        Ok(Self {
            id: ApiKeyId::from_uuid(row.id),
            owner: UserId::from_uuid(row.owner_id),
            name: ApiKeyName::parse(&row.name).map_err(|e| corrupt("name", &e.message))?,
            prefix: row.prefix.clone(),
            scopes: Scopes::from_stored(&scopes).map_err(|e| corrupt("scopes", &e))?,
            allowed: AllowedNetworks::from_stored(&cidrs).map_err(|e| corrupt("allowed_cidrs", &e))?,
            created_at: row.created_at,
            expires_at: row.expires_at,
            last_used_at: row.last_used_at,
            rotated_at: row.rotated_at,
            revoked_at: row.revoked_at,
        })
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = api_keys)]
struct NewApiKeyRow<'a> {
    id: Uuid,
    owner_id: Uuid,
    name: &'a str,
    name_key: String,
    prefix: &'a str,
    secret_hash: &'a [u8],
    scopes: Vec<&'static str>,
    allowed_cidrs: Vec<String>,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
}

impl<'a> From<&'a NewApiKey> for NewApiKeyRow<'a> {
    fn from(new: &'a NewApiKey) -> Self {
        let key = &new.key;
        Self {
            id: key.id.as_uuid(),
            owner_id: key.owner.as_uuid(),
            name: key.name.as_str(),
            name_key: key.name.key(),
            prefix: &key.prefix,
            secret_hash: new.hash.as_bytes(),
            scopes: key.scopes.names(),
            allowed_cidrs: key.allowed.to_strings(),
            created_at: key.created_at,
            expires_at: key.expires_at,
        }
    }
}

/// Failures inside API-key transactions.
#[derive(Debug, thiserror::Error)]
enum TxError {
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
    #[error("not found")]
    NotFound,
    #[error("revoked")]
    Revoked,
}

fn rows_to_keys(rows: Vec<ApiKeyRow>) -> Result<Vec<ApiKey>, UnexpectedError> {
    rows.into_iter().map(ApiKey::try_from).collect()
}

async fn find_owned(conn: &mut AsyncPgConnection, owner: Uuid, id: Uuid) -> QueryResult<Option<ApiKeyRow>> {
    api_keys::table
        .filter(api_keys::id.eq(id).and(api_keys::owner_id.eq(owner)))
        .select(ApiKeyRow::as_select())
        .first(conn)
        .await
        .optional()
}

impl ApiKeyRepository for PgApiKeyRepository {
    #[instrument(name = "db.api_keys.create", skip_all, err(Display))]
    async fn create(&self, new: &NewApiKey, audit: &AuditEvent) -> Result<(), CreateApiKeyStoreError> {
        let mut conn = conn(&self.pool).await.map_err(UnexpectedError::from)?;
        let result = conn
            .transaction::<_, diesel::result::Error, _>(async |conn| {
                diesel::insert_into(api_keys::table)
                    .values(NewApiKeyRow::from(new))
                    .execute(conn)
                    .await?;
                insert_event(conn, audit).await
            })
            .await;
        match result.map_err(DbError::from) {
            Ok(()) => Ok(()),
            Err(e) if e.unique_violation() == Some(ACTIVE_NAME_INDEX) => {
                Err(CreateApiKeyStoreError::NameTaken)
            }
            Err(e) => Err(UnexpectedError::from(e).into()),
        }
    }

    #[instrument(name = "db.api_keys.list", skip_all, err(Display))]
    async fn list(&self, owner: UserId, page: &PageRequest) -> Result<Page<ApiKey>, UnexpectedError> {
        let mut conn = conn(&self.pool).await?;
        let mut query = api_keys::table
            .filter(api_keys::owner_id.eq(owner.as_uuid()))
            .select(ApiKeyRow::as_select())
            .order((api_keys::created_at.desc(), api_keys::id.desc()))
            .limit(i64::from(page.limit) + 1)
            .into_boxed();
        if let Some(after) = page.after {
            query = query.filter(
                api_keys::created_at
                    .lt(after.at)
                    .or(api_keys::created_at.eq(after.at).and(api_keys::id.lt(after.id))),
            );
        }
        let rows = query.load(&mut conn).await.map_err(DbError::from)?;
        Ok(Page::from_overfetch(
            rows_to_keys(rows)?,
            page.limit,
            |k: &ApiKey| Cursor::new(k.created_at, k.id.as_uuid()),
        ))
    }

    #[instrument(name = "db.api_keys.find_by_hash", skip_all, err(Display))]
    async fn find_by_hash(&self, hash: &ApiKeyHash) -> Result<Option<ApiKey>, UnexpectedError> {
        let mut conn = conn(&self.pool).await?;
        // A disabled owner's keys count as revoked.
        let row: Option<(ApiKeyRow, Option<DateTime<Utc>>)> = api_keys::table
            .left_join(account_disabled::table.on(account_disabled::user_id.eq(api_keys::owner_id)))
            .filter(api_keys::secret_hash.eq(hash.as_bytes()))
            .select((ApiKeyRow::as_select(), account_disabled::disabled_at.nullable()))
            .first(&mut conn)
            .await
            .optional()
            .map_err(DbError::from)?;
        row.map(|(row, disabled)| {
            ApiKey::try_from(row).map(|mut key| {
                key.revoked_at = key.revoked_at.or(disabled);
                key
            })
        })
        .transpose()
    }

    #[instrument(name = "db.api_keys.revoke", skip_all, err(Display))]
    async fn revoke(
        &self,
        owner: UserId,
        id: ApiKeyId,
        at: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> Result<Option<ApiKey>, UnexpectedError> {
        let mut conn = conn(&self.pool).await?;
        let (owner, id) = (owner.as_uuid(), id.as_uuid());
        let row = conn
            .transaction::<_, diesel::result::Error, _>(async |conn| {
                let updated = diesel::update(api_keys::table)
                    .filter(api_keys::id.eq(id).and(api_keys::owner_id.eq(owner)))
                    .filter(api_keys::revoked_at.is_null())
                    .set(api_keys::revoked_at.eq(at))
                    .returning(ApiKeyRow::as_returning())
                    .get_result(conn)
                    .await
                    .optional()?;
                match updated {
                    Some(row) => {
                        insert_event(conn, audit).await?;
                        Ok(Some(row))
                    }
                    // Not the owner's, or already revoked (unchanged).
                    None => find_owned(conn, owner, id).await,
                }
            })
            .await
            .map_err(DbError::from)?;
        row.map(ApiKey::try_from).transpose()
    }

    #[instrument(name = "db.api_keys.rotate", skip_all, err(Display))]
    async fn rotate(
        &self,
        owner: UserId,
        id: ApiKeyId,
        new: &GeneratedApiKey,
        at: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> Result<ApiKey, RotateApiKeyStoreError> {
        let mut conn = conn(&self.pool).await.map_err(UnexpectedError::from)?;
        let (owner, id) = (owner.as_uuid(), id.as_uuid());
        let prefix = new.secret.display_prefix();
        let result = conn
            .transaction::<_, TxError, _>(async |conn| {
                let updated = diesel::update(api_keys::table)
                    .filter(api_keys::id.eq(id).and(api_keys::owner_id.eq(owner)))
                    .filter(api_keys::revoked_at.is_null())
                    .set((
                        api_keys::secret_hash.eq(new.hash.as_bytes()),
                        api_keys::prefix.eq(&prefix),
                        api_keys::rotated_at.eq(at),
                    ))
                    .returning(ApiKeyRow::as_returning())
                    .get_result(conn)
                    .await
                    .optional()?;
                let Some(row) = updated else {
                    return Err(match find_owned(conn, owner, id).await? {
                        Some(_) => TxError::Revoked,
                        None => TxError::NotFound,
                    });
                };
                insert_event(conn, audit).await?;
                Ok(row)
            })
            .await;
        match result {
            Ok(row) => Ok(ApiKey::try_from(row)?),
            Err(TxError::NotFound) => Err(RotateApiKeyStoreError::NotFound),
            Err(TxError::Revoked) => Err(RotateApiKeyStoreError::Revoked),
            Err(TxError::Db(e)) => Err(UnexpectedError::from(DbError::from(e)).into()),
        }
    }

    #[instrument(name = "db.api_keys.record_last_used", skip_all, fields(keys = batch.len()), err(Display))]
    async fn record_last_used(&self, batch: &[(ApiKeyId, DateTime<Utc>)]) -> Result<(), UnexpectedError> {
        use diesel::sql_types::{Array, Timestamptz, Uuid as SqlUuid};
        if batch.is_empty() {
            return Ok(());
        }
        let mut conn = conn(&self.pool).await?;
        // One statement for the whole batch; a time only moves forward.
        diesel::sql_query(
            "UPDATE api_keys AS k SET last_used_at = v.at \
             FROM unnest($1::uuid[], $2::timestamptz[]) AS v(id, at) \
             WHERE k.id = v.id AND (k.last_used_at IS NULL OR v.at > k.last_used_at)",
        )
        .bind::<Array<SqlUuid>, _>(batch.iter().map(|(id, _)| id.as_uuid()).collect::<Vec<_>>())
        .bind::<Array<Timestamptz>, _>(batch.iter().map(|(_, at)| *at).collect::<Vec<_>>())
        .execute(&mut conn)
        .await
        .map_err(DbError::from)?;
        Ok(())
    }
}
