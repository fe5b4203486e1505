#!/usr/bin/env bash
# The typed TypeScript client in clients/ts (openapi-typescript + openapi-fetch,
# versions pinned by clients/ts/package-lock.json, installed here with npm ci).
#
#   scripts/ts-client.sh generate  regenerate clients/ts/src/schema.ts from docs/openapi.json
#   scripts/ts-client.sh check     fail if schema.ts is stale; type-check everything with tsc
#   scripts/ts-client.sh smoke     start a real server on a fresh database and run
#                                  clients/ts/smoke against it
#
# Needs node (>= 20) and npm; `smoke` also needs cargo and the local PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
client=clients/ts

command -v npm >/dev/null || { echo "ts-client: node and npm are required (https://nodejs.org)"; exit 1; }

install() {
    if [ "${1:-}" = clean ] || [ ! -f "$client/node_modules/.package-lock.json" ] \
        || [ "$client/package-lock.json" -nt "$client/node_modules/.package-lock.json" ]; then
        echo "ts-client: npm ci (clients/ts)"
        (cd "$client" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    fi
}

generate_to() {
    (cd "$client" && node_modules/.bin/openapi-typescript "$root/docs/openapi.json" --output "$1" >/dev/null)
}

case "${1:-}" in
generate)
    install
    generate_to "$root/$client/src/schema.ts"
    echo "ts-client: regenerated $client/src/schema.ts from docs/openapi.json"
    ;;
check)
    install clean
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    generate_to "$tmp/schema.ts"
    if ! diff -u "$client/src/schema.ts" "$tmp/schema.ts" >"$tmp/diff"; then
        head -40 "$tmp/diff"
        echo "ts-client: $client/src/schema.ts is out of date with docs/openapi.json: run \`just openapi\` (document and client) or \`just ts-client\` (client only)"
        exit 1
    fi
    (cd "$client" && node_modules/.bin/tsc --noEmit)
    echo "ts-client: schema.ts is current and everything type-checks (tsc)"
    ;;
smoke)
    install
    . scripts/lib/db.sh
    db=$(db_name ts_smoke)
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    base="http://127.0.0.1:$port"
    data=$(mktemp -d)
    server_pid=""
    cleanup() {
        [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
        db_cleanup
        rm -rf "$data"
    }
    trap cleanup EXIT
    db_create "$db"
    (cd "$client" && node_modules/.bin/tsc)
    cargo build -q -p eagate-server
    EAGATE_DATABASE_URL="$(db_url "$db")" EAGATE_LISTEN="127.0.0.1:$port" EAGATE_DATA_DIR="$data" \
        EAGATE_ARGON2_MEMORY_KIB=64 EAGATE_ARGON2_ITERATIONS=1 RUST_LOG=warn \
        target/debug/eagate serve >"$data/server.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 1 60); do
        curl -fs "$base/readyz" >/dev/null 2>&1 && break
        sleep 0.5
    done
    curl -fs "$base/readyz" >/dev/null || { echo "ts-client: the server did not become ready"; cat "$data/server.log"; exit 1; }
    EAGATE_BASE_URL="$base" node "$client/dist/smoke/smoke.js" || { echo "ts-client: smoke test failed; server log:"; tail -20 "$data/server.log"; exit 1; }
    ;;
*)
    echo "usage: scripts/ts-client.sh generate|check|smoke" >&2
    exit 2
    ;;
esac
