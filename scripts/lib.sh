# Shared by the scripts: PATH for the project's tools, free ports, and
# stopping everything a script started when it exits.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# rustup's cargo before Debian's (/usr/bin/cargo is only for the wasm build).
export PATH="$ROOT/.tools/venv/bin:$HOME/.cargo/bin:$PATH"
step() { printf '\n\033[1;34m==> %s\033[0m\n' "$*" >&2; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# Environment the functions read; AWS_ENDPOINT_URL_DYNAMODB is the SDK's own
# variable, so no code differs between local and AWS.
function_env() { # $1 = DynamoDB Local port, $2 = table
  cat <<ENV
TABLE_NAME=$2
PAGE_TOKEN_SECRET=local-dev-secret-not-for-production
AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:$1
AWS_REGION=us-east-1
AWS_ACCESS_KEY_ID=local
AWS_SECRET_ACCESS_KEY=local
AWS_LAMBDA_LOG_FORMAT=JSON
RUST_LOG=info
ENV
}
# Starts `cargo lambda watch` in its own process group; sets WATCH_PGID.
start_watch() { # $1 = invoke port, $2 = env file, $3 = log file
  setsid cargo lambda watch --disable-cors --invoke-address 127.0.0.1 --invoke-port "$1" --env-file "$2" >"$3" 2>&1 &
  WATCH_PGID=$!
  for _ in $(seq 1 240); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    kill -0 "$WATCH_PGID" 2>/dev/null || { cat "$3" >&2; return 1; }
    sleep 0.5
  done
  echo "cargo lambda watch did not listen on $1" >&2; return 1
}
stop_watch() { [ -n "${WATCH_PGID:-}" ] && kill -- "-$WATCH_PGID" 2>/dev/null; WATCH_PGID=; }
# Serves wasm/ (the dashboard and wasm/pkg) on 127.0.0.1; sets STATIC_PID.
start_static() { # $1 = port, $2 = log file
  python3 -m http.server "$1" --bind 127.0.0.1 --directory "$ROOT/wasm" >"$2" 2>&1 &
  STATIC_PID=$!
  for _ in $(seq 1 40); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.25; done
  echo "static server did not start on $1" >&2; return 1
}
stop_static() { [ -n "${STATIC_PID:-}" ] && kill "$STATIC_PID" 2>/dev/null; STATIC_PID=; }
