# Scratch databases for scripts: create, mark, and drop only what this
# process created. Source it (`. scripts/lib/db.sh`), then
#
#   trap 'db_cleanup' EXIT                 # safe before db_create: it drops
#                                          # only what db_create made
#   db=$(db_name walkthrough)              # eagate_test_walkthrough_<pid>
#   db_create "$db"                        # fails, touching nothing, if it exists
#   url=$(db_url "$db")
#   db_drop_own "$db"                      # (deploy-smoke's disaster step)
#
# The names and the marker are the test harness's (crates/testkit/src/databases.rs):
# every name starts with `eagate_test_`, and right after CREATE DATABASE the
# database gets the COMMENT `eagate-testkit:v1:database:<unix seconds>`. So
# a database left by a killed script is dropped by the next `cargo test`
# once it is two hours old, and nothing else ever is: a database that
# existed before (whatever its name or comment) makes db_create fail, and
# db_drop_own / db_cleanup drop only a database this process created and
# that still carries the marker it wrote.
#
# The server: EAGATE_TEST_DATABASE_URL, else postgres://postgres@127.0.0.1:5432/postgres.
# scripts/check-scripts.sh proves all of this against the real server.

DB_PREFIX=eagate_test_
DB_MARKER=eagate-testkit:v1:database
db_admin=${EAGATE_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
# name -> the exact marker this process wrote on it.
declare -gA db_created=()

# `eagate_test_<label>_<pid>`: label in [a-z0-9_], pid defaults to this shell's.
db_name() {
    local name="${DB_PREFIX}${1:?db_name LABEL [PID]}_${2:-$$}"
    db_valid "$name" || return 1
    printf '%s\n' "$name"
}

db_valid() {
    if [[ ! $1 =~ ^eagate_test_[a-z0-9_]+$ ]] || [[ $1 == eagate_test_template_* ]] || [ ${#1} -gt 63 ]; then
        echo "db.sh: refusing database name '$1' (scripts create eagate_test_<label>_<pid>, at most 63 characters)" >&2
        return 1
    fi
}

# The URL of database $1 on the same server.
db_url() { printf '%s/%s\n' "${db_admin%/*}" "$1"; }

db_psql() { psql "$db_admin" -X -v ON_ERROR_STOP=1 -qAt "$@"; }

# Creates $1 and marks it. Fails without touching anything when $1 already
# exists (another run, another project, a leftover: not ours to drop).
db_create() {
    local name=$1 marker err
    db_valid "$name" || return 1
    if ! err=$(db_psql -c "CREATE DATABASE \"$name\"" 2>&1 >/dev/null); then
        echo "db.sh: could not create database $name: $err" >&2
        echo "db.sh: whatever is there is left alone (if it is a leftover of yours: psql -c 'DROP DATABASE $name')" >&2
        return 1
    fi
    marker="$DB_MARKER:$(date +%s)"
    db_created[$name]=$marker
    if ! db_psql -c "COMMENT ON DATABASE \"$name\" IS '$marker'" >/dev/null; then
        # Ours (we just created it) but unmarked: drop it rather than leave it.
        db_psql -c "DROP DATABASE IF EXISTS \"$name\" WITH (FORCE)" >/dev/null || true
        unset 'db_created[$name]'
        echo "db.sh: could not mark database $name; dropped it again" >&2
        return 1
    fi
}

# Whether database $1 exists on the server.
db_exists() {
    [ -n "$(db_psql -c "SELECT 1 FROM pg_database WHERE datname = '$1'")" ]
}

# For a database this process has just created by other means (a
# documented `createdb` step that scripts/deployment-check.sh runs as
# written): marks and tracks it as db_create does. Only right after that
# command succeeded, for a name checked free (db_exists) before it ran.
db_adopt() {
    local name=$1 marker
    db_valid "$name" || return 1
    marker="$DB_MARKER:$(date +%s)"
    db_psql -c "COMMENT ON DATABASE \"$name\" IS '$marker'" >/dev/null || return 1
    db_created[$name]=$marker
}

# Whether $1 is this process's: created (or adopted) here and still
# carrying the marker written then. Fails, saying why, otherwise; succeeds
# with nothing to do when the database is already gone (prints `gone`).
db_is_own() {
    local name=$1 comment
    if [ -z "${db_created[$name]+set}" ]; then
        echo "db.sh: database $name is not this script's: it did not create it" >&2
        return 1
    fi
    # One row `:<comment>` when the database exists, none when it is gone.
    comment=$(db_psql -c "SELECT ':' || coalesce(shobj_description(oid, 'pg_database'), '') FROM pg_database WHERE datname = '$name'") || return 1
    if [ -z "$comment" ]; then
        echo gone
        return 0
    fi
    if [ "${comment#:}" != "${db_created[$name]}" ]; then
        echo "db.sh: database $name is no longer this script's: its comment is not the marker it wrote (${db_created[$name]})" >&2
        return 1
    fi
}

# Drops $1 if this process created it and it still carries our marker.
db_drop_own() {
    local name=$1 state
    state=$(db_is_own "$name") || { echo "db.sh: refusing to drop database $name" >&2; return 1; }
    if [ "$state" != gone ]; then
        db_psql -c "DROP DATABASE IF EXISTS \"$name\" WITH (FORCE)" >/dev/null || return 1
    fi
    unset 'db_created[$name]'
}

# Drops every database this process created (for an EXIT trap). Never fails
# the trap; says what it left.
db_cleanup() {
    local name
    for name in "${!db_created[@]}"; do
        db_drop_own "$name" || echo "db.sh: left database $name in place" >&2
    done
    return 0
}
