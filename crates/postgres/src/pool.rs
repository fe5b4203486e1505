//! The connection pool.

use std::time::Duration;

use diesel::QueryableByName;
use diesel::sql_types::Bool;
use diesel_async::pooled_connection::deadpool::{BuildError, Object, Pool};
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

pub(crate) type PoolError = diesel_async::pooled_connection::deadpool::PoolError;

/// A pool of async PostgreSQL connections, cheap to clone.
pub type PgPool = Pool<AsyncPgConnection>;

pub(crate) type PgConn = Object<AsyncPgConnection>;

/// Pool size and timeouts, from configuration.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    pub max_size: usize,
    /// How long a request waits for a free connection before failing.
    pub wait_timeout: Duration,
    /// How long opening a new connection may take.
    pub connect_timeout: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            max_size: 16,
            wait_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PoolSetupError {
    #[error("could not build the connection pool: {0}")]
    Build(#[from] BuildError),
    #[error("could not connect to {what}: {source}")]
    Connect {
        what: String,
        #[source]
        source: diesel::ConnectionError,
    },
    #[error("could not create database {name}: {source}")]
    CreateDatabase {
        name: String,
        #[source]
        source: diesel::result::Error,
    },
}

/// Builds the pool. Connections open lazily, on first use.
///
/// Each connection's driver task runs on the runtime that builds the pool
/// (the server's main runtime), not on whichever runtime first needs the
/// connection: actix runs one runtime per worker thread and, in a graceful
/// shutdown, drops a worker's runtime as soon as that worker is idle, which
/// would close the pooled connections it had opened under requests still
/// running on other workers (seen as a 503 during rolling restarts).
pub fn create_pool(database_url: &str, config: &PoolConfig) -> Result<PgPool, PoolSetupError> {
    let mut manager_config = ManagerConfig::<AsyncPgConnection>::default();
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        manager_config.custom_setup = Box::new(move |url| {
            let url = url.to_owned();
            let opening = runtime.spawn(async move { AsyncPgConnection::establish(&url).await });
            Box::pin(async move {
                opening.await.unwrap_or_else(|e| {
                    Err(diesel::ConnectionError::BadConnection(format!(
                        "opening a connection: {e}"
                    )))
                })
            })
        });
    }
    let manager =
        AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(database_url, manager_config);
    Ok(Pool::builder(manager)
        .max_size(config.max_size)
        .wait_timeout(Some(config.wait_timeout))
        .create_timeout(Some(config.connect_timeout))
        .recycle_timeout(Some(config.connect_timeout))
        .runtime(deadpool::Runtime::Tokio1)
        .build()?)
}

#[derive(QueryableByName)]
struct Exists {
    #[diesel(sql_type = Bool)]
    exists: bool,
}

/// Creates database `name` through the maintenance connection `admin_url`
/// unless it exists. `name` must be a plain identifier.
pub async fn create_database_if_missing(admin_url: &str, name: &str) -> Result<(), PoolSetupError> {
    debug_assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
    let mut conn =
        AsyncPgConnection::establish(admin_url)
            .await
            .map_err(|source| PoolSetupError::Connect {
                what: "the PostgreSQL server".into(),
                source,
            })?;
    let found: Exists =
        diesel::sql_query("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS exists")
            .bind::<diesel::sql_types::Text, _>(name)
            .get_result(&mut conn)
            .await
            .map_err(|source| PoolSetupError::CreateDatabase {
                name: name.into(),
                source,
            })?;
    if !found.exists {
        let created = diesel::sql_query(format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .await;
        match created {
            Ok(_) => tracing::info!(database = name, "created database"),
            // Another process created it between our check and our create.
            Err(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            )) => {}
            Err(e) if e.to_string().contains("already exists") => {}
            Err(source) => {
                return Err(PoolSetupError::CreateDatabase {
                    name: name.into(),
                    source,
                });
            }
        }
    }
    Ok(())
}
