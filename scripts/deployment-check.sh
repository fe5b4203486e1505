#!/usr/bin/env bash
# Follows docs/deployment.md's "Single server (systemd)" install literally:
# every ```sh block preceded by `<!-- deployment-check -->` (build and
# install the binary, the system user, /etc/eagate and the keys, the
# PostgreSQL role and database, the environment file, the pre-flight as the
# service user, the service's commands without systemd, the first account,
# the removal), in order, in one bash session, as root. Then /readyz must
# answer ready, and afterwards nothing of it may be left.
#
# Names are moved aside so nothing real is touched: the user and role
# eagate_chk_<pid>, the database eagate_test_deployment_check_<pid>
# (marked as the test harness marks its own, scripts/lib/db.sh), /etc and
# /usr/local/bin under a scratch directory, a free port instead of 8080,
# and a debug build instead of `cargo build --release`. The script refuses
# to run if any of those already exists, or if a block still names a real
# path or the real user after the renaming (a changed document needs this
# script taught first). systemd is not used (step 7's own "Without systemd"
# block runs instead).
#
#   scripts/deployment-check.sh            # run it (root; about 5 s with a built binary)
#   scripts/deployment-check.sh --print    # print the renamed script, run nothing
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

DOC=docs/deployment.md
U="eagate_chk_$$"
. scripts/lib/db.sh
DB=$(db_name deployment_check)
ROOT=$(mktemp -d /tmp/eagate-deployment-check.XXXXXX)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
LOG="$ROOT/serve.log"

# The marked blocks, in order, indentation (list items) removed.
extract() {
    awk '
        /^[ ]*<!-- deployment-check -->$/ { marked = 1; next }
        marked && /^[ ]*```sh$/ { inside = 1; marked = 0; match($0, /^[ ]*/); indent = RLENGTH; next }
        inside && /^[ ]*```$/ { inside = 0; print ""; next }
        inside { print substr($0, indent + 1); next }
        NF { marked = 0 }
    ' "$DOC"
}

# The document's names -> this run's. Each must apply (see `unmoved`).
rename() {
    sed -e "s#cargo build --release -p eagate-server#cargo build -q -p eagate-server#" \
        -e "s#target/release/eagate#target/debug/eagate#g" \
        -e "s#/usr/local/bin/eagate#$ROOT/usr/local/bin/eagate#g" \
        -e "s#/etc/eagate#$ROOT/etc/eagate#g" \
        -e "s#--shell /usr/sbin/nologin eagate\$#--shell /usr/sbin/nologin $U#" \
        -e "s#-o root -g eagate #-o root -g $U #g" \
        -e "s#chgrp eagate #chgrp $U #g" \
        -e "s#runuser -u eagate #runuser -u $U #g" \
        -e "s#CREATE ROLE eagate #CREATE ROLE $U #" \
        -e "s#ALTER ROLE eagate #ALTER ROLE $U #" \
        -e "s#DROP ROLE eagate'#DROP ROLE $U'#" \
        -e "s#--owner eagate eagate\$#--owner $U $DB#" \
        -e "s#dropdb eagate\$#dropdb $DB#" \
        -e "s#postgres://eagate:#postgres://$U:#" \
        -e "s#@127.0.0.1:5432/eagate\$#@127.0.0.1:5432/$DB#" \
        -e "s#userdel eagate\$#userdel $U#" \
        -e "s#0.0.0.0:8080#127.0.0.1:$PORT#g" \
        -e "s#127.0.0.1:8080#127.0.0.1:$PORT#g" \
        -e "s#eagate serve\$#eagate serve > $LOG 2>\\&1 \\& echo \$! > $ROOT/serve.pid#"
}

# Lines of the renamed script that still name something real.
unmoved() {
    grep -n -E "(^|[^A-Za-z0-9_./-])/(etc|usr/local/bin)/|(-u|-g|chgrp|ROLE|--owner|dropdb|userdel|nologin) eagate\b|//eagate:|5432/eagate\b|:8080\b|--release|target/release" || true
}

script=$(extract | rename)
if [ "${1-}" = --print ]; then
    printf '%s\n' "$script"
    rm -rf "$ROOT"
    exit 0
fi
[ -n "$script" ] || { echo "deployment-check: $DOC has no <!-- deployment-check --> block" >&2; exit 1; }
left=$(printf '%s\n' "$script" | unmoved)
if [ -n "$left" ]; then
    echo "deployment-check: after renaming, these lines of $DOC's steps still name a real path, user or port:" >&2
    echo "$left" >&2
    echo "deployment-check: teach rename() in this script the changed step; nothing was run" >&2
    rm -rf "$ROOT"
    exit 1
fi

[ "$(id -u)" = 0 ] || { echo "deployment-check: run as root (the document's steps are root's)" >&2; rm -rf "$ROOT"; exit 1; }
for tool in useradd userdel runuser psql openssl curl python3; do
    command -v "$tool" >/dev/null || { echo "deployment-check: $tool is missing" >&2; rm -rf "$ROOT"; exit 1; }
done
# Nothing of this run's may exist already: what exists is not ours to remove.
if id "$U" >/dev/null 2>&1 || getent group "$U" >/dev/null; then
    echo "deployment-check: user or group $U exists already; left alone, nothing run" >&2; rm -rf "$ROOT"; exit 1
fi
if [ -n "$(runuser -u postgres -- psql -X -qAt -c "SELECT 1 FROM pg_roles WHERE rolname = '$U'")" ]; then
    echo "deployment-check: PostgreSQL role $U exists already; left alone, nothing run" >&2; rm -rf "$ROOT"; exit 1
fi
if db_exists "$DB"; then
    echo "deployment-check: database $DB exists already; left alone, nothing run" >&2; rm -rf "$ROOT"; exit 1
fi

# The scratch root mirrors what the document assumes exists; the service
# user must be able to walk into it, as into /etc.
chmod 0755 "$ROOT"
mkdir -p "$ROOT/usr/local/bin"

# From here on, whatever carries this run's names was made by this run.
created_user=0 created_role=0
cleanup() {
    local pid
    # The server: runuser's child, then runuser itself (by their pids).
    pid=$(cat "$ROOT/serve.pid" 2>/dev/null || true)
    if [ -n "$pid" ]; then
        for child in $(pgrep -P "$pid" || true); do kill "$child" 2>/dev/null || true; done
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    if [ -n "$(runuser -u postgres -- psql -X -qAt -c "SELECT 1 FROM pg_database WHERE datname = '$DB'" 2>/dev/null)" ] \
        && [ -z "${db_created[$DB]+set}" ]; then
        # Created by step 5 but never marked (the step failed half-way):
        # only this run can have made this name (checked free above).
        db_adopt "$DB" || true
    fi
    db_cleanup
    if [ "$created_role" = 1 ] || [ -n "$(runuser -u postgres -- psql -X -qAt -c "SELECT 1 FROM pg_roles WHERE rolname = '$U'" 2>/dev/null)" ]; then
        runuser -u postgres -- psql -X -q -c "DROP ROLE IF EXISTS $U" >/dev/null 2>&1 || echo "deployment-check: left role $U" >&2
    fi
    if id "$U" >/dev/null 2>&1; then userdel "$U" 2>/dev/null || echo "deployment-check: left user $U" >&2; fi
    if getent group "$U" >/dev/null; then groupdel "$U" 2>/dev/null || true; fi
    rm -rf "$ROOT"
}
trap cleanup EXIT

# The document's steps in one session, with what the document leaves to
# systemd or to the reader in between: after step 5's createdb the database
# is marked (db_adopt) at once; after `eagate serve` starts, /readyz is
# awaited as step 7 does; before the removal's dropdb the server is
# stopped (step 10's `systemctl disable --now`) and the database must still
# carry this run's marker.
session="$ROOT/session.sh"
{
    echo "set -euo pipefail"
    echo "export PATH=\"$ROOT/usr/local/bin:\$PATH\""
    echo "cd \"$repo\""
    echo ". \"$repo/scripts/lib/db.sh\""
    printf '%s\n' "$script" | awk -v db="$DB" -v port="$PORT" -v pidfile="$ROOT/serve.pid" '
        /dropdb / {
            print "# (deployment-check) step 10: the service stops first"
            print "serve_pid=$(pgrep -P \"$(cat " pidfile ")\" || cat " pidfile ")"
            print "kill \"$serve_pid\"; for _ in $(seq 100); do kill -0 \"$serve_pid\" 2>/dev/null || break; sleep 0.1; done"
            print "db_is_own " db " >/dev/null"
        }
        { print }
        /createdb --owner/ { print "db_adopt " db "   # (deployment-check) marked at once" }
        /eagate serve >/ {
            print "# (deployment-check) step 7: wait until it answers, then /readyz"
            print "for _ in $(seq 300); do curl -fs http://127.0.0.1:" port "/readyz >/dev/null 2>&1 && break; sleep 0.1; done"
            print "curl -fsS http://127.0.0.1:" port "/readyz; echo"
        }
    '
} > "$session"

echo "deployment-check: user $U, database $DB, root $ROOT, port $PORT"
started=$SECONDS
if ! bash "$session" > "$ROOT/session.log" 2>&1; then
    echo "deployment-check: a step of $DOC failed; output:" >&2
    tail -n 30 "$ROOT/session.log" >&2
    [ ! -f "$LOG" ] || { echo "deployment-check: server log:" >&2; tail -n 10 "$LOG" >&2; }
    echo "deployment-check: the script was (scripts/deployment-check.sh --print shows the renamed steps):" >&2
    cat -n "$session" >&2
    exit 1
fi
cat "$ROOT/session.log"; echo
grep -q '"status":"ready"' "$ROOT/session.log" || { echo "deployment-check: /readyz never answered ready" >&2; exit 1; }

# Step 10's removal left nothing.
left=()
id "$U" >/dev/null 2>&1 && left+=("user $U")
getent group "$U" >/dev/null && left+=("group $U")
[ -z "$(runuser -u postgres -- psql -X -qAt -c "SELECT 1 FROM pg_roles WHERE rolname = '$U'")" ] || left+=("role $U")
! db_exists "$DB" || left+=("database $DB")
[ ! -e "$ROOT/etc/eagate" ] || left+=("$ROOT/etc/eagate")
[ ! -e "$ROOT/usr/local/bin/eagate" ] || left+=("$ROOT/usr/local/bin/eagate")
if [ ${#left[@]} -gt 0 ]; then
    echo "deployment-check: the removal steps left: ${left[*]}" >&2
    exit 1
fi
echo "deployment-check: installed, served (/readyz ready), first account registered and removed again as $DOC says ($((SECONDS - started)) s)"
