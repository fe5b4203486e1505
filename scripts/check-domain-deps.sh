#!/usr/bin/env bash
# The domain crate must stay framework-free. Fails if its normal (non-dev)
# dependency tree contains a web framework, an ORM, a pool, an async
# runtime, a concrete crypto implementation, Redis or anyhow. Then checks
# that every assert in the domain's port contract suites has a message
# (scripts/check-contract-asserts.py).
set -euo pipefail
cd "$(dirname "$0")/.."

forbidden='actix-web|actix-http|actix-rt|diesel|diesel-async|deadpool|tokio|argon2|jsonwebtoken|hmac|sha2|aws-lc-rs|chacha20poly1305|redis|anyhow|reqwest|hyper'
tree=$(cargo tree -p eagate-domain --all-features -e normal --prefix none --no-dedupe)
offenders=$(printf '%s\n' "$tree" | awk '{print $1}' | grep -Ex "($forbidden)" | sort -u || true)
if [ -n "$offenders" ]; then
    echo "check-domain-deps: eagate-domain must not depend on: $(echo $offenders)" >&2
    echo "check-domain-deps: move that code to an adapter crate behind a port" >&2
    exit 1
fi
echo "check-domain-deps: eagate-domain is framework-free ($(printf '%s\n' "$tree" | awk '{print $1}' | sort -u | wc -l) crates)"
scripts/check-contract-asserts.py
