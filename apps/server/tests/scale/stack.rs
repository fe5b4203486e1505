//! The stack one scale-out test runs on: its own PostgreSQL, a Redis of its
//! own (or the one `EAGATE_SCALE_REDIS_URL` names, e.g. a Redis Cluster that
//! `scripts/scale-test.sh` started), two `eagate` instances on fixed ports
//! (so a restarted instance comes back where the balancer expects it) and
//! nginx balancing between them.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::*;

/// A pause after a restarted instance is ready, before the next step.
pub const SETTLE: Duration = Duration::from_secs(1);

/// nginx (Debian's package) in front of the instances, as an operator would
/// configure it: round robin, never taking an instance out of rotation
/// (`max_fails=0`: with two instances, one restarting and one briefly
/// refusing would otherwise leave "no live upstreams" and answer 502 for
/// `fail_timeout`), a failed connection retried on the other
/// instance (`proxy_next_upstream error timeout non_idempotent`: a request
/// the failing instance never answered; signed requests carry a nonce and
/// publishes an `Idempotency-Key`, so a retry cannot act twice), read
/// timeouts above the long-poll maximum, and the client's address passed in
/// `X-Forwarded-For`.
#[derive(Debug)]
pub struct Nginx {
    child: Option<Child>,
    dir: PathBuf,
    pub base: String,
}

impl Nginx {
    pub async fn start(upstreams: &[u16]) -> Self {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("eagate-scale-nginx-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let servers: String = upstreams
            .iter()
            .map(|p| format!("    server 127.0.0.1:{p} max_fails=0;\n"))
            .collect();
        let d = dir.display();
        let conf = format!(
            "worker_processes 1;\n\
             pid {d}/nginx.pid;\n\
             error_log {d}/error.log warn;\n\
             events {{ worker_connections 2048; }}\n\
             http {{\n\
             access_log off;\n\
             client_body_temp_path {d}/body;\n\
             proxy_temp_path {d}/proxy;\n\
             fastcgi_temp_path {d}/fastcgi;\n\
             uwsgi_temp_path {d}/uwsgi;\n\
             scgi_temp_path {d}/scgi;\n\
             upstream eagate {{\n{servers}}}\n\
             server {{\n\
               listen 127.0.0.1:{port};\n\
               location / {{\n\
                 proxy_pass http://eagate;\n\
                 proxy_set_header Host $host;\n\
                 proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n\
                 proxy_set_header X-Forwarded-Proto $scheme;\n\
                 proxy_connect_timeout 2s;\n\
                 proxy_read_timeout 60s;\n\
                 proxy_next_upstream error timeout non_idempotent;\n\
                 proxy_next_upstream_tries 2;\n\
               }}\n\
             }}\n\
             }}\n"
        );
        let conf_path = dir.join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let child = Command::new(nginx())
            .arg("-p")
            .arg(&dir)
            .arg("-e")
            .arg(dir.join("error.log"))
            .arg("-c")
            .arg(&conf_path)
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start nginx ({e}): scripts/scale-test.sh installs it"));
        let nginx = Self {
            child: Some(child),
            dir,
            base: format!("http://127.0.0.1:{port}"),
        };
        until("nginx accepts connections", Duration::from_secs(20), async || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok().map(drop)
        })
        .await;
        nginx
    }

    pub fn api(&self) -> Api {
        Api::new(&self.base)
    }

    /// The first lines of its error log (what it says about the instances).
    pub fn error_log(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default();
        // The first lines say why an instance was taken out; the rest repeat.
        log.lines().take(25).collect::<Vec<_>>().join("\n")
    }
}

fn nginx() -> PathBuf {
    ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("nginx"))
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGTERM to the master: it stops its workers, then exits.
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A free port below the ephemeral range (32768 and up on Linux), for an
/// instance that restarts: while it is down, no outgoing connection
/// (nginx's, the clients') can take its port as a source port.
fn instance_port(not: Option<u16>) -> u16 {
    let seed = u64::from(std::process::id()) ^ uuid::Uuid::new_v4().as_u64_pair().0;
    (0..2000u64)
        .map(|n| 20_000 + u16::try_from((seed.wrapping_add(n * 7919)) % 12_000).unwrap())
        .find(|&port| Some(port) != not && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok())
        .expect("a free port between 20000 and 32000")
}

/// Two instances of one deployment (same database, Redis, keys and
/// settings) behind nginx.
#[derive(Debug)]
pub struct Stack {
    pub pg: Postgres,
    /// `None` when `EAGATE_SCALE_REDIS_URL` names the Redis (a Redis
    /// Cluster: `redis+cluster://…`).
    redis: Option<Redis>,
    deployments: [Deployment; 2],
    pub instances: [Option<Server>; 2],
    pub nginx: Nginx,
}

/// The instances' names, as in their `application_name`.
pub const NAMES: [&str; 2] = ["eagate-a", "eagate-b"];

impl Stack {
    /// Starts everything; `configure` adjusts the deployment both
    /// instances share (rate limits, …).
    pub async fn start(configure: impl FnOnce(Deployment) -> Deployment) -> Self {
        let pg = Postgres::start().await;
        let (redis, redis_url) = match std::env::var("EAGATE_SCALE_REDIS_URL") {
            Ok(url) if !url.trim().is_empty() => (None, url),
            _ => {
                let own = Redis::start().await;
                let url = own.url();
                (Some(own), url)
            }
        };
        let shared = configure(
            Deployment::new(&pg)
                .with("EAGATE_REDIS_URL", &redis_url)
                // Each run its own keys, so runs against one Redis never meet.
                .with(
                    "EAGATE_REDIS_KEY_PREFIX",
                    &format!("scale-{}:", uuid::Uuid::new_v4().simple()),
                )
                .with("EAGATE_TRUSTED_PROXIES", "127.0.0.1")
                .with("EAGATE_DATABASE_POOL_SIZE", "8")
                // The production default: while one instance restarts the
                // other carries everything on a busy machine.
                .with("EAGATE_DATABASE_POOL_TIMEOUT_SECONDS", "5"),
        );
        let first = instance_port(None);
        let ports = [first, instance_port(Some(first))];
        let deployments = [0, 1].map(|i| {
            shared
                .clone()
                .with("EAGATE_LISTEN", &format!("127.0.0.1:{}", ports[i]))
                .with(
                    "EAGATE_DATABASE_URL",
                    &format!("{}?application_name={}", pg.url(), NAMES[i]),
                )
        });
        let a = deployments[0].start().await;
        let b = deployments[1].start().await;
        let nginx = Nginx::start(&ports).await;
        Self {
            pg,
            redis,
            deployments,
            instances: [Some(a), Some(b)],
            nginx,
        }
    }

    /// The Redis this stack started (`None` with `EAGATE_SCALE_REDIS_URL`).
    pub fn own_redis(&self) -> Option<&Redis> {
        self.redis.as_ref()
    }

    pub fn instance(&self, i: usize) -> &Server {
        self.instances[i].as_ref().unwrap()
    }

    /// Instance A's API.
    pub fn a(&self) -> Api {
        self.instance(0).api()
    }

    /// Instance B's API.
    pub fn b(&self) -> Api {
        self.instance(1).api()
    }

    /// Through the balancer.
    pub fn lb(&self) -> Api {
        self.nginx.api()
    }

    /// SIGTERM instance `i`, wait for its graceful exit, start it again on
    /// the same port and wait until it is ready and the balancer sends it
    /// traffic again. Returns how long the instance was away.
    pub async fn rolling_restart(&mut self, i: usize) -> Duration {
        let stopped = Instant::now();
        let mut server = self.instances[i].take().unwrap();
        assert!(server.terminate().await, "{} exits 0 on SIGTERM", NAMES[i]);
        let server = self.deployments[i].start().await;
        let api = server.api();
        until(
            "the restarted instance is ready",
            Duration::from_secs(30),
            async || api.get("/readyz").await.is(200).then_some(()),
        )
        .await;
        let away = stopped.elapsed();
        self.instances[i] = Some(server);
        tokio::time::sleep(SETTLE).await;
        away
    }
}

/// A signed `GET /api/v1/device/config`.
pub async fn config(api: &Api, device: &Device) -> Answer {
    api.signed(device, reqwest::Method::GET, "/api/v1/device/config", None)
        .await
}

/// Repeats `probe` until it answers `status`, as fast as it can; returns
/// how long after `since` that was. Fails after 5 s.
pub async fn first(
    what: &str,
    status: u16,
    since: Instant,
    mut probe: impl AsyncFnMut() -> Answer,
) -> Duration {
    loop {
        let answer = probe().await;
        if answer.is(status) {
            return since.elapsed();
        }
        assert!(
            since.elapsed() < Duration::from_secs(5),
            "{what}: still {} after 5 s",
            answer.describe()
        );
    }
}

/// `DELETE /api/v1/auth/me` with the owner's password.
pub async fn delete_account(api: &Api, token: &str) -> Answer {
    api.send(
        api.http()
            .delete(api.url("/api/v1/auth/me"))
            .bearer_auth(token)
            .json(&json!({ "password": PASSWORD })),
    )
    .await
}
