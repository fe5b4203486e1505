//! The `eagate` command: `serve` (default) and `migrate up|down|status`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use eagate_postgres::migrate;
use eagate_server::config::Settings;
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
}

#[derive(Debug, Subcommand)]
enum KeysAction {
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
    let telemetry = telemetry::init(settings.log_format, settings.otlp_endpoint.as_deref());
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("eagate: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => serve(settings).await,
            Command::Migrate { action } => migrate_command(settings, action).await,
            Command::Keys { action } => keys_command(settings, action).await,
            Command::Openapi => Ok(()),
        }
    });
    // Export the last spans before exiting.
    telemetry.shutdown();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "eagate stopped");
            eprintln!("eagate: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: Settings) -> Result<(), StartupError> {
    let app = Application::build(settings).await?;
    let addr = app.local_addr();
    tracing::info!(%addr, "eagate listening");
    println!("eagate listening on {addr} (API under /api/v1)");
    app.run_until_signal()
        .await
        .map_err(|e| StartupError::Internal(format!("server error: {e}")))
}

async fn migrate_command(settings: Settings, action: MigrateAction) -> Result<(), StartupError> {
    let url = resolve_database_url(&settings).await?;
    match action {
        MigrateAction::Up => {
            let applied = migrate::run_pending(&url).await?;
            if applied.is_empty() {
                println!("nothing to apply: the schema is up to date");
            }
            for version in applied {
                println!("applied {version}");
            }
        }
        MigrateAction::Down => match migrate::revert_last(&url).await? {
            Some(version) => println!("reverted {version}"),
            None => println!("nothing to revert: no migration is applied"),
        },
        MigrateAction::Status => {
            for m in migrate::status(&url).await? {
                println!("{} {}", if m.applied { "[applied]" } else { "[pending]" }, m.name);
            }
        }
    }
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
        KeysAction::Rotate => {
            let url = resolve_database_url(&settings).await?;
            if !migrate::is_up_to_date(&url).await? {
                return Err(StartupError::PendingMigrations);
            }
            let pool = eagate_postgres::create_pool(&url, &eagate_postgres::PoolConfig::default())?;
            let devices = device_service(&settings, pool)?;
            let report = devices
                .reseal_all()
                .await
                .map_err(|e| StartupError::Internal(format!("re-sealing device secrets: {e}")))?;
            println!(
                "examined {} devices: re-sealed {}, {} changed concurrently (already under the current key)",
                report.examined, report.resealed, report.raced
            );
        }
    }
    Ok(())
}
