//! Typed settings, read from `EAGATE_*` environment variables and validated
//! at start-up. Every problem names its variable.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use eagate_crypto::Argon2Params;
use secrecy::SecretString;

/// Where the server runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Development,
    Production,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

/// Where the access-token signing key comes from.
#[derive(Debug, Clone)]
pub enum JwtKeySource {
    /// PEM text given directly (`EAGATE_JWT_PRIVATE_KEY`).
    Pem(SecretString),
    /// A PEM file (`EAGATE_JWT_PRIVATE_KEY_FILE`).
    File(PathBuf),
    /// Development only: generated on first run and kept in the data
    /// directory with mode 0600.
    GeneratedInDataDir,
}

/// Where the master keys that seal device secrets come from.
#[derive(Debug, Clone)]
pub enum MasterKeySource {
    /// `EAGATE_MASTER_KEYS`: `kid:base64url-key[,kid:key…]`, current first.
    Inline(SecretString),
    /// `EAGATE_MASTER_KEYS_FILE`: the same, one entry per line.
    File(PathBuf),
    /// Development only: generated on first run in the data directory
    /// (mode 0600).
    GeneratedInDataDir,
}

/// Where the server secret that keys API-key hashes comes from.
#[derive(Debug, Clone)]
pub enum ApiKeySecretSource {
    /// `EAGATE_API_KEY_SECRET`: base64url of at least 32 bytes.
    Inline(SecretString),
    /// `EAGATE_API_KEY_SECRET_FILE`: the same, in a file.
    File(PathBuf),
    /// Development only: generated on first run in the data directory
    /// (mode 0600).
    GeneratedInDataDir,
}

#[derive(Debug, Clone)]
pub struct DeviceSettings {
    pub master_keys: MasterKeySource,
    pub max_active_per_account: u32,
    /// The largest accepted difference between a request's timestamp and
    /// the server clock.
    pub max_clock_skew: Duration,
    /// How often buffered device activity (last seen, last poll,
    /// heartbeats, first deliveries) is written: what a crash can lose.
    pub activity_flush_interval: Duration,
    /// The per-instance device cache: `None` when disabled.
    pub cache: Option<eagate_memory::CacheLimits>,
    /// Advised to EAs in `GET /device/config`.
    pub poll_interval: Duration,
    pub long_poll_max: Duration,
    /// The largest EA bundle an owner may upload, in bytes.
    pub bundle_max_bytes: u64,
    /// The most one owner's bundles may take, completed and being
    /// uploaded, in bytes.
    pub bundle_storage_max_bytes_per_account: u64,
    /// How long one bundle upload may take in all (kept below the hour
    /// after which an incomplete upload counts as abandoned).
    pub bundle_upload_timeout: Duration,
    /// How often running deployments are swept for timeouts and due waves
    /// (and abandoned uploads dropped).
    pub deployment_sweep_interval: Duration,
    /// How many running deployments one sweep takes, least recently swept
    /// first.
    pub deployment_sweep_batch: u32,
}

/// Abuse protection and transport limits.
#[derive(Debug, Clone)]
pub struct ProtectionSettings {
    pub rate_limits_enabled: bool,
    /// Per client IP on account and owner endpoints, per minute.
    pub per_ip_per_minute: u32,
    /// Login attempts per client IP, per minute.
    pub login_per_ip_per_minute: u32,
    /// Password checks per account (logins, password changes, account
    /// deletions), per minute (then 429 until the minute ends).
    pub password_checks_per_account_per_minute: u32,
    /// Signed requests per device, per second.
    pub device_per_second: u32,
    /// Failed device authentications per client IP, per minute (then 429
    /// before any lookup until the minute ends).
    pub device_auth_failures_per_ip_per_minute: u32,
    /// Requests per API key, per minute (on every instance together when
    /// Redis is configured).
    pub api_key_per_minute: u32,
    /// Peers whose `X-Forwarded-For` is believed: addresses or networks
    /// (a load balancer's pod network in Kubernetes, say).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Origins allowed to call the API from a browser.
    pub cors_origins: Vec<String>,
    pub max_header_bytes: usize,
    pub request_timeout: Duration,
    /// Time a client has to send the request head.
    pub client_header_timeout: Duration,
    pub shutdown_timeout: Duration,
    /// `EAGATE_TLS_CERT` and `EAGATE_TLS_KEY` (PEM files): serve HTTPS.
    pub tls: Option<(PathBuf, PathBuf)>,
}

/// Shared state between instances.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// `None`: single instance, replay protection in process memory.
    pub url: Option<SecretString>,
    pub key_prefix: String,
    pub timeout: Duration,
    /// Signed requests one Redis script call admits at most (1: each its
    /// own call).
    pub admission_batch: usize,
    /// Bytes the in-memory nonce store holds at most (without Redis).
    pub nonce_memory_bytes: usize,
}

#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    /// `None` in development: run an embedded PostgreSQL.
    pub url: Option<SecretString>,
    pub pool_size: usize,
    pub pool_timeout: Duration,
    /// Apply pending migrations at start-up.
    pub auto_migrate: bool,
}

#[derive(Debug, Clone)]
pub struct AuthSettings {
    pub jwt_key: JwtKeySource,
    pub jwt_issuer: String,
    pub jwt_audience: String,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    /// A login's absolute lifetime, however often it is refreshed.
    pub session_max_lifetime: Duration,
    pub argon2: Argon2Params,
    pub hash_concurrency: usize,
    /// Keys the stored hashes of API keys.
    pub api_key_secret: ApiKeySecretSource,
}

/// Which finished requests are logged. Errors, refusals and slow requests
/// always are; account and owner requests always are; successful device
/// requests (the bulk of the traffic) are sampled.
#[derive(Debug, Clone, Copy)]
pub struct AccessLog {
    /// Log one successful device request in this many: 0 none, 1 all.
    pub device_sample: u64,
    /// Requests slower than this are always logged (long-polls excepted).
    pub slow: Duration,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub environment: Environment,
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub log_format: LogFormat,
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`: export traces over OTLP/HTTP.
    pub otlp_endpoint: Option<String>,
    pub database: DatabaseSettings,
    pub auth: AuthSettings,
    pub devices: DeviceSettings,
    pub redis: RedisSettings,
    pub protection: ProtectionSettings,
    pub access_log: AccessLog,
    /// `EAGATE_METRICS_TOKEN`: the bearer token `GET /metrics` requires.
    pub metrics_token: Option<SecretString>,
}

/// Every invalid or missing variable found.
#[derive(Debug)]
pub struct ConfigError(Vec<String>);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "invalid configuration:")?;
        for problem in &self.0 {
            writeln!(f, "  - {problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Reads variables from a map, recording problems instead of stopping at
/// the first.
struct Reader<'a> {
    vars: &'a HashMap<String, String>,
    problems: Vec<String>,
}

impl Reader<'_> {
    fn raw(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }

    fn parse<T: FromStr>(&mut self, name: &str, default: T, expected: &str) -> T {
        match self.raw(name) {
            None => default,
            Some(raw) => match raw.trim().parse() {
                Ok(v) => v,
                Err(_) => {
                    self.problems
                        .push(format!("{name}={raw:?} is not valid: expected {expected}"));
                    default
                }
            },
        }
    }

    fn ranged(&mut self, name: &str, default: u64, min: u64, max: u64) -> u64 {
        let value = self.parse(name, default, &format!("an integer from {min} to {max}"));
        if !(min..=max).contains(&value) {
            self.problems.push(format!(
                "{name}={value} is out of range: expected an integer from {min} to {max}"
            ));
            return default;
        }
        value
    }

    fn choice<T: Copy>(&mut self, name: &str, default: T, options: &[(&str, T)]) -> T {
        let Some(raw) = self.raw(name) else {
            return default;
        };
        let lower = raw.trim().to_ascii_lowercase();
        match options.iter().find(|(k, _)| *k == lower) {
            Some((_, v)) => *v,
            None => {
                let names: Vec<_> = options.iter().map(|(k, _)| *k).collect();
                self.problems.push(format!(
                    "{name}={raw:?} is not valid: expected one of {}",
                    names.join(", ")
                ));
                default
            }
        }
    }
}

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(&std::env::vars().collect())
    }

    /// Reads settings from `vars` (the environment, or a test's map).
    pub fn from_vars(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let mut r = Reader {
            vars,
            problems: Vec::new(),
        };
        let environment = r.choice(
            "EAGATE_ENV",
            Environment::Development,
            &[
                ("development", Environment::Development),
                ("dev", Environment::Development),
                ("production", Environment::Production),
                ("prod", Environment::Production),
            ],
        );
        let production = environment == Environment::Production;
        let listen = r.parse(
            "EAGATE_LISTEN",
            SocketAddr::from(([127, 0, 0, 1], 8080)),
            "an address like 127.0.0.1:8080",
        );
        let data_dir = PathBuf::from(r.raw("EAGATE_DATA_DIR").unwrap_or(".eagate"));
        let otlp_endpoint = r.raw("OTEL_EXPORTER_OTLP_ENDPOINT").map(str::to_owned);
        if let Some(endpoint) = &otlp_endpoint
            && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
        {
            r.problems
                .push("OTEL_EXPORTER_OTLP_ENDPOINT must be an http:// or https:// URL".to_owned());
        }
        let log_format = r.choice(
            "EAGATE_LOG_FORMAT",
            if production {
                LogFormat::Json
            } else {
                LogFormat::Pretty
            },
            &[("json", LogFormat::Json), ("pretty", LogFormat::Pretty)],
        );

        let url = r
            .raw("EAGATE_DATABASE_URL")
            .map(|u| SecretString::from(u.to_owned()));
        if let Some(raw) = r.raw("EAGATE_DATABASE_URL") {
            if !(raw.starts_with("postgres://") || raw.starts_with("postgresql://")) {
                r.problems
                    .push("EAGATE_DATABASE_URL must start with postgres:// or postgresql://".to_owned());
            }
        } else if production {
            r.problems.push(
                "EAGATE_DATABASE_URL is required when EAGATE_ENV=production (the embedded database is for development)"
                    .to_owned(),
            );
        }
        let database = DatabaseSettings {
            url,
            pool_size: r.ranged("EAGATE_DATABASE_POOL_SIZE", 16, 1, 1000) as usize,
            pool_timeout: Duration::from_secs(r.ranged("EAGATE_DATABASE_POOL_TIMEOUT_SECONDS", 5, 1, 300)),
            auto_migrate: r.parse("EAGATE_AUTO_MIGRATE", !production, "true or false"),
        };

        let jwt_key = match (
            r.raw("EAGATE_JWT_PRIVATE_KEY"),
            r.raw("EAGATE_JWT_PRIVATE_KEY_FILE"),
        ) {
            (Some(_), Some(_)) => {
                r.problems.push(
                    "set only one of EAGATE_JWT_PRIVATE_KEY and EAGATE_JWT_PRIVATE_KEY_FILE".to_owned(),
                );
                JwtKeySource::GeneratedInDataDir
            }
            (Some(pem), None) => JwtKeySource::Pem(SecretString::from(pem.to_owned())),
            (None, Some(path)) => JwtKeySource::File(PathBuf::from(path)),
            (None, None) => {
                if production {
                    r.problems.push(
                        "EAGATE_JWT_PRIVATE_KEY or EAGATE_JWT_PRIVATE_KEY_FILE is required when \
                         EAGATE_ENV=production (an Ed25519 PKCS#8 PEM; `openssl genpkey -algorithm ed25519`)"
                            .to_owned(),
                    );
                }
                JwtKeySource::GeneratedInDataDir
            }
        };
        let api_key_secret = match (
            r.raw("EAGATE_API_KEY_SECRET"),
            r.raw("EAGATE_API_KEY_SECRET_FILE"),
        ) {
            (Some(_), Some(_)) => {
                r.problems
                    .push("set only one of EAGATE_API_KEY_SECRET and EAGATE_API_KEY_SECRET_FILE".to_owned());
                ApiKeySecretSource::GeneratedInDataDir
            }
            (Some(secret), None) => ApiKeySecretSource::Inline(SecretString::from(secret.to_owned())),
            (None, Some(path)) => ApiKeySecretSource::File(PathBuf::from(path)),
            (None, None) => {
                if production {
                    r.problems.push(
                        "EAGATE_API_KEY_SECRET or EAGATE_API_KEY_SECRET_FILE is required when \
                         EAGATE_ENV=production (base64url of 32 random bytes; `eagate keys api-secret`)"
                            .to_owned(),
                    );
                }
                ApiKeySecretSource::GeneratedInDataDir
            }
        };
        let default_concurrency = std::thread::available_parallelism().map_or(2, |n| n.get()) as u64;
        let auth = AuthSettings {
            jwt_key,
            jwt_issuer: r.raw("EAGATE_JWT_ISSUER").unwrap_or("eagate").to_owned(),
            jwt_audience: r.raw("EAGATE_JWT_AUDIENCE").unwrap_or("eagate-api").to_owned(),
            access_token_ttl: Duration::from_secs(r.ranged(
                "EAGATE_ACCESS_TOKEN_TTL_SECONDS",
                900,
                30,
                86_400,
            )),
            refresh_token_ttl: Duration::from_secs(r.ranged(
                "EAGATE_REFRESH_TOKEN_TTL_SECONDS",
                30 * 86_400,
                300,
                365 * 86_400,
            )),
            session_max_lifetime: Duration::from_secs(r.ranged(
                "EAGATE_SESSION_MAX_LIFETIME_SECONDS",
                90 * 86_400,
                300,
                365 * 86_400,
            )),
            argon2: Argon2Params {
                memory_kib: r.ranged("EAGATE_ARGON2_MEMORY_KIB", 19_456, 8, 4 * 1024 * 1024) as u32,
                iterations: r.ranged("EAGATE_ARGON2_ITERATIONS", 2, 1, 100) as u32,
                parallelism: r.ranged("EAGATE_ARGON2_PARALLELISM", 1, 1, 64) as u32,
            },
            hash_concurrency: r.ranged("EAGATE_PASSWORD_HASH_CONCURRENCY", default_concurrency, 1, 1024)
                as usize,
            api_key_secret,
        };
        let master_keys = match (r.raw("EAGATE_MASTER_KEYS"), r.raw("EAGATE_MASTER_KEYS_FILE")) {
            (Some(_), Some(_)) => {
                r.problems
                    .push("set only one of EAGATE_MASTER_KEYS and EAGATE_MASTER_KEYS_FILE".to_owned());
                MasterKeySource::GeneratedInDataDir
            }
            (Some(keys), None) => MasterKeySource::Inline(SecretString::from(keys.to_owned())),
            (None, Some(path)) => MasterKeySource::File(PathBuf::from(path)),
            (None, None) => {
                if production {
                    r.problems.push(
                        "EAGATE_MASTER_KEYS or EAGATE_MASTER_KEYS_FILE is required when EAGATE_ENV=production \
                         (generate one with `eagate keys generate`)"
                            .to_owned(),
                    );
                }
                MasterKeySource::GeneratedInDataDir
            }
        };
        let devices = DeviceSettings {
            master_keys,
            max_active_per_account: r.ranged("EAGATE_MAX_DEVICES_PER_ACCOUNT", 50, 1, 100_000) as u32,
            max_clock_skew: Duration::from_secs(r.ranged("EAGATE_MAX_CLOCK_SKEW_SECONDS", 300, 1, 3600)),
            activity_flush_interval: Duration::from_millis(r.ranged(
                "EAGATE_ACTIVITY_FLUSH_INTERVAL_MS",
                1000,
                10,
                60_000,
            )),
            cache: r
                .choice("EAGATE_DEVICE_CACHE", true, &[("on", true), ("off", false)])
                .then(|| eagate_memory::CacheLimits {
                    max_age: Duration::from_secs(r.ranged(
                        "EAGATE_DEVICE_CACHE_MAX_AGE_SECONDS",
                        60,
                        1,
                        86_400,
                    )),
                    max_devices: r.ranged("EAGATE_DEVICE_CACHE_MAX_DEVICES", 100_000, 100, 100_000_000)
                        as usize,
                }),
            poll_interval: Duration::from_secs(r.ranged("EAGATE_POLL_INTERVAL_SECONDS", 5, 1, 3600)),
            long_poll_max: Duration::from_secs(r.ranged("EAGATE_LONG_POLL_MAX_SECONDS", 30, 1, 300)),
            bundle_max_bytes: r.ranged(
                "EAGATE_BUNDLE_MAX_BYTES",
                eagate_domain::bundle::DEFAULT_MAX_BYTES,
                1,
                1024 * 1024 * 1024,
            ),
            bundle_storage_max_bytes_per_account: r.ranged(
                "EAGATE_BUNDLE_STORAGE_MAX_BYTES_PER_ACCOUNT",
                eagate_domain::bundle::DEFAULT_MAX_STORED_BYTES,
                1,
                1 << 50,
            ),
            bundle_upload_timeout: Duration::from_secs(r.ranged(
                "EAGATE_BUNDLE_UPLOAD_TIMEOUT_SECONDS",
                600,
                1,
                eagate_domain::bundle::MAX_UPLOAD_DEADLINE_SECONDS,
            )),
            deployment_sweep_interval: Duration::from_secs(r.ranged(
                "EAGATE_DEPLOYMENT_SWEEP_SECONDS",
                30,
                1,
                3600,
            )),
            deployment_sweep_batch: r.ranged("EAGATE_DEPLOYMENT_SWEEP_BATCH", 200, 1, 100_000) as u32,
        };
        let redis_url = r.raw("EAGATE_REDIS_URL").map(str::to_owned);
        if let Some(url) = &redis_url
            && ![
                "redis://",
                "rediss://",
                "redis+unix://",
                "redis+cluster://",
                "rediss+cluster://",
            ]
            .iter()
            .any(|scheme| url.starts_with(scheme))
        {
            r.problems.push(
                "EAGATE_REDIS_URL must start with redis://, rediss://, redis+unix:// or (a Redis Cluster) \
                 redis+cluster:// / rediss+cluster://"
                    .to_owned(),
            );
        }
        let redis = RedisSettings {
            url: redis_url.map(SecretString::from),
            key_prefix: r.raw("EAGATE_REDIS_KEY_PREFIX").unwrap_or("eagate:").to_owned(),
            timeout: Duration::from_millis(r.ranged("EAGATE_REDIS_TIMEOUT_MS", 1000, 10, 60_000)),
            admission_batch: r.ranged(
                "EAGATE_REDIS_ADMISSION_BATCH",
                eagate_redis::DEFAULT_MAX_BATCH as u64,
                1,
                1024,
            ) as usize,
            nonce_memory_bytes: r.ranged("EAGATE_NONCE_MEMORY_MB", 64, 1, 1 << 20) as usize * (1 << 20),
        };
        let list = |raw: Option<&str>| -> Vec<String> {
            raw.map(|r| {
                r.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
        };
        let mut trusted_proxies = Vec::new();
        for entry in list(r.raw("EAGATE_TRUSTED_PROXIES")) {
            match (entry.parse::<ipnet::IpNet>(), entry.parse::<std::net::IpAddr>()) {
                (Ok(net), _) if net.trunc() == net => trusted_proxies.push(net),
                (Ok(net), _) => r.problems.push(format!(
                    "EAGATE_TRUSTED_PROXIES entry {entry:?} has host bits set (did you mean {}?)",
                    net.trunc()
                )),
                (_, Ok(ip)) => trusted_proxies.push(ipnet::IpNet::from(ip)),
                _ => r.problems.push(format!(
                    "EAGATE_TRUSTED_PROXIES entry {entry:?} is not an IP address or network (CIDR)"
                )),
            }
        }
        let cors_origins = list(r.raw("EAGATE_CORS_ORIGINS"));
        for origin in &cors_origins {
            if !(origin.starts_with("https://") || origin.starts_with("http://")) || origin.ends_with('/') {
                r.problems.push(format!(
                    "EAGATE_CORS_ORIGINS entry {origin:?} must be an origin like https://app.example.com"
                ));
            }
        }
        let tls = match (r.raw("EAGATE_TLS_CERT"), r.raw("EAGATE_TLS_KEY")) {
            (Some(cert), Some(key)) => Some((PathBuf::from(cert), PathBuf::from(key))),
            (None, None) => None,
            _ => {
                r.problems
                    .push("set both EAGATE_TLS_CERT and EAGATE_TLS_KEY, or neither".to_owned());
                None
            }
        };
        if r.raw("EAGATE_RATE_LIMIT_LOGIN_FAILURES_PER_ACCOUNT_PER_MINUTE")
            .is_some()
        {
            r.problems.push(
                "EAGATE_RATE_LIMIT_LOGIN_FAILURES_PER_ACCOUNT_PER_MINUTE was replaced by \
                 EAGATE_RATE_LIMIT_PASSWORD_CHECKS_PER_ACCOUNT_PER_MINUTE (every password check counts, \
                 right or wrong)"
                    .to_owned(),
            );
        }
        let rate_limits_enabled = r.choice("EAGATE_RATE_LIMITS", true, &[("on", true), ("off", false)]);
        let protection = ProtectionSettings {
            rate_limits_enabled,
            per_ip_per_minute: r.ranged("EAGATE_RATE_LIMIT_PER_IP_PER_MINUTE", 60, 1, 1_000_000) as u32,
            login_per_ip_per_minute: r.ranged("EAGATE_RATE_LIMIT_LOGIN_PER_IP_PER_MINUTE", 10, 1, 1_000_000)
                as u32,
            password_checks_per_account_per_minute: r.ranged(
                "EAGATE_RATE_LIMIT_PASSWORD_CHECKS_PER_ACCOUNT_PER_MINUTE",
                5,
                1,
                1_000_000,
            ) as u32,
            device_per_second: r.ranged("EAGATE_RATE_LIMIT_DEVICE_PER_SECOND", 10, 1, 1_000_000) as u32,
            device_auth_failures_per_ip_per_minute: r.ranged(
                "EAGATE_RATE_LIMIT_DEVICE_AUTH_FAILURES_PER_IP_PER_MINUTE",
                60,
                1,
                1_000_000,
            ) as u32,
            api_key_per_minute: r.ranged("EAGATE_RATE_LIMIT_API_KEY_PER_MINUTE", 600, 1, 1_000_000) as u32,
            trusted_proxies,
            cors_origins,
            max_header_bytes: r.ranged("EAGATE_MAX_HEADER_BYTES", 16 * 1024, 1024, 1024 * 1024) as usize,
            request_timeout: Duration::from_secs(r.ranged("EAGATE_REQUEST_TIMEOUT_SECONDS", 60, 1, 3600)),
            client_header_timeout: Duration::from_secs(r.ranged(
                "EAGATE_CLIENT_HEADER_TIMEOUT_SECONDS",
                5,
                1,
                300,
            )),
            shutdown_timeout: Duration::from_secs(r.ranged("EAGATE_SHUTDOWN_TIMEOUT_SECONDS", 30, 1, 3600)),
            tls,
        };
        if protection.request_timeout <= devices.long_poll_max {
            r.problems.push(format!(
                "EAGATE_REQUEST_TIMEOUT_SECONDS ({}) must exceed EAGATE_LONG_POLL_MAX_SECONDS ({})",
                protection.request_timeout.as_secs(),
                devices.long_poll_max.as_secs()
            ));
        }
        if production && auth.argon2.memory_kib < Argon2Params::OWASP.memory_kib {
            r.problems.push(format!(
                "EAGATE_ARGON2_MEMORY_KIB={} is below OWASP's minimum of {} KiB, refused in production",
                auth.argon2.memory_kib,
                Argon2Params::OWASP.memory_kib
            ));
        }

        let access_log = AccessLog {
            device_sample: r.ranged(
                "EAGATE_ACCESS_LOG_DEVICE_SAMPLE",
                if production { 0 } else { 1 },
                0,
                1_000_000_000,
            ),
            slow: Duration::from_millis(r.ranged("EAGATE_SLOW_REQUEST_MS", 1000, 1, 3_600_000)),
        };

        let metrics_token = r
            .raw("EAGATE_METRICS_TOKEN")
            .map(|t| SecretString::from(t.to_owned()));
        if metrics_token.as_ref().is_some_and(|t| {
            use secrecy::ExposeSecret as _;
            t.expose_secret().len() < 16
        }) {
            r.problems
                .push("EAGATE_METRICS_TOKEN must be at least 16 characters".to_owned());
        }

        if r.problems.is_empty() {
            Ok(Self {
                environment,
                listen,
                data_dir,
                log_format,
                otlp_endpoint,
                database,
                auth,
                devices,
                redis,
                protection,
                access_log,
                metrics_token,
            })
        } else {
            Err(ConfigError(r.problems))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn development_needs_nothing() {
        let s = Settings::from_vars(&vars(&[])).unwrap();
        assert_eq!(s.environment, Environment::Development);
        assert_eq!(s.listen, "127.0.0.1:8080".parse().unwrap());
        assert!(s.database.url.is_none());
        assert!(s.database.auto_migrate);
        assert!(matches!(s.auth.jwt_key, JwtKeySource::GeneratedInDataDir));
        assert_eq!(s.auth.argon2, Argon2Params::OWASP);
        assert_eq!(s.auth.access_token_ttl, Duration::from_secs(900));
    }

    #[test]
    fn production_requires_database_and_keys() {
        let err = Settings::from_vars(&vars(&[("EAGATE_ENV", "production")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("EAGATE_DATABASE_URL"), "{err}");
        assert!(err.contains("EAGATE_JWT_PRIVATE_KEY"), "{err}");
        assert!(err.contains("EAGATE_MASTER_KEYS"), "{err}");
        assert!(err.contains("EAGATE_API_KEY_SECRET"), "{err}");
        let ok = Settings::from_vars(&vars(&[
            ("EAGATE_ENV", "production"),
            ("EAGATE_DATABASE_URL", "postgres://db/eagate"),
            ("EAGATE_JWT_PRIVATE_KEY_FILE", "/etc/eagate/jwt.pem"),
            ("EAGATE_MASTER_KEYS_FILE", "/etc/eagate/master-keys"),
            ("EAGATE_API_KEY_SECRET_FILE", "/etc/eagate/api-key-secret"),
        ]))
        .unwrap();
        assert_eq!(ok.log_format, LogFormat::Json);
        assert!(!ok.database.auto_migrate);
    }

    #[test]
    fn invalid_values_name_their_variable() {
        let err = Settings::from_vars(&vars(&[
            ("EAGATE_LISTEN", "nowhere"),
            ("EAGATE_ACCESS_TOKEN_TTL_SECONDS", "0"),
            ("EAGATE_ENV", "staging"),
            ("EAGATE_DATABASE_URL", "mysql://x"),
            ("EAGATE_ARGON2_ITERATIONS", "many"),
            ("EAGATE_MAX_DEVICES_PER_ACCOUNT", "0"),
            ("EAGATE_REDIS_URL", "http://cache"),
            ("EAGATE_MAX_CLOCK_SKEW_SECONDS", "0"),
        ]))
        .unwrap_err()
        .to_string();
        for name in [
            "EAGATE_LISTEN",
            "EAGATE_ACCESS_TOKEN_TTL_SECONDS",
            "EAGATE_ENV",
            "EAGATE_DATABASE_URL",
            "EAGATE_ARGON2_ITERATIONS",
            "EAGATE_MAX_DEVICES_PER_ACCOUNT",
            "EAGATE_REDIS_URL",
            "EAGATE_MAX_CLOCK_SKEW_SECONDS",
        ] {
            assert!(err.contains(name), "{name} missing from: {err}");
        }
    }

    #[test]
    fn the_redis_admission_batch_is_bounded() {
        let batch = |v: &str| Settings::from_vars(&vars(&[("EAGATE_REDIS_ADMISSION_BATCH", v)]));
        assert_eq!(Settings::from_vars(&vars(&[])).unwrap().redis.admission_batch, 64);
        assert_eq!(batch("1").unwrap().redis.admission_batch, 1);
        assert_eq!(batch("1024").unwrap().redis.admission_batch, 1024);
        for bad in ["0", "1025", "many", "-1"] {
            let err = batch(bad).unwrap_err().to_string();
            assert!(
                err.contains("EAGATE_REDIS_ADMISSION_BATCH") && err.contains("from 1 to 1024"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn trusted_proxies_are_addresses_or_networks() {
        let s = Settings::from_vars(&vars(&[(
            "EAGATE_TRUSTED_PROXIES",
            "10.0.0.5, 10.244.0.0/16, fd00::/8",
        )]))
        .unwrap();
        let nets: Vec<String> = s
            .protection
            .trusted_proxies
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(nets, ["10.0.0.5/32", "10.244.0.0/16", "fd00::/8"]);
        for (bad, says) in [
            ("10.244.1.0/16", "host bits set (did you mean 10.244.0.0/16?)"),
            ("10.0.0.0/33", "not an IP address or network"),
            ("proxy.local", "not an IP address or network"),
        ] {
            let err = Settings::from_vars(&vars(&[("EAGATE_TRUSTED_PROXIES", bad)]))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("EAGATE_TRUSTED_PROXIES") && err.contains(says),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn weak_argon2_is_refused_in_production() {
        let err = Settings::from_vars(&vars(&[
            ("EAGATE_ENV", "production"),
            ("EAGATE_DATABASE_URL", "postgres://db/eagate"),
            ("EAGATE_JWT_PRIVATE_KEY_FILE", "/k.pem"),
            ("EAGATE_MASTER_KEYS_FILE", "/m"),
            ("EAGATE_ARGON2_MEMORY_KIB", "64"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(err.contains("EAGATE_ARGON2_MEMORY_KIB"), "{err}");
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let s = Settings::from_vars(&vars(&[
            ("EAGATE_DATABASE_URL", "postgres://u:hunter2@db/eagate"),
            ("EAGATE_JWT_PRIVATE_KEY", "-----BEGIN PRIVATE KEY-----topsecret"),
            ("EAGATE_API_KEY_SECRET", "apikeysecretvalue"),
        ]))
        .unwrap();
        let debug = format!("{s:?}");
        assert!(
            !debug.contains("hunter2")
                && !debug.contains("topsecret")
                && !debug.contains("apikeysecretvalue"),
            "{debug}"
        );
    }
}
