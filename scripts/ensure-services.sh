#!/usr/bin/env bash
# Makes sure the local services the tests prefer are up, starting them when
# they are installed but stopped. Nothing here is fatal: without a server on
# 127.0.0.1:5432 the test harness starts an embedded PostgreSQL itself
# (see crates/testkit), and Redis is only needed by tests that say so.
set -uo pipefail

pg_up() { (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }
redis_up() { (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; }

if pg_up; then
    echo "ensure-services: PostgreSQL is listening on 127.0.0.1:5432"
elif command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    version=$(ls /etc/postgresql | sort -V | tail -n1)
    echo "ensure-services: starting PostgreSQL cluster ${version}/main"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    for _ in $(seq 1 30); do pg_up && break; sleep 1; done
    pg_up || echo "ensure-services: PostgreSQL did not come up; tests will use an embedded server"
else
    echo "ensure-services: no PostgreSQL on 127.0.0.1:5432; tests will start an embedded one from initdb/pg_ctl"
fi

if redis_up; then
    echo "ensure-services: Redis is listening on 127.0.0.1:6379"
elif command -v redis-server >/dev/null 2>&1; then
    echo "ensure-services: starting Redis"
    mkdir -p /tmp/eagate-redis
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
        --dir /tmp/eagate-redis --logfile /tmp/eagate-redis/redis.log || true
    for _ in $(seq 1 10); do redis_up && break; sleep 1; done
else
    echo "ensure-services: Redis is not installed (apt-get install redis-server); Redis-backed tests need it"
fi
exit 0
