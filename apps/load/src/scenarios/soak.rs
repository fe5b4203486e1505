//! `soak`: a steady mixed load for a long time (10 minutes by default),
//! sampling the server's memory and the latency as it goes.
//!
//! Each of C connections sends at a fixed share of the target rate, round
//! robin over its devices: idle polls, every eighth request a heartbeat, and
//! an acknowledgement for every signal a poll returns. Once a second one
//! signal is published to one device; every five seconds a user logs in.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::task::JoinSet;

use super::{Fixture, fixture};
use crate::api::{Api, PASSWORD};
use crate::context::{Ctx, Store};
use crate::http::Connection;
use crate::presign::{Device, Shape, signed, unix_now};
use crate::report::{Table, mb};
use crate::servers::Server;
use crate::stats::{Latency, median, ms};

#[derive(Debug, Default)]
struct Window {
    latencies: Vec<u64>,
    errors: u64,
    signals_received: u64,
    acks: u64,
    publishes: u64,
    publish_errors: u64,
    logins: u64,
}

/// One sampling interval.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    pub at_s: f64,
    pub rss_kib: u64,
    /// Server CPU over the interval, percent of one core.
    pub cpu_percent: f64,
    pub requests: u64,
    pub rps: f64,
    pub errors: u64,
    pub latency_us: Latency,
    pub signals_received: u64,
    pub acks: u64,
    pub publishes: u64,
    pub publish_errors: u64,
    pub logins: u64,
}

#[derive(Deserialize)]
struct PollBody {
    signals: Vec<SignalId>,
}

#[derive(Deserialize)]
struct SignalId {
    id: String,
}

/// Load parameters.
#[derive(Debug, Clone, Copy)]
struct Load {
    duration: Duration,
    rate: u32,
    connections: u32,
    sample_every: Duration,
}

/// One connection's loop until `stop`.
async fn worker(
    addr: std::net::SocketAddr,
    devices: Vec<Device>,
    period: Duration,
    offset: Duration,
    stop: Arc<AtomicBool>,
    window: Arc<Mutex<Window>>,
) {
    let mut conn: Option<Connection> = None;
    let mut pending_acks: Vec<(usize, String)> = Vec::new();
    tokio::time::sleep(offset).await;
    let mut ticker = tokio::time::interval(period);
    let mut k = 0usize;
    while !stop.load(Ordering::Relaxed) {
        ticker.tick().await;
        let (device, shape, is_poll) = match pending_acks.pop() {
            Some((d, id)) => (d, Shape::ack(&id), false),
            None => {
                k += 1;
                let d = k % devices.len();
                if k % 8 == 7 {
                    (d, Shape::heartbeat(), false)
                } else {
                    (d, Shape::idle_poll(), true)
                }
            }
        };
        let request = signed(&devices[device], &shape, unix_now());
        if conn.is_none() {
            conn = Connection::open(addr).await.ok();
        }
        let started = Instant::now();
        let result = match conn.as_mut() {
            Some(c) => c.request(&request).await,
            None => Err(anyhow::anyhow!("cannot connect")),
        };
        let latency = started.elapsed().as_micros() as u64;
        let mut w = window.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match result {
            Ok(resp) if (200..300).contains(&resp.status) => {
                w.latencies.push(latency);
                if is_poll && let Ok(body) = serde_json::from_slice::<PollBody>(&resp.body) {
                    w.signals_received += body.signals.len() as u64;
                    pending_acks.extend(body.signals.into_iter().map(|s| (device, s.id)));
                } else if !is_poll && shape.target.ends_with("/ack") {
                    w.acks += 1;
                }
            }
            Ok(_) => {
                w.latencies.push(latency);
                w.errors += 1;
            }
            Err(_) => {
                w.errors += 1;
                conn = None;
            }
        }
    }
}

/// Drives `server` for `load.duration`; returns the samples.
async fn drive(server: &Server, fixture: &Fixture, load: Load, label: &str) -> Result<Vec<Sample>> {
    let api = Api::new(server.addr)?;
    let stop = Arc::new(AtomicBool::new(false));
    let window = Arc::new(Mutex::new(Window::default()));
    let mut tasks = JoinSet::new();
    let c = load.connections.max(1) as usize;
    let period = Duration::from_secs_f64(c as f64 / f64::from(load.rate.max(1)));
    for w in 0..c {
        let devices: Vec<Device> = fixture.devices.iter().skip(w).step_by(c).cloned().collect();
        if devices.is_empty() {
            continue;
        }
        let offset = period.mul_f64(w as f64 / c as f64);
        tasks.spawn(worker(
            server.addr,
            devices,
            period,
            offset,
            Arc::clone(&stop),
            Arc::clone(&window),
        ));
    }
    // Owner traffic: a publish a second to one device, a login every five seconds.
    {
        let api = api.clone();
        let token = fixture.token.clone();
        let ids: Vec<String> = fixture.devices.iter().map(|d| d.id.clone()).collect();
        let stop = Arc::clone(&stop);
        let window = Arc::clone(&window);
        tasks.spawn(async move {
            let mut ticker = tokio::time::interval(Duration::from_secs(1));
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) {
                ticker.tick().await;
                i += 1;
                let ok = api.publish_to(&token, &ids[(i * 7919) % ids.len()]).await.is_ok();
                let login = if i.is_multiple_of(5) {
                    Some(matches!(api.login_status("loadowner", PASSWORD).await, Ok(200)))
                } else {
                    None
                };
                let mut w = window.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                if ok {
                    w.publishes += 1;
                } else {
                    w.publish_errors += 1;
                }
                match login {
                    Some(true) => w.logins += 1,
                    Some(false) => w.errors += 1,
                    None => {}
                }
            }
        });
    }
    let started = Instant::now();
    let mut samples = Vec::new();
    let mut cpu_before = crate::procfs::cpu_seconds(server.pid)?;
    let mut last = Instant::now();
    while started.elapsed() < load.duration {
        tokio::time::sleep(
            load.sample_every
                .min(load.duration.saturating_sub(started.elapsed())),
        )
        .await;
        let taken = std::mem::take(&mut *window.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        let cpu = crate::procfs::cpu_seconds(server.pid)?;
        let interval = last.elapsed().as_secs_f64();
        last = Instant::now();
        let mut lat = taken.latencies;
        let requests = lat.len() as u64 + taken.errors;
        let s = Sample {
            at_s: started.elapsed().as_secs_f64(),
            rss_kib: crate::procfs::rss_kib(server.pid)?,
            cpu_percent: (cpu - cpu_before) * 100.0 / interval,
            requests,
            rps: requests as f64 / interval,
            errors: taken.errors,
            latency_us: Latency::of(&mut lat),
            signals_received: taken.signals_received,
            acks: taken.acks,
            publishes: taken.publishes,
            publish_errors: taken.publish_errors,
            logins: taken.logins,
        };
        cpu_before = cpu;
        eprintln!(
            "  soak {label} {:>5.0} s: RSS {} | {:.0} req/s, CPU {:.0}% | p50 {} p99 {} max {} ms | {} errors, \
             {} signals received, {} acks",
            s.at_s,
            mb(s.rss_kib),
            s.rps,
            s.cpu_percent,
            ms(s.latency_us.p50),
            ms(s.latency_us.p99),
            ms(s.latency_us.max),
            s.errors,
            s.signals_received,
            s.acks
        );
        samples.push(s);
    }
    stop.store(true, Ordering::Relaxed);
    tasks.abort_all();
    Ok(samples)
}

/// Drift between the first samples after warm-up and the last ones.
#[derive(Debug, Clone, Serialize)]
pub struct Drift {
    pub warmup_samples: usize,
    pub rss_after_warmup_kib: u64,
    pub rss_end_kib: u64,
    pub rss_max_kib: u64,
    pub rss_growth_percent: f64,
    /// Median p99 of the first and last third after warm-up.
    pub p99_first_third_us: f64,
    pub p99_last_third_us: f64,
    pub p99_change_percent: f64,
    pub errors: u64,
}

/// The server remembers every nonce for its clock-skew window (300 s by
/// default, which the harness keeps): its memory grows for that long at a
/// steady rate by design, so warm-up lasts the window and one sample more.
pub const WARMUP_S: f64 = 310.0;

/// Drift after `warmup_s` seconds (a tenth of the samples, at least one,
/// if the run is too short for that).
pub fn drift(samples: &[Sample], warmup_s: f64) -> Option<Drift> {
    if samples.len() < 2 {
        return None;
    }
    let after = samples.iter().position(|s| s.at_s >= warmup_s);
    let warmup = match after {
        Some(n) if n >= 1 && samples.len() - n >= 3 => n,
        _ => (samples.len() / 10).max(1),
    };
    let rest = &samples[warmup..];
    let third = (rest.len() / 3).max(1);
    let p99s = |s: &[Sample]| median(&s.iter().map(|x| x.latency_us.p99 as f64).collect::<Vec<_>>());
    let first = p99s(&rest[..third]);
    let last = p99s(&rest[rest.len() - third..]);
    let rss0 = rest[0].rss_kib;
    let rss_end = rest[rest.len() - 1].rss_kib;
    Some(Drift {
        warmup_samples: warmup,
        rss_after_warmup_kib: rss0,
        rss_end_kib: rss_end,
        rss_max_kib: samples.iter().map(|s| s.rss_kib).max().unwrap_or(0),
        rss_growth_percent: (rss_end as f64 - rss0 as f64) * 100.0 / rss0.max(1) as f64,
        p99_first_third_us: first,
        p99_last_third_us: last,
        p99_change_percent: (last - first) * 100.0 / first.max(1.0),
        errors: samples.iter().map(|s| s.errors + s.publish_errors).sum(),
    })
}

pub async fn run(ctx: &mut Ctx) -> Result<serde_json::Value> {
    ctx.database().await?;
    let store = ctx.opts.stores[0];
    if store == Store::Redis {
        ctx.require_redis().await?;
    }
    let load = Load {
        duration: ctx.opts.duration,
        rate: ctx.opts.rate,
        connections: ctx.opts.connections,
        sample_every: ctx.opts.sample_every,
    };
    let eagate = Server::start(
        &ctx.eagate_launch(store, &format!("eagate-{}", store.name()), None)?,
        &ctx.dir,
    )
    .await?;
    let fixture = fixture(&Api::new(eagate.addr)?, ctx.opts.devices).await?;
    // The ceiling at the same rate, briefly, as the reference.
    let ceiling = Server::start(&ctx.ceiling_launch("ceiling", None), &ctx.dir).await?;
    let reference = Load {
        duration: (load.duration / 10).clamp(Duration::from_secs(10), Duration::from_secs(60)),
        ..load
    };
    let bare = drive(&ceiling, &fixture, reference, "bare").await?;
    ceiling.stop().await?;
    let samples = drive(&eagate, &fixture, load, "eagate").await?;
    eagate.stop().await?;
    let d = drift(&samples, WARMUP_S);
    let bare_p99 = median(&bare.iter().map(|s| s.latency_us.p99 as f64).collect::<Vec<_>>());
    let mut table = Table::new(&[
        "at s", "RSS", "req/s", "CPU %", "p50 ms", "p99 ms", "max ms", "errors", "signals", "acks",
    ]);
    let step = (samples.len() / 20).max(1);
    for (i, s) in samples.iter().enumerate() {
        if i % step != 0 && i != samples.len() - 1 {
            continue;
        }
        table.row(vec![
            format!("{:.0}", s.at_s),
            mb(s.rss_kib),
            format!("{:.0}", s.rps),
            format!("{:.0}", s.cpu_percent),
            ms(s.latency_us.p50),
            ms(s.latency_us.p99),
            ms(s.latency_us.max),
            (s.errors + s.publish_errors).to_string(),
            s.signals_received.to_string(),
            s.acks.to_string(),
        ]);
    }
    println!(
        "\nsoak — {} s at {} req/s over {} connections, {} devices, {} nonces\n\n{}\n",
        load.duration.as_secs(),
        load.rate,
        load.connections,
        fixture.devices.len(),
        store.name(),
        table.render()
    );
    if let Some(d) = &d {
        println!(
            "after warm-up ({} samples): RSS {} → {} ({:+.1}%, max {}); p99 first third {} ms, last third {} ms \
             ({:+.1}%); {} errors; bare actix-web p99 at the same rate {} ms",
            d.warmup_samples,
            mb(d.rss_after_warmup_kib),
            mb(d.rss_end_kib),
            d.rss_growth_percent,
            mb(d.rss_max_kib),
            ms(d.p99_first_third_us as u64),
            ms(d.p99_last_third_us as u64),
            d.p99_change_percent,
            d.errors,
            ms(bare_p99 as u64)
        );
    }
    Ok(json!({
        "store": store,
        "rate": load.rate,
        "connections": load.connections,
        "duration_s": load.duration.as_secs(),
        "bare_reference": bare,
        "bare_p99_us": bare_p99,
        "samples": samples,
        "drift": d,
        "table": table.render(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at: f64, rss: u64, p99: u64) -> Sample {
        Sample {
            at_s: at,
            rss_kib: rss,
            cpu_percent: 0.0,
            requests: 10,
            rps: 1.0,
            errors: 0,
            latency_us: Latency {
                p50: 1,
                p90: 1,
                p99,
                max: p99,
            },
            signals_received: 0,
            acks: 0,
            publishes: 0,
            publish_errors: 0,
            logins: 0,
        }
    }

    #[test]
    fn drift_compares_after_warm_up() {
        // 20 samples: 2 of warm-up, then RSS from 100 to 117 MB-ish and p99 doubling.
        let samples: Vec<Sample> = (0..20)
            .map(|i| {
                sample(
                    i as f64 * 10.0,
                    if i < 2 { 50_000 } else { 100_000 + i * 1000 },
                    if i < 8 { 1000 } else { 2000 },
                )
            })
            .collect();
        let d = drift(&samples, 0.0).unwrap();
        assert_eq!(d.warmup_samples, 2, "a run too short for the window: a tenth");
        assert_eq!(d.rss_after_warmup_kib, 102_000);
        assert_eq!(d.rss_end_kib, 119_000);
        assert!((d.rss_growth_percent - 16.666).abs() < 0.01);
        assert_eq!(d.p99_first_third_us, 1000.0);
        assert_eq!(d.p99_last_third_us, 2000.0);
        assert!((d.p99_change_percent - 100.0).abs() < 1e-9);
        assert!(drift(&samples[..1], 0.0).is_none());
        let windowed = drift(&samples, 100.0).unwrap();
        assert_eq!(windowed.warmup_samples, 10, "warm-up lasts the nonce window");
        assert_eq!(windowed.rss_after_warmup_kib, 110_000);
    }
}
