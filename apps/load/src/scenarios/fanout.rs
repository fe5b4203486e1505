//! `signal-latency` and `idle-connections`: one account, N devices each
//! holding a signed long-poll on its own connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use serde::Serialize;
use serde_json::json;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::{Fixture, fixture};
use crate::api::Api;
use crate::context::{Ctx, Store};
use crate::http::{Connection, Response};
use crate::presign::{Device, Shape, signed, unix_now};
use crate::report::{Table, mb};
use crate::servers::Server;
use crate::stats::{Latency, median, ms};

/// Connections being opened at once.
const CONNECT_CONCURRENCY: usize = 256;

type Held = JoinSet<Result<(Instant, Response)>>;

/// Opens one connection per device and sends each a signed long-poll.
async fn hold(addr: SocketAddr, devices: &[Device], wait: u64) -> Held {
    let permits = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));
    let shape = Shape::long_poll(wait);
    let mut set = JoinSet::new();
    for d in devices {
        let request = signed(d, &shape, unix_now());
        let permits = Arc::clone(&permits);
        set.spawn(async move {
            let mut conn = {
                let _permit = permits.acquire().await?;
                let mut conn = Connection::open(addr).await?;
                conn.send(&request).await?;
                conn
            };
            let response = conn.receive().await?;
            Ok((Instant::now(), response))
        });
    }
    set
}

#[derive(Debug, Default, Clone, Serialize)]
struct Target {
    rss_idle_kib: u64,
    rss_held_kib: u64,
    /// (held − idle) / N, bytes.
    bytes_per_held_poll: f64,
    /// From the first connect until the server reported all N waiting.
    hold_setup_ms: u64,
    /// signal-latency only.
    publish_answered_ms: Option<u64>,
    receipt_us: Option<Latency>,
    all_received_ms: Option<u64>,
    received: u64,
    errors: u64,
    error_examples: Vec<String>,
}

/// One server, one round: hold N polls, measure memory, optionally publish.
async fn round(
    ctx: &Ctx,
    server: &Server,
    api: &Api,
    fixture: &Fixture,
    publish: bool,
    is_eagate: bool,
) -> Result<Target> {
    let n = fixture.devices.len() as u64;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut t = Target {
        rss_idle_kib: crate::procfs::rss_kib(server.pid)?,
        ..Target::default()
    };
    let started = Instant::now();
    let mut held = hold(server.addr, &fixture.devices, ctx.opts.long_poll_wait).await;
    api.await_waiting(
        n,
        Duration::from_secs(ctx.opts.long_poll_wait.saturating_sub(10).max(10)),
    )
    .await?;
    t.hold_setup_ms = started.elapsed().as_millis() as u64;
    tokio::time::sleep(Duration::from_secs(1)).await;
    t.rss_held_kib = crate::procfs::rss_kib(server.pid)?;
    t.bytes_per_held_poll = (t.rss_held_kib.saturating_sub(t.rss_idle_kib)) as f64 * 1024.0 / n as f64;
    if !publish {
        held.abort_all();
        return Ok(t);
    }
    let t0 = Instant::now();
    let signal = api.publish_all(&fixture.token).await?;
    t.publish_answered_ms = Some(t0.elapsed().as_millis() as u64);
    let mut receipts = Vec::with_capacity(n as usize);
    let deadline = Duration::from_secs(ctx.opts.long_poll_wait + 30);
    let collect = async {
        while let Some(done) = held.join_next().await {
            match done.map_err(|e| anyhow!(e)).and_then(|r| r) {
                Ok((at, resp)) if resp.status == 200 && contains(&resp.body, signal.as_bytes()) => {
                    receipts.push(at.saturating_duration_since(t0).as_micros() as u64);
                }
                Ok((_, resp)) => {
                    t.errors += 1;
                    if t.error_examples.len() < 3 {
                        let body = String::from_utf8_lossy(&resp.body);
                        t.error_examples.push(format!(
                            "{} {}",
                            resp.status,
                            body.chars().take(200).collect::<String>()
                        ));
                    }
                }
                Err(e) => {
                    t.errors += 1;
                    if t.error_examples.len() < 3 {
                        t.error_examples.push(format!("{e:#}"));
                    }
                }
            }
        }
    };
    if tokio::time::timeout(deadline, collect).await.is_err() {
        t.errors += held.len() as u64;
        t.error_examples
            .push(format!("{} polls unanswered after {deadline:?}", held.len()));
        held.abort_all();
    }
    t.received = receipts.len() as u64;
    t.all_received_ms = receipts.iter().max().map(|us| us / 1000);
    t.receipt_us = Some(Latency::of(&mut receipts));
    if is_eagate {
        // Otherwise the next round's polls would be answered at once.
        api.cancel(&fixture.token, &signal).await?;
    }
    Ok(t)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[derive(Debug, Serialize)]
struct Run {
    bare: Target,
    eagate: Target,
}

/// `signal-latency` (`publish` = true) or `idle-connections`.
pub async fn run(ctx: &mut Ctx, publish: bool) -> Result<serde_json::Value> {
    let n = ctx.opts.devices;
    crate::procfs::require_open_files(n as u64 + 1024)?;
    ctx.database().await?;
    let store = ctx.opts.stores[0];
    if store == Store::Redis {
        ctx.require_redis().await?;
    }
    let launch = ctx.eagate_launch(store, &format!("eagate-{}-setup", store.name()), None)?;
    let setup = Server::start(&launch, &ctx.dir).await?;
    let fixture = fixture(&Api::new(setup.addr)?, n).await?;
    setup.stop().await?;
    let name = if publish {
        "signal-latency"
    } else {
        "idle-connections"
    };
    let mut runs = Vec::new();
    for i in 1..=ctx.opts.runs {
        let ceiling = Server::start(&ctx.ceiling_launch(&format!("ceiling-{i}"), None), &ctx.dir).await?;
        let bare = round(ctx, &ceiling, &Api::new(ceiling.addr)?, &fixture, publish, false).await?;
        ceiling.stop().await?;
        let launch = ctx.eagate_launch(store, &format!("eagate-{}-{i}", store.name()), None)?;
        let server = Server::start(&launch, &ctx.dir).await?;
        let eagate = round(ctx, &server, &Api::new(server.addr)?, &fixture, publish, true).await?;
        server.stop().await?;
        for (who, t) in [("bare", &bare), ("eagate", &eagate)] {
            let receipt = t.receipt_us.map_or(String::new(), |l| {
                format!(
                    " | publish answered {} ms, receipt p50 {} p99 {} max {} ms, {} errors",
                    t.publish_answered_ms.unwrap_or(0),
                    ms(l.p50),
                    ms(l.p99),
                    ms(l.max),
                    t.errors
                )
            });
            eprintln!(
                "  {name} run {i} {who}: RSS {} idle, {} held ({:.1} KB per poll), all {n} held after {} ms{receipt}",
                mb(t.rss_idle_kib),
                mb(t.rss_held_kib),
                t.bytes_per_held_poll / 1000.0,
                t.hold_setup_ms
            );
            for e in &t.error_examples {
                eprintln!("    error: {e}");
            }
        }
        runs.push(Run { bare, eagate });
    }
    let med = |f: &dyn Fn(&Target) -> f64, pick: &dyn Fn(&Run) -> &Target| {
        median(&runs.iter().map(|r| f(pick(r))).collect::<Vec<_>>())
    };
    let summary = |pick: &dyn Fn(&Run) -> &Target| {
        json!({
            "rss_idle_kib": med(&|t| t.rss_idle_kib as f64, pick),
            "rss_held_kib": med(&|t| t.rss_held_kib as f64, pick),
            "bytes_per_held_poll": med(&|t| t.bytes_per_held_poll, pick),
            "hold_setup_ms": med(&|t| t.hold_setup_ms as f64, pick),
            "publish_answered_ms": med(&|t| t.publish_answered_ms.map_or(f64::NAN, |v| v as f64), pick),
            "receipt_us": publish.then(|| Latency::median_of(
                &runs.iter().filter_map(|r| pick(r).receipt_us).collect::<Vec<_>>())),
            "all_received_ms": med(&|t| t.all_received_ms.map_or(f64::NAN, |v| v as f64), pick),
            "errors_total": runs.iter().map(|r| pick(r).errors).sum::<u64>(),
        })
    };
    let bare = summary(&|r: &Run| &r.bare);
    let eagate = summary(&|r: &Run| &r.eagate);
    let mut table = if publish {
        Table::new(&[
            "target",
            "N held",
            "RSS held (idle)",
            "publish answered ms",
            "receipt p50 ms",
            "p99 ms",
            "max = all have it ms",
            "errors",
        ])
    } else {
        Table::new(&[
            "target",
            "N held",
            "RSS idle",
            "RSS held",
            "per held poll",
            "all held after ms",
        ])
    };
    for (who, s) in [
        ("bare actix-web", &bare),
        (&*format!("eagate ({})", store.name()), &eagate),
    ] {
        let kib = |k: &str| s[k].as_f64().unwrap_or(0.0) as u64;
        let num = |k: &str| s[k].as_f64().map_or("–".to_owned(), |v| format!("{v:.0}"));
        if publish {
            let r: Latency = serde_json::from_value(s["receipt_us"].clone()).unwrap_or_default();
            table.row(vec![
                who.to_owned(),
                n.to_string(),
                format!("{} ({})", mb(kib("rss_held_kib")), mb(kib("rss_idle_kib"))),
                num("publish_answered_ms"),
                ms(r.p50),
                ms(r.p99),
                ms(r.max),
                s["errors_total"].to_string(),
            ]);
        } else {
            table.row(vec![
                who.to_owned(),
                n.to_string(),
                mb(kib("rss_idle_kib")),
                mb(kib("rss_held_kib")),
                format!(
                    "{:.1} KB",
                    s["bytes_per_held_poll"].as_f64().unwrap_or(0.0) / 1000.0
                ),
                num("hold_setup_ms"),
            ]);
        }
    }
    println!(
        "\n{name} — {n} devices, medians of {} runs (errors summed)\n\n{}",
        ctx.opts.runs,
        table.render()
    );
    Ok(json!({
        "store": store,
        "devices": n,
        "runs": runs,
        "median": {"bare": bare, "eagate": eagate},
        "table": table.render(),
    }))
}
