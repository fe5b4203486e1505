//! A PostgreSQL server of our own, started from the machine's PostgreSQL
//! binaries, for development and tests on machines where no database is
//! configured.
//!
//! The cluster lives in a directory of the caller's choosing (the server uses
//! `.eagate/postgres`) and is kept across restarts; a running cluster is
//! reused. It listens on 127.0.0.1 only, with trust authentication for the
//! `postgres` user. PostgreSQL refuses to run as root, so as root the cluster
//! is owned by and run as the `postgres` system account.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

const INSTALL_HINT: &str = "install the PostgreSQL server (Debian/Ubuntu: `apt-get install postgresql`), \
     or point eagate at an existing database with EAGATE_DATABASE_URL";

#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error(
        "PostgreSQL server binaries (initdb, pg_ctl) were not found on PATH or under /usr/lib/postgresql: {INSTALL_HINT}"
    )]
    BinariesMissing,
    #[error(
        "running as root, PostgreSQL must run as the `postgres` system user, which does not exist: \
         create it (`useradd --system postgres`), or set EAGATE_DATABASE_URL"
    )]
    NoPostgresUser,
    #[error(
        "the `postgres` system user it runs as (PostgreSQL refuses to run as root) cannot enter \
         {blocked}, on the way to {dir}. Let it in (`chmod o+x {blocked}`), keep the data where it \
         can go (the server: EAGATE_DATA_DIR=/var/tmp/eagate), or use a PostgreSQL server you \
         already run (EAGATE_DATABASE_URL; for the tests EAGATE_TEST_DATABASE_URL)"
    )]
    Unreachable { dir: String, blocked: String },
    #[error("{step} failed: {detail}")]
    Command { step: &'static str, detail: String },
    #[error("{0}: {1}")]
    Io(String, #[source] std::io::Error),
}

/// A running embedded cluster.
#[derive(Debug, Clone)]
pub struct EmbeddedPostgres {
    data_dir: PathBuf,
    bin_dir: PathBuf,
    port: u16,
    run_as_postgres: bool,
}

impl EmbeddedPostgres {
    /// Initialises the cluster under `dir` if needed and starts it unless it
    /// is already running. Blocking: call from `spawn_blocking` or start-up.
    pub fn start(dir: &Path) -> Result<Self, EmbeddedError> {
        let bin_dir = find_bin_dir().ok_or(EmbeddedError::BinariesMissing)?;
        let run_as_postgres = std::fs::metadata("/proc/self")
            .map(|m| m.uid() == 0)
            .unwrap_or(false);
        if run_as_postgres && !user_exists("postgres") {
            return Err(EmbeddedError::NoPostgresUser);
        }
        std::fs::create_dir_all(dir)
            .map_err(|e| EmbeddedError::Io(format!("creating {}", dir.display()), e))?;
        let dir = dir
            .canonicalize()
            .map_err(|e| EmbeddedError::Io(format!("resolving {}", dir.display()), e))?;
        let mut pg = Self {
            data_dir: dir.join("data"),
            bin_dir,
            port: 0,
            run_as_postgres,
        };
        if run_as_postgres {
            // A checkout under a directory such as /root (mode 0700) puts
            // the data where the postgres user cannot go; initdb would only
            // say "Permission denied".
            if let Some(parent) = dir.parent()
                && !postgres_can_enter(parent)
            {
                let blocked =
                    first_blocked(parent, postgres_can_enter).unwrap_or_else(|| parent.to_path_buf());
                return Err(EmbeddedError::Unreachable {
                    dir: dir.display().to_string(),
                    blocked: blocked.display().to_string(),
                });
            }
            pg.chown(&dir)?;
        }
        if !pg.data_dir.join("PG_VERSION").exists() {
            pg.initdb()?;
        }
        let port_file = dir.join("port");
        if let Some(port) = std::fs::read_to_string(&port_file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            pg.port = port;
            if pg.is_running() && accepts_connections(port) {
                tracing::info!(port, dir = %dir.display(), "reusing the running embedded PostgreSQL");
                return Ok(pg);
            }
        }
        // Use the remembered port when it is free, else any free port.
        if pg.port == 0 || !port_is_free(pg.port) {
            pg.port = free_port().map_err(|e| EmbeddedError::Io("finding a free port".into(), e))?;
        }
        std::fs::write(&port_file, pg.port.to_string())
            .map_err(|e| EmbeddedError::Io(format!("writing {}", port_file.display()), e))?;
        pg.pg_ctl_start(&dir)?;
        tracing::info!(port = pg.port, dir = %dir.display(), "started embedded PostgreSQL");
        Ok(pg)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A connection URL for `database` on this cluster.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Stops the cluster (fast shutdown).
    pub fn stop(&self) -> Result<(), EmbeddedError> {
        let data = self.data_dir.display().to_string();
        self.run(
            "pg_ctl stop",
            "pg_ctl",
            &["stop", "-D", &data, "-m", "fast", "-w"],
        )
        .map(drop)
    }

    fn is_running(&self) -> bool {
        let data = self.data_dir.display().to_string();
        self.command("pg_ctl", &["status", "-D", &data])
            .output()
            .is_ok_and(|o| o.status.success())
    }

    fn initdb(&self) -> Result<(), EmbeddedError> {
        let data = self.data_dir.display().to_string();
        self.run(
            "initdb",
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-instructions",
            ],
        )
        .map(drop)
    }

    fn pg_ctl_start(&self, dir: &Path) -> Result<(), EmbeddedError> {
        let data = self.data_dir.display().to_string();
        let log = dir.join("postgres.log").display().to_string();
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c max_connections=200",
            self.port,
            dir.display()
        );
        self.run(
            "pg_ctl start",
            "pg_ctl",
            &["start", "-D", &data, "-l", &log, "-w", "-t", "60", "-o", &options],
        )
        .map_err(|e| match e {
            EmbeddedError::Command { step, detail } => EmbeddedError::Command {
                step,
                detail: format!("{detail} (see {log})"),
            },
            other => other,
        })
        .map(drop)
    }

    fn chown(&self, dir: &Path) -> Result<(), EmbeddedError> {
        let status = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(dir)
            .status()
            .map_err(|e| EmbeddedError::Io("running chown".into(), e))?;
        if !status.success() {
            return Err(EmbeddedError::Command {
                step: "chown",
                detail: format!("could not give {} to the postgres user", dir.display()),
            });
        }
        Ok(())
    }

    fn command(&self, program: &str, args: &[&str]) -> Command {
        let binary = self.bin_dir.join(program);
        let mut command = if self.run_as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(binary);
            c
        } else {
            Command::new(binary)
        };
        command.args(args).current_dir("/");
        command
    }

    fn run(&self, step: &'static str, program: &str, args: &[&str]) -> Result<Output, EmbeddedError> {
        let output = self
            .command(program, args)
            .output()
            .map_err(|e| EmbeddedError::Io(format!("running {program}"), e))?;
        if output.status.success() {
            Ok(output)
        } else {
            let mut detail = String::from_utf8_lossy(&output.stderr).trim().to_owned();
            if detail.is_empty() {
                detail = String::from_utf8_lossy(&output.stdout).trim().to_owned();
            }
            Err(EmbeddedError::Command { step, detail })
        }
    }
}

/// The directory holding `initdb` and `pg_ctl`: from PATH, else the newest
/// Debian-style `/usr/lib/postgresql/<version>/bin`.
fn find_bin_dir() -> Option<PathBuf> {
    let has_both = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(path) = std::env::var_os("PATH")
        && let Some(dir) = std::env::split_paths(&path).find(|d| has_both(d))
    {
        return Some(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            Some((version, e.path().join("bin")))
        })
        .filter(|(_, bin)| has_both(bin))
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// Whether the `postgres` user may search (enter) `dir`, which needs search
/// permission on every directory above it too.
fn postgres_can_enter(dir: &Path) -> bool {
    Command::new("runuser")
        .args(["-u", "postgres", "--", "test", "-x"])
        .arg(dir)
        .current_dir("/")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The outermost directory on the way to `dir` (from `/` down, `dir`
/// included) that `can_enter` refuses.
fn first_blocked(dir: &Path, can_enter: impl Fn(&Path) -> bool) -> Option<PathBuf> {
    let mut chain: Vec<&Path> = dir.ancestors().collect();
    chain.reverse();
    chain.into_iter().find(|p| !can_enter(p)).map(Path::to_path_buf)
}

fn user_exists(name: &str) -> bool {
    Command::new("id")
        .args(["-u", name])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn port_is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

fn accepts_connections(port: u16) -> bool {
    TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)), Duration::from_secs(1)).is_ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::os::unix::fs::PermissionsExt as _;
    use std::path::{Path, PathBuf};

    use super::{EmbeddedError, EmbeddedPostgres, find_bin_dir, first_blocked, user_exists};

    #[test]
    fn first_blocked_names_the_outermost_directory_refused() {
        let refuse = |blocked: &'static str| move |p: &Path| !p.starts_with(blocked);
        assert_eq!(
            first_blocked(Path::new("/home/ann/src/eagate/.eagate"), refuse("/home/ann")),
            Some(PathBuf::from("/home/ann"))
        );
        assert_eq!(
            first_blocked(Path::new("/srv/eagate/.eagate"), refuse("/srv/eagate/.eagate")),
            Some(PathBuf::from("/srv/eagate/.eagate"))
        );
        assert_eq!(first_blocked(Path::new("/srv/eagate"), |_| true), None);
    }

    /// As root, a data directory below a 0700 directory is refused before
    /// initdb runs, with the directory to open and the alternatives.
    #[test]
    fn a_data_directory_the_postgres_user_cannot_reach_is_named_with_what_to_do() {
        let is_root = std::fs::metadata("/proc/self")
            .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
            .unwrap_or(false);
        if !is_root || !user_exists("postgres") || find_bin_dir().is_none() {
            eprintln!("skipped: needs root, the postgres user and the PostgreSQL binaries");
            return;
        }
        let private = std::env::temp_dir().join(format!("eagate-private-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir(&private).unwrap();
        std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
        let dir = private.join("checkout/.eagate/postgres");

        let result = EmbeddedPostgres::start(&dir);
        let data_was_created = dir.join("data").exists();
        std::fs::remove_dir_all(&private).unwrap();

        match result {
            Err(e @ EmbeddedError::Unreachable { .. }) => {
                let message = e.to_string();
                let private = private.display().to_string();
                assert!(message.contains(&format!("cannot enter {private},")), "{message}");
                assert!(message.contains(&format!("chmod o+x {private}")), "{message}");
                assert!(message.contains("EAGATE_DATA_DIR="), "{message}");
                assert!(message.contains("EAGATE_DATABASE_URL"), "{message}");
            }
            other => panic!("expected Unreachable, got {other:?}"),
        }
        assert!(!data_was_created, "nothing is initialised");
    }
}
