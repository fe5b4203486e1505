#!/usr/bin/env bash
# Creates what the compose stack needs and must never be committed:
# secrets/ (the JWT signing key, the master keys, the API key secret, the
# metrics token) and
# .env (the database password and the metrics token, read by compose).
# Keeps what exists. Back up secrets/master-keys apart from the database.
set -euo pipefail
cd "$(dirname "$0")"
umask 077
mkdir -p secrets
[ -s secrets/jwt-ed25519.pem ] || openssl genpkey -algorithm ed25519 -out secrets/jwt-ed25519.pem
if [ ! -s secrets/master-keys ]; then
    # The same format as `eagate keys generate` (id:base64url of 32 random bytes).
    printf 'k%s:%s\n' "$(date +%Y%m)" "$(openssl rand -base64 32 | tr '+/' '-_' | tr -d '=\n')" > secrets/master-keys
fi
# The same format as `eagate keys api-secret` (base64url of 32 random bytes).
[ -s secrets/api-key-secret ] || openssl rand -base64 32 | tr '+/' '-_' | tr -d '=\n' > secrets/api-key-secret
[ -s secrets/metrics-token ] || openssl rand -hex 32 > secrets/metrics-token
if [ ! -s .env ]; then
    printf 'POSTGRES_PASSWORD=%s\nEAGATE_METRICS_TOKEN=%s\n' "$(openssl rand -hex 24)" "$(cat secrets/metrics-token)" > .env
fi
# The containers run as uid 65532 (eagate), 65534 (prometheus): the files
# must be readable by them; the directory keeps other host users out.
chmod 0700 secrets
chmod 0644 secrets/*
echo "secrets/ and .env are ready"
