//! `kill -9` of the server in the middle of a publish burst: no signal is
//! half-created, every 201 is stored, and retrying the unanswered publishes
//! with their `Idempotency-Key` after the restart yields exactly one signal
//! each.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use crate::load::{Kind, Traffic};
use crate::support::*;

/// Each signal goes to every one of these: a half-created one would show
/// as fewer deliveries.
const DEVICES: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_during_a_publish_burst_leaves_no_half_created_signal() {
    let pg = Postgres::start().await;
    let deployment = Deployment::new(&pg).with("EAGATE_DATABASE_POOL_SIZE", "8");
    let mut server = deployment.start().await;
    let api = server.api();
    let token = api.owner("owner").await;
    for i in 0..DEVICES {
        api.device(&token, &format!("EA {i}")).await;
    }

    let traffic = Traffic::start(&api, &token, &[], 8, Duration::ZERO, 0);
    let ledger = std::sync::Arc::clone(&traffic.ledger);
    until("the burst is under way", Duration::from_secs(30), async || {
        (ledger.published.lock().unwrap().len() >= 30).then_some(())
    })
    .await;
    server.kill9().await;
    let killed = Instant::now();
    let ledger = traffic.stop().await;

    let answers = ledger.answers();
    let in_flight = answers
        .iter()
        .filter(|(kind, a)| *kind == Kind::Publish && a.status.is_none() && a.started < killed)
        .count();
    assert!(in_flight >= 1, "publishes were under way when the server died");
    for (_, answer) in &answers {
        assert!(
            answer.is(201) || answer.status.is_none(),
            "before the kill every publish succeeds: {}",
            answer.describe()
        );
    }

    // What the crash left: whole signals only, every 201 among them.
    let mut conn = pg.connect("eagate").await;
    let published: HashMap<String, String> = ledger.published.lock().unwrap().iter().cloned().collect();
    let sent: HashSet<String> = ledger.sent.lock().unwrap().clone();
    let stored = stored_signals(&mut conn).await;
    for signal in &stored {
        assert_eq!(
            signal.deliveries, DEVICES as i64,
            "signal {} was left with {} of {DEVICES} deliveries",
            signal.id, signal.deliveries
        );
        assert!(sent.contains(signal.idempotency_key.as_ref().unwrap()));
    }
    assert_eq!(
        orphan_deliveries(&mut conn).await,
        0,
        "deliveries without their signal"
    );
    let by_key: HashMap<&str, &str> = stored
        .iter()
        .map(|s| (s.idempotency_key.as_deref().unwrap(), s.id.as_str()))
        .collect();
    for (key, id) in &published {
        assert_eq!(
            by_key.get(key.as_str()),
            Some(&id.as_str()),
            "publish {key} was answered 201"
        );
    }
    let committed_unanswered = stored.len() - published.len();

    // Restarted, the same deployment serves again; retrying what got no
    // answer with the same Idempotency-Key creates each signal once.
    let restarted = Instant::now();
    let server = deployment.start().await;
    let api = server.api();
    let start_took = restarted.elapsed();
    assert!(api.get("/readyz").await.is(200));
    let mut replayed = 0;
    for key in sent.iter().filter(|k| !published.contains_key(*k)) {
        let answer = api.publish(&token, key).await;
        assert!(answer.is(201), "retry of {key}: {}", answer.describe());
        if by_key.contains_key(key.as_str()) {
            assert_eq!(
                answer.body["id"],
                by_key[key.as_str()],
                "the stored signal, not a new one"
            );
            replayed += 1;
        }
    }
    assert_eq!(replayed, committed_unanswered);
    let stored = stored_signals(&mut conn).await;
    assert_eq!(stored.len(), sent.len(), "one signal per key sent");
    assert!(stored.iter().all(|s| s.deliveries == DEVICES as i64));

    eprintln!(
        "faults: kill -9 during a burst of 8 publishers: {} answered 201, {} in flight, {} of those committed \
         (found by their Idempotency-Key on retry), none half-created; restart to listening {}",
        published.len(),
        in_flight,
        committed_unanswered,
        secs(start_took)
    );
}
