#!/usr/bin/env bash
# Fails when crates/postgres/src/schema.rs is not what `diesel print-schema`
# generates from the migrations. Needs diesel_cli (installed on demand, about
# three minutes) and a PostgreSQL server (EAGATE_TEST_DATABASE_URL or
# 127.0.0.1:5432).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v diesel >/dev/null 2>&1; then
    echo "check-schema: installing diesel_cli (postgres only)"
    if ! cargo install diesel_cli --no-default-features --features postgres --locked --quiet; then
        echo "check-schema: diesel_cli needs libpq: apt-get install libpq-dev" >&2
        exit 1
    fi
fi
. scripts/lib/db.sh
db=$(db_name schema_check)
generated=$(mktemp)
trap 'db_cleanup; rm -f "$generated"' EXIT
db_create "$db"
diesel migration run --database-url "$(db_url "$db")" --migration-dir migrations --locked-schema >/dev/null
diesel print-schema --database-url "$(db_url "$db")" > "$generated"
if ! diff -u crates/postgres/src/schema.rs "$generated"; then
    echo "check-schema: schema.rs is stale; run \`just schema\`" >&2
    exit 1
fi
echo "check-schema: schema.rs matches the migrations"
