//! PostgreSQL stopped (`pg_ctl stop -m fast`, then `-m immediate`) while
//! devices long-poll and acknowledge and an owner publishes.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::load::{Kind, Ledger, Traffic};
use crate::support::*;

/// Back by itself within this long after PostgreSQL is (issue 12).
const RECOVERY_BOUND: Duration = Duration::from_secs(5);

/// How long each outage lasts: long enough for every kind of request, the
/// 2 s long-poll re-check and the change feed's reconnection back-off to
/// meet it.
const OUTAGE: Duration = Duration::from_secs(3);

/// Long-poll wait the devices use (seconds).
const WAIT: u32 = 1;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_stopped_answers_503_fast_recovers_by_itself_and_keeps_every_acknowledged_write() {
    let pg = Postgres::start().await;
    let server = Deployment::new(&pg).start().await;
    let api = server.api();
    let token = api.owner("owner").await;
    let mut devices = Vec::new();
    for i in 0..3 {
        devices.push(api.device(&token, &format!("EA {i}")).await);
    }
    let traffic = Traffic::start(&api, &token, &devices, 2, Duration::from_millis(40), WAIT);
    let ledger = std::sync::Arc::clone(&traffic.ledger);
    until("publishes and acks flow", Duration::from_secs(30), async || {
        (ledger.published.lock().unwrap().len() >= 5 && ledger.acked.lock().unwrap().len() >= 5).then_some(())
    })
    .await;

    for mode in ["fast", "immediate"] {
        outage(&pg, &server, &api, &token, &ledger, mode).await;
    }

    let ledger = traffic.stop().await;
    every_answer_was_a_success_or_a_bounded_503(&ledger);
    the_database_holds_what_clients_were_told(&pg, &ledger, devices.len()).await;

    // The operator's view: 503s counted, no 500 anywhere, the causes logged.
    let metrics = api.metrics().await;
    assert!(
        metric(&metrics, "http_requests_total", &[("status", "503")]) > 0.0,
        "503s are counted"
    );
    assert_eq!(
        metric(&metrics, "http_requests_total", &[("status", "500")]),
        0.0,
        "no request was answered 500"
    );
    let log = server.log_since(0);
    assert!(
        !log.iter()
            .any(|l| l["message"] == "request finished" && l["status"] == 500),
        "no 500 in the log"
    );
    assert!(
        log.iter().any(|l| l["message"] == "request finished"
            && l["status"] == 503
            && l["problem"] == "service-unavailable"),
        "503s are logged with their problem code"
    );
    assert!(
        log.iter().any(|l| l["message"] == "request failed"
            && l["level"] == "ERROR"
            && l["error"].as_str().is_some_and(|e| e.contains("database"))),
        "the cause of a 503 is logged once, as an error naming the database"
    );
}

/// One outage: stop PostgreSQL, see the server answer 503 and say why on
/// `/readyz`, start PostgreSQL, measure how long the server takes to serve
/// again.
async fn outage(pg: &Postgres, server: &Server, api: &Api, token: &str, ledger: &Ledger, mode: &'static str) {
    let mark = server.log_mark();
    let before = ledger.answers.lock().unwrap().len();
    pg.stop(mode).await;
    let down = Instant::now();

    let readyz = until("/readyz says not ready", Duration::from_secs(10), async || {
        let answer = api.get("/readyz").await;
        answer.is(503).then_some(answer)
    })
    .await;
    assert_eq!(readyz.content_type, "application/problem+json");
    assert_eq!(readyz.code(), "not-ready", "{}", readyz.describe());
    let detail = readyz.body["detail"].as_str().unwrap();
    assert!(
        detail.contains("database"),
        "/readyz names the database: {detail}"
    );
    assert_ne!(readyz.body["checks"]["database"], "ok", "{}", readyz.describe());
    assert!(readyz.elapsed <= ANSWER_BOUND, "{}", readyz.describe());

    // Every kind of request meets the outage (the traffic keeps going).
    let seen = |kind: Kind| {
        ledger.answers.lock().unwrap()[before..]
            .iter()
            .filter(|(k, a)| *k == kind && a.started >= down && a.is(503))
            .count()
            >= 3
    };
    until(
        "publishes and polls meet the outage",
        Duration::from_secs(20),
        async || (seen(Kind::Publish) && seen(Kind::Poll)).then_some(()),
    )
    .await;
    // An owner read, a device registration and a login meet it too.
    for answer in [
        api.get_auth("/api/v1/signals", token).await,
        api.post_auth("/api/v1/devices", token, &serde_json::json!({"name": "later"}))
            .await,
        api.send(
            reqwest::Client::new()
                .post(api.url("/api/v1/auth/login"))
                .json(&serde_json::json!({"login": "owner", "password": PASSWORD})),
        )
        .await,
    ] {
        assert!(
            answer.is_unavailable(),
            "during the outage: {}",
            answer.describe()
        );
        assert!(answer.elapsed <= ANSWER_BOUND, "{}", answer.describe());
    }
    // Liveness does not depend on the database: the process is fine.
    assert!(api.get("/healthz").await.is(200));
    server
        .wait_for_log(mark, Duration::from_secs(10), |l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("change feed disconnected"))
        })
        .await;
    // The fault lasts its planned time (not a wait for readiness).
    tokio::time::sleep_until((down + OUTAGE).into()).await;
    let outage_503s: Vec<Duration> = ledger.answers.lock().unwrap()[before..]
        .iter()
        .filter(|(k, a)| *k != Kind::Poll && a.is(503))
        .map(|(_, a)| a.elapsed)
        .collect();

    pg.start_again().await;
    let up = Instant::now();
    let ready_after = until("/readyz is ready again", Duration::from_secs(30), async || {
        api.get("/readyz").await.is(200).then(|| up.elapsed())
    })
    .await;
    let first_success = |kind: Kind, status: u16| {
        ledger.answers.lock().unwrap()[before..]
            .iter()
            .filter(|(k, a)| *k == kind && a.is(status) && a.started >= up)
            .map(|(_, a)| (a.started + a.elapsed).duration_since(up))
            .min()
    };
    let publish_after = until("a publish succeeds again", Duration::from_secs(30), async || {
        first_success(Kind::Publish, 201)
    })
    .await;
    let poll_after = until("a poll succeeds again", Duration::from_secs(30), async || {
        first_success(Kind::Poll, 200)
    })
    .await;
    let feed = server
        .wait_for_log(mark, Duration::from_secs(30), |l| {
            l["message"] == "change feed connected"
        })
        .await;
    let feed_after = up.elapsed();
    eprintln!(
        "faults: pg_ctl stop -m {mode} for {}: {} 503s (slowest {}), ready {} after PostgreSQL was back, \
         first publish {}, first poll {}, change feed reconnected within {} ({})",
        secs(up - down),
        outage_503s.len(),
        secs(outage_503s.iter().max().copied().unwrap_or_default()),
        secs(ready_after),
        secs(publish_after),
        secs(poll_after),
        secs(feed_after),
        feed["timestamp"]
    );
    for (what, took) in [
        ("readiness", ready_after),
        ("publishing", publish_after),
        ("polling", poll_after),
    ] {
        assert!(
            took <= RECOVERY_BOUND,
            "{what} came back {took:?} after PostgreSQL (mode {mode}), more than {RECOVERY_BOUND:?}"
        );
    }
}

fn every_answer_was_a_success_or_a_bounded_503(ledger: &Ledger) {
    let answers = ledger.answers();
    let mut wrong = Vec::new();
    for (kind, answer) in &answers {
        let success = match kind {
            Kind::Publish => answer.is(201),
            Kind::Poll | Kind::Ack => answer.is(200),
        };
        if !(success || answer.is_unavailable()) {
            wrong.push(format!("{kind:?}: {}", answer.describe()));
        }
        let bound = match kind {
            Kind::Poll => Duration::from_secs(u64::from(WAIT)) + ANSWER_BOUND,
            _ => ANSWER_BOUND,
        };
        if answer.elapsed > bound {
            wrong.push(format!("{kind:?} slower than {bound:?}: {}", answer.describe()));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} answers were neither a success nor a quick 503 problem with Retry-After:\n{}",
        wrong.len(),
        answers.len(),
        wrong.iter().take(20).cloned().collect::<Vec<_>>().join("\n")
    );
    for kind in [Kind::Publish, Kind::Poll] {
        assert!(
            ledger.count(kind, Answer::is_unavailable) > 0,
            "{kind:?} saw no 503"
        );
    }
}

/// Every 201 and every 200 ack is stored; every stored signal is whole and
/// was sent by the client.
async fn the_database_holds_what_clients_were_told(pg: &Postgres, ledger: &Ledger, devices: usize) {
    let mut conn = pg.connect("eagate").await;
    let stored: HashMap<String, StoredSignal> = stored_signals(&mut conn)
        .await
        .into_iter()
        .map(|s| (s.idempotency_key.clone().unwrap(), s))
        .collect();
    let published = ledger.published.lock().unwrap().clone();
    let sent = ledger.sent.lock().unwrap().clone();
    for (key, id) in &published {
        let row = stored
            .get(key)
            .unwrap_or_else(|| panic!("publish {key} was answered 201 ({id}) but is not stored"));
        assert_eq!(&row.id, id, "publish {key}");
    }
    for (key, row) in &stored {
        assert!(sent.contains(key), "a signal nobody sent: {key}");
        assert_eq!(
            row.deliveries, devices as i64,
            "signal {} has {} of its {devices} deliveries",
            row.id, row.deliveries
        );
    }
    assert_eq!(
        orphan_deliveries(&mut conn).await,
        0,
        "deliveries without their signal"
    );
    let acks: HashMap<(String, String), String> = stored_acks(&mut conn)
        .await
        .into_iter()
        .map(|a| ((a.signal_id, a.device_id), a.outcome))
        .collect();
    let acked = ledger.acked.lock().unwrap().clone();
    for key in &acked {
        assert_eq!(
            acks.get(key).map(String::as_str),
            Some("executed"),
            "ack {key:?} was answered 200 but is not stored"
        );
    }
    // Deliveries are marked delivered by the batched activity writer; a
    // batch that failed during an outage is written after it.
    let received: std::collections::HashSet<(String, String)> =
        ledger.received.lock().unwrap().iter().cloned().collect();
    until(
        "every received delivery is marked delivered",
        Duration::from_secs(10),
        async || {
            let delivered: std::collections::HashSet<(String, String)> =
                first_polled(&mut conn).await.into_iter().collect();
            received.is_subset(&delivered).then_some(())
        },
    )
    .await;
    eprintln!(
        "faults: postgres outages: {} publishes answered 201 and {} acks answered 200, all stored; \
         {} stored signals, {} of them answered otherwise (commit raced the outage)",
        published.len(),
        acked.len(),
        stored.len(),
        stored.len() - published.len()
    );
}

/// A PostgreSQL that keeps its connections open but never answers (frozen
/// with SIGSTOP, as a hung host): new requests are bounded by the pool's
/// timeouts (recycling checks an idle connection, a new one must connect
/// in time) and answer 503; back by itself once it answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_frozen_postgres_costs_new_requests_the_pool_timeout_not_a_hang() {
    let pg = Postgres::start().await;
    let server = Deployment::new(&pg).start().await;
    let api = server.api();
    let token = api.owner("owner").await;
    let device = api.device(&token, "EA").await;
    assert!(api.poll(&device, 0).await.is(200));

    pg.signal("STOP").await;
    let readyz = api.get("/readyz").await;
    assert_eq!(
        (readyz.status, readyz.code()),
        (Some(503), "not-ready"),
        "{}",
        readyz.describe()
    );
    assert!(readyz.elapsed <= ANSWER_BOUND, "{}", readyz.describe());
    let mut slowest = readyz.elapsed;
    for answer in [
        api.publish(&token, "frozen").await,
        api.get_auth("/api/v1/devices", &token).await,
    ] {
        assert!(answer.is_unavailable(), "{}", answer.describe());
        assert!(answer.elapsed <= ANSWER_BOUND, "{}", answer.describe());
        slowest = slowest.max(answer.elapsed);
    }
    // The change feed's connection is open too, so the device cache stays
    // live: an idle device may still be answered from it.
    let polled = api.poll(&device, 0).await;
    assert!(polled.is(200) || polled.is_unavailable(), "{}", polled.describe());
    assert!(polled.elapsed <= ANSWER_BOUND, "{}", polled.describe());

    pg.signal("CONT").await;
    let thawed = Instant::now();
    let back = until("ready again", Duration::from_secs(30), async || {
        api.get("/readyz").await.is(200).then(|| thawed.elapsed())
    })
    .await;
    assert!(back <= RECOVERY_BOUND, "back {back:?} after the thaw");
    assert!(api.publish(&token, "thawed").await.is(201));
    eprintln!(
        "faults: PostgreSQL frozen: new requests answered 503 within {} (pool timeout {}); ready {} after the thaw",
        secs(slowest),
        secs(POOL_TIMEOUT),
        secs(back)
    );
}
