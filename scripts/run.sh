#!/usr/bin/env bash
# `make run`: the whole local stack. DynamoDB Local (in memory) with Courier's
# table, a mosquitto broker, the functions under `cargo lambda watch` (rebuilt
# on change), the local stand-ins for IoT rules / data plane / table stream /
# scheduler (courier-local bridge), a simulated fleet of devices, and the
# reference dashboard (static, with the WASM build of core).
# Ctrl-C stops everything it started.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
DDB_PORT=${DDB_PORT:-8000}
API_PORT=${API_PORT:-9000}
DASH_PORT=${DASH_PORT:-8080}
MQTT_PORT=${MQTT_PORT:-1884}
PUBLISH_PORT=${PUBLISH_PORT:-9001}
MOTO_PORT=${MOTO_PORT:-5000}
FLEET=${FLEET:-5}
TABLE=${TABLE_NAME:-courier}

scripts/setup.sh
trap 'echo; echo "stopping"; stop_process "${FLEET_PID:-}"; stop_process "${CARS_PID:-}"; stop_local_stack; stop_static; stop_moto; scripts/dynamodb-local.sh stop "$DDB_PORT"' EXIT
trap 'exit 0' INT TERM
step "DynamoDB Local on :$DDB_PORT (in memory)"
scripts/dynamodb-local.sh start "$DDB_PORT"
step "moto on :$MOTO_PORT (the AWS IoT control plane: thing groups)"
start_moto "$MOTO_PORT" .local/moto.log
export MOTO_PORT
step "Courier's table, mosquitto on :$MQTT_PORT, the functions under cargo lambda watch on :$API_PORT (building them), the local AWS stand-ins (data plane on :$PUBLISH_PORT)"
WATCH_RELOAD=on WATCH_PORT=$API_PORT SWEEP_EVERY_MS=5000 start_local_stack "$DDB_PORT" "$TABLE" run
step "a simulated fleet: $FLEET devices (dev-1..dev-$FLEET), mixed behaviour"
target/debug/courier-device --broker "127.0.0.1:$MQTT_PORT" --things "$FLEET" --mode mixed > .local/fleet.log 2>&1 &
FLEET_PID=$!
step "and 2 cars (car-1, car-2) speaking the AWS IoT commands protocol"
target/debug/courier-device --broker "127.0.0.1:$MQTT_PORT" --things 2 --prefix car- --protocol commands --mode mixed > .local/cars.log 2>&1 &
CARS_PID=$!
MOTO_ENDPOINT="http://127.0.0.1:$MOTO_PORT" target/debug/courier-local create-group fleet $(seq -f 'dev-%g' 1 "$FLEET")
# The artifact bucket (S3 in moto) that placeholders may name locally,
# with one object; written with signed requests (boto3, from moto's venv).
.tools/venv/bin/python - "http://127.0.0.1:$MOTO_PORT" <<'PY'
import sys, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1",
                  aws_access_key_id="local", aws_secret_access_key="local")
s3.create_bucket(Bucket="courier-artifacts")
s3.put_object(Bucket="courier-artifacts", Key="fw/2.0.bin", Body=b"firmware 2.0")
PY
API="http://127.0.0.1:$API_PORT/lambda-url/api"
step "dashboard on :$DASH_PORT (building the WASM module)"
scripts/build-wasm.sh
start_static "$DASH_PORT" .local/dashboard.log
DASHBOARD="http://127.0.0.1:$DASH_PORT/dashboard/?api=$API"
# The functions answered their warm-ups and the API its /health
# (start_local_stack), so the fleet's first requests get replies.
cat <<TXT

Courier is running (every function answered; the API's /health is 200).
  dashboard       $DASHBOARD
  HTTP API        $API        (e.g. curl $API/health)
  MQTT broker     127.0.0.1:$MQTT_PORT  (mosquitto_sub -p $MQTT_PORT -t 'courier/things/#' -v)
  devices         dev-1 .. dev-$FLEET (courier-device --mode mixed), log in .local/fleet.log
                  car-1, car-2 (AWS IoT commands protocol), log in .local/cars.log
  DynamoDB Local  http://127.0.0.1:$DDB_PORT   table "$TABLE"
  IoT (moto)      http://127.0.0.1:$MOTO_PORT  thing group "fleet" = dev-1 .. dev-$FLEET
  logs            .local/run-watch.log (functions, JSON), .local/run-bridge.log

Walk-through (also in README.md):
  curl -s -XPOST $API/commands -d '{"commandId":"set-config","parameters":[{"name":"rate","type":"I","required":true,"min":1,"max":3600}]}'
  curl -s -XPOST $API/commands/set-config/executions -d '{"target":"dev-1","parameters":{"rate":{"I":30}}}'
  curl -s "$API/executions?target=dev-1"      # SENT, IN_PROGRESS, then SUCCEEDED/FAILED/REJECTED as the device answers
  curl -s -XPOST $API/jobs -d '{"commandId":"set-config","targets":{"thingGroup":"fleet"},"parameters":{"rate":{"I":60}}}'
  curl -s $API/jobs                           # the job with its statistics (GET /jobs/{jobId})
  curl -s -XPOST $API/pipelines -d '{"pipelineId":"fw","stages":[{"name":"install","operations":[{"commandId":"set-config","parameters":{"rate":{"I":10}}}]},{"name":"verify","operations":[{"commandId":"set-config","parameters":{"rate":{"I":60}}}]}]}'
  curl -s -XPOST $API/pipelines/fw/runs -d '{"runId":"fw-1","targets":{"thingGroup":"fleet"},"waves":[1],"gates":{"verify":{"manualApproval":true}}}'
  curl -s $API/pipelines/fw/runs/fw-1         # HELD once the canary is through; then POST .../fw-1/resume
  curl -s -XPOST $API/commands -d '{"commandId":"unlock","protocol":"commands"}'
  curl -s -XPOST $API/commands/unlock/executions -d '{"target":"car-1"}'   # published to car-1's request topic

Ctrl-C stops everything.
TXT
tail -f .local/fleet.log &
wait "$WATCH_PGID"
