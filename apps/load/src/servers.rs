//! The processes under test: eagate (release build, production mode, its
//! own fresh database) and the bare actix-web ceiling, optionally under
//! callgrind.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use diesel::QueryableByName;
use diesel::sql_types::Text;
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};

/// A database created for one harness run and dropped at its end.
#[derive(Debug)]
pub struct Database {
    admin_url: String,
    pub name: String,
    pub url: String,
}

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    datname: String,
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

/// The pid in a harness database name `eagate_load_<pid>_<n>`.
pub fn owner_pid(database: &str) -> Option<u32> {
    database
        .strip_prefix("eagate_load_")?
        .split('_')
        .next()?
        .parse()
        .ok()
}

impl Database {
    /// Creates `eagate_load_<pid>_<unix time>`, first dropping databases
    /// left by harness processes that no longer exist.
    pub async fn create(admin_url: &str) -> Result<Self> {
        let mut conn = AsyncPgConnection::establish(admin_url).await.with_context(|| {
            format!("connecting to PostgreSQL at {admin_url} (is it running? scripts/ensure-services.sh)")
        })?;
        let existing: Vec<Name> =
            diesel::sql_query("SELECT datname FROM pg_database WHERE datname LIKE 'eagate\\_load\\_%'")
                .load(&mut conn)
                .await?;
        for db in existing {
            if let Some(pid) = owner_pid(&db.datname)
                && !Path::new(&format!("/proc/{pid}")).exists()
            {
                diesel::sql_query(format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", db.datname))
                    .execute(&mut conn)
                    .await?;
            }
        }
        let name = format!(
            "eagate_load_{}_{}",
            std::process::id(),
            crate::presign::unix_now()
        );
        diesel::sql_query(format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .await
            .with_context(|| format!("creating database {name}"))?;
        Ok(Self {
            admin_url: admin_url.to_owned(),
            url: url_with_database(admin_url, &name),
            name,
        })
    }

    pub async fn drop_now(&self) -> Result<()> {
        let mut conn = AsyncPgConnection::establish(&self.admin_url).await?;
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
        assert_eq!(owner_pid("eagate_load_1234_1795305600"), Some(1234));
        assert_eq!(owner_pid("eagate_template"), None);
        assert_eq!(owner_pid("eagate_load_x_1"), None);
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
