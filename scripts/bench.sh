#!/usr/bin/env bash
# `make bench`: benchmarks against DynamoDB Local; results in bench/results/.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
scripts/setup.sh

step "browser module: size (raw, gzip -9) and validation against Ajv 8 in Node (ratios, one-shot)"
scripts/build-wasm.sh
node bench/browser/validator.mjs bench/results

DDB_PORT=$(free_port)
trap 'scripts/dynamodb-local.sh stop "$DDB_PORT"' EXIT
scripts/dynamodb-local.sh start "$DDB_PORT"
step "lifecycle capacity benchmark"
DYNAMODB_ENDPOINT="http://127.0.0.1:$DDB_PORT" cargo run --locked --profile bench -p courier-local --bin bench -- bench/results

step "jobs benchmark: fan-out of 10,000 targets, BatchWriteItem calls, write units, statistics"
DYNAMODB_ENDPOINT="http://127.0.0.1:$DDB_PORT" cargo run --locked --profile bench -p courier-local --bin bench-jobs -- bench/results

step "pipelines benchmark: a 1,000-device, 3-operation run through the stream; write units per target-operation against one execution's whole life"
DYNAMODB_ENDPOINT="http://127.0.0.1:$DDB_PORT" cargo run --locked --profile bench -p courier-local --bin bench-pipelines -- bench/results

step "dedupe benchmark: capacity units of plain, keyed, repeated and superseding start requests"
DYNAMODB_ENDPOINT="http://127.0.0.1:$DDB_PORT" cargo run --locked --profile bench -p courier-local --bin bench-dedupe -- bench/results

step "cold starts and package sizes: arm64 zips (make package), then x86_64 release builds timed against a runtime-API stand-in"
scripts/package.sh
cargo build --locked --release -p courier-functions -p courier-bench-hello
cargo run --locked --profile bench -p courier-local --bin bench-coldstart -- bench/results target/release

step "latency (per hop, end to end) and cost per million executions: the local stack on release builds, MQTT devices"
trap 'stop_local_stack; scripts/dynamodb-local.sh stop "$DDB_PORT"' EXIT
# Release builds (the functions as deployed), warnings-only logs, a sweeper
# that stays out of the measurement, usage lines (USAGE_REPORT, on in every
# local stack) and the broker's PUBLISH log for the cost count.
export WATCH_RELEASE=on MOSQUITTO_DEBUG=on
FUNCTION_LOG=warn SWEEP_EVERY_MS=60000 start_local_stack "$DDB_PORT" courier-bench bench
export MQTT_BROKER="127.0.0.1:$MQTT_PORT" API_URL="http://127.0.0.1:$WATCH_PORT/lambda-url/api" \
  WATCH_LOG="$ROOT/.local/bench-watch.log" MOSQUITTO_LOG="$ROOT/.local/bench-mosquitto.log"
# One device working one execution at a time: the goal figures.
BENCH_DEVICES=1 target/debug/bench-latency bench/results
# 20 at once: cargo lambda watch serves one invocation per function at a
# time, so this one measures queueing too.
BENCH_DEVICES=20 BENCH_SUFFIX=-20-devices target/debug/bench-latency bench/results
target/debug/bench-cost bench/results

step "load: API clients and MQTT devices for ${LOAD_SECONDS:-60} s on loopback (p50/p99, errors), ${LOAD_RUNS:-1} run(s)"
for run in $(seq 1 "${LOAD_RUNS:-1}"); do
  target/debug/bench-load bench/results
done

step "cost per million executions again, on a stack without the optional messages (LIST_NOTIFICATIONS=off, COMMAND_STATUS_EVENTS=off)"
stop_local_stack
unset MQTT_PORT WATCH_PORT PUBLISH_PORT
export LIST_NOTIFICATIONS=off COMMAND_STATUS_EVENTS=off
FUNCTION_LOG=warn SWEEP_EVERY_MS=60000 start_local_stack "$DDB_PORT" courier-bench-lean bench-lean
MQTT_BROKER="127.0.0.1:$MQTT_PORT" API_URL="http://127.0.0.1:$WATCH_PORT/lambda-url/api" \
  WATCH_LOG="$ROOT/.local/bench-lean-watch.log" MOSQUITTO_LOG="$ROOT/.local/bench-lean-mosquitto.log" \
  BENCH_SUFFIX=-lean target/debug/bench-cost bench/results
