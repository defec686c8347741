#!/usr/bin/env bash
# Adoption statistics benchmark: seeds a commune with `market-ledger simulate` (the real
# pipeline: registry import, signed webhooks, cash records, a survey), then times
# GET /v1/statistics/adoption for every indicator by hamlet, on SQLite and on PostgreSQL.
# Also times the registry import of the commune's residents file on its own.
#
# Knobs (environment):
#   SIZES  "households:months" pairs (default "2700:1 27000:12": about 10,000 residents and
#          1 month, about 100,000 residents and 12 months)
#   BACKENDS  "sqlite postgres" (default)
#   REPEAT  timed requests per indicator (default 3; the best is reported)
#   REPLICATE  copy the simulated month's transfers and cash records into this many earlier
#          months (SQL copies, shifted by 30 days each, new ids) before timing: the read volume
#          of a long history without simulating every month (default 0; SQLite only)
# Targets: under 1 s for 10,000 residents and 1 month, under 10 s for 100,000 and 12 months.
# Needs: cargo, curl, python3, PostgreSQL at 127.0.0.1:5432 (user postgres, trust auth) for
# the PostgreSQL runs. Drops and recreates the database statistics_bench.
set -euo pipefail

SIZES=${SIZES:-"2700:1 27000:12"}
BACKENDS=${BACKENDS:-"sqlite postgres"}
REPEAT=${REPEAT:-3}
REPLICATE=${REPLICATE:-0}
PASSWORD='statistics bench admin password'

cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/market-ledger-target}
BIN=$CARGO_TARGET_DIR/release/market-ledger
WORK=$(mktemp -d -t statistics-bench.XXXXXX)
SERVER_PID=

cleanup() {
    if [[ -n $SERVER_PID ]]; then kill -TERM "$SERVER_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

log() { echo "bench: $*" >&2; }

cargo build --release --quiet --bin market-ledger

for size in $SIZES; do
    households=${size%%:*}
    months=${size##*:}
    for backend in $BACKENDS; do
        data="$WORK/$backend-$households"
        mkdir -p "$data"
        if [[ $backend == postgres ]]; then
            psql -h 127.0.0.1 -U postgres -d postgres -qAt -v ON_ERROR_STOP=1 \
                -c "DROP DATABASE IF EXISTS statistics_bench WITH (FORCE)" \
                -c "CREATE DATABASE statistics_bench"
            url="postgres://postgres@127.0.0.1:5432/statistics_bench"
        else
            url="sqlite://$data/ledger.db"
        fi
        export DATABASE_URL=$url MARKET_LEDGER_DATA_DIR=$data MARKET_LEDGER_LOG=warn
        log "$backend: simulating $households households for $months months"
        seeded=$("$BIN" simulate --households "$households" --months "$months" \
            --ground-truth "$data/truth.json")
        echo "$backend households=$households months=$months: $seeded"
        if [[ $REPLICATE -gt 0 && $backend == sqlite ]]; then
            python3 - "$data/ledger.db" "$REPLICATE" <<'PY'
import sqlite3, sys
db, copies = sqlite3.connect(sys.argv[1]), int(sys.argv[2])
month = 30 * 86400 * 1_000_000
for table in ("bank_transactions", "cash_payments"):
    columns = [row[1] for row in db.execute(f"PRAGMA table_info({table})")]
    db.execute(f"CREATE TEMP TABLE original_{table} AS SELECT * FROM {table}")
    for k in range(1, copies + 1):
        picked = {"id": "randomblob(16)",
                  "provider_transaction_id": f"provider_transaction_id || ':copy{k}'",
                  "occurred_at": f"occurred_at - {k * month}",
                  "created_at": f"created_at - {k * month}"}
        select = ", ".join(picked.get(column, column) for column in columns)
        db.execute(f"INSERT INTO {table} ({', '.join(columns)}) SELECT {select} FROM original_{table}")
db.commit()
print("replicated:", db.execute("SELECT count(*) FROM bank_transactions").fetchone()[0],
      "bank transactions,", db.execute("SELECT count(*) FROM cash_payments").fetchone()[0],
      "cash records", file=sys.stderr)
PY
            months=$((months + REPLICATE))
            first=$(python3 -c "import json,datetime; d=datetime.date.fromisoformat(json.load(open('$data/truth.json'))['first_day']); print((d - datetime.timedelta(days=30*$REPLICATE)).strftime('%Y-%m'))")
        fi

        printf '%s\n' "$PASSWORD" | "$BIN" users create --username bench --role admin \
            --password-stdin >/dev/null
        port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
        MARKET_LEDGER_LISTEN=127.0.0.1:$port "$BIN" >"$data/server.log" 2>&1 &
        SERVER_PID=$!
        api="http://127.0.0.1:$port"
        for _ in $(seq 100); do curl -sf "$api/readyz" >/dev/null && break; sleep 0.1; done
        token=$(curl -sf "$api/v1/auth/token" -H 'Content-Type: application/json' \
            -d "{\"username\":\"bench\",\"password\":\"$PASSWORD\"}" |
            python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
        last=$(python3 -c "import json; print(json.load(open('$data/truth.json'))['last_day'][:7])")
        [[ $REPLICATE -gt 0 && $backend == sqlite ]] ||
            first=$(python3 -c "import json; print(json.load(open('$data/truth.json'))['first_day'][:7])")
        for indicator in observed_residents observed_households cashless_share survey funnel coverage vendors; do
            by=hamlet
            [[ $indicator == coverage || $indicator == vendors ]] && by=total
            best=
            for _ in $(seq "$REPEAT"); do
                seconds=$(curl -sf -o /dev/null -w '%{time_total}' -H "Authorization: Bearer $token" \
                    "$api/v1/statistics/adoption?indicator=$indicator&by=$by&period=month&from=$first&to=$last")
                best=$(python3 -c "print(min(float('$seconds'), float('${best:-1e9}')))")
            done
            echo "$backend households=$households months=$months $indicator by $by, every month: ${best} s"
        done
        kill -TERM "$SERVER_PID"
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=

        # The registry import alone, into an empty database: the residents file as staff send it.
        if [[ $backend == sqlite ]]; then
            python3 - "$data/truth.json" "$data/residents.csv" <<'PY'
import json, sys
truth = json.load(open(sys.argv[1]))
hamlet = {h["code"]: h for h in truth["households"]}
with open(sys.argv[2], "w", encoding="utf-8-sig") as out:
    out.write("Mã xóm,Tên xóm,Mã hộ,Mã nhân khẩu,Họ và tên,Năm sinh,Giới tính\r\n")
    for r in truth["residents"]:
        h = r["household"]
        out.write(f'{hamlet[h]["hamlet"]},Xóm {hamlet[h]["hamlet"]},{h},{r["code"]},Người {r["code"]},{r["birth_year"]},{"Nữ" if r["gender"] == "female" else "Nam"}\r\n')
PY
            import_dir="$WORK/import-$households"
            mkdir -p "$import_dir"
            export DATABASE_URL="sqlite://$import_dir/ledger.db" MARKET_LEDGER_DATA_DIR=$import_dir
            printf '%s\n' "$PASSWORD" | "$BIN" users create --username bench --role admin \
                --password-stdin >/dev/null
            MARKET_LEDGER_LISTEN=127.0.0.1:$port "$BIN" >"$import_dir/server.log" 2>&1 &
            SERVER_PID=$!
            for _ in $(seq 100); do curl -sf "$api/readyz" >/dev/null && break; sleep 0.1; done
            token=$(curl -sf "$api/v1/auth/token" -H 'Content-Type: application/json' \
                -d "{\"username\":\"bench\",\"password\":\"$PASSWORD\"}" |
                python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
            rows=$(($(wc -l <"$data/residents.csv") - 1))
            seconds=$(curl -sf -o "$import_dir/answer.json" -w '%{time_total}' -X POST \
                -H "Authorization: Bearer $token" -H 'Content-Type: text/csv' \
                --data-binary @"$data/residents.csv" "$api/v1/registry/import?dry_run=false")
            echo "sqlite registry import of $rows residents (apply): $seconds s"
            kill -TERM "$SERVER_PID"
            wait "$SERVER_PID" 2>/dev/null || true
            SERVER_PID=
        fi
    done
done
