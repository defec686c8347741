#!/usr/bin/env bash
# Contract fuzzing: schemathesis generates requests from the committed api-spec/openapi.yaml
# and sends them to the real service (debug build, a scratch SQLite database), signed in as an
# admin and then as a vendor. Checked: no 5xx, every status and content type is the one the
# spec documents for that route, and every response body matches the spec's schema. And that
# the fuzzing really ran as that role (bench/contract-fuzz-auth.py): every request with the
# role's token to a route its `x-roles` names got past authentication, every one to any other
# route was refused 403.
#
# A vendor may call few routes: its fuzzing time goes to those, and a short pass (two valid
# requests each, so every one carries the token) sends the vendor's token to every other
# route, where it must be refused.
#
# Knobs (environment): FUZZ_SECONDS (60 per role; keep it under the tokens' 15 minutes, or
# the check sees them expire), PROFILE (debug).
# Needs python3 with venv; installs schemathesis into /var/tmp/market-ledger-schemathesis.
set -euo pipefail

FUZZ_SECONDS=${FUZZ_SECONDS:-60}
PROFILE=${PROFILE:-debug}
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/market-ledger-target}
venv=/var/tmp/market-ledger-schemathesis
if [[ ! -x $venv/bin/schemathesis ]]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet 'schemathesis==4.32.5' 'hypothesis==6.170.17'
fi
profile_flag=()
[[ $PROFILE == release ]] && profile_flag=(--release)
cargo build --quiet "${profile_flag[@]}" --bin market-ledger
bin=$CARGO_TARGET_DIR/$PROFILE/market-ledger

dir=$(mktemp -d -t contract-fuzz.XXXXXX)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export DATABASE_URL="sqlite://$dir/ledger.db" MARKET_LEDGER_DATA_DIR="$dir" \
    MARKET_LEDGER_LISTEN="127.0.0.1:$port" MARKET_LEDGER_LOG=error
api="http://127.0.0.1:$port"
password="contract fuzz password"
printf '%s' "$password" | "$bin" users create --username fuzz.admin --role admin --password-stdin >/dev/null
"$bin" serve &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 1 100); do curl -sf "$api/readyz" >/dev/null && break; sleep 0.1; done

field() { python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
token() {
    curl -sf "$api/v1/auth/token" -H 'Content-Type: application/json' \
        -d "{\"username\":\"$1\",\"password\":\"$password\"}" | field access_token
}
admin=$(token fuzz.admin)
# Data for the generated requests to find: the example payee of the spec, and its vendor.
payee=$(curl -sf "$api/v1/payees" -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' \
    -d '{"kind":"vendor","code":"V042","name":"Bà Hoa","collection_account":{"bank_bin":"970436","account_number":"0123456789","holder_name":"Nguyễn Thị Hoa"}}' | field id)
printf '%s' "$password" | "$bin" users create --username fuzz.vendor --role vendor --payee "$payee" \
    --password-stdin >/dev/null
# The user whose password the admin's fuzzing resets and whom it disables (bench/schemathesis.toml).
printf '%s' "$password" | "$bin" users create --username fuzz.spare --role staff --password-stdin >/dev/null

spec=$PWD/api-spec/openapi.yaml
config=$PWD/bench/schemathesis.toml
check_auth=$PWD/bench/contract-fuzz-auth.py
# The events stream never ends by design: it is covered by the API tests instead.
events='/v1/payees/{id}/events'
export CONTRACT_FUZZ_SPARE_USER=fuzz.spare CONTRACT_FUZZ_PASSWORD=$password
# schemathesis keeps its caches in the working directory: the scratch one, not the clone.
cd "$dir"

# One schemathesis run as the current role; the rest of the arguments select operations and
# phases. Every request it sends is recorded in $dir/<name>.har for the authentication check.
fuzz() {
    local name=$1
    shift
    # One worker: CPython 3.11's ast module is not thread-safe (cpython#106905), and two
    # workers made hypothesis fail with "AST constructor recursion depth mismatch".
    # Unsanitized: the check compares each request's token with the role's.
    "$venv/bin/schemathesis" --config-file "$config" run "$spec" --url "$api" --checks all \
        --exclude-path "$events" --generation-allow-x00 false --workers 1 --no-color \
        --report har --report-har-path "$dir/$name.har" --output-sanitize false "$@"
}

failed=()
for role in admin vendor; do
    echo "contract-fuzz: $FUZZ_SECONDS s as $role" >&2
    # A fresh token: nothing the admin's run did can have ended it.
    CONTRACT_FUZZ_USERNAME=fuzz.$role
    CONTRACT_FUZZ_TOKEN=$(token "$CONTRACT_FUZZ_USERNAME")
    export CONTRACT_FUZZ_USERNAME CONTRACT_FUZZ_TOKEN
    mapfile -t refused < <("$venv/bin/python" "$check_auth" refused "$spec" "$role")
    skip=()
    for operation in "${refused[@]}"; do skip+=(--exclude-name "$operation"); done
    hars=("$dir/$role.har")
    fuzz "$role" "${skip[@]}" --phases examples,coverage,fuzzing --max-time "$FUZZ_SECONDS" ||
        failed+=("$role")
    if (( ${#refused[@]} )); then
        only=()
        for operation in "${refused[@]}"; do only+=(--include-name "$operation"); done
        echo "contract-fuzz: the ${#refused[@]} routes a $role may not call" >&2
        fuzz "$role-refused" "${only[@]}" --phases fuzzing --mode positive --max-examples 2 \
            --warnings off || failed+=("$role")
        hars+=("$dir/$role-refused.har")
    fi
    "$venv/bin/python" "$check_auth" check "$spec" "$role" "$CONTRACT_FUZZ_TOKEN" "${hars[@]}" \
        --exclude-path "$events" || failed+=("$role (authentication)")
done
if (( ${#failed[@]} )); then
    echo "contract-fuzz: failures as ${failed[*]}" >&2
    exit 1
fi
