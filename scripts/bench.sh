#!/usr/bin/env bash
# `make bench`: benchmarks against DynamoDB Local; results in bench/results/.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
scripts/setup.sh
DDB_PORT=$(free_port)
trap 'scripts/dynamodb-local.sh stop "$DDB_PORT"' EXIT
scripts/dynamodb-local.sh start "$DDB_PORT"
step "lifecycle capacity benchmark"
DYNAMODB_ENDPOINT="http://127.0.0.1:$DDB_PORT" cargo run --locked --profile bench -p courier-tests --bin bench -- bench/results

step "latency benchmark: the local stack with MQTT devices"
TABLE=courier-bench
cargo build --locked -q -p courier-tests --bins
DYNAMODB_ENDPOINT="http://127.0.0.1:$DDB_PORT" target/debug/courier-local create-table "$TABLE"
MQTT_PORT=$(free_port); WATCH_PORT=$(free_port); PUBLISH_PORT=$(free_port)
mkdir -p .local
function_env "$DDB_PORT" "$TABLE" "$PUBLISH_PORT" | sed 's/^RUST_LOG=.*/RUST_LOG=warn/' > .local/bench.env
trap 'stop_bridge; stop_mosquitto; stop_watch; scripts/dynamodb-local.sh stop "$DDB_PORT"' EXIT
start_mosquitto "$MQTT_PORT" .local/bench-mosquitto.log
start_watch "$WATCH_PORT" .local/bench.env .local/bench-watch.log
for fn in api device-events dispatcher sweeper; do
  python3 -c 'import sys,urllib.request; urllib.request.urlopen(urllib.request.Request(sys.argv[1], data=b"{}"), timeout=900).read()' \
    "http://127.0.0.1:$WATCH_PORT/2015-03-31/functions/$fn/invocations" >/dev/null 2>&1 || true
done
DYNAMODB_ENDPOINT="http://127.0.0.1:$DDB_PORT" SWEEP_EVERY_MS=60000 \
  start_bridge "$DDB_PORT" "$TABLE" "$MQTT_PORT" "$WATCH_PORT" "$PUBLISH_PORT" .local/bench-bridge.log
MQTT_BROKER="127.0.0.1:$MQTT_PORT" API_URL="http://127.0.0.1:$WATCH_PORT/lambda-url/api" \
  target/debug/bench-latency bench/results
