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
