//! What one request costs the shared services, measured on the stack's own
//! PostgreSQL (`pg_stat_statements`) and Redis (`INFO commandstats`): SQL
//! statements, Redis round trips and Redis commands per signed
//! poll (idle and cached), heartbeat, ack and publish. docs/scaling.md
//! builds its capacity plan on these numbers.

use std::io::{Read as _, Write as _};
use std::time::Duration;

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use reqwest::Method;
use serde_json::json;

use crate::stack::*;
use crate::support::*;

const N: usize = 200;

/// Sends `command` to Redis (inline protocol) and returns the reply's text.
fn redis(port: u16, command: &str) -> String {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    stream.write_all(format!("{command}\r\n").as_bytes()).unwrap();
    let mut reply = Vec::new();
    let mut buf = [0u8; 8192];
    // A bulk reply: `$len\r\n…\r\n`; a status: `+OK\r\n`.
    loop {
        let n = stream.read(&mut buf).unwrap();
        reply.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&reply);
        let done = match text.split_once("\r\n") {
            Some((head, body)) if head.starts_with('$') => {
                body.len() >= head[1..].parse::<usize>().unwrap_or(0) + 2
            }
            Some(_) => true,
            None => false,
        };
        if done || n == 0 {
            return text.into_owned();
        }
    }
}

/// Redis commands since the last reset: (command, calls).
fn redis_calls(port: u16) -> Vec<(String, u64)> {
    redis(port, "INFO commandstats")
        .lines()
        .filter_map(|l| {
            let (name, rest) = l.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = rest.strip_prefix("calls=")?.split(',').next()?.parse().ok()?;
            Some((name.to_owned(), calls))
        })
        .filter(|(name, _)| !name.starts_with("info") && !name.starts_with("config"))
        .collect()
}

#[derive(QueryableByName, Debug)]
struct Statement {
    #[diesel(sql_type = Text)]
    query: String,
    #[diesel(sql_type = BigInt)]
    calls: i64,
}

/// Statements run on database `eagate` since the last reset (not this
/// measurement's own).
async fn statements(conn: &mut AsyncPgConnection) -> Vec<Statement> {
    diesel::sql_query(
        "SELECT left(regexp_replace(query, '\\s+', ' ', 'g'), 70) AS query, calls FROM pg_stat_statements s \
         JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = 'eagate' \
         AND query NOT ILIKE '%pg_stat%' AND query NOT ILIKE '%pg_database%' ORDER BY calls DESC",
    )
    .load(conn)
    .await
    .unwrap()
}

/// The number of keys, and the mean `MEMORY USAGE` of 20 random ones.
fn redis_keys(port: u16) -> (f64, f64) {
    let keys = redis(port, "DBSIZE")
        .trim()
        .trim_start_matches(':')
        .parse()
        .unwrap_or(0.0);
    let sizes: Vec<f64> = (0..20)
        .filter_map(|_| {
            let key = redis(port, "RANDOMKEY");
            let key = key.lines().nth(1)?.to_owned();
            redis(port, &format!("MEMORY USAGE {key}"))
                .trim()
                .trim_start_matches(':')
                .parse()
                .ok()
        })
        .collect();
    (keys, sizes.iter().sum::<f64>() / sizes.len().max(1) as f64)
}

struct Cost {
    what: &'static str,
    statements: f64,
    redis: f64,
    evalsha: f64,
    detail: String,
}

/// Runs `requests` (N of them) on instance A and returns what they cost.
async fn measure(
    what: &'static str,
    stack: &Stack,
    conn: &mut AsyncPgConnection,
    redis_port: u16,
    mut requests: impl AsyncFnMut(usize),
) -> Cost {
    // Anything buffered before (activity) is written first.
    tokio::time::sleep(Duration::from_millis(300)).await;
    diesel::sql_query("SELECT pg_stat_statements_reset()")
        .execute(conn)
        .await
        .unwrap();
    assert!(redis(redis_port, "CONFIG RESETSTAT").starts_with("+OK"));
    let (keys_before, _) = redis_keys(redis_port);
    for n in 0..N {
        requests(n).await;
    }
    let (keys_after, bytes) = redis_keys(redis_port);
    if keys_after > keys_before {
        eprintln!(
            "scale: {what}: Redis holds {} more keys; a key takes {bytes:.0} bytes (MEMORY USAGE, mean of 20)",
            keys_after - keys_before
        );
    }
    // The activity flush (every 100 ms here) belongs to the requests.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let statements = statements(conn).await;
    let redis = redis_calls(redis_port);
    let _ = stack;
    let per = |x: f64| x / N as f64;
    let total: i64 = statements.iter().map(|s| s.calls).sum();
    let detail = statements
        .iter()
        .take(10)
        .map(|s| format!("      {:>6.2}  {}", per(s.calls as f64), s.query))
        .chain(
            redis
                .iter()
                .map(|(name, calls)| format!("      {:>6.2}  redis {name}", per(*calls as f64))),
        )
        .collect::<Vec<_>>()
        .join("\n");
    Cost {
        what,
        statements: per(total as f64),
        redis: per(redis.iter().map(|(_, c)| *c as f64).sum::<f64>() + 0.0),
        evalsha: per(redis
            .iter()
            .filter(|(n, _)| n.starts_with("eval"))
            .map(|(_, c)| *c as f64)
            .sum()),
        detail,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs nginx: run by `just scale-test` (scripts/scale-test.sh)"]
async fn what_each_request_costs_postgresql_and_redis() {
    let stack = Stack::start(|d| d).await;
    let redis_port = stack
        .own_redis()
        .expect("measured on the stack's own Redis")
        .url()
        .rsplit(':')
        .next()
        .unwrap()
        .parse::<u16>()
        .unwrap();
    let mut conn = stack.pg.connect("eagate").await;
    if diesel::sql_query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        .execute(&mut conn)
        .await
        .is_err()
    {
        panic!("pg_stat_statements is not loaded: the PostgreSQL contrib modules are needed");
    }
    let a = stack.a();
    let token = a.owner("measured").await;
    let device = a.device(&token, "EA").await;
    let others: Vec<Device> = {
        let mut v = Vec::new();
        for n in 0..9 {
            v.push(a.device(&token, &format!("EA {n}")).await);
        }
        v
    };
    a.until_cached(&device, &["db.devices.find_credentials", "db.signals.pending"])
        .await;

    let mut costs = Vec::new();
    costs.push(
        measure("idle poll (cached)", &stack, &mut conn, redis_port, async |_| {
            assert!(a.poll(&device, 0).await.is(200));
        })
        .await,
    );
    costs.push(
        measure("heartbeat", &stack, &mut conn, redis_port, async |_| {
            let answer = a
                .signed(
                    &device,
                    Method::POST,
                    "/api/v1/device/heartbeat",
                    Some(&json!({})),
                )
                .await;
            assert!(answer.is(202), "{}", answer.describe());
        })
        .await,
    );
    let mut published = Vec::new();
    costs.push(
        measure(
            "publish to 10 devices",
            &stack,
            &mut conn,
            redis_port,
            async |n| {
                let answer = a.publish(&token, &format!("measured-{n}")).await;
                assert!(answer.is(201), "{}", answer.describe());
                published.push(answer.body["id"].as_str().unwrap().to_owned());
            },
        )
        .await,
    );
    costs.push(
        measure("poll with a signal", &stack, &mut conn, redis_port, async |_| {
            let answer = a
                .signed(&device, Method::GET, "/api/v1/device/poll?wait=0&limit=1", None)
                .await;
            assert!(answer.is(200));
        })
        .await,
    );
    costs.push(
        measure("ack", &stack, &mut conn, redis_port, async |n| {
            assert!(a.ack(&device, &published[n]).await.is(200));
        })
        .await,
    );
    drop(others);

    eprintln!("scale: what one request costs (instance A, {N} requests each; per request):");
    eprintln!(
        "    {:<24} {:>10} {:>19} {:>32}",
        "request", "SQL statements", "Redis round trips", "Redis commands (in scripts too)"
    );
    for c in &costs {
        eprintln!(
            "    {:<24} {:>10.2} {:>19.2} {:>32.2}\n{}",
            c.what, c.statements, c.evalsha, c.redis, c.detail
        );
    }
    for c in &costs {
        if c.what != "publish to 10 devices" {
            assert!(
                (c.evalsha - 1.0).abs() < 0.01,
                "{}: one Redis script (nonce and rate) per signed request: {}",
                c.what,
                c.evalsha
            );
        }
    }
    let idle = &costs[0];
    assert!(
        idle.statements < 0.5,
        "a cached idle poll reads nothing from PostgreSQL (its activity is coalesced): {} statements",
        idle.statements
    );
}
