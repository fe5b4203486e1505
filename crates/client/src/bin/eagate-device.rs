//! `eagate-device`: try a device against an eagate server by hand.
//!
//! ```sh
//! export EAGATE_DEVICE_SECRET=eags_…
//! eagate-device --server http://127.0.0.1:8080 --device-id 3f6c… heartbeat --ea-version 1.0
//! eagate-device --server http://127.0.0.1:8080 --device-id 3f6c… config
//! ```

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use eagate_client::{Ack, DeviceClient, Heartbeat, Outcome};

#[derive(Debug, Parser)]
#[command(
    name = "eagate-device",
    version,
    about = "Send signed device requests to an eagate server"
)]
struct Cli {
    /// The server's base URL.
    #[arg(long, env = "EAGATE_SERVER", default_value = "http://127.0.0.1:8080")]
    server: String,
    /// The device id (lowercase hyphenated UUID).
    #[arg(long, env = "EAGATE_DEVICE_ID")]
    device_id: String,
    /// The environment variable holding the device secret (never pass a
    /// secret on the command line: it would land in shell history).
    #[arg(long, default_value = "EAGATE_DEVICE_SECRET")]
    secret_env: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Send a heartbeat.
    Heartbeat {
        #[arg(long)]
        ea_version: Option<String>,
        #[arg(long)]
        terminal_build: Option<u32>,
        #[arg(long)]
        broker: Option<String>,
        #[arg(long)]
        account_login: Option<u64>,
        #[arg(long)]
        balance: Option<f64>,
        #[arg(long)]
        equity: Option<f64>,
    },
    /// Fetch the device's configuration.
    Config,
    /// Fetch pending signals (long-polls with --wait).
    Poll {
        #[arg(long)]
        limit: Option<u32>,
        /// Seconds to wait for a signal when none is pending.
        #[arg(long)]
        wait: Option<u32>,
    },
    /// Acknowledge a signal.
    Ack {
        signal_id: String,
        /// executed, rejected or failed.
        #[arg(value_parser = ["executed", "rejected", "failed"])]
        outcome: String,
        #[arg(long)]
        ticket: Option<i64>,
        #[arg(long)]
        fill_price: Option<f64>,
        #[arg(long)]
        message: Option<String>,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let Ok(secret) = std::env::var(&cli.secret_env) else {
        eprintln!(
            "eagate-device: set {} to the device secret (eags_…)",
            cli.secret_env
        );
        return ExitCode::from(2);
    };
    // Long enough for the longest long-poll.
    let http = match reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(330))
        .build()
    {
        Ok(http) => http,
        Err(e) => {
            eprintln!("eagate-device: {e}");
            return ExitCode::FAILURE;
        }
    };
    let client = match DeviceClient::with_http_client(http, &cli.server, &cli.device_id, &secret) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("eagate-device: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Heartbeat {
            ea_version,
            terminal_build,
            broker,
            account_login,
            balance,
            equity,
        } => {
            let heartbeat = Heartbeat {
                ea_version,
                terminal_build,
                broker,
                account_login,
                balance,
                equity,
            };
            client
                .heartbeat(&heartbeat)
                .await
                .map(|ack| serde_json::json!({"server_time": ack.server_time}))
        }
        Command::Poll { limit, wait } => client.poll(limit, wait).await.map(|p| {
            serde_json::json!({
                "server_time": p.server_time,
                "signals": p.signals.iter().map(|s| serde_json::json!({
                    "id": s.id, "instrument": s.instrument, "side": s.side, "order_type": s.order_type,
                    "volume": s.volume, "entry_price": s.entry_price, "stop_loss": s.stop_loss,
                    "take_profit": s.take_profit, "comment": s.comment, "expires_at": s.expires_at,
                })).collect::<Vec<_>>(),
            })
        }),
        Command::Ack {
            signal_id,
            outcome,
            ticket,
            fill_price,
            message,
        } => {
            let outcome = match outcome.as_str() {
                "executed" => Outcome::Executed,
                "rejected" => Outcome::Rejected,
                _ => Outcome::Failed,
            };
            let ack = Ack {
                ticket,
                fill_price,
                message,
                ..Ack::new(&signal_id, outcome)
            };
            client.ack(&ack).await.map(|r| {
                serde_json::json!({"signal_id": r.signal_id, "outcome": r.outcome, "acknowledged_at": r.acknowledged_at})
            })
        }
        Command::Config => client.config().await.map(|c| {
            serde_json::json!({
                "device_id": c.device_id,
                "name": c.name,
                "poll_interval_seconds": c.poll_interval_seconds,
                "long_poll_max_seconds": c.long_poll_max_seconds,
                "server_time": c.server_time,
            })
        }),
    };
    match result {
        Ok(json) => {
            println!("{json}");
            if client.clock_offset() != 0 {
                eprintln!("note: corrected the local clock by {} s", client.clock_offset());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("eagate-device: {e}");
            ExitCode::FAILURE
        }
    }
}
