//! The embedded migrations from the top-level `migrations/` directory.

use diesel::migration::{Migration, MigrationSource};
use diesel::pg::Pg;
use diesel_async::AsyncPgConnection;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations");

type Wrapper = AsyncConnectionWrapper<AsyncPgConnection>;

#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error("could not connect to the database: {0}")]
    Connect(#[from] diesel::ConnectionError),
    #[error("migration failed: {0}")]
    Migration(String),
    #[error("the migration task panicked or was cancelled: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// One migration and whether it is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationStatus {
    pub version: String,
    pub name: String,
    pub applied: bool,
}

/// Runs `f` with a synchronous migration connection on the blocking pool.
async fn with_harness<T: Send + 'static>(
    database_url: &str,
    f: impl FnOnce(&mut Wrapper) -> Result<T, MigrationError> + Send + 'static,
) -> Result<T, MigrationError> {
    use diesel::Connection as _;
    let url = database_url.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut conn = Wrapper::establish(&url)?;
        f(&mut conn)
    })
    .await?
}

fn failed(e: impl std::fmt::Display) -> MigrationError {
    MigrationError::Migration(e.to_string())
}

/// Applies every pending migration; returns the versions applied.
pub async fn run_pending(database_url: &str) -> Result<Vec<String>, MigrationError> {
    with_harness(database_url, |conn| {
        let applied = conn.run_pending_migrations(MIGRATIONS).map_err(failed)?;
        Ok(applied.iter().map(ToString::to_string).collect())
    })
    .await
}

/// Reverts the most recent migration; returns its version, if any was applied.
pub async fn revert_last(database_url: &str) -> Result<Option<String>, MigrationError> {
    with_harness(database_url, |conn| {
        if conn.applied_migrations().map_err(failed)?.is_empty() {
            return Ok(None);
        }
        conn.revert_last_migration(MIGRATIONS)
            .map(|v| Some(v.to_string()))
            .map_err(failed)
    })
    .await
}

/// Reverts every applied migration.
pub async fn revert_all(database_url: &str) -> Result<Vec<String>, MigrationError> {
    with_harness(database_url, |conn| {
        let reverted = conn.revert_all_migrations(MIGRATIONS).map_err(failed)?;
        Ok(reverted.iter().map(ToString::to_string).collect())
    })
    .await
}

/// Every known migration, oldest first, with whether it is applied.
pub async fn status(database_url: &str) -> Result<Vec<MigrationStatus>, MigrationError> {
    with_harness(database_url, |conn| {
        let applied: Vec<String> = conn
            .applied_migrations()
            .map_err(failed)?
            .iter()
            .map(ToString::to_string)
            .collect();
        let mut all: Vec<MigrationStatus> = MigrationSource::<Pg>::migrations(&MIGRATIONS)
            .map_err(failed)?
            .iter()
            .map(|m| {
                let name = m.name().to_string();
                let version = m.name().version().to_string();
                MigrationStatus {
                    applied: applied.contains(&version),
                    version,
                    name,
                }
            })
            .collect();
        all.sort_by(|a, b| a.version.cmp(&b.version));
        Ok(all)
    })
    .await
}

/// `true` when every known migration is applied.
pub async fn is_up_to_date(database_url: &str) -> Result<bool, MigrationError> {
    Ok(status(database_url).await?.iter().all(|m| m.applied))
}

/// Readiness: the pool can run a query and every known migration is
/// applied. The error says which of the two failed.
pub async fn check_ready(pool: &crate::PgPool) -> Result<(), String> {
    use diesel::QueryableByName;
    use diesel_async::RunQueryDsl;

    #[derive(QueryableByName)]
    struct Version {
        #[diesel(sql_type = diesel::sql_types::Text)]
        version: String,
    }

    let mut conn = pool
        .get()
        .await
        .map_err(|e| format!("database unreachable: {e}"))?;
    let applied: Vec<Version> = diesel::sql_query("SELECT version FROM __diesel_schema_migrations")
        .load(&mut conn)
        .await
        .map_err(|e| format!("database query failed: {e}"))?;
    let applied: Vec<String> = applied.into_iter().map(|v| v.version).collect();
    let known = MigrationSource::<Pg>::migrations(&MIGRATIONS).map_err(|e| format!("migrations: {e}"))?;
    let missing = known
        .iter()
        .map(|m| m.name().version().to_string())
        .filter(|v| !applied.contains(v))
        .count();
    if missing == 0 {
        Ok(())
    } else {
        Err(format!(
            "database schema is behind: {missing} migration(s) pending"
        ))
    }
}
