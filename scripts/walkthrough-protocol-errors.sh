#!/usr/bin/env bash
# Checks what docs/protocol.md ("Request rules and the errors they produce")
# says a device meets, against a live server: each rule is broken on purpose
# and the status, problem code and field are compared with the document.
# Run by scripts/walkthroughs.sh with EAGATE_SERVER, EAGATE_DEVICE_ID and
# EAGATE_DEVICE_SECRET set (a fresh device: the rate-limit check needs its
# one-second window to itself).
set -euo pipefail
: "${EAGATE_SERVER:?}" "${EAGATE_DEVICE_ID:?}" "${EAGATE_DEVICE_SECRET:?}"

failures=0
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# The signing core of docs/examples/sign-request.sh, with the nonce and the
# content type as parameters. Writes a ready curl argument list to $out/$1.
sign() {
    local name=$1 method=$2 target=$3 body=$4 content_type=$5 nonce=${6:-$(openssl rand -hex 16)}
    local path=${target%%\?*} query="" ts body_hash sts sig
    [[ $target == *\?* ]] && query=${target#*\?}
    ts=$(date +%s)
    body_hash=$(printf '%s' "$body" | openssl dgst -sha256 -hex | sed 's/^.*= //')
    sts=$(printf 'EAGATE-HMAC-SHA256\n%s\n%s\n%s\n%s\n%s\n%s\n%s' \
        "$method" "$path" "$query" "$EAGATE_DEVICE_ID" "$ts" "$nonce" "$body_hash")
    sig=$(printf '%s' "$sts" | openssl dgst -sha256 -hmac "$EAGATE_DEVICE_SECRET" -hex | sed 's/^.*= //')
    {
        printf '%s\n' -s -o "$out/$name.body" -D "$out/$name.headers" -w '%{http_code}' -X "$method" \
            "$EAGATE_SERVER$target" -H "X-Device-Id: $EAGATE_DEVICE_ID" -H "X-Timestamp: $ts" \
            -H "X-Nonce: $nonce" -H "X-Signature: v1=$sig"
        if [ -n "$content_type" ]; then printf '%s\n' -H "Content-Type: $content_type"; fi
        if [ "$method" = POST ]; then printf '%s\n' --data-binary "$body"; fi
    } > "$out/$name.args"
    echo "$nonce" > "$out/$name.nonce"
}

send() { mapfile -t args < "$out/$1.args"; curl "${args[@]}" > "$out/$1.status"; }

# expect NAME STATUS CODE [JQ-FILTER]: the answer's status and problem code,
# and a jq filter that must hold on its body.
expect() {
    local name=$1 status=$2 code=$3 filter=${4:-true} got_status got_code
    got_status=$(cat "$out/$name.status")
    got_code=$(jq -r '.code // "-"' "$out/$name.body" 2>/dev/null || echo "-")
    if [ "$got_status" = "$status" ] && [ "$got_code" = "$code" ] && jq -e "$filter" "$out/$name.body" >/dev/null 2>&1; then
        echo "protocol-errors: ok   $name: $status $code"
    else
        echo "protocol-errors: FAIL $name: expected $status $code ($filter), got $got_status: $(cat "$out/$name.body")" >&2
        failures=$((failures + 1))
    fi
}

# Sequential checks stay under the device's 10 requests a second.
check() { sign "$@"; send "$1"; sleep 0.15; }

J=application/json
ACK=/api/v1/device/ack
HB=/api/v1/device/heartbeat
SIGNAL=0192f5e4-7c1a-7b3e-9a51-3c2d4e5f6a7b

check heartbeat-empty-object POST $HB '{}' $J
expect heartbeat-empty-object 202 - '.server_time > 0'
check heartbeat-charset POST $HB '{}' "$J; charset=utf-8"
expect heartbeat-charset 202 - '.server_time > 0'
check heartbeat-empty-body POST $HB '' $J
expect heartbeat-empty-body 400 malformed-body '.errors[0].field == "(body)" and .errors[0].code == "syntax"'
check heartbeat-null POST $HB 'null' $J
expect heartbeat-null 400 malformed-body '.detail | contains("expected a JSON object")'
check heartbeat-no-content-type POST $HB '{}' ''
expect heartbeat-no-content-type 415 unsupported-media-type
check heartbeat-text-plain POST $HB '{}' text/plain
expect heartbeat-text-plain 415 unsupported-media-type
check heartbeat-limits POST $HB '{"ea_version":"123456789012345678901234567890123","terminal_build":1000001}' $J
expect heartbeat-limits 422 validation-failed \
    '[.errors[] | {field, code}] == [{"field":"ea_version","code":"too_long"},{"field":"terminal_build","code":"out_of_range"}]'
check poll-unknown-parameter GET '/api/v1/device/poll?timeout=5' '' ''
expect poll-unknown-parameter 400 malformed-query '.detail | contains("unknown field `timeout`, expected `limit` or `wait`")'
check poll-wait-too-long GET '/api/v1/device/poll?wait=31' '' ''
expect poll-wait-too-long 422 validation-failed \
    '.errors == [{"field":"wait","code":"out_of_range","message":"must be an integer from 0 to 30"}]'
check poll-wait-not-integer GET '/api/v1/device/poll?wait=2.5' '' ''
expect poll-wait-not-integer 422 validation-failed '.errors[0].field == "wait"'
check poll-limit-zero GET '/api/v1/device/poll?limit=0' '' ''
expect poll-limit-zero 422 validation-failed \
    '.errors == [{"field":"limit","code":"out_of_range","message":"must be an integer from 1 to 100"}]'
check poll-defaults GET /api/v1/device/poll '' ''
expect poll-defaults 200 - '.signals == []'
check ack-limits POST $ACK '{"signal_id":"nope","outcome":"done","ticket":-1,"fill_price":0,"message":"a\u0007b"}' $J
expect ack-limits 422 validation-failed \
    '[.errors[] | {field, code}] == [{"field":"signal_id","code":"invalid"},{"field":"outcome","code":"invalid"},{"field":"ticket","code":"out_of_range"},{"field":"fill_price","code":"out_of_range"},{"field":"message","code":"invalid_characters"}]'
long=$(printf 'x%.0s' $(seq 1 513))
check ack-message-too-long POST $ACK '{"signal_id":"'$SIGNAL'","outcome":"executed","message":"'$long'"}' $J
expect ack-message-too-long 422 validation-failed \
    '.errors == [{"field":"message","code":"too_long","message":"must be at most 512 characters"}]'
check ack-ticket-fraction POST $ACK '{"signal_id":"'$SIGNAL'","outcome":"executed","ticket":1.5}' $J
expect ack-ticket-fraction 400 malformed-body '.errors[0].field == "ticket" and .errors[0].code == "invalid_value"'
check ack-unknown-field POST $ACK '{"signal_id":"'$SIGNAL'","outcome":"executed","price":1}' $J
expect ack-unknown-field 400 malformed-body '.errors[0].field == "price"'
check ack-not-delivered POST $ACK '{"signal_id":"'$SIGNAL'","outcome":"executed"}' $J
expect ack-not-delivered 404 not-found

# A 400 spends the nonce too.
check nonce-after-400 POST $HB '{}' $J "$(cat "$out/ack-unknown-field.nonce")"
expect nonce-after-400 401 replayed

# Rate limit: 25 requests signed beforehand and sent at once land in at most
# two one-second windows, so at least 13 share one: some answer 429.
sleep 1
for i in $(seq 1 25); do sign "burst-$i" GET /api/v1/device/config '' ''; done
for i in $(seq 1 25); do send "burst-$i" & done
wait
limited=""
for i in $(seq 1 25); do
    if [ "$(cat "$out/burst-$i.status")" = 429 ]; then limited=burst-$i; break; fi
done
if [ -z "$limited" ]; then
    echo "protocol-errors: FAIL rate limit: 25 simultaneous requests, none answered 429" >&2
    failures=$((failures + 1))
else
    expect "$limited" 429 rate-limited '.retry_after == 1'
    if grep -qi '^retry-after: 1' "$out/$limited.headers"; then
        echo "protocol-errors: ok   $limited: Retry-After: 1"
    else
        echo "protocol-errors: FAIL $limited: no Retry-After: 1 header" >&2
        failures=$((failures + 1))
    fi
    # The refused request's nonce is spent: the same nonce, re-signed after
    # the window, is a replay.
    sleep 1.1
    sign rate-limited-nonce-again GET /api/v1/device/config '' '' "$(cat "$out/$limited.nonce")"
    send rate-limited-nonce-again
    expect rate-limited-nonce-again 401 replayed
    sign after-the-window GET /api/v1/device/config '' ''
    send after-the-window
    expect after-the-window 200 - '.long_poll_max_seconds == 30'
fi

if [ "$failures" -gt 0 ]; then
    echo "protocol-errors: $failures answer(s) differ from docs/protocol.md" >&2
    exit 1
fi
echo "protocol-errors: every documented device error matches the server"
