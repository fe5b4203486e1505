#!/usr/bin/env bash
# Checks on the scripts themselves (CI, a few seconds):
#
#   1. No script drops a database it did not create. Every script that needs
#      a scratch database goes through scripts/lib/db.sh (nothing else in
#      scripts/ or the justfile says CREATE/DROP DATABASE, createdb or
#      dropdb), and against the real server: for every name a script would
#      use, a database that already has that name (unmarked, with a comment
#      of its own, or with a copied harness marker, in turn) makes db_create fail and
#      survives the script's cleanup with its data; a database the helper
#      did create is marked with the test harness's marker and dropped.
#
# Needs psql and a PostgreSQL server (EAGATE_TEST_DATABASE_URL, else
# postgres://postgres@127.0.0.1:5432/postgres).
set -euo pipefail
cd "$(dirname "$0")/.."

failures=0
ok() { echo "check-scripts: ok: $*"; }
fail() { echo "check-scripts: FAILED: $*" >&2; failures=$((failures + 1)); }

# ---------------------------------------------------------------- databases
. scripts/lib/db.sh
q() { db_psql "$@"; }

# Static: only the helper creates or drops databases.
# (This check plants and drops its own look-alikes below, by exact name.)
offenders=$(grep -l -i -E 'create database|drop database|\bcreatedb\b|\bdropdb\b' scripts/*.sh justfile \
    | grep -v '^scripts/check-scripts.sh$' || true)
if [ -n "$offenders" ]; then
    fail "these create or drop databases without scripts/lib/db.sh: $offenders"
else
    ok "no script or just recipe creates or drops a database except through scripts/lib/db.sh"
fi
users=$(grep -l -E '\bdb_create\b' scripts/*.sh justfile | grep -v '^scripts/check-scripts.sh$' || true)
for f in $users; do
    grep -q '\. scripts/lib/db\.sh' "$f" || fail "$f calls db_create without sourcing scripts/lib/db.sh"
done
labels=$(grep -h -o -E 'db_name [a-z0-9_]+' $users | awk '{print $2}' | sort -u)
[ -n "$labels" ] || fail "found no script using db_name (did the helper's interface change?)"
echo "check-scripts: scripts with a scratch database: $(echo $users) (labels: $(echo $labels))"

# The look-alikes this check plants: each has a table with one row, to show
# that it survived with its data, not just by name. They are this check's
# own and dropped at its end.
fake_pid=$((9000000 + $$ % 100000)) # above Linux's largest pid_max (2^22): never a live script's
planted=()
check_cleanup() {
    local name
    for name in "${planted[@]}"; do q -c "DROP DATABASE IF EXISTS \"$name\" WITH (FORCE)" >/dev/null 2>&1 || true; done
    db_cleanup
}
trap check_cleanup EXIT
plant() { # name comment-or-empty
    q -c "CREATE DATABASE \"$1\"" >/dev/null
    planted+=("$1")
    [ -z "$2" ] || q -c "COMMENT ON DATABASE \"$1\" IS '$2'" >/dev/null
    psql "$(db_url "$1")" -X -v ON_ERROR_STOP=1 -qc "CREATE TABLE precious (v text); INSERT INTO precious VALUES ('kept')"
}
survived() { # name -> the row is still there
    [ "$(psql "$(db_url "$1")" -X -qAt -c 'SELECT v FROM precious' 2>/dev/null)" = kept ]
}

# One look-alike per script name; the three kinds of comment take turns.
comments=("" "customer data" "$DB_MARKER:$(date +%s)")
i=0
for label in $labels; do
    comment=${comments[$((i % 3))]}
    i=$((i + 1))
    name=$(db_name "$label" "$fake_pid")
    plant "$name" "$comment"
    # What each script does: its cleanup trap first, then db_create.
    if (trap db_cleanup EXIT; db_create "$(db_name "$label" "$fake_pid")") 2>/dev/null; then
        fail "db_create succeeded over an existing database $name"
    fi
    if survived "$name"; then
        ok "$name (comment: '${comment:-none}') existed before; the script refused it and it survived with its data"
    else
        fail "$name (comment: '${comment:-none}') did not survive a script's db_create + cleanup"
    fi
done
[ "$i" -ge 3 ] || fail "fewer than three script names: not every kind of look-alike was tried"

# db_drop_own never drops what this process did not create, marker or not.
other=$(db_name check_other "$fake_pid")
plant "$other" "$DB_MARKER:$(date +%s)"
if (db_drop_own "$other") 2>/dev/null; then fail "db_drop_own dropped $other, which it did not create"; fi
survived "$other" && ok "db_drop_own refuses a marked database another run created" || fail "$other was dropped"

# Names outside the harness's own space are refused outright.
for name in test_123_x eagate_walkthrough_1 eagate_test_template_x "eagate_test_x;drop"; do
    if (db_create "$name") 2>/dev/null; then fail "db_create accepted the name $name"; fi
done
ok "db_create refuses names outside eagate_test_<label>_<pid>"

# What the helper creates is marked as the harness marks (so a killed
# script's database is swept by the next `cargo test`) and dropped again.
mine=$(db_name check_own "$fake_pid")
(
    trap db_cleanup EXIT
    db_create "$mine"
    comment=$(q -c "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = '$mine'")
    [[ $comment =~ ^eagate-testkit:v1:database:[0-9]+$ ]] || { echo "$mine is marked '$comment'" >&2; exit 1; }
) || fail "db_create did not create and mark $mine"
if [ -z "$(q -c "SELECT 1 FROM pg_database WHERE datname = '$mine'")" ]; then
    ok "a database the helper created carries the harness marker and is dropped by its cleanup"
else
    fail "$mine, created by the helper, was not dropped by db_cleanup"
    planted+=("$mine")
fi

# A database the helper created whose comment someone changed is left alone.
(
    trap db_cleanup EXIT
    db_create "$mine"
    q -c "COMMENT ON DATABASE \"$mine\" IS 'taken over by hand'" >/dev/null
) 2>/dev/null || true
planted+=("$mine")
[ -n "$(q -c "SELECT 1 FROM pg_database WHERE datname = '$mine'")" ] \
    && ok "a database whose marker was replaced is not dropped" \
    || fail "db_cleanup dropped $mine although its marker was replaced"

if [ "$failures" -gt 0 ]; then
    echo "check-scripts: $failures check(s) failed" >&2
    exit 1
fi
echo "check-scripts: all checks passed"
