//! The processes under test: eagate (release build, production mode, its
//! own fresh database) and the bare actix-web ceiling, optionally under
//! callgrind.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use diesel::QueryableByName;
use diesel::sql_types::{Nullable, Text};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use eagate_testkit::databases::{PREFIX, database_marker, is_marked};

/// A database created for one harness run and dropped at its end.
///
/// Named `eagate_test_load_<pid>_<unix time>` and marked with the test
/// harness's `COMMENT ON DATABASE` marker (`eagate_testkit::databases`), so
/// the same rule holds as for the tests: only a database with both the name
/// and the marker is ever dropped, by this harness (its own, or one left by
/// a harness process that no longer exists) or by the tests' sweep once it
/// is two hours old. Anything else on the server is left alone, whatever
/// its name.
#[derive(Debug)]
pub struct Database {
    admin_url: String,
    pub name: String,
    pub url: String,
}

/// A database on the server, with its comment.
#[derive(Debug, Clone, QueryableByName)]
struct ServerDatabase {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Nullable<Text>)]
    comment: Option<String>,
}

/// `postgres://…/db` with the database name replaced.
pub fn url_with_database(url: &str, name: &str) -> String {
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

/// What every load harness database name starts with.
fn load_prefix() -> String {
    format!("{PREFIX}load_")
}

/// The pid in a harness database name `eagate_test_load_<pid>_<n>`.
pub fn owner_pid(database: &str) -> Option<u32> {
    database
        .strip_prefix(&load_prefix())?
        .split('_')
        .next()?
        .parse()
        .ok()
}

/// Whether the start-up sweep drops `name`: a load harness database (name
/// and marker) whose process is gone.
fn left_by_a_dead_run(name: &str, comment: Option<&str>, alive: impl Fn(u32) -> bool) -> bool {
    is_marked(name, comment) && owner_pid(name).is_some_and(|pid| !alive(pid))
}

fn process_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

async fn load_databases(
    conn: &mut AsyncPgConnection,
    filter: &str,
    value: &str,
) -> Result<Vec<ServerDatabase>> {
    let sql = format!(
        "SELECT datname AS name, shobj_description(oid, 'pg_database') AS comment \
         FROM pg_database WHERE {filter}"
    );
    Ok(diesel::sql_query(sql).bind::<Text, _>(value).load(conn).await?)
}

impl Database {
    /// Creates and marks `eagate_test_load_<pid>_<unix time>`, first
    /// dropping marked load databases of harness processes that no longer
    /// exist.
    pub async fn create(admin_url: &str) -> Result<Self> {
        let mut conn = AsyncPgConnection::establish(admin_url).await.with_context(|| {
            format!("connecting to PostgreSQL at {admin_url} (is it running? scripts/ensure-services.sh)")
        })?;
        for db in load_databases(&mut conn, "starts_with(datname, $1)", &load_prefix()).await? {
            if left_by_a_dead_run(&db.name, db.comment.as_deref(), process_alive) {
                diesel::sql_query(format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", db.name))
                    .execute(&mut conn)
                    .await?;
            }
        }
        let now = u64::try_from(crate::presign::unix_now()).unwrap_or_default();
        let name = format!("{}{}_{now}", load_prefix(), std::process::id());
        diesel::sql_query(format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .await
            .with_context(|| format!("creating database {name} (an existing one is left alone)"))?;
        // The marker is ours: letters, digits and colons only.
        let marked = diesel::sql_query(format!(
            "COMMENT ON DATABASE \"{name}\" IS '{}'",
            database_marker(now)
        ))
        .execute(&mut conn)
        .await;
        if let Err(e) = marked {
            // Created a moment ago and unmarked: ours to drop.
            let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .execute(&mut conn)
                .await;
            return Err(e).with_context(|| format!("marking database {name}"));
        }
        Ok(Self {
            admin_url: admin_url.to_owned(),
            url: url_with_database(admin_url, &name),
            name,
        })
    }

    /// Drops the database, if it still carries the marker.
    pub async fn drop_now(&self) -> Result<()> {
        let mut conn = AsyncPgConnection::establish(&self.admin_url).await?;
        let Some(db) = load_databases(&mut conn, "datname = $1", &self.name).await?.pop() else {
            return Ok(());
        };
        if !is_marked(&db.name, db.comment.as_deref()) {
            bail!(
                "refusing to drop database {}: it no longer carries the harness marker",
                db.name
            );
        }
        diesel::sql_query(format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name))
            .execute(&mut conn)
            .await?;
        Ok(())
    }
}

/// A running server process.
#[derive(Debug)]
pub struct Server {
    child: tokio::process::Child,
    pub pid: u32,
    pub addr: SocketAddr,
    pub label: String,
    pub log: PathBuf,
}

/// The address in a line `… listening on 127.0.0.1:PORT …` (development,
/// the ceiling) or a JSON line `{"message":"eagate listening","url":"http://127.0.0.1:PORT"}`
/// (production).
pub fn listening_addr(log: &str) -> Option<SocketAddr> {
    log.lines().find_map(|line| {
        if line.contains("\"eagate listening\"")
            && let Some(at) = line.find("\"url\":\"")
        {
            let rest = &line[at + "\"url\":\"".len()..];
            let url = &rest[..rest.find('"')?];
            let authority = url.split("://").nth(1)?.trim_end_matches('/');
            return authority.parse().ok();
        }
        let rest = &line[line.find("listening on ")? + "listening on ".len()..];
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// How to start a server.
#[derive(Debug, Clone)]
pub struct Launch {
    pub label: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Run under `valgrind --tool=callgrind` writing dumps to this prefix.
    pub callgrind: Option<PathBuf>,
    pub startup_timeout: Duration,
}

/// Variables a developer's shell might hold that would change what is
/// measured: not passed on to servers.
fn inherited(name: &str) -> bool {
    !(name.starts_with("EAGATE_") || name == "RUST_LOG" || name.starts_with("OTEL_") || name == "TEST_LOG")
}

impl Server {
    /// Starts the process with stdout and stderr in `<dir>/<label>.log`
    /// and waits until it says where it listens.
    pub async fn start(launch: &Launch, dir: &Path) -> Result<Self> {
        let log = dir.join(format!("{}.log", launch.label));
        let out = std::fs::File::create(&log).with_context(|| log.display().to_string())?;
        let err = out.try_clone()?;
        let mut cmd = match &launch.callgrind {
            Some(prefix) => {
                let mut c = tokio::process::Command::new("valgrind");
                c.arg("--tool=callgrind")
                    .arg(format!("--callgrind-out-file={}", prefix.display()))
                    .arg("--instr-atstart=yes")
                    .arg("--separate-threads=no")
                    .arg(&launch.program);
                c
            }
            None => tokio::process::Command::new(&launch.program),
        };
        cmd.args(&launch.args)
            .env_clear()
            .envs(std::env::vars().filter(|(k, _)| inherited(k)))
            .envs(launch.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {}", launch.program.display()))?;
        let pid = child
            .id()
            .ok_or_else(|| anyhow!("{} exited at once", launch.label))?;
        let started = Instant::now();
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(addr) = listening_addr(&text) {
                return Ok(Self {
                    child,
                    pid,
                    addr,
                    label: launch.label.clone(),
                    log,
                });
            }
            if let Some(status) = child.try_wait()? {
                bail!(
                    "{} exited ({status}) before listening:\n{}",
                    launch.label,
                    tail(&text, 40)
                );
            }
            if started.elapsed() > launch.startup_timeout {
                bail!(
                    "{} did not listen within {:?}:\n{}",
                    launch.label,
                    launch.startup_timeout,
                    tail(&text, 40)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Kills the process and waits for it.
    pub async fn stop(mut self) -> Result<()> {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
        Ok(())
    }
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Runs `eagate migrate up` with the server's environment.
pub async fn migrate(program: &Path, env: &[(String, String)]) -> Result<()> {
    let out = tokio::process::Command::new(program)
        .args(["migrate", "up"])
        .env_clear()
        .envs(std::env::vars().filter(|(k, _)| inherited(k)))
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .await
        .with_context(|| format!("running {} migrate up", program.display()))?;
    if !out.status.success() {
        bail!(
            "eagate migrate up failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_listening_address() {
        let log = "{\"level\":\"INFO\",\"message\":\"eagate listening\"}\neagate listening on 127.0.0.1:41234 (API under /api/v1)\n";
        assert_eq!(listening_addr(log), Some("127.0.0.1:41234".parse().unwrap()));
        assert_eq!(
            listening_addr("listening on 127.0.0.1:8080\n"),
            Some("127.0.0.1:8080".parse().unwrap())
        );
        assert_eq!(listening_addr("starting\n"), None);
        let json = r#"{"level":"INFO","message":"eagate listening","url":"http://127.0.0.1:44625","target":"eagate"}"#;
        assert_eq!(listening_addr(json), Some("127.0.0.1:44625".parse().unwrap()));
    }

    #[test]
    fn database_urls_and_owners() {
        assert_eq!(
            url_with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            url_with_database("postgres://u:p@h/postgres?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(url_with_database("postgres://h:1", "x"), "postgres://h:1/x");
        assert_eq!(owner_pid("eagate_test_load_1234_1795305600"), Some(1234));
        assert_eq!(owner_pid("eagate_template"), None);
        assert_eq!(owner_pid("eagate_test_load_x_1"), None);
        assert_eq!(
            owner_pid("eagate_load_1234_1795305600"),
            None,
            "the old unmarked names"
        );
    }

    #[test]
    fn only_marked_load_databases_of_dead_runs_are_swept() {
        let marker = database_marker(1_795_305_600);
        let dead = |_| false;
        let alive = |_| true;
        assert!(
            left_by_a_dead_run("eagate_test_load_42_1795305600", Some(&marker), dead),
            "our own leftover of a dead run"
        );
        assert!(
            !left_by_a_dead_run("eagate_test_load_42_1795305600", Some(&marker), alive),
            "a live run's database"
        );
        for (name, comment) in [
            ("eagate_load_42_1795305600", None),
            ("eagate_load_42_1795305600", Some(marker.as_str())),
            ("eagate_test_load_42_1795305600", None),
            ("eagate_test_load_42_1795305600", Some("customer data")),
            ("eagate_test_load_x_1795305600", Some(marker.as_str())),
            ("eagate_test_42_1795305600", Some(marker.as_str())),
            ("test_42_1795305600", Some(marker.as_str())),
        ] {
            assert!(
                !left_by_a_dead_run(name, comment, dead),
                "{name} with comment {comment:?} is not ours to drop"
            );
        }
    }

    fn admin_url() -> String {
        std::env::var("EAGATE_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
    }

    async fn exists(conn: &mut AsyncPgConnection, name: &str) -> Option<ServerDatabase> {
        load_databases(conn, "datname = $1", name).await.unwrap().pop()
    }

    /// Against the real server: look-alikes of every kind survive a
    /// harness start and end; the harness's own leftover of a dead run and
    /// its own database are dropped.
    #[tokio::test]
    async fn look_alike_databases_survive_the_load_harness() {
        let admin = admin_url();
        let mut conn = AsyncPgConnection::establish(&admin)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {admin}: {e}"));
        // Above Linux's largest pid_max: never a live process.
        let dead = 9_000_000 + std::process::id() % 100_000;
        let marker = database_marker(u64::try_from(crate::presign::unix_now()).unwrap());
        let foreign = [
            (format!("eagate_load_{dead}_1"), None),
            (format!("{}{dead}_2", load_prefix()), None),
            (format!("{}{dead}_3", load_prefix()), Some("customer data")),
            (format!("eagate_test_{dead}_4"), Some(marker.as_str())),
        ];
        let leftover = format!("{}{dead}_5", load_prefix());
        for (name, comment) in foreign
            .iter()
            .map(|(n, c)| (n.as_str(), *c))
            .chain([(leftover.as_str(), Some(marker.as_str()))])
        {
            diesel::sql_query(format!("CREATE DATABASE \"{name}\""))
                .execute(&mut conn)
                .await
                .unwrap();
            if let Some(comment) = comment {
                diesel::sql_query(format!("COMMENT ON DATABASE \"{name}\" IS '{comment}'"))
                    .execute(&mut conn)
                    .await
                    .unwrap();
            }
        }

        let db = Database::create(&admin).await.unwrap();
        let own = exists(&mut conn, &db.name)
            .await
            .expect("the run's database exists");
        assert!(
            is_marked(&own.name, own.comment.as_deref()),
            "{} is marked: {:?}",
            own.name,
            own.comment
        );
        assert!(
            exists(&mut conn, &leftover).await.is_none(),
            "the marked leftover of a dead run is swept"
        );
        db.drop_now().await.unwrap();
        assert!(
            exists(&mut conn, &db.name).await.is_none(),
            "the run's database is dropped"
        );

        let mut survivors = Vec::new();
        for (name, _) in &foreign {
            survivors.push(exists(&mut conn, name).await.is_some());
            diesel::sql_query(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .execute(&mut conn)
                .await
                .unwrap();
        }
        assert_eq!(survivors, [true; 4], "every look-alike in {foreign:?} survives");
    }

    #[test]
    fn developer_settings_do_not_leak_into_servers() {
        assert!(!inherited("EAGATE_DATABASE_URL"));
        assert!(!inherited("RUST_LOG"));
        assert!(!inherited("OTEL_EXPORTER_OTLP_ENDPOINT"));
        assert!(inherited("PATH"));
        assert!(inherited("HOME"));
    }

    #[test]
    fn tails() {
        assert_eq!(tail("a\nb\nc", 2), "b\nc");
        assert_eq!(tail("a", 5), "a");
    }
}
