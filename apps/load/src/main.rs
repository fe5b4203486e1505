//! `eagate-load SCENARIO [options]` — see the crate docs and
//! docs/benchmarks.md. `just load SCENARIO` builds the release binaries,
//! raises the open-files limit and runs this.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Result, anyhow};
use clap::{Parser, ValueEnum};
use eagate_load::context::{Ctx, Options, Store};
use eagate_load::scenarios::{fanout, instructions, scale_out, soak, throughput};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// Signed idle polls (`wait=0`) from 1,000 devices; memory and Redis nonce stores.
    Poll,
    /// Signed heartbeats from 1,000 devices; memory and Redis nonce stores.
    Heartbeat,
    /// `GET /healthz`.
    Healthz,
    /// Idle polls alone, then while clients log in with right and wrong passwords.
    MixedLogin,
    /// N devices hold long-polls; one publish to all: time until each has it.
    SignalLatency,
    /// 10,000 held long-polls: resident memory.
    IdleConnections,
    /// A steady mixed load for 10 minutes: memory and latency over time.
    Soak,
    /// Instructions per request under callgrind.
    Instructions,
    /// Signed idle polls (Redis nonces) at one instance, then at two sharing the database and Redis, in the same run.
    ScaleOut,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Self::Poll => "poll",
            Self::Heartbeat => "heartbeat",
            Self::Healthz => "healthz",
            Self::MixedLogin => "mixed-login",
            Self::SignalLatency => "signal-latency",
            Self::IdleConnections => "idle-connections",
            Self::Soak => "soak",
            Self::Instructions => "instructions",
            Self::ScaleOut => "scale-out",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Stores {
    Memory,
    Redis,
    Both,
}

/// eagate's load harness: every scenario also measures a bare actix-web
/// handler in the same run and reports both.
#[derive(Debug, Parser)]
#[command(name = "eagate-load", version)]
struct Cli {
    scenario: Scenario,
    /// Measured runs per target (medians are reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Seconds per wrk run; for `soak` the whole soak (default 600).
    #[arg(long)]
    duration: Option<u64>,
    /// wrk connections; `soak` connections.
    #[arg(long, default_value_t = 64)]
    connections: u32,
    /// wrk threads.
    #[arg(long, default_value_t = 1)]
    threads: u32,
    /// Devices (default 1,000; `idle-connections` 10,000).
    #[arg(long)]
    devices: Option<usize>,
    /// Nonce store (default: both for poll and heartbeat, memory otherwise).
    #[arg(long, value_enum)]
    store: Option<Stores>,
    /// `soak`: requests per second.
    #[arg(long, default_value_t = 1000)]
    rate: u32,
    /// `soak`: seconds between samples.
    #[arg(long, default_value_t = 10)]
    sample_every: u64,
    /// `instructions`: measured requests per endpoint.
    #[arg(long, default_value_t = 1000)]
    requests: u64,
    /// `instructions`: warm-up requests before the counters are zeroed.
    #[arg(long, default_value_t = 300)]
    warmup: u64,
    /// `instructions`: functions in the poll's profile.
    #[arg(long, default_value_t = 40)]
    top: usize,
    /// `mixed-login`: clients logging in at once.
    #[arg(long, default_value_t = 8)]
    login_clients: usize,
    /// Long-poll `wait` in seconds (the server's maximum is set to 120).
    #[arg(long, default_value_t = 110)]
    long_poll_wait: u64,
    /// An extra server variable, e.g. `--server-env RUST_LOG=warn` (repeatable).
    #[arg(long, value_parser = parse_env)]
    server_env: Vec<(String, String)>,
    /// Maintenance URL of the PostgreSQL server to create the database on.
    #[arg(
        long,
        env = "EAGATE_LOAD_PG_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    pg_url: String,
    #[arg(long, env = "EAGATE_LOAD_REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    redis_url: String,
    /// Results directory.
    #[arg(long, default_value = "target/load")]
    out: PathBuf,
    /// Keep the replay files.
    #[arg(long)]
    keep: bool,
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?} is not NAME=VALUE"))?;
    if k.is_empty() {
        return Err(format!("{s:?} has no name"));
    }
    Ok((k.to_owned(), v.to_owned()))
}

fn options(cli: &Cli) -> Options {
    let s = cli.scenario;
    let stores = match (cli.store, s) {
        (Some(Stores::Memory), _) => vec![Store::Memory],
        (Some(Stores::Redis), _) => vec![Store::Redis],
        (Some(Stores::Both), _) | (None, Scenario::Poll | Scenario::Heartbeat) => {
            vec![Store::Memory, Store::Redis]
        }
        (None, _) => vec![Store::Memory],
    };
    let duration = cli.duration.unwrap_or(if s == Scenario::Soak { 600 } else { 10 });
    Options {
        runs: cli.runs.max(1),
        duration: Duration::from_secs(duration.max(1)),
        connections: cli.connections,
        threads: cli.threads,
        devices: cli
            .devices
            .unwrap_or(if s == Scenario::IdleConnections {
                10_000
            } else {
                1000
            })
            .max(1),
        stores,
        rate: cli.rate,
        requests: cli.requests,
        warmup: cli.warmup,
        top: cli.top,
        login_clients: cli.login_clients,
        long_poll_wait: cli.long_poll_wait.clamp(15, 120),
        sample_every: Duration::from_secs(cli.sample_every.max(1)),
        server_env: cli.server_env.clone(),
        pg_url: cli.pg_url.clone(),
        redis_url: cli.redis_url.clone(),
        out: cli.out.clone(),
        keep: cli.keep,
    }
}

async fn run(ctx: &mut Ctx, scenario: Scenario) -> Result<serde_json::Value> {
    match scenario {
        Scenario::Poll => throughput::run(ctx, throughput::Kind::Poll).await,
        Scenario::Heartbeat => throughput::run(ctx, throughput::Kind::Heartbeat).await,
        Scenario::Healthz => throughput::run(ctx, throughput::Kind::Healthz).await,
        Scenario::MixedLogin => throughput::mixed_login(ctx).await,
        Scenario::SignalLatency => fanout::run(ctx, true).await,
        Scenario::IdleConnections => fanout::run(ctx, false).await,
        Scenario::Soak => soak::run(ctx).await,
        Scenario::Instructions => instructions::run(ctx).await,
        Scenario::ScaleOut => scale_out::run(ctx).await,
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let opts = options(&cli);
    let mut ctx = match Ctx::new(opts.clone(), cli.scenario.name()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("eagate-load: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!(
        "eagate-load {}: server {}, working files in {}",
        cli.scenario.name(),
        ctx.eagate_bin.display(),
        ctx.dir.display()
    );
    let result = tokio::select! {
        r = run(&mut ctx, cli.scenario) => r,
        _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted")),
    };
    ctx.cleanup().await;
    let value = match result {
        Ok(v) => v,
        Err(e) => {
            eprintln!("eagate-load {}: {e:#}", cli.scenario.name());
            return ExitCode::FAILURE;
        }
    };
    let doc = serde_json::json!({
        "scenario": cli.scenario.name(),
        "started_at_unix": ctx.started,
        "commit": eagate_load::report::git_describe(),
        "machine": eagate_load::procfs::machine(),
        "options": opts,
        "result": value,
    });
    match eagate_load::report::write_json(&ctx.out, &ctx.dir, cli.scenario.name(), &doc) {
        Ok(path) => {
            println!(
                "\nJSON: {} (and {}/result.json)",
                path.display(),
                ctx.dir.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("eagate-load: writing results: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_per_scenario() {
        let o = options(&Cli::parse_from(["eagate-load", "poll"]));
        assert_eq!(o.stores, [Store::Memory, Store::Redis]);
        assert_eq!(o.duration, Duration::from_secs(10));
        assert_eq!((o.devices, o.connections, o.threads, o.runs), (1000, 64, 1, 3));
        let o = options(&Cli::parse_from(["eagate-load", "soak"]));
        assert_eq!(o.duration, Duration::from_secs(600));
        assert_eq!(o.stores, [Store::Memory]);
        let o = options(&Cli::parse_from(["eagate-load", "idle-connections"]));
        assert_eq!(o.devices, 10_000);
        let o = options(&Cli::parse_from([
            "eagate-load",
            "soak",
            "--duration",
            "60",
            "--store",
            "redis",
            "--server-env",
            "RUST_LOG=warn",
        ]));
        assert_eq!(o.duration, Duration::from_secs(60));
        assert_eq!(o.stores, [Store::Redis]);
        assert_eq!(o.server_env, [("RUST_LOG".to_owned(), "warn".to_owned())]);
    }

    #[test]
    fn bad_arguments_are_refused() {
        assert!(Cli::try_parse_from(["eagate-load", "nonsense"]).is_err());
        assert!(Cli::try_parse_from(["eagate-load", "poll", "--server-env", "novalue"]).is_err());
        assert!(Cli::try_parse_from(["eagate-load", "poll", "--server-env", "=x"]).is_err());
        assert!(Cli::try_parse_from(["eagate-load", "poll", "--store", "disk"]).is_err());
    }
}
