# eagate tasks. Install just with `pip install rust-just` (or `cargo install just`).
# Every recipe is a thin wrapper: the plain cargo commands work without just.

# List the recipes with what each does.
default:
    @just --list

# Run the server (embedded PostgreSQL unless EAGATE_DATABASE_URL is set).
run *ARGS:
    cargo run -p eagate-server -- {{ARGS}}

# Run the whole test suite (starts local PostgreSQL/Redis if installed but stopped).
test *ARGS:
    scripts/ensure-services.sh
    cargo test --workspace {{ARGS}}

# Only the fault-injection tests (also part of `just test`), printing what they measure: the server on a PostgreSQL and a Redis they start, stop, kill and freeze themselves.
faults *ARGS:
    cargo test -p eagate-server --test faults -- --nocapture {{ARGS}}

# Fuzz with libFuzzer (cargo-fuzz, installed if missing): TARGET is signed_request,
# json_bodies, jwt, cursor_query or all (each in turn), SECONDS per target.
# FUZZ_SANITIZER=address adds ASan. docs/security.md#fuzzing.
fuzz TARGET="all" SECONDS="300":
    scripts/fuzz.sh run {{TARGET}} {{SECONDS}}

# Scale-out on loopback: two instances behind nginx on shared PostgreSQL and Redis, then on a 3-master Redis Cluster, then a PostgreSQL failover (scripts/scale-test.sh; `just scale-test cluster` runs one part).
scale-test *ARGS:
    scripts/scale-test.sh {{ARGS}}

# Lint and validate deploy/: Dockerfile (hadolint), compose file, kustomize manifests, alert rules (promtool), dashboard.
check-deploy:
    scripts/check-deploy.sh

# The image's commands (migrate up, serve) as uid 65532 outside a container, then backup, drop, restore: the same devices are served.
deploy-smoke:
    scripts/deploy-smoke.sh

# Everything CI checks.
ci:
    bash .ci/run

# Format every crate (CI checks with `cargo fmt --all --check`).
fmt:
    cargo fmt --all

# Clippy on every crate and target, warnings as errors (as CI runs it).
lint:
    cargo clippy --workspace --all-targets -- -D warnings

# Checks on the scripts: scratch databases only through scripts/lib/db.sh (a look-alike name survives), every recipe described, `db-stop` repeatable.
check-scripts:
    scripts/check-scripts.sh

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
    . scripts/lib/db.sh
    db=$(db_name schema_gen)
    trap db_cleanup EXIT
    db_create "$db"
    diesel migration run --database-url "$(db_url "$db")" --migration-dir migrations
    diesel print-schema --database-url "$(db_url "$db")" > crates/postgres/src/schema.rs

# Stop the embedded PostgreSQL clusters (development and tests; data is kept). Safe to repeat.
db-stop:
    #!/usr/bin/env bash
    set -euo pipefail
    # pg_ctl: on PATH, else the newest Debian-style /usr/lib/postgresql/<version>/bin.
    pg_ctl=$(command -v pg_ctl || ls -d /usr/lib/postgresql/*/bin/pg_ctl 2>/dev/null | sort -V | tail -n1 || true)
    stopped=0
    for data in "${EAGATE_DATA_DIR:-.eagate}/postgres/data" .eagate/test-postgres/data; do
        [ -f "$data/PG_VERSION" ] || continue
        [ -n "$pg_ctl" ] || { echo "db-stop: pg_ctl not found (apt-get install postgresql)" >&2; exit 1; }
        run() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$pg_ctl" "$@"; else "$pg_ctl" "$@"; fi; }
        data=$(cd "$data" && pwd)
        if run status -D "$data" >/dev/null 2>&1; then
            run stop -D "$data" -m fast -w >/dev/null
            echo "db-stop: stopped the cluster in $data"
        else
            echo "db-stop: the cluster in $data is not running"
        fi
        stopped=1
    done
    [ "$stopped" = 1 ] || echo "db-stop: no embedded database under ${EAGATE_DATA_DIR:-.eagate}/"

# Regenerate docs/openapi.json from the code, then the TypeScript client from it (CI fails when either is stale).
openapi:
    cargo run -q -p eagate-server -- openapi > docs/openapi.json
    scripts/ts-client.sh generate

# Regenerate only the TypeScript client (clients/ts/src/schema.ts) from docs/openapi.json.
ts-client:
    scripts/ts-client.sh generate

# Check the TypeScript client: current with docs/openapi.json, type-checks, passes its smoke test against a live server.
ts-client-check:
    scripts/ts-client.sh check
    scripts/ts-client.sh smoke

# Lint docs/openapi.json with openapi-spec-validator and redocly (installs both, pinned).
spec-lint:
    scripts/spec-lint.sh

# Contract tests: schemathesis against a live server (installs it from PyPI).
contract:
    scripts/contract-test.sh

# Follow docs/deployment.md's install steps as written (as root; user, role, database, /etc and port moved aside), then its removal steps.
deployment-check:
    scripts/deployment-check.sh

# Run the README and docs walk-throughs against a fresh server, twice (CI runs this).
walkthroughs:
    scripts/walkthroughs.sh

# Device SDKs: the MQL5 SDK and reference EA compiled as C++ against the shim, and the Python client, against a live server.
sdk-test:
    cargo build -q -p eagate-server
    scripts/sdk-test.sh

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
