//! `scale-out`: does the signed poll scale with instances? Signed idle polls
//! (`wait=0`, Redis nonces) at one instance, then, in the same run, at two
//! instances sharing the database and Redis, each sent half the devices by
//! its own wrk. Reports both rates, eagate's CPU per request, and the
//! machine's idle CPU during each (a saturated machine cannot show
//! scaling: docs/scaling.md).

use std::time::Duration;

use anyhow::Result;
use serde::Serialize;
use serde_json::json;

use super::{Measured, fixture, signed_run_in, wrk_shape};
use crate::api::Api;
use crate::context::{Ctx, Store};
use crate::presign::Shape;
use crate::report::{Table, rate};
use crate::servers::Server;
use crate::stats::{median, ms};

#[derive(Debug, Serialize)]
struct Run {
    one: Measured,
    two: [Measured; 2],
    one_rps: f64,
    two_rps: f64,
    /// The machine's idle share of CPU time during each measurement.
    idle_one: f64,
    idle_two: f64,
}

/// Idle and total jiffies of the whole machine (`/proc/stat`, first line).
fn cpu_jiffies() -> Result<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let fields: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let idle = fields.get(3).copied().unwrap_or(0) + fields.get(4).copied().unwrap_or(0);
    Ok((idle, fields.iter().sum()))
}

fn idle_share(before: (u64, u64), after: (u64, u64)) -> f64 {
    let total = after.1.saturating_sub(before.1).max(1);
    after.0.saturating_sub(before.0) as f64 / total as f64
}

pub async fn run(ctx: &mut Ctx) -> Result<serde_json::Value> {
    crate::wrk::require()?;
    ctx.database().await?;
    ctx.require_redis().await?;
    let a = Server::start(&ctx.eagate_launch(Store::Redis, "eagate-a", None)?, &ctx.dir).await?;
    let b = Server::start(&ctx.eagate_launch(Store::Redis, "eagate-b", None)?, &ctx.dir).await?;
    let api = Api::new(a.addr)?;
    let fixture = fixture(&api, ctx.opts.devices.max(2)).await?;
    let (first, second) = fixture.devices.split_at(fixture.devices.len() / 2);
    let request = Shape::idle_poll();
    let shape = wrk_shape(ctx, ctx.opts.duration);
    // Warm-up: both instances (their caches), and an estimate of the rate.
    let warm = wrk_shape(ctx, Duration::from_secs(2));
    let mut expected = signed_run_in(
        ctx,
        "one.req",
        a.pid,
        a.addr,
        &fixture.devices,
        &request,
        1000.0,
        warm,
    )
    .await?
    .wrk
    .rps;
    signed_run_in(
        ctx,
        "two-b.req",
        b.pid,
        b.addr,
        &fixture.devices,
        &request,
        expected,
        warm,
    )
    .await?;

    let mut runs = Vec::new();
    for i in 1..=ctx.opts.runs {
        let before = cpu_jiffies()?;
        let one = signed_run_in(
            ctx,
            "one.req",
            a.pid,
            a.addr,
            &fixture.devices,
            &request,
            expected,
            shape,
        )
        .await?;
        let between = cpu_jiffies()?;
        let (x, y) = tokio::try_join!(
            signed_run_in(ctx, "two-a.req", a.pid, a.addr, first, &request, expected, shape),
            signed_run_in(ctx, "two-b.req", b.pid, b.addr, second, &request, expected, shape),
        )?;
        let after = cpu_jiffies()?;
        let run = Run {
            one,
            two: [x, y],
            one_rps: one.wrk.rps,
            two_rps: x.wrk.rps + y.wrk.rps,
            idle_one: idle_share(before, between),
            idle_two: idle_share(between, after),
        };
        expected = expected.max(run.one_rps).max(run.two_rps);
        eprintln!(
            "  scale-out run {i}: one instance {:.0} req/s (p99 {} ms, {} errors, machine idle {:.0}%) | two \
             instances {:.0} req/s ({:.0} + {:.0}; p99 {} / {} ms, {} errors, machine idle {:.0}%) | x{:.2}",
            run.one_rps,
            ms(one.wrk.latency_us.p99),
            one.wrk.errors.total(),
            run.idle_one * 100.0,
            run.two_rps,
            x.wrk.rps,
            y.wrk.rps,
            ms(x.wrk.latency_us.p99),
            ms(y.wrk.latency_us.p99),
            x.wrk.errors.total() + y.wrk.errors.total(),
            run.idle_two * 100.0,
            run.two_rps / run.one_rps.max(1.0)
        );
        runs.push(run);
    }
    a.stop().await?;
    b.stop().await?;

    let med = |f: fn(&Run) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>());
    let (one, two) = (med(|r| r.one_rps), med(|r| r.two_rps));
    let mut table = Table::new(&["target", "req/s", "eagate CPU µs/req", "machine idle"]);
    table.row(vec![
        "one instance".into(),
        rate(one),
        format!("{:.0}", med(|r| r.one.cpu_us_per_request)),
        format!("{:.0}%", med(|r| r.idle_one) * 100.0),
    ]);
    table.row(vec![
        "two instances (sum)".into(),
        rate(two),
        format!(
            "{:.0}",
            med(|r| (r.two[0].cpu_us_per_request + r.two[1].cpu_us_per_request) / 2.0)
        ),
        format!("{:.0}%", med(|r| r.idle_two) * 100.0),
    ]);
    println!(
        "\nscale-out — signed idle polls, Redis nonces, {} devices; medians of {} runs; two/one = {:.2}\n\n{}",
        fixture.devices.len(),
        ctx.opts.runs,
        two / one.max(1.0),
        table.render()
    );
    Ok(json!({
        "runs": runs,
        "median": {"one_rps": one, "two_rps": two, "ratio": two / one.max(1.0)},
        "table": table.render(),
    }))
}
