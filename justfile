# eagate tasks. Install just with `pip install rust-just` (or `cargo install just`).
# Every recipe is a thin wrapper: the plain cargo commands work without just.

default:
    @just --list

# Run the server (embedded PostgreSQL unless EAGATE_DATABASE_URL is set).
run *ARGS:
    cargo run -p eagate-server -- {{ARGS}}

# Run the whole test suite (starts local PostgreSQL/Redis if installed but stopped).
test *ARGS:
    scripts/ensure-services.sh
    cargo test --workspace {{ARGS}}

# Everything CI checks.
ci:
    bash .ci/run

fmt:
    cargo fmt --all

lint:
    cargo clippy --workspace --all-targets -- -D warnings

# The domain crate must stay framework-free.
check-deps:
    scripts/check-domain-deps.sh

# Apply, revert or list migrations on the configured (or embedded) database.
migrate ACTION="up":
    cargo run -p eagate-server -- migrate {{ACTION}}

# Regenerate crates/postgres/src/schema.rs from the migrations.
schema:
    #!/usr/bin/env bash
    set -euo pipefail
    command -v diesel >/dev/null || cargo install diesel_cli --no-default-features --features postgres --locked
    admin=${EAGATE_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
    db="schema_gen_$$"
    psql "$admin" -qc "CREATE DATABASE $db"
    trap 'psql "$admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)"' EXIT
    diesel migration run --database-url "${admin%/*}/$db" --migration-dir migrations
    diesel print-schema --database-url "${admin%/*}/$db" > crates/postgres/src/schema.rs

# Stop the embedded development PostgreSQL (data is kept).
db-stop:
    #!/usr/bin/env bash
    set -euo pipefail
    data=.eagate/postgres/data
    [ -d "$data" ] || { echo "no embedded database under .eagate/"; exit 0; }
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- pg_ctl stop -D "$PWD/$data" -m fast; else pg_ctl stop -D "$data" -m fast; fi

# Regenerate docs/openapi.json from the code (a test fails when it is stale).
openapi:
    cargo run -q -p eagate-server -- openapi > docs/openapi.json

# Contract tests: schemathesis against a live server (installs it from PyPI).
contract:
    scripts/contract-test.sh

# Load scenarios against release builds, each beside a bare actix-web handler measured
# in the same run (docs/benchmarks.md): poll, heartbeat, healthz, mixed-login,
# signal-latency, idle-connections, soak, instructions. Needs wrk (and valgrind for
# `instructions`); e.g. `just load poll --store memory`, `just load soak --duration 120`.
load SCENARIO *ARGS:
    #!/usr/bin/env bash
    set -euo pipefail
    command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 1; }
    scripts/ensure-services.sh
    cargo build --release -q -p eagate-server -p eagate-load
    ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
    "${CARGO_TARGET_DIR:-target}/release/eagate-load" {{SCENARIO}} {{ARGS}}

# criterion micro-benchmarks: protocol-v1 signing and verification, sealing,
# JWT, argon2id with the production parameters. `just bench -- verify` filters.
bench *ARGS:
    cargo bench -p eagate-protocol -p eagate-crypto --benches {{ARGS}}
