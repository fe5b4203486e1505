//! Test-only helpers shared by every crate's tests.
//!
//! [`TestDatabase`] gives each test its own PostgreSQL database, cloned from
//! a template that is migrated once per migration set, so tests run in
//! parallel (threads or nextest processes) without seeing each other.
//!
//! The server used is, in order: `EAGATE_TEST_DATABASE_URL` (a maintenance
//! URL, e.g. `postgres://postgres@host:5432/postgres`); a server listening on
//! 127.0.0.1:5432 with user `postgres`; an embedded server started from the
//! machine's PostgreSQL binaries under `<workspace>/.eagate/test-postgres`.
//!
//! On that server the harness only ever drops what it provably created:
//! databases named `eagate_test_…` that carry its `COMMENT ON DATABASE`
//! marker (see [`databases`]). Test databases are dropped by their guard;
//! when a test process starts, marked test databases older than two hours
//! (from killed runs) and marked templates of other migration sets unused
//! for two hours are swept. Anything else — whatever its name — is left
//! alone.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

pub mod databases;
#[cfg(test)]
mod safety_tests;

use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use eagate_postgres::{EmbeddedPostgres, PgPool, PoolConfig, create_pool};
use tokio::sync::OnceCell;

use crate::databases::{
    Kind, Marker, PREFIX, TEMPLATE_PREFIX, create_marked, drop_own, exec, find, mark, quoted,
};

/// Unix seconds now.
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// The workspace root (where `Cargo.toml` with `[workspace]` lives).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("testkit lives at <root>/crates/testkit")
        .to_path_buf()
}

/// The maintenance URL of the server tests run against, resolved once per
/// process.
pub async fn server_url() -> &'static str {
    static URL: OnceCell<String> = OnceCell::const_new();
    URL.get_or_init(|| async {
        if let Ok(url) = std::env::var("EAGATE_TEST_DATABASE_URL") {
            return url;
        }
        let local = SocketAddr::from(([127, 0, 0, 1], 5432));
        if TcpStream::connect_timeout(&local, Duration::from_secs(1)).is_ok() {
            return "postgres://postgres@127.0.0.1:5432/postgres".to_owned();
        }
        let dir = workspace_root().join(".eagate/test-postgres");
        let pg = tokio::task::spawn_blocking(move || EmbeddedPostgres::start(&dir))
            .await
            .expect("embedded PostgreSQL start-up task")
            .unwrap_or_else(|e| {
                panic!(
                    "no PostgreSQL for tests: EAGATE_TEST_DATABASE_URL is unset, nothing listens on \
                     127.0.0.1:5432, and the embedded server failed: {e}"
                )
            });
        pg.url("postgres")
    })
    .await
}

/// `url` with its database name replaced by `name`.
pub fn url_for(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

async fn admin() -> AsyncPgConnection {
    let url = server_url().await;
    AsyncPgConnection::establish(url)
        .await
        .unwrap_or_else(|e| panic!("connecting to the test PostgreSQL server: {e}"))
}

/// A fingerprint of the migrations directory, so a changed migration gets a
/// fresh template.
fn migrations_fingerprint() -> String {
    let dir = workspace_root().join("migrations");
    let mut files: Vec<PathBuf> = Vec::new();
    let mut stack = vec![dir];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("reading migrations/").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut hasher = DefaultHasher::new();
    for f in files {
        f.file_name().hash(&mut hasher);
        std::fs::read(&f).expect("reading a migration").hash(&mut hasher);
    }
    format!("{:016x}", hasher.finish())
}

/// This run's template: `eagate_test_template_<migrations fingerprint>`.
fn template_name() -> String {
    format!("{TEMPLATE_PREFIX}{}", migrations_fingerprint())
}

/// The advisory lock that serialises template building and sweeping across
/// test processes.
const LOCK: i64 = 7_355_608;

/// The migrated template's name, creating it (once per migration set,
/// across processes), marking it used, and sweeping the harness's stale
/// databases, on first use in a process.
async fn template() -> &'static str {
    static TEMPLATE: OnceCell<String> = OnceCell::const_new();
    TEMPLATE
        .get_or_init(|| async {
            let name = template_name();
            let mut conn = admin().await;
            exec(&mut conn, &format!("SELECT pg_advisory_lock({LOCK})")).await;
            databases::sweep(&mut conn, unix_now(), &name, &|_| true).await;
            match find(&mut conn, &name).await {
                Some(existing) => {
                    assert!(
                        existing.marker().is_some_and(|m| m.kind == Kind::Template),
                        "database {name} exists but eagate-testkit did not create it as a template \
                         (no marker comment): rename or drop it, or set EAGATE_TEST_DATABASE_URL \
                         to another server"
                    );
                    // Used now: another run's sweep leaves it alone.
                    mark(&mut conn, &name, Marker::new(Kind::Template, unix_now())).await;
                }
                None => build_template(&mut conn, &name).await,
            }
            exec(&mut conn, &format!("SELECT pg_advisory_unlock({LOCK})")).await;
            name
        })
        .await
}

/// Creates, migrates and renames into place the template `name`. The
/// marker goes on before the rename (a comment follows the database), so
/// the template is never unmarked.
async fn build_template(conn: &mut AsyncPgConnection, name: &str) {
    let building = format!("{name}_building");
    if let Some(leftover) = find(conn, &building).await {
        // A build that died half-way; ours only if marked.
        assert!(
            leftover.marker().is_some(),
            "database {building} exists but eagate-testkit did not create it (no marker \
             comment): rename or drop it"
        );
        drop_own(conn, &leftover).await;
    }
    create_marked(conn, &building, None, Marker::new(Kind::Building, unix_now())).await;
    let url = url_for(server_url().await, &building);
    eagate_postgres::migrate::run_pending(&url)
        .await
        .unwrap_or_else(|e| panic!("migrating the test template: {e}"));
    mark(conn, &building, Marker::new(Kind::Template, unix_now())).await;
    exec(
        conn,
        &format!("ALTER DATABASE {} RENAME TO {}", quoted(&building), quoted(name)),
    )
    .await;
}

/// A database of this test's own, dropped when the guard is dropped.
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
    url: String,
}

impl TestDatabase {
    /// A fresh, fully migrated database.
    pub async fn migrated() -> Self {
        let template = template().await;
        Self::create(Some(template)).await
    }

    /// A fresh database with no tables, for migration tests.
    pub async fn empty() -> Self {
        Self::create(None).await
    }

    async fn create(template: Option<&str>) -> Self {
        let now = unix_now();
        let name = format!("{PREFIX}{now}_{}", uuid::Uuid::new_v4().simple());
        let mut conn = admin().await;
        create_marked(&mut conn, &name, template, Marker::new(Kind::Database, now)).await;
        let url = url_for(server_url().await, &name);
        Self { name, url }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// A small pool on this database.
    pub fn pool(&self) -> PgPool {
        let config = PoolConfig {
            max_size: 4,
            ..PoolConfig::default()
        };
        create_pool(&self.url, &config).expect("building a test pool")
    }

    /// A direct connection, for inspecting raw rows.
    pub async fn connect(&self) -> AsyncPgConnection {
        AsyncPgConnection::establish(&self.url)
            .await
            .unwrap_or_else(|e| panic!("connecting to {}: {e}", self.name))
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if !drop_blocking(&self.name) {
            eprintln!(
                "warning: could not drop test database {}; a test run will sweep it after two hours",
                self.name
            );
        }
    }
}

/// Drops the database `name`, which the caller created, from any context
/// (inside or outside a runtime: it uses a thread of its own). Whether it
/// worked.
pub(crate) fn drop_blocking(name: &str) -> bool {
    let name = name.to_owned();
    let dropped = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async {
            let url = server_url().await.to_owned();
            let mut conn = AsyncPgConnection::establish(&url).await?;
            diesel::sql_query(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quoted(&name)))
                .execute(&mut conn)
                .await?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        })
    })
    .join();
    matches!(dropped, Ok(Ok(())))
}

/// The Redis tests use: `EAGATE_TEST_REDIS_URL`, else 127.0.0.1:6379 —
/// started here (`redis-server --daemonize yes`, nothing persisted) when it
/// is installed but not running. Panics with what is missing otherwise.
pub fn redis_url() -> String {
    static URL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    URL.get_or_init(|| {
        if let Ok(url) = std::env::var("EAGATE_TEST_REDIS_URL") {
            return url;
        }
        let addr = SocketAddr::from(([127, 0, 0, 1], 6379));
        let up = || TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok();
        if !up() {
            let dir = std::env::temp_dir().join("eagate-test-redis");
            let _ = std::fs::create_dir_all(&dir);
            let started = std::process::Command::new("redis-server")
                .args(["--daemonize", "yes", "--bind", "127.0.0.1", "--port", "6379", "--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(&dir)
                .status();
            if started.is_err() {
                panic!(
                    "these tests need Redis: nothing listens on 127.0.0.1:6379 and `redis-server` is not installed \
                     (apt-get install redis-server), or set EAGATE_TEST_REDIS_URL"
                );
            }
            for _ in 0..50 {
                if up() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            assert!(up(), "started redis-server, but 127.0.0.1:6379 does not answer");
        }
        "redis://127.0.0.1:6379".to_owned()
    })
    .clone()
}

#[cfg(test)]
mod tests {
    use super::url_for;

    #[test]
    fn url_for_replaces_only_the_database() {
        assert_eq!(
            url_for("postgres://u@h:5432/postgres", "x"),
            "postgres://u@h:5432/x"
        );
        assert_eq!(
            url_for("postgres://u@h:5432/postgres?sslmode=disable", "x"),
            "postgres://u@h:5432/x?sslmode=disable"
        );
        assert_eq!(url_for("postgres://u@h:5432", "x"), "postgres://u@h:5432/x");
    }
}
