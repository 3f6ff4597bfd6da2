#!/usr/bin/env bash
# `make wasm`: builds courier-wasm (and so courier-core) for
# wasm32-unknown-unknown, then the JS bindings:
#   wasm/pkg/        ES module for browsers, with package.json (npm install it)
#   wasm/pkg-node/   CommonJS build for the Node tests
# rustup cannot add wasm32 here, so the compile uses Debian's rustc-web 1.96
# and builds std from source (see ../shared/notes/toolchain.md), in its own
# target dir so the two compilers never share artifacts.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
TARGET_DIR="${CARGO_TARGET_DIR:-target}/wasm"
# Panics abort on the spot (-Cpanic=immediate-abort): no panic messages or
# their formatting in the module (it saved 28 KB of wasm).
RUSTC_BOOTSTRAP=1 RUSTC=/usr/bin/rustc CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=wasm-ld \
  CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="-Zunstable-options -Cpanic=immediate-abort" \
  /usr/bin/cargo build --locked --profile wasm-release -p courier-wasm \
  --target wasm32-unknown-unknown -Zbuild-std=std,panic_abort --target-dir "$TARGET_DIR"
WASM="$TARGET_DIR/wasm32-unknown-unknown/wasm-release/courier_wasm.wasm"
rm -rf wasm/pkg wasm/pkg-node
wasm-bindgen "$WASM" --target web --out-dir wasm/pkg --out-name courier
wasm-bindgen "$WASM" --target nodejs --out-dir wasm/pkg-node --out-name courier
for wasm in wasm/pkg/courier_bg.wasm wasm/pkg-node/courier_bg.wasm; do
  node_modules/.bin/wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext --enable-mutable-globals "$wasm" -o "$wasm"
done
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
cp wasm/README.md wasm/pkg/README.md
cat > wasm/pkg/package.json <<JSON
{
  "name": "courier-wasm",
  "version": "$VERSION",
  "description": "Courier's validation and status rules for browsers (courier-core compiled to WebAssembly)",
  "license": "Apache-2.0",
  "type": "module",
  "main": "./courier.js",
  "types": "./courier.d.ts",
  "exports": {
    ".": { "types": "./courier.d.ts", "default": "./courier.js" },
    "./courier_bg.wasm": "./courier_bg.wasm",
    "./package.json": "./package.json"
  },
  "files": ["courier.js", "courier.d.ts", "courier_bg.wasm", "courier_bg.wasm.d.ts", "README.md"],
  "sideEffects": false
}
JSON
echo "wasm/pkg: $(wc -c < wasm/pkg/courier_bg.wasm) bytes of wasm (after wasm-opt -Oz)" >&2
