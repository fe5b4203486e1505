//! The change feed's `LISTEN` connection terminated
//! (`pg_terminate_backend`), once briefly and once held down: waiting
//! long-polls still get their signals (re-check), the feed reconnects, and
//! a revocation made while it is down is enforced at once (the device cache
//! is bypassed while the feed cannot tell it what changed).

use std::time::{Duration, Instant};

use diesel_async::{AsyncPgConnection, RunQueryDsl as _, SimpleAsyncConnection as _};

use crate::support::*;

/// Long-polls here wait this long: a signal must arrive well before.
const WAIT: u32 = 20;

/// Terminates the server's `LISTEN` connection(s); returns how many.
async fn terminate_listener(admin: &mut AsyncPgConnection) -> i64 {
    count(
        admin,
        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) AS n FROM pg_stat_activity \
         WHERE datname = 'eagate' AND query LIKE 'LISTEN%'",
    )
    .await
}

async fn listeners(admin: &mut AsyncPgConnection) -> i64 {
    count(
        admin,
        "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = 'eagate' AND query LIKE 'LISTEN%'",
    )
    .await
}

/// Starts a long-poll and returns once the server counts it as waiting.
async fn long_poll(api: &Api, device: &Device) -> tokio::task::JoinHandle<Answer> {
    let (task_api, task_device) = (api.clone(), device.clone());
    let poll = tokio::spawn(async move { task_api.poll(&task_device, WAIT).await });
    until("the long-poll is waiting", Duration::from_secs(10), async || {
        (metric(&api.metrics().await, "long_polls_waiting", &[]) >= 1.0).then_some(())
    })
    .await;
    poll
}

/// The ids of the signals in a poll answer.
fn signal_ids(answer: &Answer) -> Vec<String> {
    assert!(answer.is(200), "poll: {}", answer.describe());
    answer.body["signals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn publish(api: &Api, token: &str, key: &str) -> String {
    let answer = api.publish(token, key).await;
    assert!(answer.is(201), "publish: {}", answer.describe());
    answer.body["id"].as_str().unwrap().to_owned()
}

/// The long-poll answers with exactly `id`, well before its wait ends; the
/// device acknowledges it. Returns how long the poll took after the publish.
async fn receives(
    api: &Api,
    device: &Device,
    poll: tokio::task::JoinHandle<Answer>,
    id: &str,
    published: Instant,
) -> Duration {
    let answer = poll.await.unwrap();
    let took = published.elapsed();
    assert_eq!(signal_ids(&answer), [id], "{}", answer.describe());
    assert!(
        answer.elapsed < Duration::from_secs(u64::from(WAIT)),
        "the signal came with the wait's end, not before: {}",
        answer.describe()
    );
    let acked = api.ack(device, id).await;
    assert!(acked.is(200), "ack: {}", acked.describe());
    took
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_terminated_change_feed_misses_no_signal_and_no_revocation() {
    let pg = Postgres::start().await;
    let server = Deployment::new(&pg).start().await;
    let api = server.api();
    let token = api.owner("owner").await;
    let a = api.device(&token, "EA listening").await;
    let b = api.device(&token, "EA to revoke").await;
    let mut admin = pg.connect("postgres").await;
    // Opened now: it keeps working when the database refuses new connections.
    let mut operator = pg.connect("eagate").await;
    assert_eq!(
        listeners(&mut admin).await,
        1,
        "one LISTEN connection per instance"
    );

    // 1. Terminated while a long-poll waits; a publish right after.
    let mark = server.log_mark();
    let poll = long_poll(&api, &a).await;
    assert_eq!(terminate_listener(&mut admin).await, 1);
    let published = Instant::now();
    let first = publish(&api, &token, "during-reconnect").await;
    let took = receives(&api, &a, poll, &first, published).await;
    server
        .wait_for_log(mark, Duration::from_secs(15), |l| {
            l["message"] == "change feed connected"
        })
        .await;
    let reconnected = until(
        "a LISTEN connection is back",
        Duration::from_secs(15),
        async || (listeners(&mut admin).await == 1).then(|| published.elapsed()),
    )
    .await;
    eprintln!(
        "faults: LISTEN terminated: the waiting poll got the signal {} after the publish; \
         the feed was listening again {} after it",
        secs(took),
        secs(reconnected)
    );

    // 2. Held down: the database refuses new connections (the pool keeps
    // its open ones, so first it opens all it may), so the feed cannot come
    // back until allowed.
    api.fill_pool(&token, 8).await;
    // B's credentials are in the cache: a stale cache would admit it.
    api.until_cached(&b, &["db.devices.find_credentials"]).await;
    diesel::sql_query("ALTER DATABASE eagate ALLOW_CONNECTIONS false")
        .execute(&mut admin)
        .await
        .unwrap();
    let mark = server.log_mark();
    assert_eq!(terminate_listener(&mut admin).await, 1);
    server
        .wait_for_log(mark, Duration::from_secs(10), |l| {
            l["message"] == "cannot connect the change feed; retrying"
        })
        .await;
    assert_eq!(
        metric(&api.metrics().await, "change_feed_connected", &[]),
        0.0,
        "the operator sees the feed down"
    );
    // Revoked behind this instance's back (another instance, an operator):
    // the notification has nobody to reach.
    operator
        .batch_execute(&format!(
            "UPDATE devices SET revoked_at = now() WHERE id = '{}'",
            b.id
        ))
        .await
        .unwrap();
    let refused = api.poll(&b, 0).await;
    assert!(
        refused.is(401) && refused.code() == "device-revoked",
        "a revocation is enforced while the feed is down (the cache is bypassed): {}",
        refused.describe()
    );
    // A long-poll still gets a signal published meanwhile: the publish's
    // notification is lost, the poll's re-check finds it.
    let poll = long_poll(&api, &a).await;
    let published = Instant::now();
    let second = publish(&api, &token, "while-down").await;
    let took = receives(&api, &a, poll, &second, published).await;
    eprintln!(
        "faults: change feed held down: revocation enforced at once; a waiting poll got a signal {} after \
         its publish (re-check)",
        secs(took)
    );

    // 3. Allowed again: the feed comes back by itself and wakes polls again.
    let mark = server.log_mark();
    let allowed = Instant::now();
    diesel::sql_query("ALTER DATABASE eagate ALLOW_CONNECTIONS true")
        .execute(&mut admin)
        .await
        .unwrap();
    server
        .wait_for_log(mark, Duration::from_secs(15), |l| {
            l["message"] == "change feed connected"
        })
        .await;
    let back = allowed.elapsed();
    // (The line is logged just before the feed is marked connected.)
    until("change_feed_connected is 1", Duration::from_secs(5), async || {
        (metric(&api.metrics().await, "change_feed_connected", &[]) == 1.0).then_some(())
    })
    .await;
    assert!(
        back <= Duration::from_secs(8),
        "the feed retries at least every 5 s: back after {back:?}"
    );
    assert!(api.poll(&b, 0).await.is(401), "still revoked");
    let poll = long_poll(&api, &a).await;
    let published = Instant::now();
    let third = publish(&api, &token, "after").await;
    let took = receives(&api, &a, poll, &third, published).await;
    eprintln!(
        "faults: change feed allowed back: listening {} later; a waiting poll got a signal {} after its publish",
        secs(back),
        secs(took)
    );

    // Nothing missed: A was handed and acknowledged each signal once, and
    // nothing is pending for it.
    assert_eq!(signal_ids(&api.poll(&a, 0).await), Vec::<String>::new());
    let mut acked: Vec<(String, String)> = stored_acks(&mut operator)
        .await
        .into_iter()
        .filter(|ack| ack.device_id == a.id)
        .map(|ack| (ack.signal_id, ack.outcome))
        .collect();
    let mut expected: Vec<(String, String)> = [first, second, third]
        .into_iter()
        .map(|id| (id, "executed".to_owned()))
        .collect();
    acked.sort();
    expected.sort();
    assert_eq!(
        acked, expected,
        "every signal acknowledged once by the listening device"
    );
}
