//! A rolling restart (SIGTERM A, start A again, then the same for B) under
//! continuous signed device traffic and publishes through nginx: no client
//! sees a failed request, and every acknowledged publish and ack is in the
//! database afterwards.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::stack::*;
use crate::support::*;
use crate::traffic::*;

const DEVICES: usize = 6;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs nginx: run by `just scale-test` (scripts/scale-test.sh)"]
async fn a_rolling_restart_under_signed_traffic_fails_no_request_and_loses_no_signal() {
    let mut stack = Stack::start(|d| d).await;
    let lb = stack.lb();
    let token = lb.owner("roller").await;
    let mut devices = Vec::new();
    for n in 0..DEVICES {
        devices.push(lb.device(&token, &format!("EA {n}")).await);
    }
    let traffic = Traffic::start(&lb, &token, &devices);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = traffic.seen.answers.load(Ordering::Relaxed);
    let away_a = stack.rolling_restart(0).await;
    let away_b = stack.rolling_restart(1).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let during = traffic.seen.answers.load(Ordering::Relaxed) - before;
    let seen = traffic.stop().await;
    drain(&lb, &devices, &seen).await;

    let failures = seen.failures();
    eprintln!(
        "scale: rolling restart: A away {}, B away {}; {} answers during the restarts, {} in all, \
         {} failed; {} signals published, {} acks",
        secs(away_a),
        secs(away_b),
        during,
        seen.answers.load(Ordering::Relaxed),
        failures.len(),
        seen.published.lock().unwrap().len(),
        seen.acked.lock().unwrap().len()
    );
    let problems: Vec<String> = (0..2)
        .flat_map(|i| stack.instance(i).log_since(0))
        .filter(|l| l["level"] != "INFO" && l["level"] != "DEBUG")
        .map(|l| l.to_string())
        .take(10)
        .collect();
    assert!(
        failures.is_empty(),
        "clients saw {} failures, the first: {:#?}\nthe instances' warnings (since their last start):\n{}\n\
         nginx's error log:\n{}",
        failures.len(),
        failures
            .iter()
            .take(5)
            .map(|(what, answer)| format!("{what}: {}", answer.describe()))
            .collect::<Vec<_>>(),
        problems.join("\n"),
        stack.nginx.error_log()
    );
    assert!(during > 100, "traffic ran during the restarts: {during} answers");
    assert!(seen.published.lock().unwrap().len() > 10, "publishes ran");
    let mut conn = stack.pg.connect("eagate").await;
    nothing_lost(&mut conn, &seen, DEVICES).await;
}
