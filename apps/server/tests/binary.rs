//! The `eagate` executable as an operator runs it: what it writes to stdout
//! and stderr in production and development, how it reports a port that is
//! taken, and how `migrate` names migrations.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead as _, BufReader, Read as _};
use std::net::TcpListener;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use eagate_crypto::{Ed25519Keys, MasterKeyring};
use eagate_testkit::TestDatabase;
use serde_json::Value;

/// `eagate` with a clean environment: only what the test sets (plus PATH).
fn eagate(db: &TestDatabase, production: bool) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_eagate"));
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("EAGATE_DATABASE_URL", db.url())
        .env("EAGATE_LISTEN", "127.0.0.1:0")
        .env(
            "EAGATE_DATA_DIR",
            std::env::temp_dir().join(format!("eagate-binary-{}", uuid::Uuid::new_v4())),
        )
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if production {
        command
            .env("EAGATE_ENV", "production")
            .env(
                "EAGATE_JWT_PRIVATE_KEY",
                Ed25519Keys::generate().unwrap().to_pem(),
            )
            .env("EAGATE_MASTER_KEYS", MasterKeyring::generate_entry("b1").unwrap())
            .env(
                "EAGATE_API_KEY_SECRET",
                eagate_crypto::HmacApiKeys::generate_secret().unwrap(),
            );
    } else {
        command
            .env("EAGATE_ARGON2_MEMORY_KIB", "64")
            .env("EAGATE_ARGON2_ITERATIONS", "1");
    }
    command
}

/// A running server whose stdout is read line by line.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    fn start(mut command: Command) -> Self {
        let mut child = command.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Reads stdout until a line satisfies `wanted`; returns that line.
    fn wait_for(&mut self, wanted: impl Fn(&str) -> bool) -> String {
        loop {
            match self.lines.recv_timeout(Duration::from_secs(60)) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if wanted(&line) {
                        return line;
                    }
                }
                Err(e) => panic!("no such line ({e}); stdout so far: {:#?}", self.seen),
            }
        }
    }

    /// SIGTERM, then everything it wrote: (stdout lines, stderr).
    fn stop(mut self) -> (Vec<String>, String) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = self.child.wait().unwrap();
        assert!(exit.success(), "a SIGTERM stop exits 0, got {exit}");
        self.seen.extend(self.lines.iter());
        let mut stderr = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        (self.seen, stderr)
    }
}

fn json_line(line: &str) -> Option<Value> {
    serde_json::from_str::<Value>(line).ok().filter(Value::is_object)
}

async fn get(url: String) {
    let response = reqwest::get(&url).await.unwrap();
    assert!(response.status().as_u16() < 500, "{url}: {}", response.status());
}

#[tokio::test]
async fn in_production_every_stdout_line_is_json_including_listening() {
    let db = TestDatabase::migrated().await;
    let mut server = Running::start(eagate(&db, true));
    let listening =
        server.wait_for(|line| json_line(line).is_some_and(|v| v["message"] == "eagate listening"));
    let url = json_line(&listening).unwrap()["url"]
        .as_str()
        .expect("the listening line carries the URL")
        .to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    // Requests and an error produce more log lines.
    get(format!("{url}/healthz")).await;
    get(format!("{url}/api/v1/auth/me")).await;
    server.wait_for(|line| line.contains("request finished"));

    let (lines, stderr) = server.stop();
    assert!(lines.len() >= 3, "{lines:#?}");
    for line in &lines {
        let value = json_line(line).unwrap_or_else(|| panic!("not a JSON object: {line:?}"));
        assert!(
            value["level"].is_string() && value["message"].is_string(),
            "{line}"
        );
    }
    assert_eq!(stderr, "", "nothing on stderr in production");
}

#[tokio::test]
async fn development_logs_carry_no_colour_codes_when_not_on_a_terminal() {
    let db = TestDatabase::migrated().await;
    let mut server = Running::start(eagate(&db, false));
    let listening = server.wait_for(|line| line.starts_with("eagate listening on "));
    let url = listening
        .trim_start_matches("eagate listening on ")
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    get(format!("{url}/api/v1/auth/me")).await;
    server.wait_for(|line| line.contains("request finished"));

    let (lines, stderr) = server.stop();
    let all = format!("{}\n{stderr}", lines.join("\n"));
    assert!(
        lines.iter().any(|l| l.contains(" INFO ")),
        "pretty log lines: {all}"
    );
    assert!(
        !all.contains('\u{1b}'),
        "ANSI escape codes in piped output: {all:?}"
    );
}

fn with_port_taken(production: bool) -> (Output, String) {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let db = std::thread::spawn(|| {
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(TestDatabase::migrated())
    })
    .join()
    .unwrap();
    let output = eagate(&db, production)
        .env("EAGATE_LISTEN", &addr)
        .output()
        .unwrap();
    drop(taken);
    (output, addr)
}

#[test]
fn a_port_clash_is_one_clear_line_on_stderr_in_development() {
    let (output, addr) = with_port_taken(false);
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "exactly one line: {stderr:?}");
    assert!(
        lines[0].starts_with(&format!(
            "eagate: cannot listen on {addr}: the address is already in use"
        )),
        "{stderr}"
    );
    assert!(lines[0].contains("EAGATE_LISTEN="), "says what to do: {stderr}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        !stdout.contains("ERROR") && !stdout.contains("in use"),
        "reported once: {stdout}"
    );
}

#[test]
fn a_port_clash_is_one_json_error_line_in_production() {
    let (output, addr) = with_port_taken(true);
    assert!(!output.status.success());
    assert_eq!(String::from_utf8(output.stderr).unwrap(), "");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let errors: Vec<Value> = stdout
        .lines()
        .map(|l| json_line(l).unwrap_or_else(|| panic!("not JSON: {l:?}")))
        .filter(|v| v["level"] == "ERROR")
        .collect();
    assert_eq!(errors.len(), 1, "{stdout}");
    let error = errors[0]["error"].as_str().unwrap();
    assert!(
        error.contains(&addr) && error.contains("already in use") && error.contains("EAGATE_LISTEN="),
        "{error}"
    );
}

#[tokio::test]
async fn in_production_migrate_up_reports_in_json_lines() {
    let db = TestDatabase::empty().await;
    let output = eagate(&db, true).args(["migrate", "up"]).output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let messages: Vec<String> = stdout
        .lines()
        .map(|l| json_line(l).unwrap_or_else(|| panic!("not JSON: {l:?}")))
        .map(|v| v["message"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("applied ") && m.ends_with("_create_accounts")),
        "{messages:?}"
    );
    assert_eq!(String::from_utf8(output.stderr).unwrap(), "");
}

#[tokio::test]
async fn migrate_up_and_status_name_migrations_alike() {
    let db = TestDatabase::empty().await;
    let run = |args: &[&str]| {
        let output = eagate(&db, false).args(args).output().unwrap();
        assert!(output.status.success(), "{args:?}: {output:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    let pending = run(&["migrate", "status"]);
    let up = run(&["migrate", "up"]);
    let applied = run(&["migrate", "status"]);

    let names = |text: &str, prefix: &str| -> Vec<String> {
        text.lines()
            .filter_map(|l| l.strip_prefix(prefix))
            .map(str::to_owned)
            .collect()
    };
    let pending = names(&pending, "[pending] ");
    assert!(!pending.is_empty());
    assert!(pending[0].ends_with("_create_accounts"), "{pending:?}");
    assert_eq!(names(&up, "applied "), pending);
    assert_eq!(names(&applied, "[applied] "), pending);
}

/// `eagate admin grant|revoke EMAIL`: the only way to make the first
/// administrator; unknown emails are an error.
#[tokio::test]
async fn admin_grant_and_revoke_from_the_command_line() {
    let db = TestDatabase::migrated().await;
    {
        use diesel_async::RunQueryDsl as _;
        let mut conn = db.connect().await;
        diesel::sql_query(
            "INSERT INTO users (id, username, email, password_hash, created_at, updated_at) \
             VALUES (gen_random_uuid(), 'opsadmin', 'ops@example.com', 'x', now(), now())",
        )
        .execute(&mut conn)
        .await
        .unwrap();
    }
    let run = |args: &[&str]| eagate(&db, false).args(args).output().unwrap();
    let granted = run(&["admin", "grant", "ops@example.com"]);
    assert!(granted.status.success(), "{granted:?}");
    assert!(String::from_utf8_lossy(&granted.stdout).contains("ops@example.com is now an administrator"));
    let again = run(&["admin", "grant", "OPS@example.com"]);
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("was already an administrator"),
        "{again:?}"
    );
    let revoked = run(&["admin", "revoke", "ops@example.com"]);
    assert!(
        String::from_utf8_lossy(&revoked.stdout).contains("is no longer an administrator"),
        "{revoked:?}"
    );
    let unknown = run(&["admin", "grant", "nobody@example.com"]);
    assert!(!unknown.status.success());
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("no account has the email nobody@example.com"),
        "{unknown:?}"
    );
}
