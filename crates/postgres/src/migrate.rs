//! The embedded migrations from the top-level `migrations/` directory.
//!
//! Every function names a migration the same way: by its directory name,
//! e.g. `2026-11-22-000001_create_accounts`.

use diesel::migration::{Migration, MigrationSource, MigrationVersion};
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
    /// The version diesel records, e.g. `20261122000001`.
    pub version: String,
    /// The directory name, e.g. `2026-11-22-000001_create_accounts`: what
    /// every function here reports.
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

/// The directory names of `versions`, in the same order.
fn names(versions: &[MigrationVersion<'_>]) -> Result<Vec<String>, MigrationError> {
    let known = MigrationSource::<Pg>::migrations(&MIGRATIONS).map_err(failed)?;
    Ok(versions
        .iter()
        .map(|version| {
            known
                .iter()
                .find(|m| m.name().version() == *version)
                .map_or_else(|| version.to_string(), |m| m.name().to_string())
        })
        .collect())
}

/// Applies every pending migration; returns the names of those applied.
pub async fn run_pending(database_url: &str) -> Result<Vec<String>, MigrationError> {
    with_harness(database_url, |conn| {
        let applied = conn.run_pending_migrations(MIGRATIONS).map_err(failed)?;
        names(&applied)
    })
    .await
}

/// Reverts the most recent migration; returns its name, if any was applied.
pub async fn revert_last(database_url: &str) -> Result<Option<String>, MigrationError> {
    with_harness(database_url, |conn| {
        if conn.applied_migrations().map_err(failed)?.is_empty() {
            return Ok(None);
        }
        let reverted = conn.revert_last_migration(MIGRATIONS).map_err(failed)?;
        Ok(names(&[reverted])?.pop())
    })
    .await
}

/// Reverts every applied migration; returns their names, newest first.
pub async fn revert_all(database_url: &str) -> Result<Vec<String>, MigrationError> {
    with_harness(database_url, |conn| {
        let reverted = conn.revert_all_migrations(MIGRATIONS).map_err(failed)?;
        names(&reverted)
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
