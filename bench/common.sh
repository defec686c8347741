# Sourced by the bench scripts (bench/ledger.sh, bench/schools.sh): the PostgreSQL helpers, a release server
# started with an admin user on a free port, login, ledger verification and the key=value
# line helpers. Set BENCH_NAME (the temporary directory's prefix) before sourcing; the caller
# has `set -euo pipefail`. Needs PostgreSQL at 127.0.0.1:5432 (user postgres, trust auth),
# psql, curl, python3.

PG_HOST=127.0.0.1
PG_PORT=5432
PG_USER=postgres
ADMIN_PASSWORD='bench admin password, long enough'

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/market-ledger-target}
LEDGER_BIN=$CARGO_TARGET_DIR/release/market-ledger
LOADGEN_BIN=$CARGO_TARGET_DIR/release/examples/loadgen

WORK_DIR=$(mktemp -d -t "${BENCH_NAME:-bench}.XXXXXX")
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
