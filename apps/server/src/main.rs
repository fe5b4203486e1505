//! The `eagate` command: `serve` (default) and `migrate up|down|status`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use eagate_postgres::migrate;
use eagate_server::config::Settings;
use eagate_server::startup::resolve_database_url;
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
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("eagate: {e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(settings.log_format);
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
        }
    });
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
    println!("eagate listening on http://{addr} (API under /api/v1)");
    app.run()
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
