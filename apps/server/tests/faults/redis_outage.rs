//! Redis (`EAGATE_REDIS_URL`: replay protection and rate limits shared by
//! every instance) killed mid-run, then started again.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;

use crate::support::*;

/// Owner requests per client IP per minute in this deployment.
const PER_IP: usize = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_down_fails_device_requests_closed_and_recovers_by_itself() {
    let pg = Postgres::start().await;
    let redis = Redis::start().await;
    let server = Deployment::new(&pg)
        .with("EAGATE_REDIS_URL", &redis.url())
        .with("EAGATE_REDIS_TIMEOUT_MS", "250")
        .with("EAGATE_RATE_LIMITS", "on")
        .with("EAGATE_RATE_LIMIT_PER_IP_PER_MINUTE", &PER_IP.to_string())
        .start()
        .await;
    let api = server.api();
    let token = api.owner("owner").await;
    let device = api.device(&token, "EA").await;
    let heartbeat = json!({"ea_version": "1.0"});

    // Up: admitted once, replays refused (the nonce is in Redis).
    let captured = api.sign(&device, Method::GET, "/api/v1/device/config", None);
    let first = api.send(captured.try_clone().unwrap()).await;
    assert!(first.is(200), "{}", first.describe());
    let replayed = api.send(captured.try_clone().unwrap()).await;
    assert_eq!((replayed.status, replayed.code()), (Some(401), "replayed"));

    let mark = server.log_mark();
    redis.kill().await;
    let down = Instant::now();

    // Device requests fail closed: 503 with Retry-After, never admitted
    // without replay protection — a replay included.
    let mut slowest = Duration::ZERO;
    for _ in 0..2 {
        for answer in [
            api.poll(&device, 0).await,
            api.poll(&device, 5).await,
            api.signed(&device, Method::GET, "/api/v1/device/config", None)
                .await,
            api.signed(
                &device,
                Method::POST,
                "/api/v1/device/heartbeat",
                Some(&heartbeat),
            )
            .await,
            api.ack(&device, &uuid::Uuid::now_v7().to_string()).await,
            api.send(captured.try_clone().unwrap()).await,
        ] {
            assert!(
                answer.is_unavailable(),
                "device request while Redis is down: {}",
                answer.describe()
            );
            assert!(answer.elapsed <= ANSWER_BOUND, "{}", answer.describe());
            slowest = slowest.max(answer.elapsed);
        }
    }
    let readyz = api.get("/readyz").await;
    assert_eq!(
        (readyz.status, readyz.code()),
        (Some(503), "not-ready"),
        "{}",
        readyz.describe()
    );
    assert!(
        readyz.body["detail"].as_str().unwrap().contains("redis"),
        "{}",
        readyz.describe()
    );
    assert_ne!(readyz.body["checks"]["redis"], "ok");
    assert_eq!(readyz.body["checks"]["database"], "ok");
    let metrics = api.metrics().await;
    assert!(
        metric(
            &metrics,
            "device_auth_total",
            &[("outcome", "service-unavailable")]
        ) >= 12.0,
        "refusals are counted for the operator"
    );

    // Owner endpoints: as docs/operations.md ("Protection") says, with
    // Redis unreachable each instance counts on its own — limits never
    // switch off: the per-IP limit, then 429.
    let mut owner_times = Vec::new();
    for i in 0..PER_IP {
        let answer = api.get_auth("/api/v1/devices", &token).await;
        assert!(
            answer.is(200),
            "owner request {i} while Redis is down: {}",
            answer.describe()
        );
        assert!(answer.elapsed <= ANSWER_BOUND, "{}", answer.describe());
        owner_times.push(answer.elapsed);
    }
    owner_times.sort();
    let limited = api.get_auth("/api/v1/devices", &token).await;
    assert_eq!(
        (limited.status, limited.code()),
        (Some(429), "rate-limited"),
        "the instance's own counters limit while Redis is down: {}",
        limited.describe()
    );
    assert!(limited.retry_after.is_some());
    assert!(
        metric(&api.metrics().await, "rate_limit_fallbacks_total", &[]) >= PER_IP as f64,
        "the fallback is counted for the operator"
    );
    server
        .wait_for_log(mark, Duration::from_secs(5), |l| {
            l["level"] == "WARN"
                && l["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("rate limiter unavailable"))
        })
        .await;
    let outage = down.elapsed();

    // Back (empty: no persistence here): device requests are admitted
    // again, without a restart of eagate.
    redis.start_again().await;
    let up = Instant::now();
    let recovered = until(
        "a device request is admitted again",
        Duration::from_secs(30),
        async || api.poll(&device, 0).await.is(200).then(|| up.elapsed()),
    )
    .await;
    assert!(
        recovered <= Duration::from_secs(5),
        "device requests came back {recovered:?} after Redis"
    );
    assert!(api.get("/readyz").await.is(200));
    let replay_now = api.sign(&device, Method::GET, "/api/v1/device/config", None);
    assert!(api.send(replay_now.try_clone().unwrap()).await.is(200));
    assert_eq!(
        api.send(replay_now).await.code(),
        "replayed",
        "replay protection is back"
    );

    // And the per-IP limit counts again (Redis restarted empty): the limit,
    // then 429.
    for i in 0..PER_IP {
        let answer = api.get_auth("/api/v1/devices", &token).await;
        assert!(
            answer.is(200),
            "owner request {i} after Redis is back: {}",
            answer.describe()
        );
    }
    let limited = api.get_auth("/api/v1/devices", &token).await;
    assert_eq!(
        (limited.status, limited.code()),
        (Some(429), "rate-limited"),
        "{}",
        limited.describe()
    );
    assert!(limited.retry_after.is_some());

    eprintln!(
        "faults: Redis killed for {}: device requests 503 (slowest {}), owner requests limited locally \
         (median {}, slowest {}); device requests admitted again {} after Redis was back",
        secs(outage),
        secs(slowest),
        secs(owner_times[owner_times.len() / 2]),
        secs(owner_times[owner_times.len() - 1]),
        secs(recovered)
    );
}

/// A Redis that accepts connections but never answers (frozen with
/// SIGSTOP, as behind a network partition) costs each request at most
/// `EAGATE_REDIS_TIMEOUT_MS` (plus one retry), never a hang.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_frozen_redis_costs_each_request_its_timeout_not_a_hang() {
    let pg = Postgres::start().await;
    let redis = Redis::start().await;
    let server = Deployment::new(&pg)
        .with("EAGATE_REDIS_URL", &redis.url())
        .with("EAGATE_REDIS_TIMEOUT_MS", "250")
        .with("EAGATE_RATE_LIMITS", "on")
        .start()
        .await;
    let api = server.api();
    let token = api.owner("owner").await;
    let device = api.device(&token, "EA").await;
    assert!(api.poll(&device, 0).await.is(200));

    redis.signal("STOP").await;
    let mut slowest = Duration::ZERO;
    for _ in 0..3 {
        let polled = api.poll(&device, 0).await;
        assert!(polled.is_unavailable(), "{}", polled.describe());
        let listed = api.get_auth("/api/v1/devices", &token).await;
        assert!(
            listed.is(200),
            "owners are served (counted by the instance meanwhile): {}",
            listed.describe()
        );
        for answer in [&polled, &listed] {
            assert!(answer.elapsed <= ANSWER_BOUND, "{}", answer.describe());
            slowest = slowest.max(answer.elapsed);
        }
    }
    let readyz = api.get("/readyz").await;
    assert_eq!(
        (readyz.status, readyz.code()),
        (Some(503), "not-ready"),
        "{}",
        readyz.describe()
    );
    assert!(readyz.elapsed <= ANSWER_BOUND, "{}", readyz.describe());

    redis.signal("CONT").await;
    let thawed = Instant::now();
    let recovered = until(
        "a device request is admitted again",
        Duration::from_secs(30),
        async || api.poll(&device, 0).await.is(200).then(|| thawed.elapsed()),
    )
    .await;
    assert!(
        recovered <= Duration::from_secs(5),
        "back {recovered:?} after the thaw"
    );
    eprintln!(
        "faults: Redis frozen (EAGATE_REDIS_TIMEOUT_MS=250): answers within {}; admitted again {} after the thaw",
        secs(slowest),
        secs(recovered)
    );
}
