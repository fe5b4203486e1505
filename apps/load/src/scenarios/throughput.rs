//! `healthz`, `poll`, `heartbeat` and `mixed-login`: wrk replaying
//! requests at eagate and, in the same run, at the bare handler.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use serde::Serialize;
use serde_json::json;

use super::{
    Fixture, Measured, THROUGHPUT_HEADER, cells, fixture, measured, signed_run, summarize, wrk_shape,
};
use crate::api::{Api, PASSWORD};
use crate::context::{Ctx, Store};
use crate::http::request_bytes;
use crate::presign::{Shape, write_replay_file, write_static_file};
use crate::report::Table;
use crate::servers::Server;
use crate::stats::{Latency, ms};

/// What a throughput scenario sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `GET /healthz` (unsigned; the same request every time).
    Healthz,
    /// A signed idle poll, `GET /api/v1/device/poll?wait=0`.
    Poll,
    /// A signed `POST /api/v1/device/heartbeat` with a typical body.
    Heartbeat,
}

impl Kind {
    fn shape(self) -> Option<Shape> {
        match self {
            Self::Healthz => None,
            Self::Poll => Some(Shape::idle_poll()),
            Self::Heartbeat => Some(Shape::heartbeat()),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Healthz => "healthz",
            Self::Poll => "poll",
            Self::Heartbeat => "heartbeat",
        }
    }
}

#[derive(Debug, Serialize)]
struct RunPair {
    bare: Measured,
    eagate: Measured,
    ratio: f64,
}

/// Writes the bare handler's request file (the same request shape,
/// repeated) and returns its path.
fn bare_file(ctx: &Ctx, kind: Kind, fixture: Option<&Fixture>) -> Result<std::path::PathBuf> {
    let path = ctx.file("bare.req");
    match (kind.shape(), fixture) {
        (Some(shape), Some(f)) => {
            write_replay_file(&path, &f.devices, &shape, 20_000)?;
        }
        _ => write_static_file(&path, &request_bytes("GET", "/healthz", &[], None))?,
    }
    Ok(path)
}

/// One eagate run of `kind`: replayed once each when signed, repeated when not.
async fn eagate_run(
    ctx: &Ctx,
    server: &Server,
    kind: Kind,
    fixture: Option<&Fixture>,
    expected_rps: f64,
    duration: Duration,
) -> Result<Measured> {
    let shape = wrk_shape(ctx, duration);
    match (kind.shape(), fixture) {
        (Some(request), Some(f)) => {
            signed_run(
                ctx,
                server.pid,
                server.addr,
                &f.devices,
                &request,
                expected_rps,
                shape,
            )
            .await
        }
        _ => {
            let file = ctx.file("healthz.req");
            write_static_file(&file, &request_bytes("GET", "/healthz", &[], None))?;
            measured(ctx, server.pid, server.addr, &file, true, shape).await
        }
    }
}

/// `healthz`, `poll` or `heartbeat`.
pub async fn run(ctx: &mut Ctx, kind: Kind) -> Result<serde_json::Value> {
    crate::wrk::require()?;
    ctx.database().await?;
    let ceiling = Server::start(&ctx.ceiling_launch("ceiling", None), &ctx.dir).await?;
    let stores: Vec<Store> = if kind == Kind::Healthz {
        vec![ctx.opts.stores[0]]
    } else {
        ctx.opts.stores.clone()
    };
    let mut fixture_cache: Option<Fixture> = None;
    let mut variants = Vec::new();
    let mut table = Table::new(&THROUGHPUT_HEADER);
    for store in stores {
        if store == Store::Redis {
            ctx.require_redis().await?;
        }
        let eagate = Server::start(
            &ctx.eagate_launch(store, &format!("eagate-{}", store.name()), None)?,
            &ctx.dir,
        )
        .await?;
        let api = Api::new(eagate.addr)?;
        if kind.shape().is_some() && fixture_cache.is_none() {
            fixture_cache = Some(fixture(&api, ctx.opts.devices).await?);
        }
        let fixture = fixture_cache.as_ref();
        let bare_file = bare_file(ctx, kind, fixture)?;
        // Warm-up: two seconds each; eagate's also estimates its rate.
        let warm = wrk_shape(ctx, Duration::from_secs(2));
        let bare_warm = crate::wrk::run(&ctx.script, ceiling.addr, &bare_file, true, warm).await?;
        let mut expected = eagate_run(ctx, &eagate, kind, fixture, bare_warm.rps, Duration::from_secs(2))
            .await?
            .wrk
            .rps;
        let mut runs = Vec::new();
        for i in 1..=ctx.opts.runs {
            let bare = measured(
                ctx,
                ceiling.pid,
                ceiling.addr,
                &bare_file,
                true,
                wrk_shape(ctx, ctx.opts.duration),
            )
            .await?;
            let e = eagate_run(ctx, &eagate, kind, fixture, expected, ctx.opts.duration).await?;
            expected = expected.max(e.wrk.rps);
            let ratio = e.wrk.rps / bare.wrk.rps;
            eprintln!(
                "  {} {} run {i}: bare {:.0} req/s p99 {} ms | eagate {:.0} req/s p99 {} ms, {} errors | {:.1}% of bare",
                kind.name(),
                store.name(),
                bare.wrk.rps,
                ms(bare.wrk.latency_us.p99),
                e.wrk.rps,
                ms(e.wrk.latency_us.p99),
                e.wrk.errors.total(),
                ratio * 100.0
            );
            runs.push(RunPair {
                bare,
                eagate: e,
                ratio,
            });
        }
        let bare = summarize(&runs.iter().map(|r| r.bare).collect::<Vec<_>>());
        let eag = summarize(&runs.iter().map(|r| r.eagate).collect::<Vec<_>>());
        let ratio = crate::stats::median(&runs.iter().map(|r| r.ratio).collect::<Vec<_>>());
        let label = match kind {
            Kind::Healthz => "eagate /healthz".to_owned(),
            _ => format!("eagate {}, {} nonces", kind.name(), store.name()),
        };
        let bare_label = match kind {
            Kind::Healthz => "bare actix-web".to_owned(),
            _ => format!("bare actix-web (same requests, {} run)", store.name()),
        };
        table.row(cells(&bare_label, &bare, bare.rps));
        let mut row = cells(&label, &eag, bare.rps);
        row[2] = crate::report::percent(ratio);
        table.row(row);
        variants.push(json!({
            "store": store,
            "runs": runs,
            "median": {"bare": bare, "eagate": eag, "ratio": ratio},
        }));
        eagate.stop().await?;
    }
    ceiling.stop().await?;
    println!(
        "\n{} — medians of {} runs; '% of bare' is the median of the per-run ratios\n\n{}",
        kind.name(),
        ctx.opts.runs,
        table.render()
    );
    Ok(json!({ "variants": variants, "table": table.render() }))
}

/// What the login storm did.
#[derive(Debug, Default, Clone, Serialize)]
struct Storm {
    attempts: u64,
    succeeded: u64,
    refused: u64,
    unexpected: u64,
    seconds: f64,
    logins_per_second: f64,
    latency_us: Latency,
}

/// `clients` tasks logging in until `stop`: even attempts with the right
/// password (200), odd ones with a wrong one (401).
async fn login_storm(api: &Api, users: &[String], clients: usize, stop: Arc<AtomicBool>) -> Result<Storm> {
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..clients {
        let api = api.clone();
        let users = users.to_vec();
        let stop = Arc::clone(&stop);
        tasks.spawn(async move {
            let mut samples = Vec::new();
            let (mut ok, mut refused, mut unexpected) = (0u64, 0u64, 0u64);
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let user = &users[(c + i) % users.len()];
                let valid = i.is_multiple_of(2);
                let password = if valid { PASSWORD } else { "wrong-password-0123" };
                let t = Instant::now();
                match api.login_status(user, password).await {
                    Ok(200) if valid => ok += 1,
                    Ok(401) if !valid => refused += 1,
                    _ => unexpected += 1,
                }
                samples.push(t.elapsed().as_micros() as u64);
                i += 1;
            }
            (samples, ok, refused, unexpected)
        });
    }
    let mut storm = Storm::default();
    let mut samples = Vec::new();
    while let Some(done) = tasks.join_next().await {
        let (s, ok, refused, unexpected) = done?;
        samples.extend(s);
        storm.succeeded += ok;
        storm.refused += refused;
        storm.unexpected += unexpected;
    }
    storm.attempts = samples.len() as u64;
    storm.seconds = started.elapsed().as_secs_f64();
    storm.logins_per_second = storm.attempts as f64 / storm.seconds;
    storm.latency_us = Latency::of(&mut samples);
    Ok(storm)
}

#[derive(Debug, Serialize)]
struct MixedRun {
    bare: Measured,
    quiet: Measured,
    storm: Measured,
    logins: Storm,
    /// Device p99 with the storm / without.
    p99_ratio: f64,
}

/// `mixed-login`: idle polls alone, then while clients log in.
pub async fn mixed_login(ctx: &mut Ctx) -> Result<serde_json::Value> {
    crate::wrk::require()?;
    ctx.database().await?;
    let store = ctx.opts.stores[0];
    if store == Store::Redis {
        ctx.require_redis().await?;
    }
    let ceiling = Server::start(&ctx.ceiling_launch("ceiling", None), &ctx.dir).await?;
    let eagate = Server::start(
        &ctx.eagate_launch(store, &format!("eagate-{}", store.name()), None)?,
        &ctx.dir,
    )
    .await?;
    let api = Api::new(eagate.addr)?;
    let fixture = fixture(&api, ctx.opts.devices).await?;
    let users: Vec<String> = (0..4).map(|i| format!("loadlogin{i}")).collect();
    for u in &users {
        api.owner(u).await?;
    }
    let bare_file = bare_file(ctx, Kind::Poll, Some(&fixture))?;
    let warm = wrk_shape(ctx, Duration::from_secs(2));
    let bare_warm = crate::wrk::run(&ctx.script, ceiling.addr, &bare_file, true, warm).await?;
    let mut expected = eagate_run(
        ctx,
        &eagate,
        Kind::Poll,
        Some(&fixture),
        bare_warm.rps,
        Duration::from_secs(2),
    )
    .await?
    .wrk
    .rps;
    let mut runs = Vec::new();
    for i in 1..=ctx.opts.runs {
        let bare = measured(
            ctx,
            ceiling.pid,
            ceiling.addr,
            &bare_file,
            true,
            wrk_shape(ctx, ctx.opts.duration),
        )
        .await?;
        let quiet = eagate_run(
            ctx,
            &eagate,
            Kind::Poll,
            Some(&fixture),
            expected,
            ctx.opts.duration,
        )
        .await?;
        expected = expected.max(quiet.wrk.rps);
        let stop = Arc::new(AtomicBool::new(false));
        let storm_task = {
            let api = api.clone();
            let users = users.clone();
            let clients = ctx.opts.login_clients;
            let stop = Arc::clone(&stop);
            tokio::spawn(async move { login_storm(&api, &users, clients, stop).await })
        };
        // Let the storm build up before the clock starts.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let storm = eagate_run(
            ctx,
            &eagate,
            Kind::Poll,
            Some(&fixture),
            expected,
            ctx.opts.duration,
        )
        .await;
        stop.store(true, Ordering::Relaxed);
        let logins = storm_task.await??;
        let storm = storm?;
        let p99_ratio = storm.wrk.latency_us.p99 as f64 / quiet.wrk.latency_us.p99.max(1) as f64;
        eprintln!(
            "  mixed-login run {i}: bare {:.0} req/s | quiet {:.0} req/s p99 {} ms | storm {:.0} req/s p99 {} ms \
             ({:.1} logins/s, {} unexpected) | p99 ×{:.2}",
            bare.wrk.rps,
            quiet.wrk.rps,
            ms(quiet.wrk.latency_us.p99),
            storm.wrk.rps,
            ms(storm.wrk.latency_us.p99),
            logins.logins_per_second,
            logins.unexpected,
            p99_ratio
        );
        runs.push(MixedRun {
            bare,
            quiet,
            storm,
            logins,
            p99_ratio,
        });
    }
    eagate.stop().await?;
    ceiling.stop().await?;
    let bare = summarize(&runs.iter().map(|r| r.bare).collect::<Vec<_>>());
    let quiet = summarize(&runs.iter().map(|r| r.quiet).collect::<Vec<_>>());
    let storm = summarize(&runs.iter().map(|r| r.storm).collect::<Vec<_>>());
    let p99_ratio = crate::stats::median(&runs.iter().map(|r| r.p99_ratio).collect::<Vec<_>>());
    let logins_per_second = crate::stats::median(
        &runs
            .iter()
            .map(|r| r.logins.logins_per_second)
            .collect::<Vec<_>>(),
    );
    let login_p99 = Latency::median_of(&runs.iter().map(|r| r.logins.latency_us).collect::<Vec<_>>());
    let unexpected: u64 = runs.iter().map(|r| r.logins.unexpected).sum();
    let mut table = Table::new(&THROUGHPUT_HEADER);
    table.row(cells("bare actix-web", &bare, bare.rps));
    table.row(cells(
        &format!("eagate poll ({}), no logins", store.name()),
        &quiet,
        bare.rps,
    ));
    table.row(cells(
        &format!(
            "eagate poll ({}), {} clients logging in",
            store.name(),
            ctx.opts.login_clients
        ),
        &storm,
        bare.rps,
    ));
    println!(
        "\nmixed-login — medians of {} runs\n\n{}\n\ndevice p99 with the storm / without: ×{p99_ratio:.2}; \
         logins {logins_per_second:.1}/s (half with a wrong password), login p50 {} ms p99 {} ms, {unexpected} unexpected answers",
        ctx.opts.runs,
        table.render(),
        ms(login_p99.p50),
        ms(login_p99.p99),
    );
    Ok(json!({
        "store": store,
        "runs": runs,
        "median": {
            "bare": bare, "quiet": quiet, "storm": storm, "p99_ratio": p99_ratio,
            "logins_per_second": logins_per_second, "login_latency_us": login_p99,
            "unexpected_login_answers": unexpected,
        },
        "table": table.render(),
    }))
}
