//! The harness drops only what it provably created, on a real server.
//!
//! Sweeps here "travel in time" (a `now` years ahead) to make every marker
//! stale, so they are narrowed to the databases each test made itself:
//! databases of test runs going on at the same time are never touched.

use std::collections::BTreeSet;

use super::*;
use crate::databases::{ServerDatabase, sweep};

const YEAR: u64 = 365 * 24 * 60 * 60;
const HOUR: u64 = 60 * 60;

/// Databases a test creates as fixtures, dropped (by exact name) when it
/// ends, passed or failed.
struct Fixtures(Vec<String>);

impl Fixtures {
    fn scope(&self) -> impl Fn(&str) -> bool + '_ {
        |name| self.0.iter().any(|n| n == name)
    }
}

impl Drop for Fixtures {
    fn drop(&mut self) {
        for name in &self.0 {
            drop_blocking(name);
        }
    }
}

fn tag() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// A database that is not the harness's: created without it, with
/// `comment` if given.
async fn foreign(conn: &mut AsyncPgConnection, fixtures: &mut Fixtures, name: String, comment: Option<&str>) {
    exec(conn, &format!("CREATE DATABASE {}", quoted(&name))).await;
    fixtures.0.push(name.clone());
    if let Some(comment) = comment {
        exec(
            conn,
            &format!(
                "COMMENT ON DATABASE {} IS '{}'",
                quoted(&name),
                comment.replace('\'', "''")
            ),
        )
        .await;
    }
}

async fn existing(conn: &mut AsyncPgConnection, names: &[String]) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for name in names {
        if find(conn, name).await.is_some() {
            found.insert(name.clone());
        }
    }
    found
}

#[tokio::test]
async fn foreign_databases_with_look_alike_names_survive_a_run() {
    let mut conn = admin().await;
    let mut fixtures = Fixtures(Vec::new());
    let now = unix_now();
    let ancient = now - 10 * YEAR;
    let marker = Marker::new(Kind::Database, ancient).text();
    // The old harness dropped `test_<digits>_*` older than two hours.
    foreign(
        &mut conn,
        &mut fixtures,
        format!("test_{ancient}_{}", tag()),
        None,
    )
    .await;
    // The old harness's name, even with our marker copied onto it.
    foreign(
        &mut conn,
        &mut fixtures,
        format!("test_{now}_{}", tag()),
        Some(&marker),
    )
    .await;
    // Our prefix without our marker: made by hand, or by someone else.
    foreign(
        &mut conn,
        &mut fixtures,
        format!("eagate_test_{ancient}_{}", tag()),
        None,
    )
    .await;
    foreign(
        &mut conn,
        &mut fixtures,
        format!("eagate_test_{ancient}_{}", tag()),
        Some("customer data, keep"),
    )
    .await;
    foreign(
        &mut conn,
        &mut fixtures,
        format!("eagate_test_template_{}", &tag()[..16]),
        Some("eagate-testkit:v1:template"),
    )
    .await;
    // The old harness's template name, with a marker: not our prefix.
    foreign(
        &mut conn,
        &mut fixtures,
        format!("eagate_template_{}", &tag()[..16]),
        Some(&Marker::new(Kind::Template, ancient).text()),
    )
    .await;
    let all: BTreeSet<String> = fixtures.0.iter().cloned().collect();

    // Years from now, every marker is stale: still none of these goes.
    let dropped = sweep(&mut conn, now + 10 * YEAR, &template_name(), &fixtures.scope()).await;
    assert!(
        dropped.is_empty(),
        "the sweep dropped foreign databases: {dropped:?}"
    );
    // The sweep a test run starts with, as it runs.
    sweep(&mut conn, unix_now(), &template_name(), &|_| true).await;
    assert_eq!(
        existing(&mut conn, &fixtures.0).await,
        all,
        "every foreign database survives"
    );
}

#[tokio::test]
async fn the_harness_sweeps_its_own_stale_databases_and_templates() {
    let mut conn = admin().await;
    let mut fixtures = Fixtures(Vec::new());
    let now = unix_now();
    let mut own = |name: String| {
        fixtures.0.push(name.clone());
        name
    };
    let (killed_run, live_run) = (
        own(format!("{PREFIX}{now}_{}", tag())),
        own(format!("{PREFIX}{now}_{}", tag())),
    );
    let (current, superseded) = (
        own(format!("{TEMPLATE_PREFIX}{}", &tag()[..16])),
        own(format!("{TEMPLATE_PREFIX}{}", &tag()[..16])),
    );
    let building = own(format!("{TEMPLATE_PREFIX}{}_building", &tag()[..16]));
    create_marked(
        &mut conn,
        &killed_run,
        None,
        Marker::new(Kind::Database, now - 3 * HOUR),
    )
    .await;
    create_marked(
        &mut conn,
        &live_run,
        None,
        Marker::new(Kind::Database, now - HOUR),
    )
    .await;
    create_marked(
        &mut conn,
        &current,
        None,
        Marker::new(Kind::Template, now - 3 * HOUR),
    )
    .await;
    create_marked(
        &mut conn,
        &superseded,
        None,
        Marker::new(Kind::Template, now - 3 * HOUR),
    )
    .await;
    create_marked(
        &mut conn,
        &building,
        None,
        Marker::new(Kind::Building, now - 3 * HOUR),
    )
    .await;

    let dropped: BTreeSet<String> = sweep(&mut conn, now, &current, &fixtures.scope())
        .await
        .into_iter()
        .collect();
    assert_eq!(
        dropped,
        BTreeSet::from([killed_run.clone(), superseded.clone(), building.clone()]),
        "a killed run's database, a template of other migrations and a dead build, all unused for \
         over two hours, are swept"
    );
    assert_eq!(
        existing(&mut conn, &fixtures.0).await,
        BTreeSet::from([live_run, current]),
        "a database of a run still going on and this run's template stay"
    );
}

#[tokio::test]
async fn test_databases_and_the_template_carry_the_marker() {
    let db = TestDatabase::migrated().await;
    let mut conn = admin().await;
    let found = find(&mut conn, db.name())
        .await
        .expect("the test database exists");
    let marker = found
        .marker()
        .expect("a test database carries the harness marker");
    assert_eq!(marker.kind, Kind::Database);
    assert!(
        unix_now().abs_diff(marker.at) < HOUR,
        "marked with its creation time"
    );
    let template = find(&mut conn, &template_name())
        .await
        .expect("the template exists");
    assert_eq!(
        template.marker().map(|m| m.kind),
        Some(Kind::Template),
        "the template carries the harness marker"
    );
    let name = db.name().to_owned();
    drop(db);
    assert!(
        find(&mut conn, &name).await.is_none(),
        "the guard drops its database"
    );
}

#[tokio::test]
async fn the_harness_refuses_to_drop_an_unmarked_database() {
    let mut conn = admin().await;
    let mut fixtures = Fixtures(Vec::new());
    let name = format!("{PREFIX}{}_{}", unix_now(), tag());
    foreign(&mut conn, &mut fixtures, name.clone(), None).await;
    let db = ServerDatabase {
        name: name.clone(),
        comment: None,
    };
    let refused = tokio::spawn(async move {
        let mut conn = admin().await;
        crate::databases::drop_own(&mut conn, &db).await;
    })
    .await;
    assert!(
        refused.is_err_and(|e| e.is_panic()),
        "drop_own must refuse an unmarked database"
    );
    assert!(find(&mut conn, &name).await.is_some(), "and leave it in place");
}
