#!/usr/bin/env bash
# Write-path benchmark: market-ledger on PostgreSQL (single, batch, hot, signed bank-feed
# webhooks) against pgbench's tpcb-like on the same server, then market-ledger on its SQLite
# default (single, batch, webhooks).
#
# Knobs (environment): CLIENTS (8), SECONDS_PER_RUN (20), ACCOUNTS (1000), BATCH_SIZE (100),
# LEDGER_DB (ledger_bench), PGBENCH_DB (pgbench_bench): other names let two runs share the
# server. Needs: cargo, PostgreSQL at 127.0.0.1:5432 (user postgres, trust auth), pgbench,
# psql, curl, python3. Drops and recreates both databases, and drops them at the end.
#
# The script reports; a missed bar prints BELOW but does not fail the run.
set -euo pipefail

CLIENTS=${CLIENTS:-8}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-20}
ACCOUNTS=${ACCOUNTS:-1000}
BATCH_SIZE=${BATCH_SIZE:-100}

LEDGER_DB=${LEDGER_DB:-ledger_bench}
PGBENCH_DB=${PGBENCH_DB:-pgbench_bench}

BENCH_NAME=ledger-bench
# shellcheck source=bench/common.sh
source "$(dirname "$0")/common.sh"

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
psql_admin -c "DROP DATABASE $LEDGER_DB"

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
psql_admin -c "DROP DATABASE $PGBENCH_DB"

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
