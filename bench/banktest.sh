#!/usr/bin/env bash
# Bank test under crashes on both backends: the real binary, 16 clients moving money with
# Idempotency-Keys (then 16 clients delivering signed bank-feed webhooks and retrying them), a
# kill -9 of the server every 10-20 s, and a checker over the history (see
# examples/banktest.rs for what it checks). Exits 1 on any violation.
#
# Knobs (environment): SECONDS_PER_RUN (120), CLIENTS (16), ACCOUNTS (10), KILL_EVERY (10-20),
# PROFILE (release, or debug for a quicker build), BACKENDS ("sqlite postgres"),
# WORKLOADS ("transfers webhooks"), BANKTEST_DATABASE (banktest: the PostgreSQL database it
# drops and recreates; another name lets two runs share one server).
# PostgreSQL at 127.0.0.1:5432 (user postgres, trust auth).
set -euo pipefail

SECONDS_PER_RUN=${SECONDS_PER_RUN:-120}
CLIENTS=${CLIENTS:-16}
ACCOUNTS=${ACCOUNTS:-10}
KILL_EVERY=${KILL_EVERY:-10-20}
PROFILE=${PROFILE:-release}
BACKENDS=${BACKENDS:-sqlite postgres}
WORKLOADS=${WORKLOADS:-transfers webhooks}
BANKTEST_DATABASE=${BANKTEST_DATABASE:-banktest}
[[ $BANKTEST_DATABASE =~ ^[a-z_][a-z0-9_]*$ ]] || { echo "banktest: BANKTEST_DATABASE must be a plain lower-case name" >&2; exit 2; }

cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/market-ledger-target}
profile_flag=()
[[ $PROFILE == release ]] && profile_flag=(--release)
cargo build --quiet "${profile_flag[@]}" --bin market-ledger --example banktest
binary=$CARGO_TARGET_DIR/$PROFILE/market-ledger
banktest=$CARGO_TARGET_DIR/$PROFILE/examples/banktest

work=$(mktemp -d -t banktest.XXXXXX)
trap 'rm -rf "$work"' EXIT

for workload in $WORKLOADS; do
for backend in $BACKENDS; do
    data_dir=$work/$workload-$backend
    mkdir -p "$data_dir"
    case $backend in
        sqlite) database_url="sqlite://$data_dir/ledger.db" ;;
        postgres)
            psql -h 127.0.0.1 -U postgres -d postgres -qAt -c "SET client_min_messages = warning" \
                -c "DROP DATABASE IF EXISTS $BANKTEST_DATABASE WITH (FORCE)" -c "CREATE DATABASE $BANKTEST_DATABASE"
            database_url="postgres://postgres@127.0.0.1:5432/$BANKTEST_DATABASE" ;;
        *) echo "unknown backend $backend" >&2; exit 2 ;;
    esac
    echo "banktest: $workload on $backend for ${SECONDS_PER_RUN}s, $CLIENTS clients, kill -9 every $KILL_EVERY s" >&2
    printf 'backend=%s ' "$backend"
    "$banktest" --binary "$binary" --database-url "$database_url" --data-dir "$data_dir" \
        --seconds "$SECONDS_PER_RUN" --clients "$CLIENTS" --accounts "$ACCOUNTS" \
        --kill-every "$KILL_EVERY" --workload "$workload"
done
done
