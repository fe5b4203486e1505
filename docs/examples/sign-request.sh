#!/usr/bin/env bash
# Signs one device request (protocol v1, see docs/protocol.md) and sends it.
# Usage: sign-request.sh METHOD TARGET [BODY]
#   e.g. sign-request.sh GET '/api/v1/device/poll?wait=25'
#        sign-request.sh POST /api/v1/device/heartbeat '{}'
# Needs EAGATE_DEVICE_ID, EAGATE_DEVICE_SECRET and EAGATE_SERVER (default
# http://127.0.0.1:8080), curl and openssl. Prints the answer; on an error
# status it prints the problem body and exits non-zero.
set -euo pipefail
: "${EAGATE_DEVICE_ID:?set EAGATE_DEVICE_ID to the device id}"
: "${EAGATE_DEVICE_SECRET:?set EAGATE_DEVICE_SECRET to the device secret (eags_…)}"
EAGATE_SERVER=${EAGATE_SERVER:-http://127.0.0.1:8080}
usage="usage: sign-request.sh METHOD TARGET [BODY]"
method=${1:?$usage} target=${2:?$usage} body=${3-}
path=${target%%\?*}
query=""; [[ $target == *\?* ]] && query=${target#*\?}
ts=$(date +%s)
nonce=$(openssl rand -hex 16)
body_hash=$(printf '%s' "$body" | openssl dgst -sha256 -hex | sed 's/^.*= //')
sts=$(printf 'EAGATE-HMAC-SHA256\n%s\n%s\n%s\n%s\n%s\n%s\n%s' \
  "$method" "$path" "$query" "$EAGATE_DEVICE_ID" "$ts" "$nonce" "$body_hash")
sig=$(printf '%s' "$sts" | openssl dgst -sha256 -hmac "$EAGATE_DEVICE_SECRET" -hex | sed 's/^.*= //')
args=(-sS --fail-with-body -X "$method" "$EAGATE_SERVER$target"
  -H "X-Device-Id: $EAGATE_DEVICE_ID" -H "X-Timestamp: $ts"
  -H "X-Nonce: $nonce" -H "X-Signature: v1=$sig")
if [ -n "$body" ]; then args+=(-H 'Content-Type: application/json' --data-binary "$body"); fi
status=0
curl "${args[@]}" || status=$?
echo
exit "$status"
