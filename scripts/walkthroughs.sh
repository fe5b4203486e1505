#!/usr/bin/env bash
# Runs the documented walk-throughs exactly as written, top to bottom:
# every ```sh block preceded by a `<!-- walkthrough -->` line in README.md,
# docs/api.md and docs/protocol.md, one script per document, against a
# freshly started server on a fresh database. Everything runs twice on the
# same server, to prove the walk-throughs can be repeated (no name is taken
# twice, nothing depends on an empty database). Fails on the first failing
# command, and if the server logged an error or answered a 5xx. The
# documents check their own outputs (`jq -e '… | select(…)'`, `grep -x`,
# `test`), so a command that succeeds with the wrong answer fails too.
#
#   scripts/walkthroughs.sh                 # run them all (CI)
#   scripts/walkthroughs.sh --print FILE    # print FILE's walk-through script
#
# A `<!-- walkthrough: needs-device -->` marker means the block expects a
# registered device in EAGATE_DEVICE_ID / EAGATE_DEVICE_SECRET (as the
# document says); this script registers one for it. Then
# scripts/walkthrough-protocol-errors.sh checks the errors docs/protocol.md
# documents against the same server.
#
# Needs: curl, jq, openssl, psql and a PostgreSQL server (EAGATE_TEST_DATABASE_URL,
# else postgres://postgres@127.0.0.1:5432/postgres). About a minute.
set -euo pipefail
cd "$(dirname "$0")/.."

DOCUMENTS=(README.md docs/api.md docs/protocol.md)

# The marked blocks of $1, concatenated.
extract() {
    awk '
        /^<!-- walkthrough(: [a-z-]+)? -->$/ { marked = 1; next }
        marked && /^```sh$/ { inside = 1; marked = 0; next }
        inside && /^```$/ { inside = 0; print ""; next }
        inside { print; next }
        NF { marked = 0 }
    ' "$1"
}

needs_device() { grep -q '^<!-- walkthrough: needs-device -->$' "$1"; }

if [ "${1-}" = "--print" ]; then
    extract "${2:?usage: $0 --print FILE}"
    exit 0
fi

missing=""
for tool in curl jq psql openssl; do command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"; done
if [ -n "$missing" ]; then
    echo "walkthroughs: missing:$missing (Debian/Ubuntu: apt-get install curl jq postgresql-client openssl)" >&2
    exit 1
fi
for doc in "${DOCUMENTS[@]}"; do
    if [ -z "$(extract "$doc")" ]; then
        echo "walkthroughs: $doc has no <!-- walkthrough --> block" >&2
        exit 1
    fi
done

. scripts/lib/db.sh
db=$(db_name walkthrough)
work=$(mktemp -d)
server_pid=""
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null; fi
    db_cleanup
    rm -rf "$work"
}
trap cleanup EXIT
db_create "$db"

echo "walkthroughs: building eagate and eagate-device"
cargo build -q -p eagate-server -p eagate-client

# A development server as `cargo run -p eagate-server` starts it, on a free
# port. Two passes over three documents from one address stay under the
# default per-IP limits only barely; raise them (the rate limits have tests
# of their own).
EAGATE_DATABASE_URL="$(db_url "$db")" EAGATE_LISTEN=127.0.0.1:0 EAGATE_DATA_DIR="$work/data" \
    EAGATE_RATE_LIMIT_PER_IP_PER_MINUTE=1000 EAGATE_RATE_LIMIT_LOGIN_PER_IP_PER_MINUTE=100 \
    target/debug/eagate serve > "$work/server.log" 2>&1 &
server_pid=$!
base=""
for _ in $(seq 1 120); do
    base=$(sed -n 's/^eagate listening on \(http[^ ]*\).*/\1/p' "$work/server.log")
    [ -n "$base" ] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.5
done
if [ -z "$base" ]; then
    echo "walkthroughs: the server did not start:" >&2
    cat "$work/server.log" >&2
    exit 1
fi
echo "walkthroughs: server at $base (fresh database $db)"

# A throwaway account and device for blocks that start from one.
device_prelude() {
    local api="$base/api/v1" name="walk-$1-$RANDOM$RANDOM" token device
    curl -sS --fail-with-body -XPOST "$api/auth/register" -H 'content-type: application/json' \
        -d '{"email":"'"$name"'@example.com","username":"'"$name"'","password":"walk-through password"}' >/dev/null
    token=$(curl -sS --fail-with-body -XPOST "$api/auth/login" -H 'content-type: application/json' \
        -d '{"login":"'"$name"'","password":"walk-through password"}' | jq -r .access_token)
    device=$(curl -sS --fail-with-body -XPOST "$api/devices" -H "authorization: Bearer $token" \
        -H 'content-type: application/json' -d '{"name":"Walk-through EA"}')
    printf 'export EAGATE_DEVICE_ID=%s EAGATE_DEVICE_SECRET=%s\n' \
        "$(echo "$device" | jq -r .device.id)" "$(echo "$device" | jq -r .secret)"
}

run() {
    local doc=$1 pass=$2 script="$work/script.sh" log="$work/run.log"
    {
        echo "set -euo pipefail"
        if needs_device "$doc"; then device_prelude "$pass"; fi
        extract "$doc"
    } > "$script"
    local started=$SECONDS
    # Only what a reader's shell would have: the server's address.
    if ! env -u EAGATE_DEVICE_ID -u EAGATE_DEVICE_SECRET EAGATE_SERVER="$base" \
        bash -euo pipefail "$script" > "$log" 2>&1; then
        echo "walkthroughs: $doc (pass $pass) FAILED; its output:" >&2
        tail -n 40 "$log" >&2
        echo "walkthroughs: the script was (scripts/walkthroughs.sh --print $doc):" >&2
        cat -n "$script" >&2
        echo "walkthroughs: server log tail:" >&2
        tail -n 20 "$work/server.log" >&2
        exit 1
    fi
    echo "walkthroughs: $doc pass $pass ok ($(grep -c . "$script") lines, $((SECONDS - started)) s)"
}

for pass in 1 2; do
    for doc in "${DOCUMENTS[@]}"; do run "$doc" "$pass"; done
done

# What docs/protocol.md says each broken rule answers, with a device of its own.
if ! (eval "$(device_prelude errors)"; EAGATE_SERVER="$base" scripts/walkthrough-protocol-errors.sh) > "$work/errors.log" 2>&1; then
    cat "$work/errors.log" >&2
    exit 1
fi
echo "walkthroughs: $(tail -n 1 "$work/errors.log")"

if grep -E ' ERROR |status=5[0-9][0-9]|panicked' "$work/server.log" >&2; then
    echo "walkthroughs: the server logged errors (above)" >&2
    exit 1
fi
echo "walkthroughs: every documented walk-through ran twice without an error"
