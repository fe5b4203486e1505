//! `instructions`: instructions per request under callgrind, the figure
//! that does not move with the machine's load.
//!
//! Each server runs under `valgrind --tool=callgrind`. Per endpoint: W
//! warm-up requests, `callgrind_control -z` (zero the counters), N requests
//! one after another over ONE keep-alive connection, `callgrind_control -d`
//! (dump); instructions per request = the dump's total / N. The bare
//! handler gets the very same request bytes.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Result, bail};
use serde::Serialize;
use serde_json::json;

use super::fixture;
use crate::api::Api;
use crate::callgrind::{self, ProfileLine};
use crate::context::{Ctx, Store};
use crate::http::{Connection, request_bytes};
use crate::presign::{Device, Shape, signed, unix_now};
use crate::report::Table;
use crate::servers::Server;
use crate::stats::median;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Endpoint {
    Healthz,
    Poll,
    Heartbeat,
}

const ENDPOINTS: [Endpoint; 3] = [Endpoint::Healthz, Endpoint::Poll, Endpoint::Heartbeat];

impl Endpoint {
    fn label(self) -> &'static str {
        match self {
            Self::Healthz => "GET /healthz",
            Self::Poll => "signed idle poll (wait=0)",
            Self::Heartbeat => "signed heartbeat",
        }
    }

    /// `count` requests, each signed now with its own nonce.
    fn requests(self, device: &Device, count: u64) -> Vec<Vec<u8>> {
        let now = unix_now();
        (0..count)
            .map(|_| match self {
                Self::Healthz => request_bytes("GET", "/healthz", &[], None),
                Self::Poll => signed(device, &Shape::idle_poll(), now),
                Self::Heartbeat => signed(device, &Shape::heartbeat(), now),
            })
            .collect()
    }
}

#[derive(Debug, Clone, Serialize)]
struct Count {
    endpoint: Endpoint,
    instructions: u64,
    requests: u64,
    per_request: u64,
    dump: PathBuf,
}

/// Sends `requests` one by one on one connection; all must succeed (2xx).
async fn send_all(conn: &mut Connection, requests: &[Vec<u8>]) -> Result<()> {
    for r in requests {
        let resp = conn.request(r).await?;
        if !(200..300).contains(&resp.status) {
            bail!(
                "unexpected {} answer: {}",
                resp.status,
                String::from_utf8_lossy(&resp.body)
            );
        }
    }
    Ok(())
}

/// Counts every endpoint on one server process.
async fn count_all(
    ctx: &Ctx,
    server: &Server,
    device: &Device,
    prefix: &std::path::Path,
) -> Result<Vec<Count>> {
    let mut seen: Vec<PathBuf> = Vec::new();
    let mut counts = Vec::new();
    for endpoint in ENDPOINTS {
        let warmup = endpoint.requests(device, ctx.opts.warmup);
        let measured = endpoint.requests(device, ctx.opts.requests);
        let mut conn = Connection::open(server.addr).await?;
        send_all(&mut conn, &warmup).await?;
        callgrind::control("-z", server.pid).await?;
        let started = Instant::now();
        send_all(&mut conn, &measured).await?;
        let elapsed = started.elapsed();
        callgrind::control("-d", server.pid).await?;
        let dump = wait_for_dump(prefix, &seen).await?;
        seen.push(dump.clone());
        let text = std::fs::read_to_string(&dump)?;
        let Some(total) = callgrind::dump_total(&text) else {
            bail!("no instruction total in {}", dump.display());
        };
        let per_request = total / ctx.opts.requests.max(1);
        eprintln!(
            "  {}: {} — {per_request} instructions per request ({} requests in {:.1} s under callgrind)",
            server.label,
            endpoint.label(),
            ctx.opts.requests,
            elapsed.as_secs_f64()
        );
        counts.push(Count {
            endpoint,
            instructions: total,
            requests: ctx.opts.requests,
            per_request,
            dump,
        });
    }
    Ok(counts)
}

/// The dump `callgrind_control -d` just wrote, once complete.
async fn wait_for_dump(prefix: &std::path::Path, seen: &[PathBuf]) -> Result<PathBuf> {
    for _ in 0..600 {
        if let Ok(path) = callgrind::newest_dump(prefix, seen) {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            if text.contains("\ntotals:") || text.contains("\nsummary:") {
                return Ok(path);
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    bail!("callgrind wrote no dump for {}", prefix.display())
}

pub async fn run(ctx: &mut Ctx) -> Result<serde_json::Value> {
    callgrind::require()?;
    ctx.database().await?;
    let store = ctx.opts.stores[0];
    if store == Store::Redis {
        ctx.require_redis().await?;
    }
    // One device, registered with eagate running natively.
    let setup = Server::start(&ctx.eagate_launch(store, "eagate-setup", None)?, &ctx.dir).await?;
    let device = fixture(&Api::new(setup.addr)?, 1)
        .await?
        .devices
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("no device registered"))?;
    setup.stop().await?;

    let mut bare_runs: Vec<Vec<Count>> = Vec::new();
    let mut eagate_runs: Vec<Vec<Count>> = Vec::new();
    for i in 1..=ctx.opts.runs {
        let prefix = ctx.file(&format!("callgrind.bare.{i}"));
        let server = Server::start(
            &ctx.ceiling_launch(&format!("ceiling-callgrind-{i}"), Some(prefix.clone())),
            &ctx.dir,
        )
        .await?;
        bare_runs.push(count_all(ctx, &server, &device, &prefix).await?);
        server.stop().await?;

        let prefix = ctx.file(&format!("callgrind.eagate.{i}"));
        let launch = ctx.eagate_launch(store, &format!("eagate-callgrind-{i}"), Some(prefix.clone()))?;
        let server = Server::start(&launch, &ctx.dir).await?;
        eagate_runs.push(count_all(ctx, &server, &device, &prefix).await?);
        server.stop().await?;
    }

    let med = |runs: &[Vec<Count>], e: Endpoint| {
        median(
            &runs
                .iter()
                .filter_map(|r| r.iter().find(|c| c.endpoint == e))
                .map(|c| c.per_request as f64)
                .collect::<Vec<_>>(),
        )
    };
    let spread = |runs: &[Vec<Count>], e: Endpoint| {
        let v: Vec<f64> = runs
            .iter()
            .filter_map(|r| r.iter().find(|c| c.endpoint == e))
            .map(|c| c.per_request as f64)
            .collect();
        let (lo, hi) = v
            .iter()
            .fold((f64::INFINITY, 0.0f64), |(lo, hi), x| (lo.min(*x), hi.max(*x)));
        if v.is_empty() { 0.0 } else { (hi - lo) * 100.0 / lo }
    };
    let mut table = Table::new(&[
        "request",
        "bare actix-web instr/req",
        "eagate instr/req",
        "× bare",
        "spread over runs",
    ]);
    let mut rows = Vec::new();
    for e in ENDPOINTS {
        let bare = med(&bare_runs, e);
        let eag = med(&eagate_runs, e);
        table.row(vec![
            e.label().to_owned(),
            format!("{:.1}k", bare / 1000.0),
            format!("{:.1}k", eag / 1000.0),
            format!("{:.1}×", eag / bare),
            format!("{:.2}%", spread(&eagate_runs, e).max(spread(&bare_runs, e))),
        ]);
        rows.push(json!({"endpoint": e, "bare": bare, "eagate": eag, "ratio": eag / bare}));
    }
    // The inclusive profile of the poll, from the first run.
    let mut profile: Vec<ProfileLine> = Vec::new();
    if let Some(poll) = eagate_runs
        .first()
        .and_then(|r| r.iter().find(|c| c.endpoint == Endpoint::Poll))
    {
        let annotated = callgrind::annotate_inclusive(&poll.dump).await?;
        std::fs::write(ctx.file("poll-annotate-inclusive.txt"), &annotated)?;
        profile = callgrind::parse_annotate(&annotated, poll.instructions, poll.requests, ctx.opts.top);
    }
    let mut top = Table::new(&["inclusive instr/req", "% of total", "function"]);
    for p in &profile {
        top.row(vec![
            p.per_request.to_string(),
            format!("{:.1}", p.percent),
            p.function.clone(),
        ]);
    }
    println!(
        "\ninstructions — {} requests over one keep-alive connection after {} warm-up, {} nonces, medians of {} runs\n\n{}\n\n\
         top {} inclusive functions of the signed idle poll (callgrind_annotate --inclusive=yes; full output in {})\n\n{}",
        ctx.opts.requests,
        ctx.opts.warmup,
        store.name(),
        ctx.opts.runs,
        table.render(),
        profile.len(),
        ctx.file("poll-annotate-inclusive.txt").display(),
        top.render()
    );
    Ok(json!({
        "store": store,
        "requests": ctx.opts.requests,
        "warmup": ctx.opts.warmup,
        "median": rows,
        "runs": {"bare": bare_runs, "eagate": eagate_runs},
        "poll_profile": profile,
        "table": table.render(),
        "profile_table": top.render(),
    }))
}
