//! PostgreSQL failover: a streaming replica (`pg_basebackup`), synchronous,
//! is promoted after the primary crashes (`pg_ctl stop -m immediate`) while
//! devices poll, acknowledge and send heartbeats and an owner publishes.
//! eagate, given both hosts and `target_session_attrs=read-write`, finds
//! the new primary by itself (its pool and its LISTEN connection); every
//! publish and ack it acknowledged is on the new primary; the failures
//! clients saw meanwhile are counted, and each is the documented 503.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::support::*;
use crate::traffic::*;

const DEVICES: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "starts a PostgreSQL replica: run by `just scale-test` (scripts/scale-test.sh)"]
async fn a_promoted_replica_takes_over_without_losing_an_acknowledged_write() {
    let primary = Postgres::start().await;
    let replica = primary.replica().await;
    // Synchronous replication: a commit is acknowledged once the replica
    // has it, so a crash of the primary loses nothing acknowledged.
    let mut admin = primary.connect("postgres").await;
    for sql in [
        "ALTER SYSTEM SET synchronous_standby_names = '*'",
        "SELECT pg_reload_conf()",
    ] {
        diesel_async::RunQueryDsl::execute(diesel::sql_query(sql), &mut admin)
            .await
            .unwrap();
    }
    until(
        "the replica streams synchronously",
        Duration::from_secs(20),
        async || {
            (count(
                &mut admin,
                "SELECT count(*) AS n FROM pg_stat_replication WHERE sync_state = 'sync'",
            )
            .await
                == 1)
                .then_some(())
        },
    )
    .await;
    drop(admin);

    let url = format!(
        "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/eagate?target_session_attrs=read-write&connect_timeout=2",
        primary.port(),
        replica.port()
    );
    let server = Deployment::new(&primary)
        .with("EAGATE_DATABASE_URL", &url)
        .with("EAGATE_DATABASE_POOL_TIMEOUT_SECONDS", "5")
        .start()
        .await;
    let api = server.api();
    let token = api.owner("failover").await;
    let mut devices = Vec::new();
    for n in 0..DEVICES {
        devices.push(api.device(&token, &format!("EA {n}")).await);
    }

    let traffic = Traffic::start(&api, &token, &devices);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = traffic.seen.answers.load(Ordering::Relaxed);
    let mark = server.log_mark();
    // The primary crashes; the replica is promoted as a failover manager
    // (Patroni, pg_auto_failover, a cloud's) would do.
    let crashed = Instant::now();
    primary.stop("immediate").await;
    replica.promote().await;
    let promoted = crashed.elapsed();
    let served = until(
        "eagate answers again after the promotion",
        Duration::from_secs(30),
        async || {
            let last = traffic.seen.successes.lock().unwrap().last().copied();
            last.filter(|t| *t > crashed + promoted).map(|t| t - crashed)
        },
    )
    .await;
    server
        .wait_for_log(mark, Duration::from_secs(30), |l| {
            l["message"] == "change feed connected"
        })
        .await;
    let feed_back = crashed.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let during = traffic.seen.answers.load(Ordering::Relaxed) - before;
    let seen = traffic.stop().await;
    drain(&api, &devices, &seen).await;

    let failures = seen.failures();
    let window = failures
        .iter()
        .map(|(_, a)| a.started)
        .min()
        .zip(failures.iter().map(|(_, a)| a.started + a.elapsed).max())
        .map(|(first, last)| last - first);
    eprintln!(
        "scale: PostgreSQL failover: promoted {} after the crash; served again {} after it, change feed \
         back after {}; {} answers meanwhile, {} failed (all 503 service-unavailable) over {}; {} \
         signals published, {} acks, none lost",
        secs(promoted),
        secs(served),
        secs(feed_back),
        during,
        failures.len(),
        window.map_or_else(|| "-".to_owned(), secs),
        seen.published.lock().unwrap().len(),
        seen.acked.lock().unwrap().len()
    );
    for (what, answer) in &failures {
        assert!(
            answer.is_unavailable(),
            "{what}: a failover answers only the documented 503: {}",
            answer.describe()
        );
    }
    let mut conn = replica.connect("eagate").await;
    nothing_lost(&mut conn, &seen, DEVICES).await;
}
