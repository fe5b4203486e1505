#!/usr/bin/env bash
# Scale-out on one machine (issue 16, `just scale-test`): the tests in
# apps/server/tests/scale start their own PostgreSQL, Redis, two eagate
# instances and nginx (Debian's package, installed here if missing) and show
# that the instances agree (nonces, rate limits, long-polls, cache
# invalidation, a killed LISTEN connection, a rolling restart), then the same
# against a 3-master Redis Cluster this script starts on loopback, together
# with the Redis adapter's contract suite, then a PostgreSQL failover.
#
#   scripts/scale-test.sh            # everything
#   scripts/scale-test.sh single     # one Redis only
#   scripts/scale-test.sh cluster    # Redis Cluster only
#   scripts/scale-test.sh failover   # PostgreSQL failover only
#
# Needs the PostgreSQL server binaries and redis-server (scripts/ensure-services.sh
# installs them); runs as root or as a user that may start them.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}

step() { echo; echo "==> $*"; }

if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
    step "installing nginx (Debian package)"
    [ "$(id -u)" = 0 ] || { echo "scale-test: nginx is missing: apt-get install nginx" >&2; exit 1; }
    apt-get update -qq
    # The package's own service is not wanted: the tests start nginx themselves.
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx >/dev/null
    rm -f /usr/sbin/policy-rc.d
    trap - EXIT
fi
for tool in redis-server redis-cli; do
    command -v "$tool" >/dev/null || { echo "scale-test: $tool is missing: apt-get install redis-server" >&2; exit 1; }
done

scale_tests() {
    cargo test -q -p eagate-server --test scale -- --ignored --nocapture --test-threads=1 "$@"
}

if [ "$what" = all ] || [ "$what" = single ]; then
    step "two instances behind nginx, one Redis"
    scale_tests cross_instance:: rolling_restart:: operations::
fi

if [ "$what" = all ] || [ "$what" = cluster ]; then
    step "Redis Cluster: 3 masters on loopback"
    dir=$(mktemp -d /tmp/eagate-redis-cluster.XXXXXX)
    pids=()
    stop_cluster() {
        for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
        for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
        rm -rf "$dir"
    }
    trap stop_cluster EXIT
    # A cluster node also listens on its port + 10000 (the cluster bus): the
    # port must stay below 55536 and both must be free.
    free_port() {
        python3 -c '
import socket
while True:
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
    if port + 10000 > 65535:
        continue
    bus = socket.socket()
    try:
        bus.bind(("127.0.0.1", port + 10000))
    except OSError:
        continue
    print(port)
    break
'
    }
    nodes=()
    for n in 1 2 3; do
        port=$(free_port)
        mkdir -p "$dir/$port"
        redis-server --port "$port" --bind 127.0.0.1 --cluster-enabled yes \
            --cluster-config-file "$dir/$port/nodes.conf" --cluster-node-timeout 2000 \
            --dir "$dir/$port" --save '' --appendonly no --protected-mode no \
            --logfile "$dir/$port/redis.log" &
        pids+=($!)
        nodes+=("127.0.0.1:$port")
    done
    for node in "${nodes[@]}"; do
        for _ in $(seq 100); do
            redis-cli -h 127.0.0.1 -p "${node#*:}" ping >/dev/null 2>&1 && break
            sleep 0.1
        done
    done
    redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes >/dev/null
    for _ in $(seq 100); do
        redis-cli -p "${nodes[0]#*:}" cluster info | grep -q '^cluster_state:ok' && break
        sleep 0.1
    done
    redis-cli -p "${nodes[0]#*:}" cluster info | grep '^cluster_state:ok'
    url="redis+cluster://$(IFS=,; echo "${nodes[*]}")"
    echo "cluster: $url"

    step "Redis adapter's contract suite against the cluster"
    EAGATE_TEST_REDIS_URL=$url cargo test -q -p eagate-redis

    step "two instances behind nginx, on the Redis Cluster"
    EAGATE_SCALE_REDIS_URL=$url scale_tests cross_instance:: rolling_restart::

    stop_cluster
    trap - EXIT
fi

if [ "$what" = all ] || [ "$what" = failover ]; then
    step "PostgreSQL failover: a synchronous streaming replica promoted under load"
    scale_tests failover::
fi
