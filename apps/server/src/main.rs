//! The `eagate` command: `serve` (default) and `migrate up|down|status`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use eagate_postgres::migrate;
use eagate_server::config::{LogFormat, Settings};
use eagate_server::startup::{device_service, resolve_database_url};
use eagate_server::{Application, StartupError, telemetry};

#[derive(Debug, Parser)]
#[command(
    name = "eagate",
    version,
    about = "Device registry and request-signing gateway for MT5 Expert Advisors"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the HTTP API (the default).
    Serve,
    /// Manage the database schema.
    Migrate {
        #[command(subcommand)]
        action: MigrateAction,
    },
    /// Print the OpenAPI document (docs/openapi.json).
    Openapi,
    /// Manage the master keys that seal device secrets.
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Grant or revoke the administrator role (the only way to make the first administrator).
    Admin {
        #[command(subcommand)]
        action: AdminAction,
    },
}

#[derive(Debug, Subcommand)]
enum AdminAction {
    /// Make the account with this email an administrator.
    Grant { email: String },
    /// Make the account with this email an owner again.
    Revoke { email: String },
}

#[derive(Debug, Subcommand)]
enum KeysAction {
    /// Print a new random EAGATE_API_KEY_SECRET (base64url of 32 bytes).
    ApiSecret,
    /// Print a new random master-key entry `<id>:<key>` to add to EAGATE_MASTER_KEYS(_FILE).
    Generate {
        /// The key id (1–32 of A-Z a-z 0-9 _ -); default `k<unix time>`.
        #[arg(long)]
        id: Option<String>,
    },
    /// Re-seal every stored device secret under the current (first) master key.
    Rotate,
}

#[derive(Debug, Subcommand)]
enum MigrateAction {
    /// Apply every pending migration.
    Up,
    /// Revert the most recent migration.
    Down,
    /// List migrations and whether each is applied.
    Status,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if matches!(cli.command, Some(Command::Openapi)) {
        println!("{}", eagate_server::routes::document());
        return ExitCode::SUCCESS;
    }
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("eagate: {e}");
            return ExitCode::from(2);
        }
    };
    let log_format = settings.log_format;
    let telemetry = telemetry::init(log_format, settings.otlp_endpoint.as_deref());
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            fatal(log_format, &format!("cannot start the async runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => serve(settings).await,
            Command::Migrate { action } => migrate_command(settings, action).await,
            Command::Keys { action } => keys_command(settings, action).await,
            Command::Admin { action } => admin_command(settings, action).await,
            Command::Openapi => Ok(()),
        }
    });
    let code = match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            fatal(log_format, &explain(&e));
            ExitCode::FAILURE
        }
    };
    // Export the last spans before exiting.
    telemetry.shutdown();
    code
}

/// Reports why the process stops, once: in production one JSON log line on
/// stdout (where every line is JSON), in development one plain line on
/// stderr.
fn fatal(format: LogFormat, message: &str) {
    match format {
        LogFormat::Json => tracing::error!(error = %message, "eagate stopped"),
        LogFormat::Pretty => eprintln!("eagate: {message}"),
    }
}

/// The error, with what to do about the ones a new user meets first.
fn explain(e: &StartupError) -> String {
    use std::io::ErrorKind;
    match e {
        StartupError::Listen { addr, source } => match source.kind() {
            ErrorKind::AddrInUse => format!(
                "cannot listen on {addr}: the address is already in use (another eagate?); \
                 stop that process or choose another address, e.g. EAGATE_LISTEN=127.0.0.1:{}",
                alternative_port(addr.port())
            ),
            ErrorKind::PermissionDenied => format!(
                "cannot listen on {addr}: permission denied (ports below 1024 need privileges); \
                 choose another address, e.g. EAGATE_LISTEN={}:8080",
                addr.ip()
            ),
            ErrorKind::AddrNotAvailable => format!(
                "cannot listen on {addr}: no network interface of this machine has that address; \
                 set EAGATE_LISTEN to one that does, e.g. 127.0.0.1:8080 or 0.0.0.0:8080"
            ),
            _ => e.to_string(),
        },
        other => other.to_string(),
    }
}

fn alternative_port(port: u16) -> u16 {
    if port == u16::MAX { 8081 } else { port + 1 }
}

async fn serve(settings: Settings) -> Result<(), StartupError> {
    let log_format = settings.log_format;
    let scheme = if settings.protection.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let app = Application::build(settings).await?;
    let url = format!("{scheme}://{}", app.local_addr());
    match log_format {
        // Production: every stdout line is JSON.
        LogFormat::Json => tracing::info!(%url, "eagate listening"),
        LogFormat::Pretty => println!("eagate listening on {url} (API under /api/v1, docs at {url}/docs/)"),
    }
    app.run_until_signal()
        .await
        .map_err(|e| StartupError::Internal(format!("server error: {e}")))
}

/// What a state-changing command reports: in production a JSON log line
/// (stdout stays all JSON, e.g. `migrate up` in the systemd unit's
/// `ExecStartPre`), in development a plain line.
fn report(format: LogFormat, text: &str) {
    match format {
        LogFormat::Json => tracing::info!("{text}"),
        LogFormat::Pretty => println!("{text}"),
    }
}

async fn migrate_command(settings: Settings, action: MigrateAction) -> Result<(), StartupError> {
    let format = settings.log_format;
    let url = resolve_database_url(&settings).await?;
    match action {
        MigrateAction::Up => {
            let applied = migrate::run_pending(&url).await?;
            if applied.is_empty() {
                report(format, "nothing to apply: the schema is up to date");
            }
            for name in applied {
                report(format, &format!("applied {name}"));
            }
        }
        MigrateAction::Down => match migrate::revert_last(&url).await? {
            Some(name) => report(format, &format!("reverted {name}")),
            None => report(format, "nothing to revert: no migration is applied"),
        },
        // A query: its answer is the output, in every format.
        MigrateAction::Status => {
            for m in migrate::status(&url).await? {
                println!("{} {}", if m.applied { "[applied]" } else { "[pending]" }, m.name);
            }
        }
    }
    Ok(())
}

async fn admin_command(settings: Settings, action: AdminAction) -> Result<(), StartupError> {
    use eagate_domain::access::{AdminService, Role, RoleChange};
    let (email, role) = match action {
        AdminAction::Grant { email } => (email, Role::Admin),
        AdminAction::Revoke { email } => (email, Role::Owner),
    };
    let url = resolve_database_url(&settings).await?;
    if !migrate::is_up_to_date(&url).await? {
        return Err(StartupError::PendingMigrations);
    }
    let pool = eagate_postgres::create_pool(&url, &eagate_postgres::PoolConfig::default())?;
    let admin = AdminService::new(
        eagate_postgres::PgAdminRepository::new(pool),
        eagate_domain::SystemClock,
        eagate_domain::UuidV7Generator,
    );
    let change = admin
        .set_role(&email, role)
        .await
        .map_err(|e| StartupError::Internal(e.to_string()))?;
    let text = match (change, role) {
        (RoleChange::Changed, Role::Admin) => format!("{email} is now an administrator"),
        (RoleChange::Changed, Role::Owner) => format!("{email} is no longer an administrator"),
        (RoleChange::AlreadySo, Role::Admin) => format!("{email} was already an administrator"),
        (RoleChange::AlreadySo, Role::Owner) => format!("{email} was not an administrator"),
    };
    report(settings.log_format, &text);
    Ok(())
}

async fn keys_command(settings: Settings, action: KeysAction) -> Result<(), StartupError> {
    match action {
        KeysAction::Generate { id } => {
            let id = id.unwrap_or_else(|| format!("k{}", chrono::Utc::now().timestamp()));
            let entry = eagate_crypto::MasterKeyring::generate_entry(&id)
                .map_err(|e| StartupError::Keys(e.to_string()))?;
            // Validate the id the same way start-up will.
            eagate_crypto::MasterKeyring::parse(&entry).map_err(|e| StartupError::Keys(e.to_string()))?;
            println!("{entry}");
        }
        KeysAction::ApiSecret => {
            let secret = eagate_crypto::HmacApiKeys::generate_secret()
                .map_err(|e| StartupError::Keys(e.to_string()))?;
            println!("{secret}");
        }
        KeysAction::Rotate => {
            let url = resolve_database_url(&settings).await?;
            if !migrate::is_up_to_date(&url).await? {
                return Err(StartupError::PendingMigrations);
            }
            let pool = eagate_postgres::create_pool(&url, &eagate_postgres::PoolConfig::default())?;
            let devices = device_service(&settings, pool)?;
            let resealed = devices
                .reseal_all()
                .await
                .map_err(|e| StartupError::Internal(format!("re-sealing device secrets: {e}")))?;
            report(
                settings.log_format,
                &format!(
                    "examined {} devices: re-sealed {}, {} changed concurrently (already under the current key)",
                    resealed.examined, resealed.resealed, resealed.raced
                ),
            );
        }
    }
    Ok(())
}
