//! What the fault tests own and break: a PostgreSQL cluster and a Redis
//! server of their own (never the machine's shared ones), the `eagate`
//! binary as a child process, and a client that records every answer.

use std::io::{BufRead as _, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use eagate_client::{Signer, new_nonce};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::watch;

pub const PASSWORD: &str = "correct horse battery staple";

/// The pool settings every fault test runs with: a request waits at most
/// this long for a pooled connection (and a new connection at most this
/// long to open).
pub const POOL_TIMEOUT: Duration = Duration::from_secs(1);

/// The longest any answer that does not long-poll may take while a
/// dependency is down: the pool wait plus a connection attempt plus
/// generous slack for a busy 2-core CI machine. A hang is far longer.
pub const ANSWER_BOUND: Duration = Duration::from_secs(6);

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free local port")
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
}

/// A scratch directory under the system temp directory, removed on drop.
#[derive(Debug)]
struct Scratch(PathBuf);

const SCRATCH_PREFIX: &str = "eagate-faults-";

impl Scratch {
    /// A new directory, marked with this test process's pid so that a
    /// later run can clean up after a run that was killed.
    fn new(what: &str) -> Self {
        static SWEPT: std::sync::Once = std::sync::Once::new();
        SWEPT.call_once(sweep_leftovers);
        let dir = std::env::temp_dir().join(format!(
            "{SCRATCH_PREFIX}{what}-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("owner"), std::process::id().to_string()).unwrap();
        Self(dir)
    }

    /// Records a process started for this directory's owner.
    fn record(&self, name: &str, pid: u32) {
        std::fs::write(self.0.join(format!("{name}.pid")), pid.to_string()).unwrap();
    }
}

/// Whether process `pid` runs and its command line mentions `program`.
fn running(pid: &str, program: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| String::from_utf8_lossy(&c).contains(program))
}

/// Stops what a killed earlier run left behind — only in directories this
/// harness made, whose owning test process is gone: its `eagate` and
/// `redis-server` children (SIGKILL) and its PostgreSQL (SIGQUIT to the
/// postmaster: immediate shutdown). Nothing else is touched.
fn sweep_leftovers() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for dir in entries.filter_map(Result::ok).map(|e| e.path()) {
        let named = dir
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(SCRATCH_PREFIX));
        let Ok(owner) = std::fs::read_to_string(dir.join("owner")) else {
            continue;
        };
        if !named || Path::new(&format!("/proc/{}", owner.trim())).exists() {
            continue;
        }
        let read = |file: &str| {
            std::fs::read_to_string(dir.join(file))
                .ok()
                .and_then(|s| s.lines().next().map(str::to_owned))
        };
        let mut stopping = Vec::new();
        for (file, program, signal) in [
            ("server.pid", "eagate", "-KILL"),
            ("redis.pid", "redis-server", "-KILL"),
            ("data/postmaster.pid", "postgres", "-QUIT"),
        ] {
            if let Some(pid) = read(file)
                && running(&pid, program)
            {
                let _ = Command::new("kill").args([signal, &pid]).status();
                stopping.push((pid, program));
            }
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while stopping.iter().any(|(pid, program)| running(pid, program)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs blocking work (a `pg_ctl`, a process wait) off the async workers,
/// so the load the test drives keeps running meanwhile.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

/// Waits until `check` returns `Some`, checking every 20 ms, for at most
/// `within`: a readiness signal, not a sleep.
pub async fn until<T>(what: &str, within: Duration, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------------------
// PostgreSQL

/// A PostgreSQL cluster this test created (`initdb`) on a free port, run as
/// the `postgres` system user when the test runs as root (PostgreSQL refuses
/// root), as `crates/postgres/src/embedded.rs` does. Stopped and removed on
/// drop. The server under test uses its database `eagate`.
#[derive(Debug, Clone)]
pub struct Postgres(Arc<PgCluster>);

#[derive(Debug)]
struct PgCluster {
    scratch: Scratch,
    frozen: std::sync::atomic::AtomicBool,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
}

fn pg_bin_dir() -> PathBuf {
    let has = |d: &Path| d.join("initdb").is_file() && d.join("pg_ctl").is_file();
    if let Some(dir) = std::env::var_os("PATH").and_then(|p| std::env::split_paths(&p).find(|d| has(d))) {
        return dir;
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin)| has(bin))
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).unwrap_or_else(|| {
        panic!(
            "the fault tests start their own PostgreSQL: install the server binaries \
             (initdb, pg_ctl; Debian: apt-get install postgresql)"
        )
    })
}

impl PgCluster {
    fn data(&self) -> String {
        self.scratch.0.join("data").display().to_string()
    }

    fn command(&self, program: &str) -> Command {
        let binary = self.bin.join(program);
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(binary);
            c
        } else {
            Command::new(binary)
        };
        command.current_dir("/").stdin(Stdio::null());
        command
    }

    fn run(&self, program: &str, args: &[&str]) -> Result<(), String> {
        let output = self
            .command(program)
            .args(args)
            .output()
            .map_err(|e| format!("{program}: {e}"))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{program} {args:?}: {}{}",
                String::from_utf8_lossy(&output.stderr),
                String::from_utf8_lossy(&output.stdout)
            ))
        }
    }

    /// Sends `signal` to the postmaster, then to every backend: stopped
    /// first, the postmaster cannot fork a backend the second step misses.
    fn signal(&self, signal: &str) {
        // A backend may exit between the listing and the signal; `kill`
        // still signals the others.
        let kill = |pids: &[String]| {
            let _ = Command::new("kill")
                .arg(format!("-{signal}"))
                .args(pids)
                .stderr(Stdio::null())
                .status();
        };
        let postmaster = std::fs::read_to_string(self.scratch.0.join("data/postmaster.pid")).unwrap();
        let postmaster = postmaster.lines().next().unwrap().trim().to_owned();
        self.frozen
            .store(signal == "STOP", std::sync::atomic::Ordering::SeqCst);
        kill(std::slice::from_ref(&postmaster));
        let mut children = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().filter_map(Result::ok) {
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            // `pid (comm) state ppid …`
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1));
            if ppid == Some(postmaster.as_str()) {
                children.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        if !children.is_empty() {
            kill(&children);
        }
    }

    fn pg_ctl_start(&self) {
        let log = self.scratch.0.join("postgres.log").display().to_string();
        // fsync off: these tests crash processes, not the machine; a
        // committed transaction is in the WAL written to the OS before the
        // client hears of it either way.
        let mut options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60",
            self.port,
            self.scratch.0.display()
        );
        // Statement counts for the scale-out tests' measurements, where the
        // server has the module (Debian: always).
        let lib = std::fs::canonicalize(self.bin.join("initdb"))
            .ok()
            .and_then(|p| Some(p.parent()?.parent()?.join("lib/pg_stat_statements.so")));
        if lib.is_some_and(|l| l.is_file()) {
            options.push_str(" -c shared_preload_libraries=pg_stat_statements");
        }
        let data = self.data();
        self.run(
            "pg_ctl",
            &["start", "-D", &data, "-l", &log, "-w", "-t", "60", "-o", &options],
        )
        .unwrap_or_else(|e| {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            panic!("{e}\npostgres.log:\n{log}")
        });
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if std::sync::atomic::AtomicBool::load(&self.frozen, std::sync::atomic::Ordering::SeqCst) {
            self.signal("CONT");
        }
        let data = self.data();
        let _ = self.run("pg_ctl", &["stop", "-D", &data, "-m", "immediate", "-w"]);
    }
}

impl Postgres {
    /// `initdb`, start, and create the database `eagate`.
    pub async fn start() -> Self {
        let cluster = blocking(|| {
            let scratch = Scratch::new("pg");
            let as_postgres = is_root();
            if as_postgres {
                let status = Command::new("chown")
                    .args(["-R", "postgres:postgres"])
                    .arg(&scratch.0)
                    .status()
                    .unwrap();
                assert!(status.success(), "chown to the postgres user");
            }
            let cluster = PgCluster {
                scratch,
                frozen: std::sync::atomic::AtomicBool::new(false),
                bin: pg_bin_dir(),
                port: free_port(),
                as_postgres,
            };
            let data = cluster.data();
            cluster
                .run(
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
                        "--no-sync",
                    ],
                )
                .unwrap();
            cluster.pg_ctl_start();
            cluster
        })
        .await;
        let pg = Self(Arc::new(cluster));
        let mut admin = pg.connect("postgres").await;
        diesel::sql_query("CREATE DATABASE eagate")
            .execute(&mut admin)
            .await
            .unwrap();
        pg
    }

    pub fn url_of(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.0.port)
    }

    /// The database the server uses.
    pub fn url(&self) -> String {
        self.url_of("eagate")
    }

    pub async fn connect(&self, database: &str) -> AsyncPgConnection {
        AsyncPgConnection::establish(&self.url_of(database))
            .await
            .unwrap()
    }

    /// `pg_ctl stop -m <mode> -w`: `fast` (sessions are terminated, a
    /// checkpoint is written) or `immediate` (every process quits at once;
    /// crash recovery at the next start).
    pub async fn stop(&self, mode: &'static str) {
        let cluster = Arc::clone(&self.0);
        blocking(move || {
            let data = cluster.data();
            cluster
                .run("pg_ctl", &["stop", "-D", &data, "-m", mode, "-w"])
                .unwrap();
        })
        .await;
    }

    /// Sends `signal` to the postmaster and every backend (`STOP`: frozen,
    /// as a hung host: connections stay open and nothing answers; `CONT`:
    /// thawed).
    pub async fn signal(&self, signal: &'static str) {
        let cluster = Arc::clone(&self.0);
        blocking(move || cluster.signal(signal)).await;
    }

    /// Its port on 127.0.0.1.
    #[allow(dead_code)] // used by the scale-out tests (tests/scale)
    pub fn port(&self) -> u16 {
        self.0.port
    }

    /// A streaming replica of this cluster (`pg_basebackup -R -X stream`),
    /// started on a port of its own; returns once it accepts connections.
    #[allow(dead_code)] // used by the scale-out tests (tests/scale)
    pub async fn replica(&self) -> Self {
        let primary = Arc::clone(&self.0);
        let cluster = blocking(move || {
            let scratch = Scratch::new("pg");
            if primary.as_postgres {
                let status = Command::new("chown")
                    .args(["-R", "postgres:postgres"])
                    .arg(&scratch.0)
                    .status()
                    .unwrap();
                assert!(status.success(), "chown to the postgres user");
            }
            // pg_basebackup beside the real initdb (PATH may hold links to
            // the server programs only).
            let bin = std::fs::canonicalize(primary.bin.join("initdb"))
                .ok()
                .and_then(|p| p.parent().map(Path::to_path_buf))
                .filter(|d| d.join("pg_basebackup").is_file())
                .unwrap_or_else(|| primary.bin.clone());
            let cluster = PgCluster {
                scratch,
                frozen: std::sync::atomic::AtomicBool::new(false),
                bin,
                port: free_port(),
                as_postgres: primary.as_postgres,
            };
            let data = cluster.data();
            let port = primary.port.to_string();
            cluster
                .run(
                    "pg_basebackup",
                    &[
                        "-h",
                        "127.0.0.1",
                        "-p",
                        &port,
                        "-U",
                        "postgres",
                        "-D",
                        &data,
                        "-R",
                        "-X",
                        "stream",
                        "--checkpoint=fast",
                        "--no-sync",
                    ],
                )
                .unwrap();
            cluster.pg_ctl_start();
            cluster
        })
        .await;
        Self(Arc::new(cluster))
    }

    /// `pg_ctl promote -w`: a standby becomes a primary.
    #[allow(dead_code)] // used by the scale-out tests (tests/scale)
    pub async fn promote(&self) {
        let cluster = Arc::clone(&self.0);
        blocking(move || {
            let data = cluster.data();
            cluster.run("pg_ctl", &["promote", "-D", &data, "-w"]).unwrap();
        })
        .await;
    }

    /// Starts the stopped cluster again on the same port; returns once it
    /// accepts connections.
    pub async fn start_again(&self) {
        let cluster = Arc::clone(&self.0);
        blocking(move || cluster.pg_ctl_start()).await;
    }
}

// ---------------------------------------------------------------------------
// Redis

/// A `redis-server` this test started on a free port, without persistence;
/// killed on drop.
#[derive(Debug)]
pub struct Redis {
    port: u16,
    child: Mutex<Option<Child>>,
    scratch: Scratch,
}

impl Redis {
    pub async fn start() -> Self {
        let redis = Self {
            port: free_port(),
            child: Mutex::new(None),
            scratch: Scratch::new("redis"),
        };
        redis.start_again().await;
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn answers_ping(port: u16) -> bool {
        use std::io::{Read as _, Write as _};
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        let mut reply = [0u8; 7];
        stream.write_all(b"PING\r\n").is_ok()
            && stream.read_exact(&mut reply).is_ok()
            && &reply == b"+PONG\r\n"
    }

    /// Starts `redis-server` on this port; returns once it answers `PING`.
    pub async fn start_again(&self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .arg("--dir")
            .arg(&self.scratch.0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("the fault tests start their own redis-server ({e}); apt-get install redis-server")
            });
        self.scratch.record("redis", child.id());
        *self.child.lock().unwrap() = Some(child);
        let port = self.port;
        until("redis-server answers PING", Duration::from_secs(30), async || {
            blocking(move || Self::answers_ping(port)).await.then_some(())
        })
        .await;
    }

    /// Sends `signal` (`STOP`: frozen, connections stay open and nothing
    /// answers, as behind a partition; `CONT`: thawed).
    pub async fn signal(&self, signal: &str) {
        let pid = self.child.lock().unwrap().as_ref().map(Child::id).unwrap();
        let signal = format!("-{signal}");
        let status = blocking(move || Command::new("kill").args([&signal, &pid.to_string()]).status())
            .await
            .unwrap();
        assert!(status.success());
    }

    /// Kills it (SIGKILL): what Redis knew is gone.
    pub async fn kill(&self) {
        let child = self.child.lock().unwrap().take();
        if let Some(mut child) = child {
            blocking(move || {
                let _ = child.kill();
                let _ = child.wait();
            })
            .await;
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

// ---------------------------------------------------------------------------
// The server

/// How to start `eagate` for one test: its environment, kept so that a
/// restart runs the same deployment (same database, keys and settings).
#[derive(Debug, Clone)]
pub struct Deployment {
    env: Vec<(String, String)>,
    /// Removed when the last clone goes.
    data_dir: Arc<Scratch>,
}

impl Deployment {
    pub fn new(pg: &Postgres) -> Self {
        let data_dir = Arc::new(Scratch::new("data"));
        let keys = eagate_crypto::Ed25519Keys::generate().unwrap();
        let env = [
            ("EAGATE_DATABASE_URL", pg.url()),
            ("EAGATE_LISTEN", "127.0.0.1:0".to_owned()),
            ("EAGATE_LOG_FORMAT", "json".to_owned()),
            ("RUST_LOG", "info".to_owned()),
            ("EAGATE_DATA_DIR", data_dir.0.display().to_string()),
            ("EAGATE_JWT_PRIVATE_KEY", keys.to_pem()),
            (
                "EAGATE_MASTER_KEYS",
                eagate_crypto::MasterKeyring::generate_entry("f1").unwrap(),
            ),
            ("EAGATE_ARGON2_MEMORY_KIB", "64".to_owned()),
            ("EAGATE_ARGON2_ITERATIONS", "1".to_owned()),
            ("EAGATE_RATE_LIMITS", "off".to_owned()),
            ("EAGATE_DATABASE_POOL_SIZE", "4".to_owned()),
            (
                "EAGATE_DATABASE_POOL_TIMEOUT_SECONDS",
                POOL_TIMEOUT.as_secs().to_string(),
            ),
            ("EAGATE_ACTIVITY_FLUSH_INTERVAL_MS", "100".to_owned()),
            ("EAGATE_SHUTDOWN_TIMEOUT_SECONDS", "2".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        Self { env, data_dir }
    }

    pub fn with(mut self, name: &str, value: &str) -> Self {
        self.env.retain(|(k, _)| k != name);
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Starts the `eagate` binary and waits for its "eagate listening" line.
    pub async fn start(&self) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_eagate"));
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = command.spawn().unwrap();
        self.data_dir.record("server", child.id());
        let stdout = child.stdout.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::<String>::new()));
        let (lines_tx, lines) = watch::channel(0usize);
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if std::env::var_os("TEST_LOG").is_some() {
                    eprintln!("{line}");
                }
                let mut log = sink.lock().unwrap_or_else(|p| p.into_inner());
                log.push(line);
                lines_tx.send_replace(log.len());
            }
        });
        let mut server = Server {
            _data_dir: Arc::clone(&self.data_dir),
            child: Some(child),
            base: String::new(),
            log,
            lines,
        };
        let listening = server
            .wait_for_log(0, Duration::from_secs(60), |l| l["message"] == "eagate listening")
            .await;
        server.base = listening["url"].as_str().unwrap().to_owned();
        server
    }
}

/// A running `eagate` process; killed (SIGKILL) on drop.
#[derive(Debug)]
pub struct Server {
    /// Where its pid is recorded, kept while it runs.
    _data_dir: Arc<Scratch>,
    child: Option<Child>,
    pub base: String,
    log: Arc<Mutex<Vec<String>>>,
    lines: watch::Receiver<usize>,
}

impl Server {
    pub fn api(&self) -> Api {
        Api::new(&self.base)
    }

    /// How many log lines it has written so far (a mark for
    /// [`Server::wait_for_log`]).
    pub fn log_mark(&self) -> usize {
        self.log.lock().unwrap().len()
    }

    /// Its JSON log lines from line `from` on.
    pub fn log_since(&self, from: usize) -> Vec<Value> {
        self.log.lock().unwrap()[from..]
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Waits for a JSON log line from line `from` on that satisfies `wanted`.
    pub async fn wait_for_log(
        &self,
        from: usize,
        within: Duration,
        wanted: impl Fn(&Value) -> bool,
    ) -> Value {
        let mut lines = self.lines.clone();
        let deadline = tokio::time::Instant::now() + within;
        let mut checked = from;
        loop {
            {
                let log = self.log.lock().unwrap();
                for line in log.iter().skip(checked) {
                    if let Ok(value) = serde_json::from_str::<Value>(line)
                        && wanted(&value)
                    {
                        return value;
                    }
                }
                checked = checked.max(log.len());
            }
            if tokio::time::timeout_at(deadline, lines.changed()).await.is_err() {
                let tail: Vec<String> = self
                    .log
                    .lock()
                    .unwrap()
                    .iter()
                    .rev()
                    .take(30)
                    .rev()
                    .cloned()
                    .collect();
                panic!(
                    "no such log line within {within:?}; the last lines:\n{}",
                    tail.join("\n")
                );
            }
        }
    }

    /// SIGTERM, as a rolling restart or `systemctl stop` sends it: waits
    /// for the graceful stop (in-flight requests answered) and returns
    /// whether the process exited with status 0.
    #[allow(dead_code)] // used by the scale-out tests (tests/scale)
    pub async fn terminate(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return false;
        };
        blocking(move || {
            let signalled = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()
                .is_ok_and(|s| s.success());
            signalled && child.wait().is_ok_and(|s| s.success())
        })
        .await
    }

    /// `kill -9`: no shutdown, no flush, nothing.
    pub async fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            blocking(move || {
                child.kill().unwrap();
                child.wait().unwrap();
            })
            .await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

// ---------------------------------------------------------------------------
// The client's view

/// One answer as a client saw it.
#[derive(Debug, Clone)]
pub struct Answer {
    /// `None`: no HTTP answer at all (connection refused or reset, timeout).
    pub status: Option<u16>,
    pub elapsed: Duration,
    pub started: Instant,
    pub content_type: String,
    pub retry_after: Option<String>,
    pub body: Value,
    /// The transport error, when there was no answer.
    pub error: Option<String>,
}

impl Answer {
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or_default()
    }

    pub fn is(&self, status: u16) -> bool {
        self.status == Some(status)
    }

    /// Whether this is the documented answer for a dependency that is down
    /// or overloaded: 503 problem+json `service-unavailable` with a
    /// `Retry-After` of whole seconds.
    pub fn is_unavailable(&self) -> bool {
        self.is(503)
            && self.content_type == "application/problem+json"
            && self.code() == "service-unavailable"
            && self
                .retry_after
                .as_deref()
                .and_then(|s| s.parse::<u64>().ok())
                .is_some_and(|s| s >= 1)
    }

    pub fn describe(&self) -> String {
        match self.status {
            Some(s) => format!(
                "{s} {} after {:?} (Retry-After {:?}): {}",
                self.content_type, self.elapsed, self.retry_after, self.body
            ),
            None => format!("no answer after {:?}: {:?}", self.elapsed, self.error),
        }
    }
}

/// A registered device: its id and what signs for it.
#[derive(Debug, Clone)]
pub struct Device {
    pub id: String,
    pub signer: Signer,
}

/// An HTTP client for one server, recording answers as [`Answer`]s.
#[derive(Debug, Clone)]
pub struct Api {
    pub base: String,
    http: reqwest::Client,
}

impl Api {
    pub fn new(base: &str) -> Self {
        Self {
            base: base.to_owned(),
            // A hang shows as "no answer" after this, and fails the test.
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .pool_max_idle_per_host(64)
                .build()
                .unwrap(),
        }
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        let started = Instant::now();
        match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let header = |name: &str| {
                    response
                        .headers()
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned)
                };
                let content_type = header("content-type").unwrap_or_default();
                let retry_after = header("retry-after");
                let text = response.text().await;
                let elapsed = started.elapsed();
                match text {
                    Ok(text) => Answer {
                        status: Some(status),
                        elapsed,
                        started,
                        content_type,
                        retry_after,
                        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
                        error: None,
                    },
                    Err(e) => Answer {
                        status: None,
                        elapsed,
                        started,
                        content_type,
                        retry_after,
                        body: Value::Null,
                        error: Some(format!("reading the body of a {status}: {e}")),
                    },
                }
            }
            Err(e) => Answer {
                status: None,
                elapsed: started.elapsed(),
                started,
                content_type: String::new(),
                retry_after: None,
                body: Value::Null,
                error: Some(format!("{e:?}")),
            },
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The HTTP client, for requests the helpers do not cover.
    #[allow(dead_code)] // used by the scale-out tests (tests/scale)
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(self.http.get(self.url(path))).await
    }

    pub async fn get_auth(&self, path: &str, token: &str) -> Answer {
        self.send(self.http.get(self.url(path)).bearer_auth(token)).await
    }

    pub async fn post_auth(&self, path: &str, token: &str, body: &Value) -> Answer {
        self.send(self.http.post(self.url(path)).bearer_auth(token).json(body))
            .await
    }

    /// Registers `username` and logs in: the access token.
    pub async fn owner(&self, username: &str) -> String {
        let registered = self
            .send(self.http.post(self.url("/api/v1/auth/register")).json(&json!({
                "email": format!("{username}@example.com"), "username": username, "password": PASSWORD
            })))
            .await;
        assert!(registered.is(201), "register: {}", registered.describe());
        let login = self
            .send(
                self.http
                    .post(self.url("/api/v1/auth/login"))
                    .json(&json!({"login": username, "password": PASSWORD})),
            )
            .await;
        assert!(login.is(200), "login: {}", login.describe());
        login.body["access_token"].as_str().unwrap().to_owned()
    }

    pub async fn device(&self, token: &str, name: &str) -> Device {
        let created = self
            .post_auth("/api/v1/devices", token, &json!({"name": name}))
            .await;
        assert!(created.is(201), "register device: {}", created.describe());
        Device {
            id: created.body["device"]["id"].as_str().unwrap().to_owned(),
            signer: Signer::new(
                created.body["device"]["id"].as_str().unwrap(),
                created.body["secret"].as_str().unwrap(),
            ),
        }
    }

    /// Publishes a market order to every active device of the owner, with
    /// `key` as its `Idempotency-Key` (and its comment).
    pub async fn publish(&self, token: &str, key: &str) -> Answer {
        self.send(
            self.http
                .post(self.url("/api/v1/signals"))
                .bearer_auth(token)
                .header("Idempotency-Key", key)
                .json(&json!({
                    "instrument": "EURUSD", "side": "buy", "order_type": "market",
                    "volume": 0.1, "comment": key
                })),
        )
        .await
    }

    /// A signed device request (protocol v1), fresh nonce, current time.
    pub async fn signed(
        &self,
        device: &Device,
        method: Method,
        target: &str,
        body: Option<&Value>,
    ) -> Answer {
        self.send(self.sign(device, method, target, body)).await
    }

    /// A signed device request, ready to send (and, cloned, to replay).
    pub fn sign(
        &self,
        device: &Device,
        method: Method,
        target: &str,
        body: Option<&Value>,
    ) -> reqwest::RequestBuilder {
        let body = body.map(|b| serde_json::to_vec(b).unwrap()).unwrap_or_default();
        let now = chrono::Utc::now().timestamp();
        let signature = device
            .signer
            .sign(method.as_str(), target, &body, now, &new_nonce());
        let mut request = self.http.request(method, self.url(target));
        for (name, value) in signature.headers() {
            request = request.header(name, value);
        }
        if !body.is_empty() {
            request = request.header("content-type", "application/json").body(body);
        }
        request
    }

    /// `GET /api/v1/device/poll?wait=<wait>`.
    pub async fn poll(&self, device: &Device, wait: u32) -> Answer {
        self.signed(
            device,
            Method::GET,
            &format!("/api/v1/device/poll?wait={wait}"),
            None,
        )
        .await
    }

    /// Acknowledges `signal` as executed.
    pub async fn ack(&self, device: &Device, signal: &str) -> Answer {
        self.signed(
            device,
            Method::POST,
            "/api/v1/device/ack",
            Some(&json!({"signal_id": signal, "outcome": "executed"})),
        )
        .await
    }

    /// Polls as `device` until a poll is answered without any of the
    /// repository calls `operations` (e.g. `db.devices.find_credentials`,
    /// `db.signals.pending`): what they read is in the server's device
    /// cache, and no change notification for it is still on its way.
    pub async fn until_cached(&self, device: &Device, operations: &[&str]) {
        let reads = async || {
            let metrics = self.metrics().await;
            operations
                .iter()
                .map(|op| metric(&metrics, "db_query_duration_seconds_count", &[("operation", op)]))
                .sum::<f64>()
        };
        assert!(self.poll(device, 0).await.is(200));
        assert!(reads().await > 0.0, "the lookups are measured");
        until(
            "a poll is answered from the cache",
            Duration::from_secs(10),
            async || {
                let before = reads().await;
                assert!(self.poll(device, 0).await.is(200));
                (reads().await == before).then_some(())
            },
        )
        .await;
    }

    /// Opens every pooled connection of this instance (the pool keeps its
    /// open connections while the database refuses new ones), by bursts of
    /// `burst` owner reads until the pool's size is its maximum.
    pub async fn fill_pool(&self, token: &str, burst: usize) {
        until(
            "every pooled connection is open",
            Duration::from_secs(20),
            async || {
                let answers: Vec<_> = (0..burst)
                    .map(|_| {
                        let (api, token) = (self.clone(), token.to_owned());
                        tokio::spawn(async move { api.get_auth("/api/v1/signals", &token).await })
                    })
                    .collect();
                for answer in answers {
                    assert!(answer.await.unwrap().is(200));
                }
                let metrics = self.metrics().await;
                (metric(&metrics, "db_pool_connections", &[("state", "size")])
                    == metric(&metrics, "db_pool_connections", &[("state", "max")]))
                .then_some(())
            },
        )
        .await;
    }

    pub async fn metrics(&self) -> String {
        let answer = self.get("/metrics").await;
        assert!(answer.is(200), "metrics: {}", answer.describe());
        answer.body.as_str().unwrap_or_default().to_owned()
    }
}

/// The value of a Prometheus sample `name{labels}` (labels as rendered, in
/// any order), summed over every series that has all of `labels`.
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
            (metric == name && labels.iter().all(|(k, v)| rest.contains(&format!("{k}=\"{v}\""))))
                .then(|| value.parse::<f64>().ok())
                .flatten()
        })
        .sum()
}

// ---------------------------------------------------------------------------
// What is left in the database

#[derive(Debug, diesel::QueryableByName)]
pub struct StoredSignal {
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub id: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub idempotency_key: Option<String>,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub deliveries: i64,
}

#[derive(Debug, diesel::QueryableByName)]
pub struct StoredAck {
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub signal_id: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub device_id: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub outcome: String,
}

#[derive(Debug, diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// Every signal with its idempotency key and number of deliveries.
pub async fn stored_signals(conn: &mut AsyncPgConnection) -> Vec<StoredSignal> {
    diesel::sql_query(
        "SELECT s.id::text AS id, s.idempotency_key, \
         (SELECT count(*) FROM signal_deliveries d WHERE d.signal_id = s.id) AS deliveries \
         FROM signals s",
    )
    .load(conn)
    .await
    .unwrap()
}

/// Every acknowledged delivery.
pub async fn stored_acks(conn: &mut AsyncPgConnection) -> Vec<StoredAck> {
    diesel::sql_query(
        "SELECT signal_id::text AS signal_id, device_id::text AS device_id, outcome \
         FROM signal_deliveries WHERE acknowledged_at IS NOT NULL",
    )
    .load(conn)
    .await
    .unwrap()
}

#[derive(Debug, diesel::QueryableByName)]
struct DeliveryKey {
    #[diesel(sql_type = diesel::sql_types::Text)]
    signal_id: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    device_id: String,
}

/// (signal, device) of every delivery marked as handed to its device.
pub async fn first_polled(conn: &mut AsyncPgConnection) -> Vec<(String, String)> {
    diesel::sql_query(
        "SELECT signal_id::text AS signal_id, device_id::text AS device_id \
         FROM signal_deliveries WHERE first_polled_at IS NOT NULL",
    )
    .load::<DeliveryKey>(conn)
    .await
    .unwrap()
    .into_iter()
    .map(|d| (d.signal_id, d.device_id))
    .collect()
}

/// Deliveries whose signal does not exist.
pub async fn orphan_deliveries(conn: &mut AsyncPgConnection) -> i64 {
    let count: Count = diesel::sql_query(
        "SELECT count(*) AS n FROM signal_deliveries d \
         WHERE NOT EXISTS (SELECT 1 FROM signals s WHERE s.id = d.signal_id)",
    )
    .get_result(conn)
    .await
    .unwrap();
    count.n
}

/// Runs `SELECT count(*) AS n …`.
pub async fn count(conn: &mut AsyncPgConnection, sql: &str) -> i64 {
    diesel::sql_query(sql).get_result::<Count>(conn).await.unwrap().n
}

/// The seconds of a duration, for printing measurements.
pub fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}
