//! `eagate-device`: try a device against an eagate server by hand.
//!
//! ```sh
//! export EAGATE_SERVER=http://127.0.0.1:8080 EAGATE_DEVICE_ID=3f6c… EAGATE_DEVICE_SECRET=eags_…
//! eagate-device heartbeat --ea-version 1.0
//! eagate-device poll --wait 25
//! eagate-device ack 0192f5e4-… executed --ticket 4812 --fill-price 1.0851
//! ```
//!
//! Every option may come before or after the subcommand. Answers are
//! printed as one JSON line on stdout; errors as one line on stderr.

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use eagate_client::{Ack, ClientError, DeviceClient, Heartbeat, Outcome};

const ABOUT: &str = "Send signed device requests to an eagate server, as an Expert Advisor would";
const AFTER_HELP: &str = "\
Every option may be given before or after the subcommand. The device secret is read \
from the environment variable named by --secret-env (EAGATE_DEVICE_SECRET by default), \
never from the command line. Answers are printed as one JSON line; exit status 0 on \
success, 1 when the server refused or could not be reached, 2 for a usage error.";

#[derive(Debug, Parser)]
#[command(name = "eagate-device", version, about = ABOUT, after_help = AFTER_HELP)]
struct Cli {
    /// The server's base URL: scheme, host and port.
    #[arg(
        long,
        global = true,
        env = "EAGATE_SERVER",
        default_value = "http://127.0.0.1:8080",
        value_name = "URL"
    )]
    server: String,
    /// The device id shown when the device was registered (a lowercase
    /// hyphenated UUID). Required.
    #[arg(long, global = true, env = "EAGATE_DEVICE_ID", value_name = "UUID")]
    device_id: Option<String>,
    /// The name of the environment variable that holds the device secret
    /// (`eags_…`). A secret on the command line would land in shell history.
    #[arg(
        long,
        global = true,
        default_value = "EAGATE_DEVICE_SECRET",
        value_name = "VAR"
    )]
    secret_env: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Report the EA's state; prints {"server_time"}.
    Heartbeat {
        /// The EA's version (at most 32 characters).
        #[arg(long, value_name = "TEXT")]
        ea_version: Option<String>,
        /// The MetaTrader terminal's build number (0–1000000).
        #[arg(long, value_name = "N")]
        terminal_build: Option<u32>,
        /// The broker's name (at most 128 characters).
        #[arg(long, value_name = "TEXT")]
        broker: Option<String>,
        /// The trading account's login number.
        #[arg(long, value_name = "N")]
        account_login: Option<u64>,
        /// The account balance (|x| ≤ 1e15).
        #[arg(long, value_name = "AMOUNT", allow_negative_numbers = true)]
        balance: Option<f64>,
        /// The account equity (|x| ≤ 1e15).
        #[arg(long, value_name = "AMOUNT", allow_negative_numbers = true)]
        equity: Option<f64>,
    },
    /// Fetch the device's settings (poll interval, long-poll maximum, name)
    /// and its trading configuration (`trading`, `config_revision`).
    Config {
        /// Keep the configuration and its ETag in this file: the request
        /// sends If-None-Match and, while the configuration is unchanged
        /// (304), the cached copy is printed.
        #[arg(long, value_name = "FILE")]
        cache: Option<std::path::PathBuf>,
    },
    /// Fetch pending signals, oldest first; prints {"signals", "server_time"}
    /// with every field of each signal.
    Poll {
        /// At most this many signals (1–100; the server's default is 10).
        #[arg(long, value_name = "N")]
        limit: Option<u32>,
        /// Seconds to wait for a signal when none is pending (0 to the
        /// server's maximum, 30 by default); without it the answer is immediate.
        #[arg(long, value_name = "SECONDS")]
        wait: Option<u32>,
    },
    /// Acknowledge a signal with what the EA did; prints the server's receipt.
    Ack {
        /// The signal's id, from `poll`.
        #[arg(value_name = "SIGNAL_ID")]
        signal_id: String,
        /// What the EA did with it.
        #[arg(value_enum, value_name = "OUTCOME")]
        outcome: CliOutcome,
        /// The broker's order ticket (≥ 0).
        #[arg(long, value_name = "N")]
        ticket: Option<i64>,
        /// The price the order was filled at (> 0).
        #[arg(long, value_name = "PRICE")]
        fill_price: Option<f64>,
        /// A note for the owner (at most 512 characters).
        #[arg(long, value_name = "TEXT")]
        message: Option<String>,
    },
    /// The deployment this device should install now; prints it, or `null`.
    Deployment,
    /// Download the current deployment's bundle to FILE, resuming an
    /// interrupted download (FILE.part) and verifying its SHA-256; prints
    /// {"path", "size", "sha256", "resumed_from"}.
    Download {
        /// Where to save the bundle (FILE.part holds it until verified).
        #[arg(long, value_name = "FILE")]
        out: std::path::PathBuf,
    },
    /// Report the device's status in a deployment; prints the receipt.
    Report {
        /// The deployment's id, from `deployment`.
        #[arg(value_name = "DEPLOYMENT_ID")]
        deployment_id: String,
        /// The device's new status.
        #[arg(value_enum, value_name = "STATUS")]
        status: CliStatus,
        /// With `failed`: why (1–512 characters).
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum CliStatus {
    /// The download started.
    Downloading,
    /// The EA runs the new bundle.
    Installed,
    /// It could not be installed (say why with --reason).
    Failed,
}

impl From<CliStatus> for eagate_client::DeploymentStatus {
    fn from(s: CliStatus) -> Self {
        match s {
            CliStatus::Downloading => Self::Downloading,
            CliStatus::Installed => Self::Installed,
            CliStatus::Failed => Self::Failed,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum CliOutcome {
    /// The order was placed.
    Executed,
    /// The EA decided not to trade it (e.g. market closed, risk rules).
    Rejected,
    /// The EA tried and the terminal or broker refused it.
    Failed,
}

impl From<CliOutcome> for Outcome {
    fn from(outcome: CliOutcome) -> Self {
        match outcome {
            CliOutcome::Executed => Self::Executed,
            CliOutcome::Rejected => Self::Rejected,
            CliOutcome::Failed => Self::Failed,
        }
    }
}

/// A usage problem found before anything is sent: exit status 2.
#[derive(Debug, PartialEq, Eq)]
struct Usage(String);

/// The device id and secret, checked locally.
fn credentials(cli: &Cli, env: impl Fn(&str) -> Option<String>) -> Result<(String, String), Usage> {
    let Some(device_id) = cli.device_id.clone() else {
        return Err(Usage(
            "set --device-id (or EAGATE_DEVICE_ID) to the id shown when the device was registered".into(),
        ));
    };
    eagate_client::check_device_id(&device_id).map_err(|e| Usage(format!("--device-id: {e}")))?;
    let Some(secret) = env(&cli.secret_env).filter(|s| !s.is_empty()) else {
        return Err(Usage(format!(
            "set the environment variable {} to the device secret (eags_…)",
            cli.secret_env
        )));
    };
    eagate_client::check_secret(&secret).map_err(|e| Usage(format!("{}: {e}", cli.secret_env)))?;
    Ok((device_id, secret))
}

/// The line printed for an error, with a hint for the errors a new user
/// meets first.
fn error_line(error: &ClientError) -> String {
    match error {
        ClientError::Connect { .. } => format!(
            "eagate-device: {error}. Is the server running there? The address comes from --server or EAGATE_SERVER."
        ),
        ClientError::Problem(p) if p.code == "invalid-signature" => format!(
            "eagate-device: {error}. Check that the device id and secret belong together and that the secret is the current one."
        ),
        _ => format!("eagate-device: {error}"),
    }
}

/// Runs the command; the answer as one JSON line, fields in the server's order.
async fn execute(client: &DeviceClient, command: Command) -> Result<String, ClientError> {
    fn json(value: impl serde::Serialize) -> Result<String, ClientError> {
        serde_json::to_string(&value).map_err(|e| ClientError::Unexpected {
            status: reqwest::StatusCode::OK,
            body: e.to_string(),
        })
    }
    match command {
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
            json(client.heartbeat(&heartbeat).await?)
        }
        Command::Config { cache: None } => json(client.config().await?),
        Command::Config { cache: Some(path) } => {
            let cached: Option<eagate_client::CachedConfig> = std::fs::read(&path)
                .ok()
                .and_then(|bytes| serde_json::from_slice(&bytes).ok());
            let config = match client.config_if_changed(cached.as_ref()).await? {
                eagate_client::ConfigFetch::NotModified => cached.map(|c| c.config),
                eagate_client::ConfigFetch::Changed(fresh) => {
                    let written = serde_json::to_vec(&fresh).map(|bytes| std::fs::write(&path, bytes));
                    if !matches!(written, Ok(Ok(()))) {
                        eprintln!("eagate-device: could not write the cache {}", path.display());
                    }
                    Some(fresh.config)
                }
            };
            json(config)
        }
        Command::Poll { limit, wait } => json(client.poll(limit, wait).await?),
        Command::Ack {
            signal_id,
            outcome,
            ticket,
            fill_price,
            message,
        } => {
            let ack = Ack {
                ticket,
                fill_price,
                message,
                ..Ack::new(&signal_id, outcome.into())
            };
            json(client.ack(&ack).await?)
        }
        Command::Deployment => json(client.deployment().await?),
        Command::Download { out } => {
            let Some(target) = client.deployment().await? else {
                return Err(ClientError::Io(
                    "no deployment targets this device now".to_owned(),
                ));
            };
            json(client.download_bundle(&target.bundle, &out).await?)
        }
        Command::Report {
            deployment_id,
            status,
            reason,
        } => json(
            client
                .report_status(&deployment_id, status.into(), reason.as_deref())
                .await?,
        ),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let (device_id, secret) = match credentials(&cli, |name| std::env::var(name).ok()) {
        Ok(pair) => pair,
        Err(Usage(message)) => {
            eprintln!("eagate-device: {message}");
            return ExitCode::from(2);
        }
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
    let client = match DeviceClient::with_http_client(http, &cli.server, &device_id, &secret) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("eagate-device: --server: {e}");
            return ExitCode::from(2);
        }
    };
    match execute(&client, cli.command).await {
        Ok(json) => {
            println!("{json}");
            if client.clock_offset() != 0 {
                eprintln!("note: corrected the local clock by {} s", client.clock_offset());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{}", error_line(&e));
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use clap::CommandFactory as _;

    use super::*;

    const ID: &str = "3f6c1a2e-8d4b-4c7e-9f10-2b3c4d5e6f70";
    const SECRET: &str = "eags_TESTONLY-0123456789abcdefghijklmnopqrstuvwx";

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("eagate-device").chain(args.iter().copied()))
            .unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    #[test]
    fn every_argument_and_subcommand_has_help() {
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                if matches!(id, "help" | "version") {
                    continue;
                }
                if arg.get_help().is_none_or(|h| h.to_string().trim().is_empty()) {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in command.get_subcommands() {
                if sub.get_name() == "help" {
                    continue;
                }
                if sub.get_about().is_none() {
                    missing.push(format!("{path} {}", sub.get_name()));
                }
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let command = Cli::command();
        command.clone().debug_assert();
        let mut missing = Vec::new();
        walk(&command, "eagate-device", &mut missing);
        assert!(missing.is_empty(), "without help: {missing:?}");
    }

    #[test]
    fn global_options_are_accepted_before_or_after_the_subcommand() {
        let before = parse(&[
            "--server",
            "http://eagate.test:9",
            "--device-id",
            ID,
            "--secret-env",
            "S",
            "poll",
            "--wait",
            "5",
        ]);
        let after = parse(&[
            "poll",
            "--wait",
            "5",
            "--server",
            "http://eagate.test:9",
            "--device-id",
            ID,
            "--secret-env",
            "S",
        ]);
        let mixed = parse(&[
            "--device-id",
            ID,
            "poll",
            "--server",
            "http://eagate.test:9",
            "--wait",
            "5",
            "--secret-env",
            "S",
        ]);
        for cli in [&before, &after, &mixed] {
            assert_eq!(cli.server, "http://eagate.test:9");
            assert_eq!(cli.device_id.as_deref(), Some(ID));
            assert_eq!(cli.secret_env, "S");
            assert!(matches!(
                cli.command,
                Command::Poll {
                    wait: Some(5),
                    limit: None
                }
            ));
        }
        let ack = parse(&[
            "ack",
            "0192f5e4-7c1a-7b3e-9a51-3c2d4e5f6a7b",
            "executed",
            "--device-id",
            ID,
            "--ticket",
            "4812",
            "--fill-price",
            "1.0851",
            "--message",
            "filled",
        ]);
        assert!(matches!(
            ack.command,
            Command::Ack { outcome: CliOutcome::Executed, ticket: Some(4812), fill_price: Some(p), message: Some(ref m), .. }
                if (p - 1.0851).abs() < f64::EPSILON && m == "filled"
        ));
    }

    #[test]
    fn an_unknown_outcome_is_a_usage_error_listing_the_choices() {
        let error = Cli::try_parse_from(["eagate-device", "ack", "x", "done"]).unwrap_err();
        assert_eq!(error.exit_code(), 2);
        let text = error.to_string();
        assert!(
            text.contains("executed") && text.contains("rejected") && text.contains("failed"),
            "{text}"
        );
    }

    #[test]
    fn credentials_are_checked_before_anything_is_sent() {
        let env = |value: Option<&'static str>| {
            move |name: &str| {
                (name == "EAGATE_DEVICE_SECRET")
                    .then_some(value)
                    .flatten()
                    .map(str::to_owned)
            }
        };

        let ok = parse(&["--device-id", ID, "config"]);
        assert_eq!(
            credentials(&ok, env(Some(SECRET))),
            Ok((ID.to_owned(), SECRET.to_owned()))
        );

        let Usage(no_id) = credentials(&parse(&["config"]), env(Some(SECRET))).unwrap_err();
        assert!(no_id.contains("--device-id (or EAGATE_DEVICE_ID)"), "{no_id}");

        let Usage(upper) = credentials(
            &parse(&["--device-id", &ID.to_uppercase(), "config"]),
            env(Some(SECRET)),
        )
        .unwrap_err();
        assert!(
            upper.starts_with("--device-id: the device id must be the lowercase"),
            "{upper}"
        );

        let Usage(unset) = credentials(&ok, env(None)).unwrap_err();
        assert_eq!(
            unset,
            "set the environment variable EAGATE_DEVICE_SECRET to the device secret (eags_…)"
        );

        let Usage(short) = credentials(&ok, env(Some("eags_TESTONLY"))).unwrap_err();
        assert!(
            short.starts_with("EAGATE_DEVICE_SECRET: the device secret is malformed: it is too short"),
            "{short}"
        );
        assert!(
            !short.contains("eags_TESTONLY"),
            "the secret is not echoed: {short}"
        );
    }

    /// `poll` and `ack` print every field the server sent (they once dropped
    /// `created_at`, and the ticket, fill price and message).
    #[test]
    fn poll_and_ack_print_every_field_the_server_sent() {
        let poll = serde_json::json!({
            "signals": [{
                "id": "0192f5e4-7c1a-7b3e-9a51-3c2d4e5f6a7b", "instrument": "EURUSD", "side": "buy",
                "order_type": "limit", "volume": 0.1, "entry_price": 1.08, "stop_loss": 1.05,
                "take_profit": 1.1, "comment": "breakout", "expires_at": "2026-12-03T10:00:00Z",
                "created_at": "2026-12-02T20:49:40.194037Z", "action": "open"
            }],
            "server_time": 1796244580,
            "config_revision": 3,
            "deployment_revision": 2
        });
        let parsed: eagate_client::PollResponse = serde_json::from_value(poll.clone()).unwrap();
        assert_eq!(serde_json::to_value(parsed).unwrap(), poll);

        let receipt = serde_json::json!({
            "signal_id": "0192f5e4-7c1a-7b3e-9a51-3c2d4e5f6a7b", "outcome": "executed", "ticket": 4812,
            "fill_price": 1.0851, "message": "filled", "acknowledged_at": "2026-12-02T20:50:00Z"
        });
        let parsed: eagate_client::AckReceipt = serde_json::from_value(receipt.clone()).unwrap();
        assert_eq!(serde_json::to_value(parsed).unwrap(), receipt);
    }

    #[test]
    fn a_refused_connection_says_so_and_where_the_address_came_from() {
        // A port nothing listens on: bind, note it, close.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let error = runtime.block_on(async {
            let client = DeviceClient::new(&format!("http://127.0.0.1:{port}"), ID, SECRET).unwrap();
            client.config().await.unwrap_err()
        });
        let line = error_line(&error);
        assert_eq!(
            line,
            format!(
                "eagate-device: cannot reach the server at http://127.0.0.1:{port}: connection refused (nothing listens there). \
                 Is the server running there? The address comes from --server or EAGATE_SERVER."
            )
        );
    }
}
