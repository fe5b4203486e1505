//! Every pooled connection held by a query that cannot finish (an operator
//! holds `LOCK TABLE signals`): the requests behind them wait a bounded time
//! for a connection, then answer 503 with Retry-After; nothing deadlocks and
//! the server serves normally once the lock goes.

use std::time::{Duration, Instant};

use diesel_async::SimpleAsyncConnection as _;
use tokio::task::JoinSet;

use crate::support::*;

const POOL_SIZE: usize = 2;
const PUBLISHES: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_exhausted_pool_answers_503_after_a_bounded_wait_and_recovers() {
    let pg = Postgres::start().await;
    let server = Deployment::new(&pg)
        .with("EAGATE_DATABASE_POOL_SIZE", &POOL_SIZE.to_string())
        .start()
        .await;
    let api = server.api();
    let token = api.owner("owner").await;
    api.device(&token, "EA").await;
    // Another owner's device, not a target of the publishes below.
    let other = api.owner("other").await;
    let device = api.device(&other, "EA").await;
    assert!(api.poll(&device, 0).await.is(200));

    let mut operator = pg.connect("eagate").await;
    operator
        .batch_execute("BEGIN; LOCK TABLE signals IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let locked = Instant::now();
    let mut publishes = JoinSet::new();
    for i in 0..PUBLISHES {
        let (api, token) = (api.clone(), token.clone());
        publishes.spawn(async move { api.publish(&token, &format!("burst-{i}")).await });
    }
    // The pool is exhausted once requests queue for it.
    until(
        "requests wait for a pooled connection",
        Duration::from_secs(10),
        async || {
            let metrics = api.metrics().await;
            (metric(&metrics, "db_pool_waiters", &[]) >= 1.0
                && metric(&metrics, "db_pool_connections", &[("state", "in_use")]) == POOL_SIZE as f64)
                .then_some(())
        },
    )
    .await;

    // All but the publishes holding the connections give up after the pool
    // timeout, with 503 and Retry-After.
    let mut refused = Vec::new();
    while refused.len() < PUBLISHES - POOL_SIZE {
        let answer = tokio::time::timeout(Duration::from_secs(30), publishes.join_next())
            .await
            .expect("the queued requests answer: no deadlock")
            .unwrap()
            .unwrap();
        assert!(
            answer.is_unavailable(),
            "a request that found no free connection: {}",
            answer.describe()
        );
        assert!(
            answer.elapsed >= POOL_TIMEOUT - Duration::from_millis(100) && answer.elapsed <= ANSWER_BOUND,
            "waited the pool timeout ({POOL_TIMEOUT:?}), not more, not nothing: {}",
            answer.describe()
        );
        refused.push(answer.elapsed);
    }
    assert_eq!(
        publishes.len(),
        POOL_SIZE,
        "the publishes holding the connections still wait for the lock"
    );
    // Still exhausted: readiness says so in bounded time; a device with
    // nothing pending keeps polling from the cache; /healthz is fine.
    let readyz = api.get("/readyz").await;
    assert_eq!(
        (readyz.status, readyz.code()),
        (Some(503), "not-ready"),
        "{}",
        readyz.describe()
    );
    assert!(
        readyz.body["detail"].as_str().unwrap().contains("database"),
        "{}",
        readyz.describe()
    );
    assert!(readyz.elapsed <= ANSWER_BOUND, "{}", readyz.describe());
    // A device whose credentials and "nothing pending" are cached needs no
    // connection; one whose cache entry was just invalidated waits like the
    // rest. Either way: a quick success or a bounded 503.
    let polled = api.poll(&device, 0).await;
    assert!(polled.is(200) || polled.is_unavailable(), "{}", polled.describe());
    assert!(polled.elapsed <= ANSWER_BOUND, "{}", polled.describe());
    assert!(api.get("/healthz").await.is(200));
    let owner = api.get_auth("/api/v1/devices", &token).await;
    assert!(owner.is_unavailable(), "{}", owner.describe());

    // The lock goes: the held publishes complete, and the server serves
    // normally.
    operator.batch_execute("ROLLBACK").await.unwrap();
    let released = Instant::now();
    let mut held = Vec::new();
    while let Some(answer) = tokio::time::timeout(Duration::from_secs(30), publishes.join_next())
        .await
        .expect("the held publishes finish once the lock is released")
    {
        let answer = answer.unwrap();
        assert!(
            answer.is(201),
            "a publish that held a connection: {}",
            answer.describe()
        );
        held.push(answer.body["id"].as_str().unwrap().to_owned());
    }
    let ready_after = until("ready again", Duration::from_secs(10), async || {
        api.get("/readyz").await.is(200).then(|| released.elapsed())
    })
    .await;
    let mut after = JoinSet::new();
    for i in 0..POOL_SIZE * 2 {
        let (api, token) = (api.clone(), token.clone());
        after.spawn(async move { api.publish(&token, &format!("after-{i}")).await });
    }
    while let Some(answer) = after.join_next().await {
        let answer = answer.unwrap();
        assert!(answer.is(201), "after the lock: {}", answer.describe());
    }
    let mut conn = pg.connect("eagate").await;
    let stored = stored_signals(&mut conn).await;
    for id in &held {
        assert!(
            stored.iter().any(|s| &s.id == id && s.deliveries == 1),
            "held publish {id}"
        );
    }
    assert_eq!(stored.len(), POOL_SIZE * 3, "the refused publishes left nothing");
    refused.sort();
    eprintln!(
        "faults: pool of {POOL_SIZE} held by a lock for {}: {} queued requests answered 503 after {}–{}; \
         ready {} after the lock went; an idle device's poll meanwhile: {:?}",
        secs(released - locked),
        refused.len(),
        secs(refused[0]),
        secs(refused[refused.len() - 1]),
        secs(ready_after),
        polled.status
    );
}

/// With a statement timeout in the database URL (`options=-c
/// statement_timeout=…`), a request stuck behind a lock is bounded too: it
/// answers 503 with Retry-After when PostgreSQL cancels its statement.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_statement_timeout_bounds_requests_stuck_behind_a_lock() {
    let pg = Postgres::start().await;
    let url = format!("{}?options=-c%20statement_timeout%3D1500", pg.url());
    let server = Deployment::new(&pg)
        .with("EAGATE_DATABASE_URL", &url)
        .start()
        .await;
    let api = server.api();
    let token = api.owner("owner").await;
    api.device(&token, "EA").await;

    let mut operator = pg.connect("eagate").await;
    operator
        .batch_execute("BEGIN; LOCK TABLE signals IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let stuck = api.publish(&token, "stuck").await;
    assert!(
        stuck.is_unavailable(),
        "a statement cancelled by its timeout: {}",
        stuck.describe()
    );
    assert!(
        stuck.elapsed >= Duration::from_millis(1400) && stuck.elapsed <= ANSWER_BOUND,
        "{}",
        stuck.describe()
    );
    operator.batch_execute("ROLLBACK").await.unwrap();
    let after = api.publish(&token, "after").await;
    assert!(after.is(201), "{}", after.describe());
    let mut conn = pg.connect("eagate").await;
    assert_eq!(
        stored_signals(&mut conn).await.len(),
        1,
        "the cancelled publish left nothing"
    );
    eprintln!(
        "faults: statement_timeout=1.5 s: a publish stuck behind a lock answered 503 after {}",
        secs(stuck.elapsed)
    );
}
