#!/usr/bin/env bash
# `make run`: the whole local stack. DynamoDB Local (in memory) with Courier's
# table, the functions under `cargo lambda watch` (rebuilt on change), and the
# reference dashboard (static, with the WASM build of core).
# Ctrl-C stops everything it started.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
DDB_PORT=${DDB_PORT:-8000}
API_PORT=${API_PORT:-9000}
DASH_PORT=${DASH_PORT:-8080}
TABLE=${TABLE_NAME:-courier}

scripts/setup.sh
trap 'echo; echo "stopping"; stop_static; stop_watch; scripts/dynamodb-local.sh stop "$DDB_PORT"' EXIT
trap 'exit 0' INT TERM
step "DynamoDB Local on :$DDB_PORT (in memory)"
scripts/dynamodb-local.sh start "$DDB_PORT"
DYNAMODB_ENDPOINT="http://127.0.0.1:$DDB_PORT" cargo run -q -p courier-tests --bin courier-local -- create-table "$TABLE"
mkdir -p .local
function_env "$DDB_PORT" "$TABLE" > .local/run.env
step "functions under cargo lambda watch on :$API_PORT (first request builds them)"
start_watch "$API_PORT" .local/run.env .local/watch.log
API="http://127.0.0.1:$API_PORT/lambda-url/api"
step "dashboard on :$DASH_PORT (building the WASM module)"
scripts/build-wasm.sh
start_static "$DASH_PORT" .local/dashboard.log
DASHBOARD="http://127.0.0.1:$DASH_PORT/dashboard/?api=$API"
cat <<TXT

Courier is running.
  dashboard       $DASHBOARD
  HTTP API        $API        (e.g. curl $API/health)
  device events   cargo lambda invoke device-events --invoke-port $API_PORT --data-file EVENT.json
  DynamoDB Local  http://127.0.0.1:$DDB_PORT   table "$TABLE"
  function logs   .local/watch.log (JSON)

Walk-through (also in README.md):
  curl -s -XPOST $API/commands -d '{"commandId":"set-config","parameters":[{"name":"rate","type":"I","required":true,"min":1,"max":3600}]}'
  curl -s -XPOST $API/commands/set-config/executions -d '{"target":"dev-1","parameters":{"rate":{"I":30}}}'
  ID=<executionId from the answer>
  sed "s/EXECUTION_ID/\$ID/" tests/events/device-in-progress.json > /tmp/ev.json && cargo lambda invoke device-events --invoke-port $API_PORT --data-file /tmp/ev.json
  sed "s/EXECUTION_ID/\$ID/" tests/events/device-succeeded.json  > /tmp/ev.json && cargo lambda invoke device-events --invoke-port $API_PORT --data-file /tmp/ev.json
  curl -s $API/executions/\$ID

Ctrl-C stops everything.
TXT
tail -f .local/watch.log &
wait "$WATCH_PGID"
