#!/usr/bin/env bash
# The device SDKs under sdk/, checked without MetaTrader:
#   1. MQL5: the generated vectors file is fresh; the mql5pp rewrite and the
#      built-ins check pass their own tests; the sources use only listed MQL5
#      built-ins; the very same .mqh/.mq5 files compile as C++ against the
#      shim (sdk/mql5/verify/build.sh) and the SDK's self-test reproduces
#      every published protocol vector.
#   2. Python: the package installs with pip; its vector and unit tests pass.
#   3. Live: a real eagate server on a fresh database (a low per-device rate
#      limit so 429s happen), then the reference EA and the client scenarios
#      through the shim, and the Python client's live tests.
# Reuses target/debug/eagate when present (CI's cargo test built it), else
# builds it. Needs g++, libcurl and OpenSSL headers, python3, psql and curl:
# installs the Debian packages when missing and run as root, otherwise names
# them and stops.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
started=$(date +%s)
step() { echo; echo "==> sdk-test: $*"; }

# ------------------------------------------------------------------ tools
missing=()
command -v g++ >/dev/null 2>&1 || missing+=(g++)
[ -e /usr/include/x86_64-linux-gnu/curl/curl.h ] || [ -e /usr/include/curl/curl.h ] || \
    ls /usr/include/*/curl/curl.h >/dev/null 2>&1 || missing+=(libcurl4-openssl-dev)
[ -e /usr/include/openssl/evp.h ] || missing+=(libssl-dev)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
command -v psql >/dev/null 2>&1 || missing+=(postgresql-client)
command -v curl >/dev/null 2>&1 || missing+=(curl)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "sdk-test: installing ${missing[*]}"
        apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 || \
            { apt-get update -q >/dev/null && apt-get install -y -q "${missing[@]}" >/dev/null; }
    else
        echo "sdk-test: missing ${missing[*]}: install them (Debian/Ubuntu: apt-get install ${missing[*]})" >&2
        exit 1
    fi
fi

tmp=$(mktemp -d)
. scripts/lib/db.sh
db=$(db_name sdk)
server_pid=""
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    db_cleanup
    rm -rf "$tmp"
}
trap cleanup EXIT

# ------------------------------------------------------------------ MQL5, offline
step "MQL5 vectors file is generated from docs/protocol-vectors.json"
python3 sdk/mql5/verify/gen_vectors.py --check

step "MQL5 tooling tests (mql5pp rewrite, built-ins check)"
python3 -m unittest discover -s sdk/mql5/verify -p 'test_*.py'

step "MQL5 sources use only MQL5 built-ins (sdk/mql5/verify/shim/builtins.txt)"
python3 sdk/mql5/verify/check_builtins.py

step "MQL5 sources compiled as C++ against the shim"
build="$repo/target/sdk-mql5"
sdk/mql5/verify/build.sh "$build"

step "MQL5 self-test (crypto, JSON, every protocol vector) through the shim"
"$build/EagateSelfTest"

# ------------------------------------------------------------------ Python, offline
step "Python package installs (pip) and passes its vector and unit tests"
cp -r sdk/python "$tmp/python-src"
python3 -m pip install --quiet --disable-pip-version-check --no-deps --target "$tmp/site" "$tmp/python-src" \
    2>&1 | grep -v "Running pip as the 'root' user" || true
[ -f "$tmp/site/eagate_client/client.py" ] || { echo "sdk-test: pip did not install eagate_client" >&2; exit 1; }
PYTHONPATH="$tmp/site" python3 -m unittest discover -s sdk/python/tests -p 'test_[sc]*.py'

# ------------------------------------------------------------------ live server
step "eagate server on a fresh database"
# A no-op when the binary is fresh (CI's cargo test built it already).
cargo build -q -p eagate-server
db_create "$db"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
# Redis keeps the replay memory across restarts: a terminal whose clock is
# behind (inside the window) is served from its first request. (A server
# with the in-memory guard refuses requests signed before it started.)
redis_url=${EAGATE_TEST_REDIS_URL:-redis://127.0.0.1:6379}
EAGATE_DATABASE_URL="$(db_url "$db")" EAGATE_LISTEN="127.0.0.1:$port" EAGATE_DATA_DIR="$tmp/data" \
    EAGATE_REDIS_URL="$redis_url" EAGATE_REDIS_KEY_PREFIX="eagate-sdk-test:$db:" \
    EAGATE_RATE_LIMIT_DEVICE_PER_SECOND=3 EAGATE_RATE_LIMIT_PER_IP_PER_MINUTE=100000 \
    EAGATE_RATE_LIMIT_LOGIN_PER_IP_PER_MINUTE=1000 \
    EAGATE_ARGON2_MEMORY_KIB=64 EAGATE_ARGON2_ITERATIONS=1 RUST_LOG=warn \
    target/debug/eagate serve > "$tmp/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 60); do
    curl -fs "$base/readyz" >/dev/null 2>&1 && break
    sleep 0.5
done
curl -fs "$base/readyz" >/dev/null || { echo "sdk-test: the server did not become ready" >&2; cat "$tmp/server.log" >&2; exit 1; }
echo "sdk-test: server at $base (device rate limit 3/s)"

live_failed=0
step "MQL5 live: the reference EA and client scenarios through the shim"
EAGATE_SDK_SERVER=$base EAGATE_SDK_REQUIRE_LIVE=1 EAGATE_SDK_MQL5_BUILD=$build \
    python3 -m unittest sdk/mql5/verify/live_test.py || live_failed=1

step "Python live: DeviceClient against the server"
EAGATE_SDK_SERVER=$base EAGATE_SDK_REQUIRE_LIVE=1 PYTHONPATH="$tmp/site" \
    python3 -m unittest discover -s sdk/python/tests -p 'test_live.py' || live_failed=1

if [ "$live_failed" != 0 ]; then
    echo "sdk-test: live tests failed; the server's log:" >&2
    tail -n 50 "$tmp/server.log" >&2
    exit 1
fi
echo
echo "sdk-test: all SDK checks passed in $(( $(date +%s) - started )) s"
