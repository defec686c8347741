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
# Knobs (environment): PUPILS (1000), CLASSES (25), CLIENTS (8), SECONDS_PER_RUN (15).
# Needs: cargo, PostgreSQL at 127.0.0.1:5432 (user postgres, trust auth), psql, curl,
# python3. Drops and recreates the database schools_bench (and drops it at the end).
set -euo pipefail

PUPILS=${PUPILS:-1000}
CLASSES=${CLASSES:-25}
CLIENTS=${CLIENTS:-8}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-15}

PG_HOST=127.0.0.1
PG_PORT=5432
PG_USER=postgres
LEDGER_DB=schools_bench
ADMIN_PASSWORD='bench admin password, long enough'

cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/market-ledger-target}
LEDGER_BIN=$CARGO_TARGET_DIR/release/market-ledger
LOADGEN_BIN=$CARGO_TARGET_DIR/release/examples/loadgen
SCHOOLBENCH_BIN=$CARGO_TARGET_DIR/release/examples/schoolbench

WORK_DIR=$(mktemp -d -t schools-bench.XXXXXX)
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

# under LIMIT VALUE: PASS when VALUE < LIMIT, else BELOW.
under() { awk -v v="$2" -v m="$1" 'BEGIN { print (v != "" && v + 0 < m) ? "PASS" : "BELOW" }'; }

# bar RATIO MINIMUM: PASS or BELOW.
bar() { awk -v r="$1" -v m="$2" 'BEGIN { print (r != "n/a" && r + 0 >= m) ? "PASS" : "BELOW" }'; }

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
bench_backend sqlite "sqlite://$WORK_DIR/sqlite-db/market-ledger.db" >"$WORK_DIR/sqlite.lines"
SQLITE_LINES=$(<"$WORK_DIR/sqlite.lines")

ensure_postgres
fresh_database "$LEDGER_DB"
bench_backend postgres "postgres://$PG_USER@$PG_HOST:$PG_PORT/$LEDGER_DB" >"$WORK_DIR/postgres.lines"
POSTGRES_LINES=$(<"$WORK_DIR/postgres.lines")
psql_admin -c "DROP DATABASE IF EXISTS $LEDGER_DB WITH (FORCE)"

cat <<EOF

=== market-ledger school fee benchmark ===
pupils=$PUPILS classes=$CLASSES items=5 clients=$CLIENTS seconds_per_run=$SECONDS_PER_RUN cores=$(nproc)
$SQLITE_LINES
$POSTGRES_LINES
$(summary sqlite "$SQLITE_LINES")
$(summary postgres "$POSTGRES_LINES")
EOF
