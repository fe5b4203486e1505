#!/usr/bin/env bash
# Usage: sign.sh METHOD TARGET [BODY]   (needs EAGATE_DEVICE_ID, EAGATE_DEVICE_SECRET, EAGATE_SERVER)
set -euo pipefail
method=$1 target=$2 body=${3-}
path=${target%%\?*}
query=""; [[ $target == *\?* ]] && query=${target#*\?}
ts=$(date +%s)
nonce=$(openssl rand -hex 16)
body_hash=$(printf '%s' "$body" | openssl dgst -sha256 -hex | sed 's/^.*= //')
sts=$(printf 'EAGATE-HMAC-SHA256\n%s\n%s\n%s\n%s\n%s\n%s\n%s' \
  "$method" "$path" "$query" "$EAGATE_DEVICE_ID" "$ts" "$nonce" "$body_hash")
sig=$(printf '%s' "$sts" | openssl dgst -sha256 -hmac "$EAGATE_DEVICE_SECRET" -hex | sed 's/^.*= //')
args=(-s -X "$method" "$EAGATE_SERVER$target"
  -H "X-Device-Id: $EAGATE_DEVICE_ID" -H "X-Timestamp: $ts"
  -H "X-Nonce: $nonce" -H "X-Signature: v1=$sig")
if [ -n "$body" ]; then args+=(-H 'Content-Type: application/json' --data-binary "$body"); fi
curl "${args[@]}"; echo
