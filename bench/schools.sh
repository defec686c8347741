#!/usr/bin/env bash
# School fee benchmark (the school fee issue's bar): on each backend, one school with
# PUPILS pupils in CLASSES classes and 5 fee items (roster through the CSV import), then
# - the run's preview and its posting, timed (bar: posting under 5 s);
# - one signed bank-feed webhook per pupil paying the pupil's QR (reference in the memo),
#   CLIENTS at a time, timed; and plain signed webhooks to a vendor (examples/loadgen.rs
#   --mode webhooks, same clients, SECONDS_PER_RUN s) for the ratio (bar: >= 0.5).
# It fails when a webhook fails, the run's status does not show every pupil paid, or
# GET /v1/ledger/verify is not clean; a missed speed bar prints BELOW but does not fail.
#
# Knobs (environment): PUPILS (1000), CLASSES (25), CLIENTS (8), SECONDS_PER_RUN (15),
# BACKENDS ("sqlite postgres"; one of them alone to measure it alone).
# Needs: cargo, PostgreSQL at 127.0.0.1:5432 (user postgres, trust auth), psql, curl,
# python3. Drops and recreates the database schools_bench (and drops it at the end).
set -euo pipefail

PUPILS=${PUPILS:-1000}
CLASSES=${CLASSES:-25}
CLIENTS=${CLIENTS:-8}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-15}
BACKENDS=${BACKENDS:-sqlite postgres}
for backend in $BACKENDS; do
    [[ $backend == sqlite || $backend == postgres ]] ||
        { echo "bench: BACKENDS names sqlite and/or postgres, not '$backend'" >&2; exit 2; }
done
[[ -n ${BACKENDS// /} ]] || { echo "bench: BACKENDS is empty" >&2; exit 2; }

BENCH_NAME=schools-bench
# shellcheck source=bench/common.sh
source "$(dirname "$0")/common.sh"
LEDGER_DB=schools_bench
SCHOOLBENCH_BIN=$CARGO_TARGET_DIR/release/examples/schoolbench

# bench_backend NAME DATABASE_URL: prints the school figures, the plain webhook line and the
# verification, one per line, each prefixed with backend=NAME.
bench_backend() {
    local token school plain verify
    start_server "$1" "$2"
    token=$(login) || fail "login on $1 failed"
    log "$1: school of $PUPILS pupils in $CLASSES classes, $CLIENTS clients"
    school=$("$SCHOOLBENCH_BIN" --url "$BASE_URL" --token "$token" --pupils "$PUPILS" \
        --classes "$CLASSES" --clients "$CLIENTS") || fail "schoolbench on $1 failed"
    sed "s/^/bench: /" <<<"$school" >&2
    token=$(login) || fail "login on $1 failed"
    log "$1: plain signed webhooks for ${SECONDS_PER_RUN}s with $CLIENTS clients"
    plain=$("$LOADGEN_BIN" --url "$BASE_URL" --token "$token" --clients "$CLIENTS" \
        --seconds "$SECONDS_PER_RUN" --mode webhooks) || fail "loadgen webhooks on $1 failed"
    log "$plain"
    verify=$(verify_ledger)
    [[ $verify == ok ]] || fail "GET /v1/ledger/verify on $1: $verify"
    stop_server
    sed "s/^/backend=$1 /" <<<"$school"
    echo "backend=$1 $plain"
    echo "backend=$1 verify=$verify"
}

# summary NAME LINES: the bars of one backend.
summary() {
    local post school_rate plain_rate webhook_ratio
    post=$(field "$(grep "^backend=$1 post " <<<"$2")" seconds)
    school_rate=$(field "$(grep "^backend=$1 mode=school-webhooks" <<<"$2")" transfers_per_s)
    plain_rate=$(field "$(grep "^backend=$1 mode=webhooks" <<<"$2")" transfers_per_s)
    webhook_ratio=$(ratio "$school_rate" "$plain_rate")
    echo "bar $1 post < 5 s: ${post}s $(under 5 "$post")"
    echo "bar $1 school webhooks >= 0.5x plain: $school_rate/$plain_rate = $webhook_ratio $(bar "$webhook_ratio" 0.5)"
}

log "building release binaries (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
cargo build --release --bin market-ledger --example loadgen --example schoolbench

# Into files, not $(...): a server started in a subshell would outlive a failure.
SQLITE_LINES= POSTGRES_LINES=
if [[ " $BACKENDS " == *" sqlite "* ]]; then
    bench_backend sqlite "sqlite://$WORK_DIR/sqlite-db/market-ledger.db" >"$WORK_DIR/sqlite.lines"
    SQLITE_LINES=$(<"$WORK_DIR/sqlite.lines")
fi
if [[ " $BACKENDS " == *" postgres "* ]]; then
    ensure_postgres
    fresh_database "$LEDGER_DB"
    bench_backend postgres "postgres://$PG_USER@$PG_HOST:$PG_PORT/$LEDGER_DB" >"$WORK_DIR/postgres.lines"
    POSTGRES_LINES=$(<"$WORK_DIR/postgres.lines")
    psql_admin -c "DROP DATABASE IF EXISTS $LEDGER_DB WITH (FORCE)"
fi

cat <<EOF

=== market-ledger school fee benchmark ===
pupils=$PUPILS classes=$CLASSES items=5 clients=$CLIENTS seconds_per_run=$SECONDS_PER_RUN cores=$(nproc)
EOF
if [[ -n $SQLITE_LINES ]]; then echo "$SQLITE_LINES"; fi
if [[ -n $POSTGRES_LINES ]]; then echo "$POSTGRES_LINES"; fi
if [[ -n $SQLITE_LINES ]]; then summary sqlite "$SQLITE_LINES"; fi
if [[ -n $POSTGRES_LINES ]]; then summary postgres "$POSTGRES_LINES"; fi
