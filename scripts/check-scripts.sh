#!/usr/bin/env bash
# Checks on the scripts themselves (CI, a few seconds):
#
#   1. No script drops a database it did not create. Every script that needs
#      a scratch database goes through scripts/lib/db.sh (nothing else in
#      scripts/ or the justfile says CREATE/DROP DATABASE, createdb or
#      dropdb, but deployment-check.sh running the document's own lines
#      through db_adopt/db_is_own), and against the real server: for every name a script would
#      use, a database that already has that name (unmarked, with a comment
#      of its own, or with a copied harness marker, in turn) makes db_create fail and
#      survives the script's cleanup with its data; a database the helper
#      did create is marked with the test harness's marker and dropped.
#   2. `just --list` describes every recipe.
#   3. `just db-stop` exits 0 however often it runs: with no cluster, on a
#      running one, on a stopped one (a cluster of its own in a scratch
#      directory; this checkout's clusters are never touched).
#
# Needs psql and a PostgreSQL server (EAGATE_TEST_DATABASE_URL, else
# postgres://postgres@127.0.0.1:5432/postgres), the PostgreSQL server
# binaries (initdb, pg_ctl) and just (installed with pip if missing).
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
# scripts/deployment-check.sh runs docs/deployment.md's own createdb and
# dropdb lines: under a name with its pid that it checks is free first,
# marked (db_adopt) right after createdb, and dropped only while
# db_is_own says the marker is still there.
offenders=$(grep -l -i -E 'create database|drop database|\bcreatedb\b|\bdropdb\b' scripts/*.sh justfile \
    | grep -v -x -E 'scripts/check-scripts.sh|scripts/deployment-check.sh' || true)
grep -q 'db_is_own' scripts/deployment-check.sh && grep -q 'db_adopt' scripts/deployment-check.sh \
    || fail "scripts/deployment-check.sh no longer marks (db_adopt) and checks (db_is_own) the database it makes"
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

# ---------------------------------------------------------------- just
JUST_VERSION=1.59.0
if ! command -v just >/dev/null 2>&1; then
    echo "check-scripts: installing just $JUST_VERSION (pip install rust-just)"
    python3 -m pip install --quiet --disable-pip-version-check "rust-just==$JUST_VERSION" 2>&1 \
        | grep -v "Running pip as the 'root' user" || true
fi

# `just --list` explains every recipe: each has a comment above it.
undocumented=$(just --justfile justfile --dump --dump-format json | python3 -c '
import json, sys
recipes = json.load(sys.stdin)["recipes"]
print(" ".join(sorted(n for n, r in recipes.items() if not r.get("private") and not (r.get("doc") or "").strip())))
')
if [ -n "$undocumented" ]; then
    fail "just recipes without a description (a comment line above them): $undocumented"
else
    ok "every just recipe has a description in \`just --list\`"
fi

# `just db-stop` is safe to repeat: with nothing there, on a running
# cluster, on a stopped one. In a scratch directory of its own (the recipe
# looks under the working directory and EAGATE_DATA_DIR), never at this
# checkout's clusters.
scratch=$(mktemp -d /tmp/eagate-db-stop.XXXXXX)
chmod 0755 "$scratch"
pg_bin=$(dirname "$(command -v pg_ctl || ls -d /usr/lib/postgresql/*/bin/pg_ctl 2>/dev/null | sort -V | tail -n1 || echo /nonexistent/pg_ctl)")
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
data="$scratch/data/postgres/data"
stop_scratch() {
    as_pg "$pg_bin/pg_ctl" stop -D "$data" -m immediate >/dev/null 2>&1 || true
    rm -rf "$scratch"
}
trap 'stop_scratch; check_cleanup' EXIT
db_stop() { EAGATE_DATA_DIR="$scratch/data" just --justfile "$PWD/justfile" --working-directory "$scratch" db-stop 2>&1; }
for run in 1 2; do
    if out=$(db_stop) && [[ $out == *"no embedded database"* ]]; then :; else
        fail "just db-stop with no cluster (run $run): ${out:-exit $?}"
    fi
done
if [ ! -x "$pg_bin/initdb" ]; then
    fail "no initdb next to pg_ctl ($pg_bin): install the PostgreSQL server (scripts/ensure-services.sh)"
else
    mkdir -p "$(dirname "$data")"
    [ "$(id -u)" != 0 ] || chown -R postgres "$scratch/data"
    as_pg "$pg_bin/initdb" -D "$data" -A trust -U postgres --no-sync >/dev/null
    # A socket in the scratch directory only: no port to clash with.
    as_pg "$pg_bin/pg_ctl" start -D "$data" -w -l "$data/../log" \
        -o "-c listen_addresses='' -k $scratch/data" >/dev/null
    expected=("stopped the cluster" "is not running" "is not running")
    for run in 1 2 3; do
        if out=$(db_stop) && [[ $out == *"${expected[$((run - 1))]}"* ]]; then :; else
            fail "just db-stop on a cluster (run $run, expected \"${expected[$((run - 1))]}\"): ${out:-exit $?}"
        fi
        if as_pg "$pg_bin/pg_ctl" status -D "$data" >/dev/null 2>&1; then
            fail "the cluster still runs after just db-stop (run $run)"
        fi
    done
fi
ok "just db-stop exits 0 every time: no cluster (twice), a running cluster, then stopped (twice)"

if [ "$failures" -gt 0 ]; then
    echo "check-scripts: $failures check(s) failed" >&2
    exit 1
fi
echo "check-scripts: all checks passed"
