# Shared by the scripts: PATH for the project's tools, free ports, and
# stopping everything a script started when it exits.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# rustup's cargo before Debian's (/usr/bin/cargo is only for the wasm build).
export PATH="$ROOT/.tools/venv/bin:$HOME/.cargo/bin:$PATH"
step() { printf '\n\033[1;34m==> %s\033[0m\n' "$*" >&2; }
# Warns (does not fail) when the disk holding $1 has less than $2 GB free:
# "No space left on device" halfway through a link is a worse message.
disk_check() {
  local free_gb
  free_gb=$(df -Pk "$1" | awk 'NR==2 {print int($4/1048576)}')
  if (( free_gb < $2 )); then
    echo "warning: $free_gb GB free under $1; a cold 'make test' needs about $2 GB for target/ ('cargo clean' frees it)" >&2
  fi
}
# Stops a process ($1 = pid) or a process group ($1 = -pgid) if it still
# runs. Never fails: under `set -e` a failed kill (Ctrl-C has often stopped
# the process already) would end a teardown halfway and leave the rest, such
# as cargo lambda watch in its own session, holding their ports.
stop_process() { if [ -n "${1:-}" ]; then kill -- "$1" 2>/dev/null || true; fi; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# Environment the functions read; AWS_ENDPOINT_URL_DYNAMODB is the SDK's own
# variable, so no code differs between local and AWS.
function_env() { # $1 = DynamoDB Local port, $2 = table, $3 = data-plane stand-in port
  cat <<ENV
TABLE_NAME=$2
PAGE_TOKEN_SECRET=local-dev-secret-not-for-production
AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:$1
AWS_ENDPOINT_URL_IOT_DATA_PLANE=http://127.0.0.1:$3
AWS_ENDPOINT_URL_IOT=http://127.0.0.1:${MOTO_PORT:-5000}
AWS_REGION=us-east-1
AWS_ACCESS_KEY_ID=local
AWS_SECRET_ACCESS_KEY=local
AWS_LAMBDA_LOG_FORMAT=JSON
RUST_LOG=${FUNCTION_LOG:-info}
LOCAL_DEV_IDENTITY=on
TOPIC_ROOT='${TOPIC_ROOT:-courier/things/{thingName\}/jobs}'
COMMANDS_ROOT='${COMMANDS_ROOT:-courier/commands/things/{thingName\}}'
COMMAND_EVENTS_ROOT='${COMMAND_EVENTS_ROOT:-courier/events/commandExecution}'
DIRECT_DELIVERY=${DIRECT_DELIVERY:-on}
LIST_NOTIFICATIONS=${LIST_NOTIFICATIONS:-on}
COMMAND_STATUS_EVENTS=${COMMAND_STATUS_EVENTS:-on}
USAGE_REPORT=${USAGE_REPORT:-on}
ARTIFACT_BUCKETS=courier-artifacts
ARTIFACT_ENDPOINT=http://127.0.0.1:${MOTO_PORT:-5000}
ENV
}
# Starts `cargo lambda watch` in its own process group; sets WATCH_PGID.
# It reloads the functions on a file change only with WATCH_RELOAD=on (make
# run's edit loop): a reload kills the running instances, and with them any
# invocation in flight, so a test or benchmark that writes a tracked file
# (bench/results/) would lose requests. That was the load benchmark's
# unanswered requests: each run after the first lost the invocations caught
# by the reload its predecessor's results file triggered.
start_watch() { # $1 = invoke port, $2 = env file, $3 = log file
  local reload=(--ignore-changes) release=()
  [ "${WATCH_RELOAD:-off}" = on ] && reload=()
  # WATCH_RELEASE=on: the functions as release builds (the latency benchmark).
  [ "${WATCH_RELEASE:-off}" = on ] && release=(--release)
  setsid cargo lambda watch "${reload[@]}" "${release[@]}" --disable-cors --invoke-address 127.0.0.1 --invoke-port "$1" --env-file "$2" >"$3" 2>&1 &
  WATCH_PGID=$!
  for _ in $(seq 1 240); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    kill -0 "$WATCH_PGID" 2>/dev/null || { cat "$3" >&2; return 1; }
    sleep 0.5
  done
  echo "cargo lambda watch did not listen on $1" >&2; return 1
}
stop_watch() { stop_process "${WATCH_PGID:+-$WATCH_PGID}"; WATCH_PGID=; }
# Serves wasm/ (the dashboard and wasm/pkg) on 127.0.0.1; sets STATIC_PID.
start_static() { # $1 = port, $2 = log file
  python3 -m http.server "$1" --bind 127.0.0.1 --directory "$ROOT/wasm" >"$2" 2>&1 &
  STATIC_PID=$!
  for _ in $(seq 1 40); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.25; done
  echo "static server did not start on $1" >&2; return 1
}
# A mosquitto broker of our own on 127.0.0.1 (anonymous, loopback only);
# sets MOSQUITTO_PID.
start_mosquitto() { # $1 = port, $2 = log file
  mkdir -p "$ROOT/.local"
  # set_tcp_nodelay: without it a reply published right after the broker's
  # PUBACK to the same device waits for that device's delayed ACK (40 ms).
  printf 'listener %s 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\n' "$1" > "$ROOT/.local/mosquitto-$1.conf"
  # MOSQUITTO_DEBUG=on: every PUBLISH received and sent, with its client
  # and size, in the log file (the cost benchmark counts messages there).
  # stderr, which this shell opened: the broker drops root for its own user.
  if [ "${MOSQUITTO_DEBUG:-off}" = on ]; then
    printf 'log_dest stderr\nlog_type debug\nlog_type error\nlog_type warning\n' >> "$ROOT/.local/mosquitto-$1.conf"
  fi
  /usr/sbin/mosquitto -c "$ROOT/.local/mosquitto-$1.conf" >"$2" 2>&1 &
  MOSQUITTO_PID=$!
  for _ in $(seq 1 40); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.25; done
  cat "$2" >&2; echo "mosquitto did not start on $1" >&2; return 1
}
# moto's server: the AWS IoT control plane (thing groups for jobs), in
# memory, on 127.0.0.1; sets MOTO_PID.
start_moto() { # $1 = port, $2 = log file
  moto_server -H 127.0.0.1 -p "$1" >"$2" 2>&1 &
  MOTO_PID=$!
  for _ in $(seq 1 80); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.25; done
  cat "$2" >&2; echo "moto_server did not start on $1" >&2; return 1
}
stop_moto() { stop_process "${MOTO_PID:-}"; MOTO_PID=; }
stop_mosquitto() { stop_process "${MOSQUITTO_PID:-}"; MOSQUITTO_PID=; }
# The local stand-ins for IoT rules, the IoT data plane, the stream event
# source mapping and the scheduler (courier-local bridge); sets BRIDGE_PID.
start_bridge() { # $1 = DDB port, $2 = table, $3 = broker port, $4 = invoke port, $5 = data-plane port, $6 = log
  DYNAMODB_ENDPOINT="http://127.0.0.1:$1" TABLE_NAME="$2" MQTT_BROKER="127.0.0.1:$3" \
    INVOKE_URL="http://127.0.0.1:$4" PUBLISH_PORT="$5" SWEEP_EVERY_MS="${SWEEP_EVERY_MS:-1000}" \
    COMMAND_STATUS_EVENTS="${COMMAND_STATUS_EVENTS:-on}" \
    "$ROOT/target/debug/courier-local" bridge >"$6" 2>&1 &
  BRIDGE_PID=$!
  for _ in $(seq 1 40); do (exec 3<>"/dev/tcp/127.0.0.1/$5") 2>/dev/null && return 0; sleep 0.25; done
  cat "$6" >&2; echo "courier-local bridge did not start" >&2; return 1
}
# The local stack around DynamoDB Local (already running on $1): Courier's
# table $2, mosquitto, the functions under cargo lambda watch (each built by
# one warm-up invocation) and courier-local bridge. Ports come from
# MQTT_PORT, WATCH_PORT, PUBLISH_PORT (free ones when unset; set here);
# logs are .local/$3-*.log. Stop with stop_local_stack.
start_local_stack() { # $1 = DDB port, $2 = table, $3 = log prefix
  MQTT_PORT=${MQTT_PORT:-$(free_port)}; WATCH_PORT=${WATCH_PORT:-$(free_port)}; PUBLISH_PORT=${PUBLISH_PORT:-$(free_port)}
  mkdir -p "$ROOT/.local"
  cargo build --locked -q -p courier-local --bins
  DYNAMODB_ENDPOINT="http://127.0.0.1:$1" "$ROOT/target/debug/courier-local" create-table "$2"
  function_env "$1" "$2" "$PUBLISH_PORT" > "$ROOT/.local/$3.env"
  start_mosquitto "$MQTT_PORT" "$ROOT/.local/$3-mosquitto.log"
  start_watch "$WATCH_PORT" "$ROOT/.local/$3.env" "$ROOT/.local/$3-watch.log"
  # Each function is built on its first invocation: one warm-up each, so
  # nothing after this waits on a build. An error answer (the warm-up event
  # is no real event) still means it runs; no answer means it did not build.
  for fn in api device-events dispatcher sweeper; do
    python3 - "http://127.0.0.1:$WATCH_PORT/2015-03-31/functions/$fn/invocations" <<'PY' || { tail -30 "$ROOT/.local/$3-watch.log" >&2; echo "the $fn function did not answer" >&2; return 1; }
import sys, urllib.error, urllib.request
try:
    urllib.request.urlopen(urllib.request.Request(sys.argv[1], data=b"{}"), timeout=900).read()
except urllib.error.HTTPError:
    pass
PY
  done
  # And the API answers through its URL, as callers reach it.
  python3 - "http://127.0.0.1:$WATCH_PORT/lambda-url/api/health" <<'PY' || { echo "the API did not answer /health" >&2; return 1; }
import sys, time, urllib.request
for _ in range(120):
    try:
        if urllib.request.urlopen(sys.argv[1], timeout=10).status == 200:
            sys.exit(0)
    except Exception:
        pass
    time.sleep(0.5)
sys.exit(1)
PY
  start_bridge "$1" "$2" "$MQTT_PORT" "$WATCH_PORT" "$PUBLISH_PORT" "$ROOT/.local/$3-bridge.log"
}
stop_local_stack() { stop_bridge; stop_mosquitto; stop_watch; }
stop_bridge() { stop_process "${BRIDGE_PID:-}"; BRIDGE_PID=; }
stop_static() { stop_process "${STATIC_PID:-}"; STATIC_PID=; }
