#!/usr/bin/env bash
# `make test`: installs what is missing, then runs every check from fast to
# slow. Starts and stops DynamoDB Local and cargo lambda watch itself.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

step "setup (idempotent)"
scripts/setup.sh

step "format"
cargo fmt --all -- --check

step "clippy, warnings denied"
cargo clippy --locked --workspace --all-targets -- -D warnings

step "unit tests: core (status table, validation, parity vectors) and functions (pure parts)"
cargo test --locked -p courier-core -p courier-functions

step "infra: cfn-lint infra/template.yaml (offline)"
cfn-lint infra/template.yaml

step "WASM: core and courier-wasm for wasm32-unknown-unknown, JS bindings"
scripts/build-wasm.sh

step "parity: the shared vectors through the WASM module (node --test)"
node --test wasm/tests/

DDB_PORT=$(free_port)
trap 'stop_static; stop_watch; scripts/dynamodb-local.sh stop "$DDB_PORT"' EXIT
step "DynamoDB Local on :$DDB_PORT"
scripts/dynamodb-local.sh start "$DDB_PORT"

step "integration tests: store and handlers against DynamoDB Local"
DYNAMODB_ENDPOINT="http://127.0.0.1:$DDB_PORT" cargo test --locked -p courier-tests

step "smoke test through cargo lambda (watch + invoke)"
TABLE=courier-smoke
DYNAMODB_ENDPOINT="http://127.0.0.1:$DDB_PORT" cargo run --locked -q -p courier-tests --bin courier-local -- create-table "$TABLE"
mkdir -p .local
function_env "$DDB_PORT" "$TABLE" > .local/smoke.env
WATCH_PORT=$(free_port)
start_watch "$WATCH_PORT" .local/smoke.env .local/smoke-watch.log
WATCH_PORT=$WATCH_PORT python3 tests/smoke/smoke.py || { echo "--- cargo lambda watch log:"; tail -50 .local/smoke-watch.log; exit 1; }

step "browser: the dashboard in headless Chromium against the local stack (screenshots in build/screenshots/)"
DASH_PORT=$(free_port)
start_static "$DASH_PORT" .local/dashboard.log
API_URL="http://127.0.0.1:$WATCH_PORT/lambda-url/api" DASHBOARD_URL="http://127.0.0.1:$DASH_PORT/dashboard/" \
  node --test tests/browser/
