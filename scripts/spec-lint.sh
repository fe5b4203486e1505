#!/usr/bin/env bash
# Lints the OpenAPI document (docs/openapi.json, or the file given) with two
# independent tools, installed here at pinned versions under target/spec-tools:
#   - openapi-spec-validator (PyPI): the document is valid OpenAPI 3.1;
#   - Redocly CLI `lint` (npm) with its recommended rules: zero errors and
#     zero warnings (unique operationIds, summaries, declared security,
#     servers, 4xx responses, ...).
# Needs python3 (with venv) and node/npm; seconds once the tools are installed.
set -euo pipefail
cd "$(dirname "$0")/.."

OSV_VERSION=0.9.0
REDOCLY_VERSION=2.77.0
spec=${1:-docs/openapi.json}
tools=${EAGATE_SPEC_TOOLS:-target/spec-tools}

command -v python3 >/dev/null || { echo "spec-lint: python3 is required (openapi-spec-validator)"; exit 1; }
command -v npm >/dev/null || { echo "spec-lint: node and npm are required (Redocly CLI)"; exit 1; }
[ -f "$spec" ] || { echo "spec-lint: $spec not found"; exit 1; }
mkdir -p "$tools"

venv="$tools/venv"
installed=$("$venv/bin/python" -m pip show openapi-spec-validator 2>/dev/null || true)
if ! grep -qx "Version: $OSV_VERSION" <<<"$installed"; then
    echo "spec-lint: installing openapi-spec-validator $OSV_VERSION from PyPI"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "openapi-spec-validator==$OSV_VERSION"
fi

redocly="$tools/redocly/node_modules/.bin/redocly"
if ! grep -q "\"version\": \"$REDOCLY_VERSION\"" "$tools/redocly/node_modules/@redocly/cli/package.json" 2>/dev/null; then
    echo "spec-lint: installing @redocly/cli $REDOCLY_VERSION from npm"
    npm install --prefix "$tools/redocly" --no-save --no-audit --no-fund --loglevel=error \
        "@redocly/cli@$REDOCLY_VERSION" >/dev/null
fi

failed=()
echo "==> openapi-spec-validator $OSV_VERSION"
"$venv/bin/openapi-spec-validator" "$spec" || failed+=(openapi-spec-validator)

echo "==> redocly lint $REDOCLY_VERSION (recommended rules)"
# JSON on stdout (the Node.js deprecation banner goes to stderr); errors and
# warnings alike fail.
report="$tools/redocly-report.json"
status=0
REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true \
    "$redocly" lint --extends=recommended --format=json "$spec" >"$report" 2>"$tools/redocly-stderr.log" || status=$?
python3 - "$report" "$status" <<'EOF' || failed+=("redocly lint")
import json, sys
path, status = sys.argv[1], int(sys.argv[2])
try:
    report = json.load(open(path))
except ValueError:
    print(open(path).read())
    sys.exit(f"redocly lint failed (exit {status}) without a report")
for p in report["problems"]:
    where = p["location"][0].get("pointer", "") if p.get("location") else ""
    print(f"  {p['severity']}: {p['ruleId']}: {p['message']} at {where}")
totals = report["totals"]
print(f"redocly: {totals['errors']} errors, {totals['warnings']} warnings")
if totals["errors"] or totals["warnings"] or status:
    sys.exit(1)
EOF

if [ ${#failed[@]} -gt 0 ]; then
    echo "spec-lint: $spec FAILED: ${failed[*]}"
    exit 1
fi
echo "spec-lint: $spec passes both validators"
