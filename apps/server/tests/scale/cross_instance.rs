//! What two instances sharing PostgreSQL and Redis must agree on: a nonce
//! is used once across both, rate limits count across both, a long-poll on
//! one gets what is published through the other, and a change made through
//! one is enforced by the other within [`PROPAGATION`] — and never answered
//! from a stale cache entry after that, even while the other's change feed
//! is down.

use std::time::{Duration, Instant};

use diesel_async::RunQueryDsl as _;
use reqwest::Method;
use serde_json::json;

use crate::stack::*;
use crate::support::*;

/// The most a change made through one instance may take to be enforced by
/// the other (issue 16), and the most a signal published through one may
/// take to reach a long-poll waiting on the other.
const PROPAGATION: Duration = Duration::from_millis(100);

/// After the other instance first refuses, it must keep refusing: this many
/// more requests, each of which a stale cache entry would admit.
const NEVER_AGAIN: usize = 25;

fn report(what: &str, took: Duration) {
    eprintln!("scale: {what}: {:.1} ms", took.as_secs_f64() * 1000.0);
    assert!(
        took <= PROPAGATION,
        "{what}: took {took:?}, more than {PROPAGATION:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs nginx: run by `just scale-test` (scripts/scale-test.sh)"]
async fn a_nonce_used_through_one_instance_is_refused_by_the_other() {
    let stack = Stack::start(|d| d).await;
    let (a, b, lb) = (stack.a(), stack.b(), stack.lb());
    let token = lb.owner("nonces").await;
    let device = lb.device(&token, "EA").await;
    for (method, target, body, from, to) in [
        (Method::GET, "/api/v1/device/config", None, &a, &b),
        (Method::POST, "/api/v1/device/heartbeat", Some(json!({})), &b, &a),
        (Method::GET, "/api/v1/device/poll?wait=0", None, &a, &b),
    ] {
        let request = from.sign(&device, method, target, body.as_ref()).build().unwrap();
        // The same signed bytes, sent to the other instance afterwards.
        let mut replay = request.try_clone().unwrap();
        *replay.url_mut() = reqwest::Url::parse(&to.url(target)).unwrap();
        let accepted = from
            .send(reqwest::RequestBuilder::from_parts(from.http().clone(), request))
            .await;
        assert!(
            accepted.status.is_some_and(|s| (200..300).contains(&s)),
            "{target} through {}: {}",
            from.base,
            accepted.describe()
        );
        let refused = to
            .send(reqwest::RequestBuilder::from_parts(to.http().clone(), replay))
            .await;
        assert!(
            refused.is(401) && refused.code() == "replayed",
            "{target}: a nonce accepted by {} is refused by {}: {}",
            from.base,
            to.base,
            refused.describe()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs nginx: run by `just scale-test` (scripts/scale-test.sh)"]
async fn rate_limits_hold_across_both_instances() {
    const LOGINS: u32 = 4;
    const DEVICE: u32 = 3;
    let stack = Stack::start(|d| {
        d.with("EAGATE_RATE_LIMITS", "on")
            .with("EAGATE_RATE_LIMIT_LOGIN_PER_IP_PER_MINUTE", &LOGINS.to_string())
            .with("EAGATE_RATE_LIMIT_DEVICE_PER_SECOND", &DEVICE.to_string())
    })
    .await;
    let (a, b) = (stack.a(), stack.b());
    // Registration and its login use one login attempt of this address.
    let token = a.owner("limited").await;
    let device = a.device(&token, "EA").await;

    // Logins from one address, alternating between the instances: one
    // budget, not one per instance.
    let mut allowed = 1;
    let mut refused = 0;
    for n in 0..2 * LOGINS {
        let api = if n % 2 == 0 { &b } else { &a };
        let answer = api
            .send(
                api.http()
                    .post(api.url("/api/v1/auth/login"))
                    .json(&json!({"login": "limited", "password": "not the password at all"})),
            )
            .await;
        match answer.status {
            Some(401) => allowed += 1,
            Some(429) => refused += 1,
            _ => panic!("login {n}: {}", answer.describe()),
        }
    }
    eprintln!("scale: logins per address: {allowed} allowed, {refused} refused across both (limit {LOGINS})");
    assert_eq!(allowed, LOGINS, "the login limit counts across both instances");

    // Signed requests of one device, alternating: one per-second budget.
    // The window opens with the burst's first request and lasts a second.
    // A burst that took longer (a busy machine) may have spanned two
    // windows and proves nothing either way: it is sent again once its
    // windows have closed, instead of failing the test.
    let mut attempt = 1;
    let answers = loop {
        let started = Instant::now();
        let mut answers = Vec::new();
        for n in 0..2 * DEVICE {
            let api = if n % 2 == 0 { &a } else { &b };
            answers.push(config(api, &device).await);
        }
        let took = started.elapsed();
        if took < Duration::from_millis(900) {
            break answers;
        }
        eprintln!("scale: burst {attempt} took {took:?}, maybe more than one rate window: sending it again");
        assert!(
            attempt < 5,
            "5 bursts of {} requests each took 900 ms or more: the machine is too busy to see one rate window",
            2 * DEVICE
        );
        attempt += 1;
        tokio::time::sleep(Duration::from_millis(2100)).await;
    };
    let ok = answers.iter().filter(|r| r.is(200)).count();
    let limited = answers.iter().filter(|r| r.is(429)).count();
    eprintln!(
        "scale: one device's signed requests in one second: {ok} allowed, {limited} refused (limit {DEVICE})"
    );
    assert_eq!(
        ok, DEVICE as usize,
        "the device limit counts across both instances"
    );
    assert_eq!(limited, DEVICE as usize);
}

/// Starts a long-poll on `api` and returns once that instance counts it
/// as waiting.
async fn long_poll(api: &Api, device: &Device, wait: u32) -> tokio::task::JoinHandle<Answer> {
    let (task_api, task_device) = (api.clone(), device.clone());
    let poll = tokio::spawn(async move { task_api.poll(&task_device, wait).await });
    until("the long-poll is waiting", Duration::from_secs(10), async || {
        (metric(&api.metrics().await, "long_polls_waiting", &[]) >= 1.0).then_some(())
    })
    .await;
    poll
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs nginx: run by `just scale-test` (scripts/scale-test.sh)"]
async fn a_long_poll_on_one_instance_gets_a_signal_published_through_the_other() {
    let stack = Stack::start(|d| d).await;
    let (a, b) = (stack.a(), stack.b());
    let token = b.owner("publisher").await;
    let device = b.device(&token, "EA").await;
    let mut took = Vec::new();
    for n in 0..5 {
        let poll = long_poll(&a, &device, 20).await;
        let published = Instant::now();
        let answer = b.publish(&token, &format!("cross-{n}")).await;
        assert!(answer.is(201), "{}", answer.describe());
        let id = answer.body["id"].as_str().unwrap().to_owned();
        let polled = poll.await.unwrap();
        took.push(published.elapsed());
        assert!(polled.is(200), "{}", polled.describe());
        let ids: Vec<&str> = polled.body["signals"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, [id.as_str()]);
        assert!(a.ack(&device, &id).await.is(200));
    }
    took.sort();
    eprintln!(
        "scale: publish through B → long-poll on A answered: {:?} ms (5 runs, from the publish request)",
        took.iter().map(|d| d.as_millis()).collect::<Vec<_>>()
    );
    report(
        "publish through B reaches a long-poll on A (median, including the publish itself)",
        took[2],
    );
}

/// B has `device`'s credentials cached; `change` (through A) makes `probe`
/// (on B) refused: how long after the change's answer B first refused;
/// then B keeps refusing.
async fn enforced_by_b(
    what: &str,
    b: &Api,
    device: &Device,
    change: impl AsyncFnOnce(),
    mut probe: impl AsyncFnMut() -> Answer,
) {
    b.until_cached(device, &["db.devices.find_credentials"]).await;
    change().await;
    let changed = Instant::now();
    let took = first(what, 401, changed, &mut probe).await;
    report(&format!("{what} through A, refused by B after"), took);
    for n in 0..NEVER_AGAIN {
        let answer = probe().await;
        assert!(
            answer.is(401),
            "{what}: B answered from a stale entry {n} requests after refusing: {}",
            answer.describe()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs nginx: run by `just scale-test` (scripts/scale-test.sh)"]
async fn changes_through_one_instance_are_enforced_by_the_other_within_100_ms() {
    let stack = Stack::start(|d| d).await;
    let (a, b) = (stack.a(), stack.b());
    let token = a.owner("changer").await;

    // Revocation (eagate has no hard device deletion: a revoked device is
    // the deleted one, kept for the audit trail).
    let device = a.device(&token, "EA revoked").await;
    enforced_by_b(
        "revocation",
        &b,
        &device,
        async || {
            let answer = a
                .post_auth(
                    &format!("/api/v1/devices/{}/revoke", device.id),
                    &token,
                    &json!({}),
                )
                .await;
            assert!(answer.is(204), "{}", answer.describe());
        },
        async || b.poll(&device, 0).await,
    )
    .await;

    // Secret rotation without grace: the old secret stops on B.
    let device = a.device(&token, "EA rotated").await;
    let mut rotated = None;
    enforced_by_b(
        "rotation",
        &b,
        &device,
        async || {
            let answer = a
                .post_auth(
                    &format!("/api/v1/devices/{}/rotate-secret", device.id),
                    &token,
                    &json!({"grace_seconds": 0}),
                )
                .await;
            assert!(answer.is(200), "{}", answer.describe());
            rotated = Some(answer.body["secret"].as_str().unwrap().to_owned());
        },
        async || b.poll(&device, 0).await,
    )
    .await;
    let renewed = Device {
        id: device.id.clone(),
        signer: eagate_client::Signer::new(&device.id, &rotated.unwrap()),
    };
    assert!(b.poll(&renewed, 0).await.is(200), "the new secret works on B");

    // Account deletion: every device of the account stops on B.
    let leaver = a.owner("leaver").await;
    let device = a.device(&leaver, "EA of a deleted account").await;
    enforced_by_b(
        "account deletion",
        &b,
        &device,
        async || {
            let answer = delete_account(&a, &leaver).await;
            assert!(answer.is(204), "{}", answer.describe());
        },
        async || b.poll(&device, 0).await,
    )
    .await;

    // A config change: B's polls report the new revision (from its cache,
    // which the change feed refreshed), never the old one again.
    let device = a.device(&token, "EA reconfigured").await;
    b.until_cached(&device, &["db.devices.find_credentials"]).await;
    let revision = |answer: &Answer| {
        assert!(answer.is(200), "{}", answer.describe());
        answer.body["config_revision"].as_i64().unwrap()
    };
    let before = revision(&b.poll(&device, 0).await);
    let answer = a
        .send(
            a.http()
                .put(a.url(&format!("/api/v1/devices/{}/config", device.id)))
                .bearer_auth(&token)
                .header("If-Match", "*")
                .json(&json!({"mode": "close_only"})),
        )
        .await;
    assert!(answer.is(200), "{}", answer.describe());
    let changed = Instant::now();
    loop {
        if revision(&b.poll(&device, 0).await) != before {
            break;
        }
        assert!(
            changed.elapsed() < Duration::from_secs(5),
            "config change: B still reports revision {before} after 5 s"
        );
    }
    report(
        "config change through A, new revision polled from B after",
        changed.elapsed(),
    );
    for n in 0..NEVER_AGAIN {
        assert_ne!(
            revision(&b.poll(&device, 0).await),
            before,
            "config change: B answered from a stale entry {n} polls after the new revision"
        );
    }
}

/// The pids of instance `name`'s `LISTEN` backend(s), terminated.
async fn terminate_listener(stack: &Stack, name: &str) -> i64 {
    let mut admin = stack.pg.connect("postgres").await;
    count(
        &mut admin,
        &format!(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) AS n FROM pg_stat_activity \
             WHERE datname = 'eagate' AND application_name = '{name}' AND query LIKE 'LISTEN%'"
        ),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs nginx: run by `just scale-test` (scripts/scale-test.sh)"]
async fn an_instance_whose_change_feed_is_killed_stays_correct_and_recovers() {
    let stack = Stack::start(|d| d).await;
    let (a, b) = (stack.a(), stack.b());
    let token = a.owner("feeds").await;
    let listening = a.device(&token, "EA listening").await;
    let revoked = a.device(&token, "EA revoked while B is deaf").await;
    let rotated = a.device(&token, "EA rotated after B recovers").await;

    // 1. Killed once: B's feed is back by itself at once.
    let b_server = stack.instance(1);
    let mark = b_server.log_mark();
    assert_eq!(
        terminate_listener(&stack, NAMES[1]).await,
        1,
        "B's LISTEN backend"
    );
    let killed = Instant::now();
    b_server
        .wait_for_log(mark, Duration::from_secs(15), |l| {
            l["message"] == "change feed connected"
        })
        .await;
    eprintln!(
        "scale: B's LISTEN backend terminated: B listening again after {}",
        secs(killed.elapsed())
    );

    // 2. Held down: the database refuses new connections, so B's feed
    // cannot come back; A's stays up.
    a.fill_pool(&token, 12).await;
    b.fill_pool(&token, 12).await;
    b.until_cached(&revoked, &["db.devices.find_credentials"]).await;
    let mut admin = stack.pg.connect("postgres").await;
    diesel::sql_query("ALTER DATABASE eagate ALLOW_CONNECTIONS false")
        .execute(&mut admin)
        .await
        .unwrap();
    let mark = b_server.log_mark();
    assert_eq!(terminate_listener(&stack, NAMES[1]).await, 1);
    b_server
        .wait_for_log(mark, Duration::from_secs(10), |l| {
            l["message"] == "cannot connect the change feed; retrying"
        })
        .await;
    assert_eq!(metric(&b.metrics().await, "change_feed_connected", &[]), 0.0);
    assert_eq!(metric(&a.metrics().await, "change_feed_connected", &[]), 1.0);
    // A revocation through A: B's cache would still admit the device, but
    // B bypasses its cache while it is deaf.
    let answer = a
        .post_auth(
            &format!("/api/v1/devices/{}/revoke", revoked.id),
            &token,
            &json!({}),
        )
        .await;
    assert!(answer.is(204), "{}", answer.describe());
    for _ in 0..NEVER_AGAIN {
        let refused = b.poll(&revoked, 0).await;
        assert!(
            refused.is(401) && refused.code() == "device-revoked",
            "B without its feed enforces a revocation made through A at once: {}",
            refused.describe()
        );
    }
    // A long-poll on B still gets a signal published through A (B's poll
    // re-checks the database instead of waiting for a notification).
    let poll = long_poll(&b, &listening, 20).await;
    let published = Instant::now();
    let answer = a.publish(&token, "while-b-is-deaf").await;
    assert!(answer.is(201), "{}", answer.describe());
    let polled = poll.await.unwrap();
    assert!(polled.is(200) && polled.body["signals"].as_array().unwrap().len() == 1);
    eprintln!(
        "scale: B's feed held down: revocation through A refused by B at once; a long-poll on B got a \
         signal published through A after {}",
        secs(published.elapsed())
    );

    // 3. Allowed again: B recovers by itself, and its cache is trusted
    // (and kept true) again.
    let mark = b_server.log_mark();
    diesel::sql_query("ALTER DATABASE eagate ALLOW_CONNECTIONS true")
        .execute(&mut admin)
        .await
        .unwrap();
    b_server
        .wait_for_log(mark, Duration::from_secs(15), |l| {
            l["message"] == "change feed connected"
        })
        .await;
    until(
        "B's change_feed_connected is 1",
        Duration::from_secs(5),
        async || (metric(&b.metrics().await, "change_feed_connected", &[]) == 1.0).then_some(()),
    )
    .await;
    enforced_by_b(
        "rotation after B's feed recovered",
        &b,
        &rotated,
        async || {
            let answer = a
                .post_auth(
                    &format!("/api/v1/devices/{}/rotate-secret", rotated.id),
                    &token,
                    &json!({"grace_seconds": 0}),
                )
                .await;
            assert!(answer.is(200), "{}", answer.describe());
        },
        async || b.poll(&rotated, 0).await,
    )
    .await;
}
