#!/usr/bin/env bash
# Failover drill on the high-availability cluster of deploy/ha/ (3 etcd, 2 PostgreSQL under
# Patroni with synchronous replication, HAProxy, 2 service instances): the bank test's clients
# send load through both instances; meanwhile the PostgreSQL primary is killed with kill -9;
# Patroni promotes the synchronous standby, HAProxy routes to it, the instances reconnect by
# themselves. The bank test's checker then holds the ledger to every acknowledged transfer
# (none lost, none doubled), counts the answers (503 allowed, any other 5xx a violation),
# reports the longest stretch without an acknowledged write (the unavailability window), and
# checks that the live event stream on each instance announced every payment.
#
# Run as root. Knobs: SECONDS_PER_RUN (60), KILL_AFTER (20, seconds into each run), CLIENTS
# (16), WORKLOADS ("transfers webhooks"), PROFILE (release, or debug), KEEP=1 to leave the
# cluster running afterwards. It recreates the cluster under $HA_DIR (/var/tmp/ml-ha).
set -euo pipefail

SECONDS_PER_RUN=${SECONDS_PER_RUN:-60}
KILL_AFTER=${KILL_AFTER:-20}
CLIENTS=${CLIENTS:-16}
WORKLOADS=${WORKLOADS:-transfers webhooks}
PROFILE=${PROFILE:-release}
HA_DIR=${HA_DIR:-/var/tmp/ml-ha}
export HA_DIR

cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/market-ledger-target}
profile_flag=()
[[ $PROFILE == release ]] && profile_flag=(--release)
cargo build --quiet -j 2 "${profile_flag[@]}" --bin market-ledger --example banktest
export MARKET_LEDGER_BIN=$CARGO_TARGET_DIR/$PROFILE/market-ledger
banktest=$CARGO_TARGET_DIR/$PROFILE/examples/banktest
cluster=deploy/ha/cluster.sh
rest_ports=(8008 8009)

say() { echo "failover: $*" >&2; }

role_of() {
    curl -fsS "http://127.0.0.1:${rest_ports[$1]}/patroni" 2>/dev/null |
        python3 -c 'import json,sys; print(json.load(sys.stdin).get("role",""))' 2>/dev/null || true
}

primary_index() {
    local i
    for i in 0 1; do
        [[ $(role_of "$i") =~ ^(master|primary)$ ]] && { echo "$i"; return; }
    done
    return 1
}

sync_standby_ready() {
    curl -fsS http://127.0.0.1:8008/cluster 2>/dev/null | python3 -c '
import json, sys
roles = sorted(m["role"] for m in json.load(sys.stdin)["members"] if m.get("state") in ("running", "streaming"))
sys.exit(0 if roles == ["leader", "sync_standby"] else 1)'
}

now() { date +%s.%N; }

"$cluster" clean >/dev/null 2>&1 || true
"$cluster" up
[[ ${KEEP:-0} == 1 ]] || trap '"$cluster" down >/dev/null 2>&1 || true' EXIT

status=0
for workload in $WORKLOADS; do
    for _ in $(seq 120); do sync_standby_ready && break; sleep 0.5; done
    sync_standby_ready || { say "no synchronous standby before the $workload run"; exit 2; }
    # Each run on an empty database: the checker holds the ledger to this run's history alone.
    "$cluster" fresh-database >/dev/null
    DATABASE_URL=postgres://postgres@127.0.0.1:5000/ledger MARKET_LEDGER_DATA_DIR=$HA_DIR/service \
        "$MARKET_LEDGER_BIN" users create --username bank-test-admin --role admin --password-stdin \
        <<<"bank test admin password" >/dev/null
    say "$workload: ${SECONDS_PER_RUN}s through both instances, kill -9 of the primary at ${KILL_AFTER}s"
    output=$(mktemp)
    "$banktest" --servers http://127.0.0.1:8081,http://127.0.0.1:8082 \
        --seconds "$SECONDS_PER_RUN" --clients "$CLIENTS" --workload "$workload" >"$output" &
    load=$!
    sleep "$KILL_AFTER"
    old=$(primary_index)
    postmaster=$(head -1 "$HA_DIR/pg$((old + 1))/postmaster.pid")
    killed_at=$(now)
    kill -9 "$postmaster"
    new=$((1 - old))
    promoted=""
    for _ in $(seq 600); do
        if [[ $(role_of "$new") =~ ^(master|primary)$ ]]; then
            promoted=$(now)
            break
        fi
        sleep 0.1
    done
    [[ -n $promoted ]] || say "pg$((new + 1)) was not promoted within 60 s"
    rc=0
    wait "$load" || rc=$?
    [[ $rc == 0 ]] || status=1
    printf 'workload=%s killed=pg%s promoted=pg%s promotion_s=%s %s\n' "$workload" "$((old + 1))" \
        "$((new + 1))" "$([[ -n $promoted ]] && python3 -c "print(f'{$promoted - $killed_at:.2f}')" || echo never)" \
        "$(cat "$output")"
    rm -f "$output"
done
"$cluster" status
exit $status
