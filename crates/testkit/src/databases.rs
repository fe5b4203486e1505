//! What the harness creates on a PostgreSQL server, how it marks it, and
//! the sweep that drops only what is provably its own.
//!
//! Every database the harness creates has a name starting with
//! [`PREFIX`] *and* a `COMMENT ON DATABASE` marker `eagate-testkit:v1:<kind>:<unix
//! seconds>` written right after `CREATE DATABASE`. The sweep drops a
//! database only when both are there and the marker says it is stale, so a
//! database the harness did not create survives whatever its name — a
//! `test_<digits>_…` of another project, an `eagate_test_…` made by hand,
//! the old harness's unmarked leftovers.
//!
//! Kinds: `database` (one test's database; the time is its creation),
//! `template` (the migrated template of one migration set; the time is its
//! last use, refreshed by every test process that uses it) and `building`
//! (a template being migrated).
//!
//! The other tools that make scratch databases on the same server use the
//! same prefix and `database` marker, so the same rules hold for them:
//! the load harness through [`database_marker`] and [`is_marked`]
//! (`apps/load/src/servers.rs`), the scripts through `scripts/lib/db.sh`
//! (kept in step by a test below).

use std::time::Duration;

use diesel::QueryableByName;
use diesel::sql_types::{Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

/// Every name the harness (and every other eagate tool) gives a scratch
/// database starts with this.
pub const PREFIX: &str = "eagate_test_";

/// Templates: `eagate_test_template_<migrations fingerprint>`.
pub(crate) const TEMPLATE_PREFIX: &str = "eagate_test_template_";

/// A test database or an unused template older than this is dropped when a
/// test process starts. Test databases are dropped by their guard; only
/// those of killed runs linger. Two hours leaves any live run alone.
pub(crate) const STALE_AFTER: Duration = Duration::from_secs(2 * 60 * 60);

const MARKER: &str = "eagate-testkit:v1";

/// What a harness database is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Database,
    Template,
    Building,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Database => "database",
            Kind::Template => "template",
            Kind::Building => "building",
        }
    }
}

/// A parsed harness marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Marker {
    pub(crate) kind: Kind,
    /// Unix seconds: creation (`database`, `building`) or last use
    /// (`template`).
    pub(crate) at: u64,
}

impl Marker {
    pub(crate) fn new(kind: Kind, at: u64) -> Self {
        Self { kind, at }
    }

    /// The comment text.
    pub(crate) fn text(self) -> String {
        format!("{MARKER}:{}:{}", self.kind.as_str(), self.at)
    }

    /// The marker in a database comment, if it is exactly one.
    pub(crate) fn parse(comment: &str) -> Option<Self> {
        let rest = comment.strip_prefix(MARKER)?.strip_prefix(':')?;
        let (kind, at) = rest.split_once(':')?;
        let kind = match kind {
            "database" => Kind::Database,
            "template" => Kind::Template,
            "building" => Kind::Building,
            _ => return None,
        };
        if at.is_empty() || !at.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(Self::new(kind, at.parse().ok()?))
    }
}

/// A database on the server, with its comment.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub(crate) struct ServerDatabase {
    #[diesel(sql_type = Text)]
    pub(crate) name: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub(crate) comment: Option<String>,
}

impl ServerDatabase {
    /// The harness marker, when the name and the comment both say the
    /// harness made this database.
    pub(crate) fn marker(&self) -> Option<Marker> {
        if !self.name.starts_with(PREFIX) {
            return None;
        }
        Marker::parse(self.comment.as_deref()?)
    }

    /// Whether a sweep at `now` (unix seconds) drops this database, given
    /// the template this run uses (never dropped).
    pub(crate) fn is_stale(&self, now: u64, current_template: &str) -> bool {
        let Some(marker) = self.marker() else {
            return false;
        };
        if marker.kind == Kind::Template && self.name == current_template {
            return false;
        }
        now.saturating_sub(marker.at) > STALE_AFTER.as_secs()
    }
}

/// The marker of a scratch database created at `at` (unix seconds), for
/// tools outside the test harness (the load harness) to write with
/// `COMMENT ON DATABASE` right after `CREATE DATABASE`. The harness's sweep
/// drops such a database once it is two hours old.
pub fn database_marker(at: u64) -> String {
    Marker::new(Kind::Database, at).text()
}

/// Whether a database called `name` with the comment `comment` carries the
/// harness's marks (the [`PREFIX`] and an exact marker): the only databases
/// an eagate tool may ever drop.
pub fn is_marked(name: &str, comment: Option<&str>) -> bool {
    ServerDatabase {
        name: name.to_owned(),
        comment: comment.map(str::to_owned),
    }
    .marker()
    .is_some()
}

/// `name` as a quoted SQL identifier.
pub(crate) fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

pub(crate) async fn exec(conn: &mut AsyncPgConnection, sql: &str) {
    diesel::sql_query(sql)
        .execute(conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// The harness-prefixed databases on the server, with their comments.
pub(crate) async fn harness_named(conn: &mut AsyncPgConnection) -> Vec<ServerDatabase> {
    diesel::sql_query(
        "SELECT datname AS name, shobj_description(oid, 'pg_database') AS comment \
         FROM pg_database WHERE starts_with(datname, $1) ORDER BY datname",
    )
    .bind::<Text, _>(PREFIX)
    .load::<ServerDatabase>(conn)
    .await
    .unwrap_or_else(|e| panic!("listing databases: {e}"))
}

/// The database called `name`, if it exists.
pub(crate) async fn find(conn: &mut AsyncPgConnection, name: &str) -> Option<ServerDatabase> {
    diesel::sql_query(
        "SELECT datname AS name, shobj_description(oid, 'pg_database') AS comment \
         FROM pg_database WHERE datname = $1",
    )
    .bind::<Text, _>(name)
    .load::<ServerDatabase>(conn)
    .await
    .unwrap_or_else(|e| panic!("looking up database {name}: {e}"))
    .pop()
}

/// Sets the harness marker on `name`.
pub(crate) async fn mark(conn: &mut AsyncPgConnection, name: &str, marker: Marker) {
    // The marker is ours: digits, letters and colons only.
    exec(
        conn,
        &format!("COMMENT ON DATABASE {} IS '{}'", quoted(name), marker.text()),
    )
    .await;
}

/// Creates `name` (from `template`, if given) and marks it at once. If the
/// marking fails the database is dropped again, so nothing unmarked is left.
pub(crate) async fn create_marked(
    conn: &mut AsyncPgConnection,
    name: &str,
    template: Option<&str>,
    marker: Marker,
) {
    assert!(name.starts_with(PREFIX), "harness databases start with {PREFIX}");
    let sql = match template {
        Some(t) => format!("CREATE DATABASE {} TEMPLATE {}", quoted(name), quoted(t)),
        None => format!("CREATE DATABASE {}", quoted(name)),
    };
    exec(conn, &sql).await;
    let comment = format!("COMMENT ON DATABASE {} IS '{}'", quoted(name), marker.text());
    if let Err(e) = diesel::sql_query(&comment).execute(conn).await {
        let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quoted(name)))
            .execute(conn)
            .await;
        panic!("{comment}: {e}");
    }
}

/// Drops `db` only if it carries the harness marker; refuses otherwise.
pub(crate) async fn drop_own(conn: &mut AsyncPgConnection, db: &ServerDatabase) {
    assert!(
        db.marker().is_some(),
        "refusing to drop database {:?}: eagate-testkit did not create it",
        db.name
    );
    exec(
        conn,
        &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quoted(&db.name)),
    )
    .await;
}

/// Drops every harness database that is stale at `now` (unix seconds) and
/// within `scope` (everything, when a run starts; tests narrow it to what
/// they made). Returns the names dropped.
pub(crate) async fn sweep(
    conn: &mut AsyncPgConnection,
    now: u64,
    current_template: &str,
    scope: &dyn Fn(&str) -> bool,
) -> Vec<String> {
    let mut dropped = Vec::new();
    for db in harness_named(conn).await {
        if scope(&db.name) && db.is_stale(now, current_template) {
            drop_own(conn, &db).await;
            dropped.push(db.name);
        }
    }
    dropped
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: u64 = 60 * 60;

    fn db(name: &str, comment: Option<&str>) -> ServerDatabase {
        ServerDatabase {
            name: name.to_owned(),
            comment: comment.map(str::to_owned),
        }
    }

    #[test]
    fn the_public_marker_is_the_harness_marker() {
        let marker = database_marker(1_767_225_600);
        assert_eq!(
            Marker::parse(&marker),
            Some(Marker::new(Kind::Database, 1_767_225_600)),
            "database_marker writes what the sweep reads"
        );
        assert!(is_marked("eagate_test_load_1_2", Some(&marker)));
        assert!(!is_marked("eagate_load_1_2", Some(&marker)), "prefix required");
        assert!(!is_marked("eagate_test_load_1_2", None), "marker required");
        assert!(!is_marked("eagate_test_load_1_2", Some("customer data")));
    }

    /// scripts/lib/db.sh writes the marker in shell: the same prefix and
    /// the same `database` marker, or killed scripts' databases would never
    /// be swept (and the scripts' refusal rules would differ from ours).
    #[test]
    fn the_scripts_helper_uses_the_same_prefix_and_marker() {
        let path = crate::workspace_root().join("scripts/lib/db.sh");
        let helper =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let prefix = format!("\nDB_PREFIX={PREFIX}\n");
        assert!(helper.contains(&prefix), "{} lacks {prefix:?}", path.display());
        let marker = format!("\nDB_MARKER={MARKER}:{}\n", Kind::Database.as_str());
        assert!(helper.contains(&marker), "{} lacks {marker:?}", path.display());
    }

    #[test]
    fn markers_round_trip() {
        for kind in [Kind::Database, Kind::Template, Kind::Building] {
            let marker = Marker::new(kind, 1_767_225_600);
            assert_eq!(Marker::parse(&marker.text()), Some(marker));
        }
    }

    #[test]
    fn other_comments_are_not_markers() {
        for comment in [
            "",
            "customer data",
            "eagate-testkit",
            "eagate-testkit:v1",
            "eagate-testkit:v1:database",
            "eagate-testkit:v1:database:",
            "eagate-testkit:v1:database:soon",
            "eagate-testkit:v1:database:-5",
            "eagate-testkit:v1:something:100",
            "eagate-testkit:v2:database:100",
            " eagate-testkit:v1:database:100",
            "eagate-testkit:v1:database:100 and more",
        ] {
            assert_eq!(Marker::parse(comment), None, "{comment:?}");
        }
    }

    #[test]
    fn only_a_harness_name_with_a_harness_marker_is_ours() {
        let marker = Marker::new(Kind::Database, 100).text();
        assert!(db("eagate_test_100_abc", Some(&marker)).marker().is_some());
        for foreign in [
            db("test_100_abc", Some(&marker)),
            db("eagate_template_0123456789abcdef", Some(&marker)),
            db("eagate_test_100_abc", None),
            db("eagate_test_100_abc", Some("customer data")),
        ] {
            assert_eq!(foreign.marker(), None, "{foreign:?}");
        }
    }

    #[test]
    fn staleness_follows_the_marker_not_the_name() {
        let now = 10 * HOUR;
        let at = |h: u64| Marker::new(Kind::Database, now - h * HOUR).text();
        assert!(db("eagate_test_1_x", Some(&at(3))).is_stale(now, "t"));
        assert!(!db("eagate_test_1_x", Some(&at(1))).is_stale(now, "t"), "fresh");
        assert!(!db("eagate_test_1_x", None).is_stale(now, "t"), "unmarked");
        assert!(
            !db("test_1_x", Some(&at(3))).is_stale(now, "t"),
            "not the harness prefix"
        );
    }

    #[test]
    fn the_current_template_is_never_stale_and_old_ones_are() {
        let now = 10 * HOUR;
        let used = Marker::new(Kind::Template, now - 3 * HOUR).text();
        let current = "eagate_test_template_aaaa";
        assert!(!db(current, Some(&used)).is_stale(now, current));
        assert!(db("eagate_test_template_bbbb", Some(&used)).is_stale(now, current));
        let recent = Marker::new(Kind::Template, now - HOUR).text();
        assert!(
            !db("eagate_test_template_bbbb", Some(&recent)).is_stale(now, current),
            "a template another branch used within the hour stays"
        );
    }

    #[test]
    fn names_are_quoted_as_identifiers() {
        assert_eq!(quoted("a\"b"), "\"a\"\"b\"");
    }
}
