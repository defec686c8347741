#!/usr/bin/env bash
# Write-path benchmark: market-ledger on PostgreSQL (single, batch, hot, signed bank-feed
# webhooks) against pgbench's tpcb-like on the same server, then market-ledger on its SQLite
# default (single, batch, webhooks).
#
# Knobs (environment): CLIENTS (8), SECONDS_PER_RUN (20), ACCOUNTS (1000), BATCH_SIZE (100).
# Needs: cargo, PostgreSQL at 127.0.0.1:5432 (user postgres, trust auth), pgbench, psql,
# curl, python3. Drops and recreates the databases ledger_bench and pgbench_bench.
#
# The script reports; a missed bar prints BELOW but does not fail the run.
set -euo pipefail

CLIENTS=${CLIENTS:-8}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-20}
ACCOUNTS=${ACCOUNTS:-1000}
BATCH_SIZE=${BATCH_SIZE:-100}

PG_HOST=127.0.0.1
PG_PORT=5432
PG_USER=postgres
LEDGER_DB=ledger_bench
PGBENCH_DB=pgbench_bench
ADMIN_PASSWORD='bench admin password, long enough'

cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/market-ledger-target}
LEDGER_BIN=$CARGO_TARGET_DIR/release/market-ledger
LOADGEN_BIN=$CARGO_TARGET_DIR/release/examples/loadgen

WORK_DIR=$(mktemp -d -t ledger-bench.XXXXXX)
SERVER_PID=
SERVER_LOG=
SERVER_NAME=
BASE_URL=

log() { echo "bench: $*" >&2; }

cleanup() {
    if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
    log "FAILED: $*"
    if [[ -n $SERVER_LOG && -s $SERVER_LOG ]]; then
        log "last lines of the $SERVER_NAME server log:"
        tail -n 40 "$SERVER_LOG" >&2
    fi
    exit 1
}

psql_admin() { PGOPTIONS="-c client_min_messages=warning" psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -v ON_ERROR_STOP=1 -qAt "$@"; }

fresh_database() {
    # FORCE ends sessions a crashed earlier run may have left behind.
    psql_admin -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -c "CREATE DATABASE $1"
}

ensure_postgres() {
    if ! pg_isready -h "$PG_HOST" -p "$PG_PORT" -q; then
        local version
        version=$(ls /etc/postgresql | sort -V | tail -n 1)
        log "starting PostgreSQL $version"
        pg_ctlcluster --skip-systemctl-redirect "$version" main start
    fi
    for _ in $(seq 60); do
        pg_isready -h "$PG_HOST" -p "$PG_PORT" -q && return 0
        sleep 0.5
    done
    fail "PostgreSQL at $PG_HOST:$PG_PORT is not ready"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_server NAME DATABASE_URL: creates the admin, serves, waits until healthy.
start_server() {
    SERVER_NAME=$1
    local data_dir=$WORK_DIR/$1
    mkdir -p "$data_dir"
    SERVER_LOG=$data_dir/server.log
    BASE_URL=http://127.0.0.1:$(free_port)
    local settings=(
        DATABASE_URL="$2"
        MARKET_LEDGER_DATA_DIR="$data_dir"
        MARKET_LEDGER_LISTEN="${BASE_URL#http://}"
        MARKET_LEDGER_LOG=warn
    )
    printf '%s\n' "$ADMIN_PASSWORD" |
        env "${settings[@]}" "$LEDGER_BIN" users create --username admin --role admin --password-stdin >/dev/null ||
        fail "could not create the admin user on $SERVER_NAME"
    # A simple command (not a function) in the background, so $! is the server's own pid.
    env "${settings[@]}" "$LEDGER_BIN" serve >"$SERVER_LOG" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 100); do
        curl -sf "$BASE_URL/healthz" >/dev/null 2>&1 && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || fail "the $SERVER_NAME server exited at start"
        sleep 0.1
    done
    fail "the $SERVER_NAME server did not become healthy at $BASE_URL"
}

# Stops the server gracefully and shows anything it logged (warnings and errors only).
stop_server() {
    local status=0
    kill -TERM "$SERVER_PID"
    wait "$SERVER_PID" || status=$?
    SERVER_PID=
    [[ $status -eq 0 ]] || log "the $SERVER_NAME server exited with status $status"
    if [[ -s $SERVER_LOG ]]; then
        log "the $SERVER_NAME server logged $(wc -l <"$SERVER_LOG") lines; the first 20:"
        # Cut long lines: a slow-statement warning quotes the whole SQL text.
        head -n 20 "$SERVER_LOG" | cut -c 1-400 >&2
    fi
}

# A fresh token per step, so runs longer than the 900 s token lifetime still work.
login() {
    curl -sSf -X POST "$BASE_URL/v1/auth/token" \
        -H 'Content-Type: application/json' \
        -d "{\"username\":\"admin\",\"password\":\"$ADMIN_PASSWORD\"}" |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])'
}

loadgen() {
    local token
    token=$(login) || fail "login on $SERVER_NAME failed"
    "$LOADGEN_BIN" --url "$BASE_URL" --token "$token" --clients "$CLIENTS" \
        --seconds "$SECONDS_PER_RUN" --accounts "$ACCOUNTS" --batch-size "$BATCH_SIZE" "$@"
}

# run_load MODE: prints loadgen's key=value line (on stdout) after logging it.
run_load() {
    local line
    log "$SERVER_NAME: $1 for ${SECONDS_PER_RUN}s with $CLIENTS clients"
    line=$(loadgen --mode "$1") || fail "loadgen $1 on $SERVER_NAME failed"
    log "$line"
    echo "$line"
}

setup_accounts() {
    local line
    line=$(loadgen --mode setup) || fail "creating $ACCOUNTS accounts on $SERVER_NAME failed"
    log "$SERVER_NAME: $line"
}

# Prints "ok" when GET /v1/ledger/verify says ok, otherwise "FAILED <body>".
verify_ledger() {
    local token
    token=$(login) || fail "login on $SERVER_NAME failed"
    curl -sS -H "Authorization: Bearer $token" "$BASE_URL/v1/ledger/verify" |
        python3 -c 'import json, sys
body = sys.stdin.read()
try:
    ok = json.loads(body).get("ok") is True
except ValueError:
    ok = False
print("ok" if ok else "FAILED " + body)'
}

# field LINE KEY: the value of KEY in a key=value line.
field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<" $1"; }

# ratio A B: A/B with two decimals, or n/a when B is zero or missing.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0) printf "%.2f", a / b; else printf "n/a" }'; }

# bar RATIO MINIMUM: PASS or BELOW.
bar() { awk -v r="$1" -v m="$2" 'BEGIN { print (r != "n/a" && r + 0 >= m) ? "PASS" : "BELOW" }'; }

log "building release binaries (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
cargo build --release --bin market-ledger --example loadgen

ensure_postgres

# --- market-ledger on PostgreSQL ---
fresh_database "$LEDGER_DB"
start_server postgres "postgres://$PG_USER@$PG_HOST:$PG_PORT/$LEDGER_DB"
setup_accounts
PG_SINGLE=$(run_load single)
PG_BATCH=$(run_load batch)
PG_HOT=$(run_load hot)
PG_WEBHOOKS=$(run_load webhooks)
PG_VERIFY=$(verify_ledger)
stop_server

# --- pgbench tpcb-like on the same PostgreSQL ---
fresh_database "$PGBENCH_DB"
log "pgbench: initializing scale 10"
pgbench -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -i -s 10 -q "$PGBENCH_DB" >"$WORK_DIR/pgbench-init.log" 2>&1 ||
    { cat "$WORK_DIR/pgbench-init.log" >&2; fail "pgbench -i"; }
# pgbench refuses more threads than clients.
PGBENCH_JOBS=$((CLIENTS < 2 ? CLIENTS : 2))
log "pgbench: tpcb-like for ${SECONDS_PER_RUN}s with $CLIENTS clients"
PGBENCH_OUTPUT=$(pgbench -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -b tpcb-like \
    -c "$CLIENTS" -j "$PGBENCH_JOBS" -T "$SECONDS_PER_RUN" "$PGBENCH_DB" 2>&1) ||
    { echo "$PGBENCH_OUTPUT" >&2; fail "pgbench run"; }
PGBENCH_TPS=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)$/\1/p' <<<"$PGBENCH_OUTPUT")
[[ -n $PGBENCH_TPS ]] || { echo "$PGBENCH_OUTPUT" >&2; fail "no tps line in pgbench output"; }
log "pgbench: tps=$PGBENCH_TPS"

# --- market-ledger on its SQLite default ---
start_server sqlite "sqlite://$WORK_DIR/sqlite-db/market-ledger.db"
setup_accounts
SQLITE_SINGLE=$(run_load single)
SQLITE_BATCH=$(run_load batch)
SQLITE_WEBHOOKS=$(run_load webhooks)
SQLITE_VERIFY=$(verify_ledger)
stop_server

# --- summary ---
single_tps=$(field "$PG_SINGLE" transfers_per_s)
batch_tps=$(field "$PG_BATCH" transfers_per_s)
hot_tps=$(field "$PG_HOT" transfers_per_s)
single_ratio=$(ratio "$single_tps" "$PGBENCH_TPS")
batch_ratio=$(ratio "$batch_tps" "$PGBENCH_TPS")
hot_ratio=$(ratio "$hot_tps" "$single_tps")
# Signed webhooks against single transfers of the same run, same clients and duration.
pg_webhook_ratio=$(ratio "$(field "$PG_WEBHOOKS" transfers_per_s)" "$single_tps")
sqlite_webhook_ratio=$(ratio "$(field "$SQLITE_WEBHOOKS" transfers_per_s)" "$(field "$SQLITE_SINGLE" transfers_per_s)")

cat <<EOF

=== market-ledger write benchmark ===
clients=$CLIENTS seconds_per_run=$SECONDS_PER_RUN accounts=$ACCOUNTS batch_size=$BATCH_SIZE cores=$(nproc)
backend=postgres $PG_SINGLE
backend=postgres $PG_BATCH
backend=postgres $PG_HOT
backend=postgres $PG_WEBHOOKS
backend=postgres verify=$PG_VERIFY
backend=postgres pgbench=tpcb-like scale=10 clients=$CLIENTS jobs=$PGBENCH_JOBS tps=$PGBENCH_TPS
backend=sqlite $SQLITE_SINGLE
backend=sqlite $SQLITE_BATCH
backend=sqlite $SQLITE_WEBHOOKS
backend=sqlite verify=$SQLITE_VERIFY
ratios single_over_pgbench=$single_ratio batch_over_pgbench=$batch_ratio hot_over_cold=$hot_ratio postgres_webhooks_over_single=$pg_webhook_ratio sqlite_webhooks_over_single=$sqlite_webhook_ratio
bar single >= 0.6x tpcb-like: $single_ratio $(bar "$single_ratio" 0.6)
bar batch  >= 2x tpcb-like:   $batch_ratio $(bar "$batch_ratio" 2)
bar hot    >= 0.5x cold:      $hot_ratio $(bar "$hot_ratio" 0.5)
bar webhooks >= 0.8x single (postgres): $pg_webhook_ratio $(bar "$pg_webhook_ratio" 0.8)
bar webhooks >= 0.8x single (sqlite):   $sqlite_webhook_ratio $(bar "$sqlite_webhook_ratio" 0.8)
EOF
