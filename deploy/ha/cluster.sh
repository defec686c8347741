#!/usr/bin/env bash
# The high-availability layout on one machine, on loopback ports: a 3-member etcd, two
# PostgreSQL members run by Patroni (synchronous replication), HAProxy routing to the leader,
# and two market-ledger instances behind it.
#
#   deploy/ha/cluster.sh up       start everything (a fresh cluster the first time)
#   deploy/ha/cluster.sh status   members, roles, lag, and whether each instance is ready
#   deploy/ha/cluster.sh down     stop everything, keep the data
#   deploy/ha/cluster.sh fresh-database   the service instances again, on an empty database
#   deploy/ha/cluster.sh clean    stop everything and delete the data
#
# Run as root (PostgreSQL, etcd and Patroni run as the `postgres` user). Data, logs and pid
# files are under $HA_DIR (/var/tmp/ml-ha). The service binary is $MARKET_LEDGER_BIN (default:
# the release build in $CARGO_TARGET_DIR, built if missing).
#
# Ports (loopback): etcd clients 23791-23793 and peers 23801-23803; PostgreSQL 5433 and 5434;
# Patroni REST 8008 and 8009; HAProxy 5000 (the leader) and 7000 (stats page); the service
# instances 8081 and 8082.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
HA_DIR=${HA_DIR:-/var/tmp/ml-ha}
HOST=127.0.0.1
ETCD_CLIENT_PORTS=(23791 23792 23793)
ETCD_PEER_PORTS=(23801 23802 23803)
PG_PORTS=(5433 5434)
REST_PORTS=(8008 8009)
LEADER_PORT=5000
STATS_PORT=7000
SERVICE_PORTS=(8081 8082)
DATABASE=${HA_DATABASE:-ledger}
PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/market-ledger-target}
MARKET_LEDGER_BIN=${MARKET_LEDGER_BIN:-$CARGO_TARGET_DIR/release/market-ledger}
DATABASE_URL="postgres://postgres@$HOST:$LEADER_PORT/$DATABASE"

run=$HA_DIR/run
logs=$HA_DIR/log

say() { echo "cluster: $*" >&2; }

# Starts a daemon in the background as `postgres` (or as root with AS=root), its output in
# $logs/NAME.log and its pid in $run/NAME.pid.
start_daemon() {
    local name=$1
    shift
    if running "$name"; then
        say "$name already running"
        return
    fi
    if [[ ${AS:-postgres} == postgres ]]; then
        setsid setpriv --reuid postgres --regid postgres --init-groups -- \
            env HOME="$HA_DIR" "$@" \
            >>"$logs/$name.log" 2>&1 </dev/null &
    else
        setsid "$@" >>"$logs/$name.log" 2>&1 </dev/null &
    fi
    echo $! >"$run/$name.pid"
}

running() {
    [[ -f $run/$1.pid ]] && kill -0 "$(cat "$run/$1.pid")" 2>/dev/null
}

# SIGTERM, then SIGKILL after $2 seconds (default 20).
stop_daemon() {
    local name=$1 grace=${2:-20}
    running "$name" || { rm -f "$run/$name.pid"; return 0; }
    local pid
    pid=$(cat "$run/$name.pid")
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq $((grace * 10))); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        say "$name did not stop in ${grace}s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$run/$name.pid"
}

wait_for() {
    local what=$1 seconds=$2
    shift 2
    for _ in $(seq $((seconds * 4))); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.25
    done
    say "$what not ready after ${seconds}s (logs in $logs)"
    return 1
}

etcd_hosts() {
    local hosts=()
    for port in "${ETCD_CLIENT_PORTS[@]}"; do hosts+=("$HOST:$port"); done
    (IFS=,; echo "${hosts[*]}")
}

start_etcd() {
    local cluster=() i
    for i in 0 1 2; do cluster+=("etcd$((i + 1))=http://$HOST:${ETCD_PEER_PORTS[i]}"); done
    local initial_cluster
    initial_cluster=$(IFS=,; echo "${cluster[*]}")
    for i in 0 1 2; do
        local name=etcd$((i + 1))
        local state=new
        [[ -d $HA_DIR/$name/member ]] && state=existing
        mkdir -p "$HA_DIR/$name"
        chown postgres: "$HA_DIR/$name"
        chmod 700 "$HA_DIR/$name"
        start_daemon "$name" etcd --name "$name" --data-dir "$HA_DIR/$name" \
            --listen-client-urls "http://$HOST:${ETCD_CLIENT_PORTS[i]}" \
            --advertise-client-urls "http://$HOST:${ETCD_CLIENT_PORTS[i]}" \
            --listen-peer-urls "http://$HOST:${ETCD_PEER_PORTS[i]}" \
            --initial-advertise-peer-urls "http://$HOST:${ETCD_PEER_PORTS[i]}" \
            --initial-cluster "$initial_cluster" --initial-cluster-token market-ledger-ha \
            --initial-cluster-state "$state"
    done
    for i in 0 1 2; do
        wait_for "etcd$((i + 1))" 30 curl -fsS "http://$HOST:${ETCD_CLIENT_PORTS[i]}/health"
    done
}

render_patroni() {
    local i=$1 name=pg$(($1 + 1))
    local config=$HA_DIR/$name.yml
    mkdir -p "$HA_DIR/$name.sock"
    chown postgres: "$HA_DIR/$name.sock"
    sed -e "s|@NAME@|$name|g" -e "s|@PG_HOST@|$HOST|g" -e "s|@PG_PORT@|${PG_PORTS[i]}|g" \
        -e "s|@REST_HOST@|$HOST|g" -e "s|@REST_PORT@|${REST_PORTS[i]}|g" \
        -e "s|@ETCD_HOSTS@|$(etcd_hosts)|g" -e "s|@DATA_DIR@|$HA_DIR/$name|g" \
        -e "s|@PG_BIN@|$PG_BIN|g" -e "s|@SOCKET_DIR@|$HA_DIR/$name.sock|g" \
        "$here/patroni.yml.in" >"$config"
    chown postgres: "$config"
    chmod 600 "$config"
    echo "$config"
}

member_role() {
    curl -fsS "http://$HOST:${REST_PORTS[$1]}/patroni" 2>/dev/null |
        python3 -c 'import json,sys; print(json.load(sys.stdin).get("role",""))' 2>/dev/null
}

# True once one member is primary and the other is its synchronous standby.
synchronous_pair_ready() {
    curl -fsS "http://$HOST:${REST_PORTS[0]}/cluster" | python3 -c '
import json, sys
members = json.load(sys.stdin)["members"]
roles = sorted(m["role"] for m in members if m.get("state") in ("running", "streaming"))
sys.exit(0 if roles == ["leader", "sync_standby"] else 1)'
}

start_patroni() {
    # The first member bootstraps alone (initdb), so the second always clones from it.
    local i
    for i in 0 1; do
        local config
        config=$(render_patroni "$i")
        start_daemon "pg$((i + 1))" patroni "$config"
        if [[ $i == 0 ]]; then
            wait_for "the first PostgreSQL member" 90 \
                curl -fsS "http://$HOST:${REST_PORTS[0]}/health"
        fi
    done
    wait_for "the synchronous standby" 120 synchronous_pair_ready
}

start_haproxy() {
    local servers="" i
    for i in 0 1; do
        servers+="    server pg$((i + 1)) $HOST:${PG_PORTS[i]} maxconn 200 check port ${REST_PORTS[i]}"$'\n'
    done
    local config=$HA_DIR/haproxy.cfg
    sed -e "s|@HOST@|$HOST|g" -e "s|@LEADER_PORT@|$LEADER_PORT|g" \
        -e "s|@STATS_PORT@|$STATS_PORT|g" "$here/haproxy.cfg.in" |
        awk -v servers="$servers" '/@SERVERS@/ { printf "%s", servers; next } { print }' >"$config"
    haproxy -c -q -f "$config"
    start_daemon haproxy haproxy -db -f "$config"
    # Until its first checks HAProxy counts every server as up: wait for it to reach the
    # primary only.
    sleep 1.5
    wait_for "HAProxy to the leader" 30 leader_reachable
}

leader_reachable() {
    [[ $("$PG_BIN/psql" -h "$HOST" -p "$LEADER_PORT" -U postgres -d postgres -qAt \
        -c "SELECT pg_is_in_recovery()") == f ]]
}

service_binary() {
    if [[ ! -x $MARKET_LEDGER_BIN ]]; then
        say "building $MARKET_LEDGER_BIN"
        (cd "$repo" && cargo build --release -j 2 --bin market-ledger)
    fi
}

start_services() {
    service_binary
    "$PG_BIN/psql" -h "$HOST" -p "$LEADER_PORT" -U postgres -d postgres -qAt \
        -c "SELECT 1 FROM pg_database WHERE datname = '$DATABASE'" | grep -q 1 ||
        "$PG_BIN/psql" -h "$HOST" -p "$LEADER_PORT" -U postgres -d postgres -q \
            -c "CREATE DATABASE $DATABASE"
    # One data directory for both instances: the same token signing keys and pepper. On real
    # hosts, copy it (or set MARKET_LEDGER_JWT_KEYS and MARKET_LEDGER_PEPPER) on each.
    mkdir -p "$HA_DIR/service"
    DATABASE_URL=$DATABASE_URL MARKET_LEDGER_DATA_DIR=$HA_DIR/service "$MARKET_LEDGER_BIN" migrate
    local i
    for i in 0 1; do
        AS=root start_daemon "service$((i + 1))" env DATABASE_URL="$DATABASE_URL" \
            MARKET_LEDGER_DATA_DIR="$HA_DIR/service" \
            MARKET_LEDGER_LISTEN="$HOST:${SERVICE_PORTS[i]}" \
            MARKET_LEDGER_LOG="${MARKET_LEDGER_LOG:-warn}" "$MARKET_LEDGER_BIN"
    done
    for i in 0 1; do
        wait_for "service instance $((i + 1))" 30 curl -fsS "http://$HOST:${SERVICE_PORTS[i]}/readyz"
    done
}

up() {
    [[ $(id -u) == 0 ]] || { say "run as root (the cluster runs as postgres)"; exit 2; }
    mkdir -p "$run" "$logs"
    chown postgres: "$HA_DIR" "$run" "$logs"
    start_etcd
    start_patroni
    start_haproxy
    start_services
    status
}

down() {
    stop_daemon service1
    stop_daemon service2
    stop_daemon haproxy 5
    # The replica first, so the primary does not wait on a synchronous standby that is gone.
    local i
    for i in 1 0; do
        [[ $(member_role "$i") =~ ^(primary|master)$ ]] && continue
        stop_daemon "pg$((i + 1))" 60
    done
    stop_daemon pg1 60
    stop_daemon pg2 60
    stop_daemon etcd1
    stop_daemon etcd2
    stop_daemon etcd3
}

status() {
    local i
    for i in 0 1; do
        printf 'pg%s  127.0.0.1:%s  %s\n' "$((i + 1))" "${PG_PORTS[i]}" \
            "$(curl -fsS "http://$HOST:${REST_PORTS[i]}/patroni" 2>/dev/null |
                python3 -c 'import json,sys; p=json.load(sys.stdin); print(p.get("role"), p.get("state"), "timeline", p.get("timeline"))' 2>/dev/null ||
                echo down)"
    done
    curl -fsS "http://$HOST:${REST_PORTS[0]}/cluster" 2>/dev/null | python3 -c '
import json, sys
for m in json.load(sys.stdin)["members"]:
    print("  %-4s %-12s %-10s lag=%s" % (m["name"], m["role"], m["state"], m.get("lag", 0)))' ||
        true
    printf 'haproxy  127.0.0.1:%s  %s\n' "$LEADER_PORT" \
        "$(leader_reachable 2>/dev/null && echo "reaches the primary" || echo down)"
    for i in 0 1; do
        printf 'service%s  127.0.0.1:%s  %s\n' "$((i + 1))" "${SERVICE_PORTS[i]}" \
            "$(curl -fsS "http://$HOST:${SERVICE_PORTS[i]}/readyz" 2>/dev/null || echo down)"
    done
}

# Stops the service instances, recreates the service's database (empty) and starts them again.
fresh_database() {
    stop_daemon service1
    stop_daemon service2
    "$PG_BIN/psql" -h "$HOST" -p "$LEADER_PORT" -U postgres -d postgres -q \
        -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $DATABASE WITH (FORCE)"
    start_services
}

case ${1:-} in
    up) up ;;
    fresh-database) fresh_database ;;
    down) down ;;
    status) status ;;
    clean)
        down
        rm -rf "$HA_DIR"
        ;;
    *)
        echo "usage: $0 up|down|status|fresh-database|clean" >&2
        exit 2
        ;;
esac
