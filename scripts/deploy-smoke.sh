#!/usr/bin/env bash
# The container image's exact commands, outside a container (no Docker
# daemon on this machine kind): `eagate migrate up`, then `eagate serve`, as
# uid/gid 65532 with only EAGATE_* variables and read-only key files, as
# deploy/Dockerfile, the compose stack and the Kubernetes Job/Deployment
# run them. Then the database backup and restore of docs/deployment.md,
# tested: an owner and two devices, `pg_dump -Fc`, the server stopped, the
# database dropped and restored with `pg_restore`, the server started again
# — the same devices are listed and authenticate with their secrets.
#
# Uses the PostgreSQL at EAGATE_TEST_DATABASE_URL (default the local one,
# user postgres) for a database of its own, dropped at the end; the binary
# at EAGATE_BIN (default target/debug/eagate, built if missing). Run as root
# (it switches to uid 65532 like the image).
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${EAGATE_BIN:-target/debug/eagate}
[ -x "$bin" ] || cargo build -q -p eagate-server
[ "$(id -u)" = 0 ] || { echo "deploy-smoke: run as root (it runs eagate as uid 65532, like the image)" >&2; exit 1; }
for tool in psql pg_dump pg_restore openssl curl python3 setpriv; do
    command -v "$tool" >/dev/null || { echo "deploy-smoke: $tool is missing" >&2; exit 1; }
done

. scripts/lib/db.sh
db=$(db_name deploy_smoke)
db_url=$(db_url "$db")
work=$(mktemp -d /tmp/eagate-deploy-smoke.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
server=""
cleanup() {
    [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
    db_cleanup
    rm -rf "$work"
}
trap cleanup EXIT

step() { echo "==> $*"; }

# The image's file system: the binary at /usr/local/bin/eagate (here $work/eagate),
# the keys mounted read-only for uid 65532.
chmod 0755 "$work"
install -m 0755 "$bin" "$work/eagate"
install -d -m 0750 -o 65532 -g 65532 "$work/keys"
(
    umask 077
    openssl genpkey -algorithm ed25519 -out "$work/keys/jwt-ed25519.pem"
    EAGATE_DATA_DIR="$work/dev" "$work/eagate" keys generate --id "k$(date +%Y%m)" > "$work/keys/master-keys"
    EAGATE_DATA_DIR="$work/dev" "$work/eagate" keys api-secret > "$work/keys/api-key-secret"
)
chown 65532:65532 "$work/keys/"*
chmod 0440 "$work/keys/"*
db_create "$db"

# As in deploy/Dockerfile (USER 65532, ENV EAGATE_ENV=production) plus the
# variables compose / Kubernetes set.
image() {
    cd /
    exec setpriv --reuid 65532 --regid 65532 --clear-groups -- env -i PATH=/usr/bin:/bin \
        EAGATE_ENV=production EAGATE_LISTEN="127.0.0.1:$port" EAGATE_DATABASE_URL="$db_url" \
        EAGATE_JWT_PRIVATE_KEY_FILE="$work/keys/jwt-ed25519.pem" \
        EAGATE_MASTER_KEYS_FILE="$work/keys/master-keys" \
        EAGATE_API_KEY_SECRET_FILE="$work/keys/api-key-secret" RUST_LOG=info \
        "$work/eagate" "$@"
}
serve() {
    # `exec` all the way down: $server is eagate's own pid (SIGTERM reaches it).
    (image serve) > "$work/serve.log" 2>&1 &
    server=$!
    for _ in $(seq 200); do
        curl -fsS "$base/readyz" >/dev/null 2>&1 && return 0
        kill -0 "$server" 2>/dev/null || break
        sleep 0.1
    done
    echo "deploy-smoke: the server did not become ready:" >&2
    tail -20 "$work/serve.log" >&2
    exit 1
}
stop() {
    kill -TERM "$server"
    wait "$server" || { echo "deploy-smoke: eagate did not exit 0 on SIGTERM" >&2; exit 1; }
    server=""
}
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
device_config() { # id secret -> HTTP status of a signed GET /api/v1/device/config
    EAGATE_DEVICE_SECRET=$2 PYTHONPATH=sdk/python/src python3 -m eagate_client \
        --server "$base" --device-id "$1" config >/dev/null && echo ok
}

step "the image's commands as uid 65532: serving a database with pending migrations is refused"
if (image serve) > "$work/refused.log" 2>&1; then
    echo "deploy-smoke: serve started on an unmigrated database" >&2; exit 1
fi
grep -q "pending migrations" "$work/refused.log"

step "eagate migrate up (the one-off job), then eagate serve"
(image migrate up) | python3 -c 'import json,sys; [print(json.loads(l).get("message", l.strip())) for l in sys.stdin]' | tail -1
serve
curl -fsS "$base/readyz"; echo

step "an owner and two devices"
password="smoke test passphrase $(openssl rand -hex 4)"
curl -fsS -XPOST "$base/api/v1/auth/register" -H 'content-type: application/json' \
    -d "{\"email\":\"ops@example.com\",\"username\":\"ops\",\"password\":\"$password\"}" >/dev/null
login() {
    curl -fsS -XPOST "$base/api/v1/auth/login" -H 'content-type: application/json' \
        -d "{\"login\":\"ops\",\"password\":\"$password\"}" | json 'd["access_token"]'
}
token=$(login)
ids=(); secrets=()
for name in "EA one" "EA two"; do
    created=$(curl -fsS -XPOST "$base/api/v1/devices" -H "authorization: Bearer $token" \
        -H 'content-type: application/json' -d "{\"name\":\"$name\"}")
    ids+=("$(json 'd["device"]["id"]' <<<"$created")")
    secrets+=("$(json 'd["secret"]' <<<"$created")")
done
list() { curl -fsS "$base/api/v1/devices" -H "authorization: Bearer $1" | json '" ".join(sorted(x["id"]+":"+x["name"] for x in d["items"]))'; }
before=$(list "$token")
for i in 0 1; do [ "$(device_config "${ids[$i]}" "${secrets[$i]}")" = ok ]; done
echo "devices: $before"

step "backup: pg_dump -Fc"
pg_dump -Fc -d "$db_url" -f "$work/eagate.dump"
ls -l "$work/eagate.dump" | awk '{print $5 " bytes"}'

step "disaster: the server stopped, the database dropped"
stop
db_drop_own "$db"

step "restore: a new empty database, pg_restore, the server started again"
db_create "$db"
pg_restore --no-owner --exit-on-error -d "$db_url" "$work/eagate.dump"
(image migrate status) | grep -c '^\[applied\]' | sed 's/$/ migrations applied/'
if (image migrate status) | grep -q '^\[pending\]'; then
    echo "deploy-smoke: the restored database has pending migrations" >&2; exit 1
fi
serve

step "the same devices, authenticating with their secrets; the owner logs in"
token=$(login)
after=$(list "$token")
[ "$before" = "$after" ] || { echo "deploy-smoke: devices differ after restore: $before / $after" >&2; exit 1; }
for i in 0 1; do
    [ "$(device_config "${ids[$i]}" "${secrets[$i]}")" = ok ] || { echo "deploy-smoke: ${ids[$i]} refused after restore" >&2; exit 1; }
done
echo "devices: $after"
stop
echo "deploy-smoke: ok (image commands as uid 65532; backup, drop, restore: the same devices are served)"
