//! The scenarios behind `just load SCENARIO`.

pub mod fanout;
pub mod instructions;
pub mod scale_out;
pub mod soak;
pub mod throughput;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{Result, bail};
use serde::Serialize;

use crate::api::Api;
use crate::context::Ctx;
use crate::presign::{Device, Shape, write_replay_file};
use crate::stats::Latency;
use crate::wrk;

/// The owner account and its devices (kept in the run's database, so they
/// survive server restarts).
#[derive(Debug, Clone)]
pub struct Fixture {
    pub token: String,
    pub devices: Vec<Device>,
}

/// Registers the load-test owner and `devices` devices.
pub async fn fixture(api: &Api, devices: usize) -> Result<Fixture> {
    let started = std::time::Instant::now();
    let token = api.owner("loadowner").await?;
    let devices = api.devices(&token, devices, 8).await?;
    eprintln!(
        "  registered {} devices in {:.1} s",
        devices.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(Fixture { token, devices })
}

/// One measured wrk run, with the server's CPU time and memory around it.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Measured {
    #[serde(flatten)]
    pub wrk: wrk::Run,
    /// Server CPU (user + system) per request, microseconds.
    pub cpu_us_per_request: f64,
    /// Server resident memory after the run, KiB.
    pub rss_kib: u64,
}

/// Runs wrk against `pid`'s server, measuring its CPU time and memory.
pub async fn measured(
    ctx: &Ctx,
    pid: u32,
    addr: SocketAddr,
    file: &Path,
    cycle: bool,
    shape: wrk::Shape,
) -> Result<Measured> {
    let cpu_before = crate::procfs::cpu_seconds(pid)?;
    let run = wrk::run(&ctx.script, addr, file, cycle, shape).await?;
    let cpu = crate::procfs::cpu_seconds(pid)? - cpu_before;
    Ok(Measured {
        cpu_us_per_request: cpu * 1e6 / run.requests.max(1) as f64,
        rss_kib: crate::procfs::rss_kib(pid)?,
        wrk: run,
    })
}

/// Pre-signs enough requests for a run at about `expected_rps` and replays
/// them once each. Should the list run out (the server was faster than
/// expected), the run is discarded and repeated with a longer list.
pub async fn signed_run(
    ctx: &Ctx,
    pid: u32,
    addr: SocketAddr,
    devices: &[Device],
    request: &Shape,
    expected_rps: f64,
    shape: wrk::Shape,
) -> Result<Measured> {
    signed_run_in(
        ctx,
        "eagate.req",
        pid,
        addr,
        devices,
        request,
        expected_rps,
        shape,
    )
    .await
}

/// [`signed_run`] with its request list in the run directory's `file`
/// (concurrent runs need one each).
#[allow(clippy::too_many_arguments)]
pub async fn signed_run_in(
    ctx: &Ctx,
    file: &str,
    pid: u32,
    addr: SocketAddr,
    devices: &[Device],
    request: &Shape,
    expected_rps: f64,
    shape: wrk::Shape,
) -> Result<Measured> {
    let file = ctx.file(file);
    let mut count = (expected_rps.max(100.0) * shape.duration.as_secs_f64() * 1.5) as usize + 2000;
    for _ in 0..3 {
        write_replay_file(&file, devices, request, count)?;
        let m = measured(ctx, pid, addr, &file, false, shape).await?;
        if m.wrk.wraps == 0 {
            return Ok(m);
        }
        eprintln!(
            "  the {count} pre-signed requests ran out ({:.0} req/s): repeating the run with more",
            m.wrk.rps
        );
        count *= 3;
    }
    bail!("pre-signed requests kept running out")
}

/// The per-field median of measured runs.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Summary {
    pub rps: f64,
    pub latency_us: Latency,
    pub errors: u64,
    pub cpu_us_per_request: f64,
    pub rss_kib: u64,
}

pub fn summarize(runs: &[Measured]) -> Summary {
    let med = |f: fn(&Measured) -> f64| crate::stats::median(&runs.iter().map(f).collect::<Vec<_>>());
    Summary {
        rps: med(|m| m.wrk.rps),
        latency_us: Latency::median_of(&runs.iter().map(|m| m.wrk.latency_us).collect::<Vec<_>>()),
        errors: runs.iter().map(|m| m.wrk.errors.total()).sum(),
        cpu_us_per_request: med(|m| m.cpu_us_per_request),
        rss_kib: med(|m| m.rss_kib as f64) as u64,
    }
}

/// A wrk load shape from the options with another duration.
pub fn wrk_shape(ctx: &Ctx, duration: Duration) -> wrk::Shape {
    wrk::Shape {
        threads: ctx.opts.threads,
        connections: ctx.opts.connections,
        duration,
    }
}

/// Table cells for one summarized target.
pub fn cells(name: &str, s: &Summary, ceiling_rps: f64) -> Vec<String> {
    use crate::report::{percent, rate};
    use crate::stats::ms;
    vec![
        name.to_owned(),
        rate(s.rps),
        percent(s.rps / ceiling_rps),
        ms(s.latency_us.p50),
        ms(s.latency_us.p90),
        ms(s.latency_us.p99),
        ms(s.latency_us.max),
        s.errors.to_string(),
        format!("{:.0}", s.cpu_us_per_request),
    ]
}

pub const THROUGHPUT_HEADER: [&str; 9] = [
    "target",
    "req/s",
    "% of bare",
    "p50 ms",
    "p90 ms",
    "p99 ms",
    "max ms",
    "errors",
    "server CPU µs/req",
];
