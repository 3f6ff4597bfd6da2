#!/usr/bin/env bash
# Proves courier-core builds for wasm32-unknown-unknown (the browser target).
# rustup cannot add wasm32 here, so this uses Debian's rustc-web 1.96 and
# builds std from its sources (see ../shared/notes/toolchain.md). It has its
# own target dir so the two compilers never share artifacts.
set -euo pipefail
cd "$(dirname "$0")/.."
export RUSTC_BOOTSTRAP=1 RUSTC=/usr/bin/rustc
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=wasm-ld
exec /usr/bin/cargo build --release --locked -p courier-core \
  --target wasm32-unknown-unknown -Zbuild-std=std,panic_abort \
  --target-dir "${CARGO_TARGET_DIR:-target}/wasm" "$@"
