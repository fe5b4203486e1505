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
