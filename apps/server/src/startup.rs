//! Building and running the application.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use eagate_crypto::{
    Argon2Hasher, HmacVerifier, JwtAccessTokens, JwtConfig, OpaqueRefreshTokens, RandomDeviceSecrets,
    XChaChaSealer,
};
use eagate_domain::access::{AdminService, ApiKeyPolicy, ApiKeyService};
use eagate_domain::account::{AccountPolicy, AccountService};
use eagate_domain::activity::{ActivityBuffer, ActivityWriter};
use eagate_domain::bundle::{BundlePolicy, BundleService};
use eagate_domain::cache::{CachedAccounts, CachedDevices, CachedSignals, NoCache};
use eagate_domain::config::ConfigService;
use eagate_domain::deployment::DeploymentService;
use eagate_domain::device::{DeviceAuthPolicy, DeviceAuthService, DevicePolicy, DeviceService};
use eagate_domain::ratelimit::RateLimit;
use eagate_domain::signal::{SignalPolicy, SignalService};
use eagate_domain::{SystemClock, UuidV7Generator};
use eagate_memory::InMemoryDeviceCache;
use eagate_postgres::{
    EmbeddedPostgres, PgAccountRepository, PgAdminRepository, PgApiKeyRepository, PgAuditLog, PgBundleStore,
    PgConfigRepository, PgDeploymentRepository, PgDeviceRepository, PgPool, PgSessionRepository,
    PgSignalRepository, PgSignalWakeups, PoolConfig, create_database_if_missing, create_pool, migrate,
};
use secrecy::ExposeSecret as _;

use crate::config::{Environment, Settings};
use crate::state::{AppState, DeviceApiSettings, Guard, SharedCache};
use crate::{keys, routes};

/// The database the embedded server creates for eagate.
const EMBEDDED_DATABASE: &str = "eagate";

impl From<keys::KeyError> for StartupError {
    fn from(e: keys::KeyError) -> Self {
        Self::Keys(e.to_string())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("embedded PostgreSQL: {0}")]
    Embedded(#[from] eagate_postgres::EmbeddedError),
    #[error("database: {0}")]
    Database(#[from] eagate_postgres::PoolSetupError),
    #[error("migrations: {0}")]
    Migration(#[from] eagate_postgres::MigrationError),
    #[error(
        "the database has pending migrations; run `eagate migrate up` (or set EAGATE_AUTO_MIGRATE=true) before serving"
    )]
    PendingMigrations,
    #[error("keys: {0}")]
    Keys(String),
    #[error("password hasher: {0}")]
    Hasher(#[from] eagate_crypto::HasherError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("redis: {0}")]
    Redis(#[from] eagate_redis::RedisSetupError),
    #[error("{0}")]
    Internal(String),
}

/// The database eagate talks to: the configured URL, or an embedded
/// PostgreSQL under the data directory (development only).
pub async fn resolve_database_url(settings: &Settings) -> Result<String, StartupError> {
    if let Some(url) = &settings.database.url {
        return Ok(url.expose_secret().to_owned());
    }
    if settings.environment == Environment::Production {
        return Err(StartupError::Internal(
            "EAGATE_DATABASE_URL is required in production".into(),
        ));
    }
    let dir = settings.data_dir.join("postgres");
    tracing::info!(dir = %dir.display(), "EAGATE_DATABASE_URL is not set: using an embedded PostgreSQL");
    let pg = tokio::task::spawn_blocking(move || EmbeddedPostgres::start(&dir))
        .await
        .map_err(|e| StartupError::Internal(format!("embedded PostgreSQL start-up task: {e}")))??;
    create_database_if_missing(&pg.url("postgres"), EMBEDDED_DATABASE).await?;
    Ok(pg.url(EMBEDDED_DATABASE))
}

/// The device use cases over `pool`, with the configured master keys (for
/// commands that run beside the servers: their changes reach the servers'
/// caches through the change feed).
pub fn device_service(settings: &Settings, pool: PgPool) -> Result<crate::state::Devices, StartupError> {
    Ok(device_service_with(
        settings,
        pool,
        keys::load_master_keys(settings)?,
        Arc::new(NoCache),
    ))
}

fn device_service_with(
    settings: &Settings,
    pool: PgPool,
    keyring: eagate_crypto::MasterKeyring,
    cache: SharedCache,
) -> crate::state::Devices {
    DeviceService::new(
        CachedDevices::new(PgDeviceRepository::new(pool), cache),
        RandomDeviceSecrets,
        XChaChaSealer::new(keyring),
        SystemClock,
        UuidV7Generator,
        DevicePolicy {
            max_active_devices: settings.devices.max_active_per_account,
            ..DevicePolicy::default()
        },
    )
}

fn duration(d: std::time::Duration, what: &str) -> Result<chrono::Duration, StartupError> {
    chrono::Duration::from_std(d).map_err(|e| StartupError::Internal(format!("{what}: {e}")))
}

/// Signed-request authentication with the configured replay guard.
fn device_auth(
    settings: &Settings,
    devices: crate::state::CachedDeviceRepository,
    redis: Option<&eagate_redis::RedisConnection>,
    keyring: eagate_crypto::MasterKeyring,
    activity: Arc<ActivityBuffer>,
) -> Result<crate::state::DeviceAuth, StartupError> {
    let guard = match redis {
        Some(connection) => {
            tracing::info!("replay protection shared through Redis");
            Guard::Redis(eagate_redis::RedisReplayGuard::with_max_batch(
                connection.clone(),
                &settings.redis.key_prefix,
                settings.redis.admission_batch,
            ))
        }
        None => {
            tracing::info!(
                max_bytes = settings.redis.nonce_memory_bytes,
                "replay protection in process memory (set EAGATE_REDIS_URL when running several instances)"
            );
            Guard::Memory(Arc::new(eagate_memory::InMemoryReplayGuard::new(
                settings.redis.nonce_memory_bytes,
            )))
        }
    };
    let protection = &settings.protection;
    // With rate limits off, the limits are out of reach.
    let (device_rate, failures) = if protection.rate_limits_enabled {
        (
            RateLimit::per_second(protection.device_per_second),
            RateLimit::per_minute(protection.device_auth_failures_per_ip_per_minute),
        )
    } else {
        (RateLimit::per_second(u32::MAX), RateLimit::per_minute(u32::MAX))
    };
    Ok(DeviceAuthService::new(
        devices,
        HmacVerifier::new(XChaChaSealer::new(keyring)),
        guard,
        Arc::new(eagate_memory::InMemoryRateLimiter::new(100_000)),
        SystemClock,
        activity,
        DeviceAuthPolicy {
            max_clock_skew: duration(settings.devices.max_clock_skew, "clock skew")?,
            device_rate,
            failures_per_ip: failures,
        },
    ))
}

/// A built, listening application.
pub struct Application {
    server: Server,
    addr: SocketAddr,
    pool: PgPool,
    wakeups: PgSignalWakeups,
    activity: crate::state::Activity,
    api_keys: crate::state::ApiKeys,
    /// The activity flusher and the deployment sweeper, stopped with the server.
    background: [tokio::task::JoinHandle<()>; 2],
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Resolves the database, migrates it if allowed, loads keys and binds
    /// the listener. Nothing is served until [`Application::run`].
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let database_url = resolve_database_url(&settings).await?;
        if settings.database.auto_migrate {
            let applied = migrate::run_pending(&database_url).await?;
            if !applied.is_empty() {
                tracing::info!(?applied, "applied migrations");
            }
        } else if !migrate::is_up_to_date(&database_url).await? {
            return Err(StartupError::PendingMigrations);
        }
        let pool = create_pool(
            &database_url,
            &PoolConfig {
                max_size: settings.database.pool_size,
                wait_timeout: settings.database.pool_timeout,
                connect_timeout: settings.database.pool_timeout,
            },
        )?;

        let keys = keys::load(&settings)?;
        let jwks = keys::jwks(&keys);
        let access_tokens = JwtAccessTokens::new(
            &keys,
            JwtConfig {
                issuer: settings.auth.jwt_issuer.clone(),
                audience: settings.auth.jwt_audience.clone(),
            },
        );
        let hasher = Argon2Hasher::new(settings.auth.argon2, settings.auth.hash_concurrency)?;
        let ttl = |d: std::time::Duration| {
            chrono::Duration::from_std(d).map_err(|e| StartupError::Internal(format!("token lifetime: {e}")))
        };
        let redis = match &settings.redis.url {
            Some(url) => Some(eagate_redis::RedisConnection::new(
                url.expose_secret(),
                settings.redis.timeout,
            )?),
            None => None,
        };
        // Say at start-up whether Redis answers (each worker thread opens
        // its own connection on its first request); a Redis that is down
        // is not fatal: device requests are refused (fail closed) until it
        // answers.
        if let Some(connection) = &redis
            && let Err(e) = connection.ping().await
        {
            tracing::warn!(error = %e, "Redis does not answer yet; device requests are refused until it does");
        }
        let limiter = match &redis {
            Some(connection) => crate::protect::Limiter::Redis {
                shared: eagate_redis::RedisRateLimiter::new(connection.clone(), &settings.redis.key_prefix),
                local: Arc::new(eagate_memory::InMemoryRateLimiter::new(1_000_000)),
            },
            None => {
                crate::protect::Limiter::Memory(Arc::new(eagate_memory::InMemoryRateLimiter::new(1_000_000)))
            }
        };
        let cache: SharedCache = match settings.devices.cache {
            Some(limits) => Arc::new(InMemoryDeviceCache::new(limits)),
            None => {
                tracing::warn!("EAGATE_DEVICE_CACHE=off: every device request reads the database");
                Arc::new(NoCache)
            }
        };
        let accounts = AccountService::new(
            CachedAccounts::new(PgAccountRepository::new(pool.clone()), Arc::clone(&cache)),
            PgSessionRepository::new(pool.clone()),
            hasher,
            access_tokens,
            OpaqueRefreshTokens,
            PgAuditLog::new(pool.clone()),
            limiter.clone(),
            SystemClock,
            UuidV7Generator,
            AccountPolicy {
                access_token_ttl: ttl(settings.auth.access_token_ttl)?,
                refresh_token_ttl: ttl(settings.auth.refresh_token_ttl)?,
                session_max_lifetime: ttl(settings.auth.session_max_lifetime)?,
                password_checks: RateLimit::per_minute(if settings.protection.rate_limits_enabled {
                    settings.protection.password_checks_per_account_per_minute
                } else {
                    u32::MAX
                }),
            },
        );
        // Read (and in development, maybe generate) the master keys once.
        let keyring = keys::load_master_keys(&settings)?;
        let devices = device_service_with(&settings, pool.clone(), keyring.clone(), Arc::clone(&cache));
        let activity = Arc::new(ActivityBuffer::default());
        let device_auth = device_auth(
            &settings,
            CachedDevices::new(PgDeviceRepository::new(pool.clone()), Arc::clone(&cache)),
            redis.as_ref(),
            keyring,
            Arc::clone(&activity),
        )?;
        let rate_limits = crate::protect::RateLimits::new(limiter, settings.protection.clone());
        let device_api = DeviceApiSettings {
            poll_interval_seconds: settings.devices.poll_interval.as_secs(),
            long_poll_max_seconds: settings.devices.long_poll_max.as_secs(),
        };
        let wakeups = PgSignalWakeups::start(database_url.clone(), Arc::clone(&cache));
        // Serve from the cache from the first request when the database is
        // reachable; without the feed the instance still answers correctly
        // (from the database) and catches up when it connects.
        if tokio::time::timeout(std::time::Duration::from_secs(5), wakeups.ready())
            .await
            .is_err()
        {
            tracing::warn!("the change feed is not connected yet: the device cache is bypassed until it is");
        }
        let signals = SignalService::new(
            CachedSignals::new(PgSignalRepository::new(pool.clone()), Arc::clone(&cache)),
            PgConfigRepository::new(pool.clone()),
            wakeups.clone(),
            Arc::clone(&activity),
            SystemClock,
            UuidV7Generator,
            SignalPolicy {
                long_poll_max: duration(settings.devices.long_poll_max, "long-poll maximum")?,
                ..SignalPolicy::default()
            },
        );
        let activity = ActivityWriter::new(
            activity,
            PgDeviceRepository::new(pool.clone()),
            PgSignalRepository::new(pool.clone()),
        );
        let api_keys = ApiKeyService::new(
            PgApiKeyRepository::new(pool.clone()),
            keys::load_api_keys(&settings)?,
            PgAuditLog::new(pool.clone()),
            SystemClock,
            UuidV7Generator,
            ApiKeyPolicy::default(),
        );
        let flusher = tokio::spawn(flush_activity(
            activity.clone(),
            api_keys.clone(),
            settings.devices.activity_flush_interval,
        ));
        let configs = ConfigService::new(
            PgConfigRepository::new(pool.clone()),
            SystemClock,
            UuidV7Generator,
        );
        let bundles = BundleService::new(
            PgBundleStore::new(pool.clone()),
            SystemClock,
            UuidV7Generator,
            BundlePolicy {
                max_bytes: settings.devices.bundle_max_bytes,
                max_stored_bytes: settings.devices.bundle_storage_max_bytes_per_account,
            },
        );
        let deployments = DeploymentService::new(
            PgDeploymentRepository::new(pool.clone()),
            PgBundleStore::new(pool.clone()),
            SystemClock,
            UuidV7Generator,
        );
        // Swept once the server is listening (a failed start leaves no task
        // behind), until it stops.
        let swept = (deployments.clone(), bundles.clone());
        let state = web::Data::new(AppState {
            accounts,
            devices,
            device_auth,
            signals,
            configs,
            bundles,
            deployments,
            api_keys: api_keys.clone(),
            admin: AdminService::new(PgAdminRepository::new(pool.clone()), SystemClock, UuidV7Generator),
            rate_limits,
            pool: pool.clone(),
            wakeups: wakeups.clone(),
            redis,
            metrics: crate::metrics::handle(),
            metrics_access: match (&settings.metrics_token, settings.environment) {
                (Some(token), _) => crate::state::MetricsAccess::Token(token.clone()),
                (None, Environment::Production) => {
                    tracing::warn!("GET /metrics is off: set EAGATE_METRICS_TOKEN to enable it");
                    crate::state::MetricsAccess::Off
                }
                (None, _) => crate::state::MetricsAccess::Open,
            },
            device_api,
            jwks,
        });

        let listener = TcpListener::bind(settings.listen).map_err(|source| StartupError::Listen {
            addr: settings.listen,
            source,
        })?;
        let addr = listener.local_addr().map_err(|source| StartupError::Listen {
            addr: settings.listen,
            source,
        })?;
        let protection = settings.protection.clone();
        let gateway = crate::gateway::Gateway::new(
            state.rate_limits.clone(),
            protection.tls.is_some(),
            crate::telemetry::traces_exported(),
            settings.access_log,
        );
        let body_timeout = crate::protect::BodyTimeout(protection.request_timeout);
        let upload_timeout = crate::protect::UploadTimeout(settings.devices.bundle_upload_timeout);
        let server = HttpServer::new(move || {
            let cors = {
                let mut cors = actix_cors::Cors::default()
                    .allowed_methods(["GET", "POST", "PATCH", "DELETE"])
                    .allowed_headers([
                        actix_web::http::header::AUTHORIZATION,
                        actix_web::http::header::CONTENT_TYPE,
                        actix_web::http::header::HeaderName::from_static("idempotency-key"),
                        actix_web::http::header::HeaderName::from_static("x-request-id"),
                    ])
                    .expose_headers(["x-request-id", "location", "retry-after", "idempotent-replayed"])
                    .max_age(600);
                for origin in &protection.cors_origins {
                    cors = cors.allowed_origin(origin);
                }
                cors
            };
            let gateway = Arc::clone(&gateway);
            App::new()
                .app_data(state.clone())
                .app_data(body_timeout)
                .app_data(upload_timeout)
                // Without configured origins there is no CORS layer at all:
                // a browser's cross-origin request is simply not allowed.
                .wrap(actix_web::middleware::Condition::new(
                    !protection.cors_origins.is_empty(),
                    cors,
                ))
                .wrap(from_fn(move |req, next| {
                    crate::gateway::handle(Arc::clone(&gateway), req, next)
                }))
                .configure(routes::configure)
        })
        .client_request_timeout(settings.protection.client_header_timeout)
        .shutdown_timeout(settings.protection.shutdown_timeout.as_secs())
        .disable_signals();
        let server = match &settings.protection.tls {
            Some((cert, key)) => server.listen_rustls_0_23(listener, tls_config(cert, key)?),
            None => server.listen(listener),
        }
        .map_err(|source| StartupError::Listen {
            addr: settings.listen,
            source,
        })?
        .run();
        let sweeper = tokio::spawn(sweep(
            swept,
            settings.devices.deployment_sweep_interval,
            settings.devices.deployment_sweep_batch,
        ));
        Ok(Self {
            server,
            addr,
            pool,
            wakeups,
            activity,
            api_keys,
            background: [flusher, sweeper],
        })
    }

    /// After the server stopped: stops the background tasks and writes the
    /// activity still buffered.
    async fn finish(
        activity: crate::state::Activity,
        api_keys: crate::state::ApiKeys,
        background: [tokio::task::JoinHandle<()>; 2],
    ) {
        for task in background {
            task.abort();
        }
        match activity.flush().await {
            Ok(devices) => tracing::info!(devices, "wrote the last device activity"),
            Err(e) => tracing::error!(error = %e, "could not write the last device activity; it is lost"),
        }
        if let Err(e) = api_keys.flush_usage().await {
            tracing::error!(error = %e, "could not write the last API key use times; they are lost");
        }
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The database pool (for tests that inspect rows).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Serves until the server is stopped (see [`Application::run_until_signal`]).
    pub async fn run(self) -> std::io::Result<()> {
        let served = self.server.await;
        Self::finish(self.activity, self.api_keys, self.background).await;
        served
    }

    /// Serves until SIGTERM or SIGINT, then shuts down gracefully: stops
    /// accepting, answers waiting long-polls at once, lets in-flight
    /// requests finish (up to `EAGATE_SHUTDOWN_TIMEOUT_SECONDS`).
    pub async fn run_until_signal(self) -> std::io::Result<()> {
        let handle = self.server.handle();
        let wakeups = self.wakeups.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            tracing::info!("shutdown requested: finishing in-flight requests");
            wakeups.shutdown();
            handle.stop(true).await;
        });
        let served = self.server.await;
        Self::finish(self.activity, self.api_keys, self.background).await;
        served
    }

    /// Starts a graceful shutdown, as a signal would.
    pub fn shutdown_handle(
        &self,
    ) -> impl Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> + use<> {
        let handle = self.server.handle();
        let wakeups = self.wakeups.clone();
        move || {
            let handle = handle.clone();
            let wakeups = wakeups.clone();
            Box::pin(async move {
                wakeups.shutdown();
                handle.stop(true).await;
            })
        }
    }
}

/// Writes buffered device activity and API key last-use times every
/// `interval`, until aborted.
async fn flush_activity(
    activity: crate::state::Activity,
    api_keys: crate::state::ApiKeys,
    interval: std::time::Duration,
) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if let Err(e) = activity.flush().await {
            tracing::warn!(error = %e, "writing device activity failed; retrying with the next flush");
        }
        if let Err(e) = api_keys.flush_usage().await {
            tracing::warn!(error = %e, "writing API key use times failed; retrying with the next flush");
        }
    }
}

/// Every interval: applies timeouts and starts due waves of a batch of
/// running deployments (the least recently swept), so a rollout moves on
/// while nobody reads it (reads and reports apply the same rules), and drops
/// uploads abandoned long ago with their chunks. Every instance sweeps;
/// saves are optimistic and claims skip what another instance holds, so
/// they never conflict in effect.
async fn sweep(
    (deployments, bundles): (crate::state::Deployments, crate::state::Bundles),
    interval: std::time::Duration,
    batch: u32,
) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match deployments.sweep(batch).await {
            Ok(report) if report.changed == 0 && report.failed == 0 => {}
            Ok(report) => tracing::info!(
                swept = report.swept,
                changed = report.changed,
                failed = report.failed,
                "deployment sweep applied timeouts or started waves"
            ),
            Err(e) => tracing::warn!(error = %e, "sweeping deployments failed; retrying with the next sweep"),
        }
        match bundles.drop_stale_uploads().await {
            Ok(0) => {}
            Ok(dropped) => tracing::info!(dropped, "dropped abandoned bundle uploads"),
            Err(e) => {
                tracing::warn!(error = %e, "dropping abandoned uploads failed; retrying with the next sweep")
            }
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// The rustls configuration from PEM certificate chain and key files.
fn tls_config(cert: &std::path::Path, key: &std::path::Path) -> Result<rustls::ServerConfig, StartupError> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<_, _>>())
        .map_err(|e| StartupError::Keys(format!("EAGATE_TLS_CERT={}: {e}", cert.display())))?;
    if certs.is_empty() {
        return Err(StartupError::Keys(format!(
            "EAGATE_TLS_CERT={}: no certificate found",
            cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| StartupError::Keys(format!("EAGATE_TLS_KEY={}: {e}", key.display())))?;
    rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
    .map_err(|e| StartupError::Keys(format!("TLS configuration: {e}")))
}
