#!/usr/bin/env bash
# `make test`: installs what is missing, then runs every check from fast to
# slow. Starts and stops DynamoDB Local, mosquitto, cargo lambda watch and the
# local AWS stand-ins itself.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

step "setup (idempotent)"
scripts/setup.sh

step "format"
cargo fmt --all -- --check

step "clippy, warnings denied"
cargo clippy --locked --workspace --all-targets -- -D warnings

step "unit tests: core (status table, deadlines, validation, parity vectors) and functions (pure parts)"
cargo test --locked -p courier-core -p courier-functions

step "infra: cfn-lint infra/template.yaml (offline)"
cfn-lint infra/template.yaml

step "WASM: core and courier-wasm for wasm32-unknown-unknown, JS bindings"
scripts/build-wasm.sh

step "parity: the shared vectors through the WASM module (node --test)"
node --test wasm/tests/

DDB_PORT=$(free_port)
trap 'stop_bridge; stop_mosquitto; stop_static; stop_watch; scripts/dynamodb-local.sh stop "$DDB_PORT"' EXIT
step "DynamoDB Local on :$DDB_PORT"
scripts/dynamodb-local.sh start "$DDB_PORT"
export DYNAMODB_ENDPOINT="http://127.0.0.1:$DDB_PORT"

step "integration tests: store, handlers and delivery against DynamoDB Local"
cargo test --locked -p courier-tests --test store --test handlers --test device_protocol --test delivery

step "local stack: mosquitto, the functions under cargo lambda watch, courier-local bridge"
TABLE=courier-local
cargo build --locked -q -p courier-tests --bins
target/debug/courier-local create-table "$TABLE"
MQTT_PORT=$(free_port); WATCH_PORT=$(free_port); PUBLISH_PORT=$(free_port)
mkdir -p .local
function_env "$DDB_PORT" "$TABLE" "$PUBLISH_PORT" > .local/test.env
start_mosquitto "$MQTT_PORT" .local/test-mosquitto.log
start_watch "$WATCH_PORT" .local/test.env .local/test-watch.log
# Build each function once before anything times a request.
for fn in api device-events dispatcher sweeper; do
  python3 -c 'import sys,urllib.request; urllib.request.urlopen(urllib.request.Request(sys.argv[1], data=b"{}"), timeout=900).read()' \
    "http://127.0.0.1:$WATCH_PORT/2015-03-31/functions/$fn/invocations" >/dev/null 2>&1 || true
done
start_bridge "$DDB_PORT" "$TABLE" "$MQTT_PORT" "$WATCH_PORT" "$PUBLISH_PORT" .local/test-bridge.log
on_failure() { echo "--- cargo lambda watch log:"; tail -40 .local/test-watch.log; echo "--- bridge log:"; tail -20 .local/test-bridge.log; }

step "end to end: devices over MQTT (rumqttc) against the local stack"
MQTT_BROKER="127.0.0.1:$MQTT_PORT" API_URL="http://127.0.0.1:$WATCH_PORT/lambda-url/api" \
  INVOKE_URL="http://127.0.0.1:$WATCH_PORT" TABLE_NAME="$TABLE" \
  cargo test --locked -p courier-tests --test e2e_mqtt || { on_failure; exit 1; }

step "smoke test through cargo lambda (watch + invoke)"
WATCH_PORT=$WATCH_PORT python3 tests/smoke/smoke.py || { on_failure; exit 1; }

step "browser: the dashboard in headless Chromium against the local stack (screenshots in build/screenshots/)"
DASH_PORT=$(free_port)
start_static "$DASH_PORT" .local/dashboard.log
API_URL="http://127.0.0.1:$WATCH_PORT/lambda-url/api" DASHBOARD_URL="http://127.0.0.1:$DASH_PORT/dashboard/" \
  node --test tests/browser/
