//! What every scenario shares: options, output directory, binaries, keys,
//! the database, and how eagate and the ceiling are launched.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};
use serde::Serialize;

use crate::servers::{Database, Launch};

/// Where device nonces are remembered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Store {
    /// In process memory (no `EAGATE_REDIS_URL`).
    Memory,
    /// Redis (`EAGATE_REDIS_URL`).
    Redis,
}

impl Store {
    pub fn name(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Redis => "redis",
        }
    }
}

/// Options shared by the scenarios (see `eagate-load --help`).
#[derive(Debug, Clone, Serialize)]
pub struct Options {
    pub runs: usize,
    pub duration: Duration,
    pub connections: u32,
    pub threads: u32,
    pub devices: usize,
    pub stores: Vec<Store>,
    pub rate: u32,
    pub requests: u64,
    pub warmup: u64,
    pub top: usize,
    pub login_clients: usize,
    pub long_poll_wait: u64,
    pub sample_every: Duration,
    #[serde(skip)]
    pub server_env: Vec<(String, String)>,
    #[serde(skip)]
    pub pg_url: String,
    #[serde(skip)]
    pub redis_url: String,
    #[serde(skip)]
    pub out: PathBuf,
    pub keep: bool,
}

/// One harness invocation.
#[derive(Debug)]
pub struct Ctx {
    pub opts: Options,
    pub scenario: String,
    /// `target/load` (results).
    pub out: PathBuf,
    /// `target/load/<scenario>-<unix time>` (logs, replay files, dumps).
    pub dir: PathBuf,
    pub eagate_bin: PathBuf,
    pub ceiling_bin: PathBuf,
    pub script: PathBuf,
    jwt_pem: String,
    master_keys: String,
    api_key_secret: String,
    db: Option<Database>,
    redis_prefix: String,
    pub started: i64,
}

/// A sibling of this executable (`target/release/<name>`).
fn sibling(name: &str) -> Result<PathBuf> {
    let me = std::env::current_exe().context("locating eagate-load")?;
    let dir = me
        .parent()
        .ok_or_else(|| anyhow!("eagate-load has no directory"))?;
    let path = dir.join(name);
    if !path.exists() {
        bail!(
            "{} is missing: build it first (`cargo build --release -p eagate-server -p eagate-load`, \
             which `just load` does)",
            path.display()
        );
    }
    Ok(path)
}

impl Ctx {
    pub fn new(opts: Options, scenario: &str) -> Result<Self> {
        let eagate_bin = sibling("eagate")?;
        let ceiling_bin = sibling("eagate-load-ceiling")?;
        if !eagate_bin.components().any(|c| c.as_os_str() == "release") {
            eprintln!(
                "warning: {} is not a release build; figures will not be comparable",
                eagate_bin.display()
            );
        }
        let started = crate::presign::unix_now();
        let out = opts.out.clone();
        let dir = out.join(format!("{scenario}-{started}"));
        std::fs::create_dir_all(&dir).with_context(|| dir.display().to_string())?;
        let script = crate::wrk::install_script(&dir)?;
        let jwt_pem = eagate_crypto::Ed25519Keys::generate()
            .map_err(|e| anyhow!("generating a JWT key: {e}"))?
            .to_pem();
        let master_keys = eagate_crypto::MasterKeyring::generate_entry("load")
            .map_err(|e| anyhow!("generating a master key: {e}"))?;
        let api_key_secret = eagate_crypto::HmacApiKeys::generate_secret()
            .map_err(|e| anyhow!("generating an API key secret: {e}"))?;
        Ok(Self {
            redis_prefix: format!("eagate-load-{}-{started}:", std::process::id()),
            opts,
            scenario: scenario.to_owned(),
            out,
            dir,
            eagate_bin,
            ceiling_bin,
            script,
            jwt_pem,
            master_keys,
            api_key_secret,
            db: None,
            started,
        })
    }

    /// The run's database, created and migrated on first use.
    pub async fn database(&mut self) -> Result<&Database> {
        if self.db.is_none() {
            let db = Database::create(&self.opts.pg_url).await?;
            self.db = Some(db);
            let env = self.eagate_env(Store::Memory)?;
            crate::servers::migrate(&self.eagate_bin, &env).await?;
        }
        self.db.as_ref().ok_or_else(|| anyhow!("no database"))
    }

    /// eagate's environment: production mode, fresh keys, rate limits off.
    pub fn eagate_env(&self, store: Store) -> Result<Vec<(String, String)>> {
        let db = self
            .db
            .as_ref()
            .ok_or_else(|| anyhow!("the database is created before eagate starts"))?;
        let mut env: Vec<(String, String)> = [
            ("EAGATE_ENV", "production"),
            ("EAGATE_LISTEN", "127.0.0.1:0"),
            ("EAGATE_DATABASE_URL", db.url.as_str()),
            ("EAGATE_JWT_PRIVATE_KEY", self.jwt_pem.as_str()),
            ("EAGATE_MASTER_KEYS", self.master_keys.as_str()),
            ("EAGATE_API_KEY_SECRET", self.api_key_secret.as_str()),
            ("EAGATE_RATE_LIMITS", "off"),
            ("EAGATE_METRICS_TOKEN", crate::api::METRICS_TOKEN),
            ("EAGATE_MAX_DEVICES_PER_ACCOUNT", "100000"),
            // Soaks and 10,000-device set-ups outlast the default 15 minutes.
            ("EAGATE_ACCESS_TOKEN_TTL_SECONDS", "7200"),
            // Held long-polls must outlast setting up 10,000 of them.
            ("EAGATE_LONG_POLL_MAX_SECONDS", "120"),
            ("EAGATE_REQUEST_TIMEOUT_SECONDS", "150"),
            // One account's 1,000 devices at 50k+ signed requests a second
            // remember 15M nonces for the 300 s window (about 720 MB), where
            // a real fleet of that size, polling every few seconds, needs a
            // few MB: the default 64 MiB would refuse the synthetic load
            // (the store's fair share throttles one account at half of it).
            ("EAGATE_NONCE_MEMORY_MB", "2048"),
            ("RUST_LOG", "info"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        if store == Store::Redis {
            env.push(("EAGATE_REDIS_URL".into(), self.opts.redis_url.clone()));
            env.push(("EAGATE_REDIS_KEY_PREFIX".into(), self.redis_prefix.clone()));
        }
        // --server-env overrides (for trying a setting without editing the harness).
        for (k, v) in &self.opts.server_env {
            env.retain(|(name, _)| name != k);
            env.push((k.clone(), v.clone()));
        }
        Ok(env)
    }

    pub fn eagate_launch(&self, store: Store, label: &str, callgrind: Option<PathBuf>) -> Result<Launch> {
        Ok(Launch {
            label: label.to_owned(),
            program: self.eagate_bin.clone(),
            args: vec!["serve".into()],
            env: self.eagate_env(store)?,
            startup_timeout: if callgrind.is_some() {
                Duration::from_secs(600)
            } else {
                Duration::from_secs(60)
            },
            callgrind,
        })
    }

    pub fn ceiling_launch(&self, label: &str, callgrind: Option<PathBuf>) -> Launch {
        Launch {
            label: label.to_owned(),
            program: self.ceiling_bin.clone(),
            args: vec!["127.0.0.1:0".into()],
            env: Vec::new(),
            startup_timeout: if callgrind.is_some() {
                Duration::from_secs(300)
            } else {
                Duration::from_secs(30)
            },
            callgrind,
        }
    }

    /// A path in the run directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Fails with advice when Redis does not answer.
    pub async fn require_redis(&self) -> Result<()> {
        let client = redis::Client::open(self.opts.redis_url.as_str())?;
        let mut con = tokio::time::timeout(Duration::from_secs(3), client.get_multiplexed_async_connection())
            .await
            .map_err(|_| anyhow!("Redis at {} does not answer", self.opts.redis_url))?
            .with_context(|| {
                format!(
                    "Redis at {} (scripts/ensure-services.sh starts it)",
                    self.opts.redis_url
                )
            })?;
        let _: String = redis::cmd("PING").query_async(&mut con).await?;
        Ok(())
    }

    /// Drops the database and the run's Redis keys, and removes replay
    /// files unless `--keep`.
    pub async fn cleanup(&mut self) {
        if let Some(db) = self.db.take()
            && let Err(e) = db.drop_now().await
        {
            eprintln!("warning: could not drop database {}: {e:#}", db.name);
        }
        if self.opts.stores.contains(&Store::Redis)
            && let Err(e) = self.drop_redis_keys().await
        {
            eprintln!(
                "warning: could not delete Redis keys {}*: {e:#}",
                self.redis_prefix
            );
        }
        if !self.opts.keep {
            remove_matching(&self.dir, |name| name.ends_with(".req"));
            trim_logs(&self.dir, 20 << 20, 1 << 20);
        }
    }

    async fn drop_redis_keys(&self) -> Result<()> {
        drop_keys_containing(&self.opts.redis_url, &self.redis_prefix).await
    }
}

/// Deletes every key that contains `prefix`: the rate limiter's keys start
/// with it, the nonce store's carry it inside their hash tag
/// (`{<prefix>d:<device>}:n:<nonce>`). A run's prefix names its process and
/// start time, so no other run's key contains it.
async fn drop_keys_containing(url: &str, prefix: &str) -> Result<()> {
    let client = redis::Client::open(url)?;
    let mut con = client.get_multiplexed_async_connection().await?;
    let pattern = format!("*{}*", glob_escape(prefix));
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(5000)
            .query_async(&mut con)
            .await?;
        if !keys.is_empty() {
            let _: u64 = redis::cmd("UNLINK").arg(&keys).query_async(&mut con).await?;
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}

/// `text` as a Redis glob that matches only itself.
fn glob_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\' | '^') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// Cuts server logs longer than `max` bytes down to their last `keep`
/// bytes (a soak writes hundreds of megabytes of access log).
fn trim_logs(dir: &Path, max: u64, keep: u64) {
    use std::io::{Read as _, Seek as _, SeekFrom};
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let big = entry.metadata().is_ok_and(|m| m.len() > max);
        if !big || path.extension().is_none_or(|e| e != "log") {
            continue;
        }
        let mut tail = Vec::new();
        let read = std::fs::File::open(&path).and_then(|mut f| {
            f.seek(SeekFrom::End(-(keep as i64)))?;
            f.read_to_end(&mut tail)
        });
        if read.is_ok() {
            let mut text =
                b"[eagate-load: log cut to its last part; run with --keep for all of it]\n".to_vec();
            text.extend_from_slice(&tail);
            let _ = std::fs::write(&path, text);
        }
    }
}

fn remove_matching(dir: &Path, matches: impl Fn(&str) -> bool) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if matches(&entry.file_name().to_string_lossy()) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_runs_rate_and_nonce_keys_are_dropped_and_no_other_key() {
        let url = eagate_testkit::redis_url();
        let prefix = format!("eagate-load-test-{}-{}:", std::process::id(), line!());
        let mine = [
            format!("{prefix}rl:0123abcd"),
            format!("{{{prefix}d:0123abcd}}:n:nonce"),
            format!("{{{prefix}d:0123abcd}}:r"),
        ];
        // Another run whose prefix only starts like this one's.
        let other = format!("{{{}d:0123abcd}}:n:nonce", prefix.replace(':', "9:"));
        let client = redis::Client::open(url.as_str()).unwrap();
        let mut con = client.get_multiplexed_async_connection().await.unwrap();
        for key in mine.iter().chain([&other]) {
            let _: () = redis::cmd("SET")
                .arg(key)
                .arg(1)
                .arg("EX")
                .arg(60)
                .query_async(&mut con)
                .await
                .unwrap();
        }
        drop_keys_containing(&url, &prefix).await.unwrap();
        for key in &mine {
            let left: u64 = redis::cmd("EXISTS").arg(key).query_async(&mut con).await.unwrap();
            assert_eq!(left, 0, "{key} was dropped");
        }
        let kept: u64 = redis::cmd("EXISTS")
            .arg(&other)
            .query_async(&mut con)
            .await
            .unwrap();
        assert_eq!(kept, 1, "{other} belongs to another run");
        let _: u64 = redis::cmd("DEL").arg(&other).query_async(&mut con).await.unwrap();
    }

    #[test]
    fn glob_characters_of_a_prefix_match_only_themselves() {
        assert_eq!(glob_escape("a*b?c[d]e\\f^g:-"), "a\\*b\\?c\\[d\\]e\\\\f\\^g:-");
    }

    #[test]
    fn long_logs_are_cut_to_their_tail_and_replay_files_removed() {
        let dir = std::env::temp_dir().join(format!("eagate-load-ctx-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let long: String = (0..2000).map(|i| format!("line {i}\n")).collect();
        std::fs::write(dir.join("eagate.log"), &long).unwrap();
        std::fs::write(dir.join("ceiling.log"), "short\n").unwrap();
        std::fs::write(dir.join("eagate.req"), "x").unwrap();
        trim_logs(&dir, 1000, 100);
        remove_matching(&dir, |n| n.ends_with(".req"));
        let cut = std::fs::read_to_string(dir.join("eagate.log")).unwrap();
        assert!(cut.starts_with("[eagate-load: log cut"));
        assert!(cut.ends_with("line 1999\n"));
        assert!(cut.len() < 200);
        assert_eq!(
            std::fs::read_to_string(dir.join("ceiling.log")).unwrap(),
            "short\n"
        );
        assert!(!dir.join("eagate.req").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
