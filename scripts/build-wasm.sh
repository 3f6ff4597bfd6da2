#!/usr/bin/env bash
# `make wasm`: builds courier-wasm (and so courier-core) for
# wasm32-unknown-unknown, then wasm/pkg/, the npm package dashboards install
# (and the Node tests load): courier.js (wasm/js/, the entry), the
# wasm-bindgen bindings courier_wasm.js, courier_wasm_bg.wasm, types,
# package.json and README.
# rustup cannot add wasm32 here, so the compile uses Debian's rustc-web 1.96
# and builds std from source (see ../shared/notes/toolchain.md), in its own
# target dir so the two compilers never share artifacts.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
TARGET_DIR="${CARGO_TARGET_DIR:-target}/wasm"
# Panics abort on the spot (-Cpanic=immediate-abort): no panic messages or
# their formatting in the module (it saved 28 KB of wasm); std is built
# with optimize_for_size (smaller sorts and the like; 4 KB). No `Debug`
# formatting and no source locations are compiled in (-Zfmt-debug=none
# -Zlocation-detail=none: 237 B of wasm); nothing the module returns is
# written with `{:?}`, which the shared vectors check.
RUSTC_BOOTSTRAP=1 RUSTC=/usr/bin/rustc CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=wasm-ld \
  CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="-Zunstable-options -Cpanic=immediate-abort -Zfmt-debug=none -Zlocation-detail=none" \
  /usr/bin/cargo build --locked --profile wasm-release -p courier-wasm \
  --target wasm32-unknown-unknown -Zbuild-std=std,panic_abort -Zbuild-std-features=optimize_for_size \
  --target-dir "$TARGET_DIR"
WASM="$TARGET_DIR/wasm32-unknown-unknown/wasm-release/courier_wasm.wasm"
rm -rf wasm/pkg wasm/pkg-node
wasm-bindgen "$WASM" --target web --out-dir wasm/pkg --out-name courier_wasm
# --converge repeats -Oz until it stops shrinking the module (125 B gzip,
# 5 s more). Before it, --merge-similar-functions folds functions that
# differ only in constants (generic instantiations: -1,258 B) and
# --flatten --rereloop rebuilds the control flow so that -Oz finds more
# (-1,702 B more; 2,960 B of wasm and about 740 B gzip together, 10 s more).
# --strip-producers --strip-target-features: the toolchain's name tags and
# feature list, custom sections no browser reads (274 B).
node_modules/.bin/wasm-opt --merge-similar-functions --flatten --rereloop -Oz -Oz --converge \
  --strip-producers --strip-target-features \
  --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext --enable-mutable-globals \
  wasm/pkg/courier_wasm_bg.wasm -o wasm/pkg/courier_wasm_bg.wasm
cp wasm/js/courier.js wasm/js/courier.d.ts wasm/pkg/
# The JavaScript the page downloads, minified as a site's build would ship
# it (terser; names kept, so classes and errors read as in the source):
# the glue 5,485 -> 3,172 B gzip. The types (.d.ts) describe the same
# exports; wasm/js/courier.js stays the readable source.
for js in courier_wasm.js courier.js; do
  node_modules/.bin/terser "wasm/pkg/$js" --module --compress --mangle --keep-classnames --keep-fnames \
    -o "wasm/pkg/$js.min" && mv "wasm/pkg/$js.min" "wasm/pkg/$js"
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
    "./courier_wasm_bg.wasm": "./courier_wasm_bg.wasm",
    "./package.json": "./package.json"
  },
  "files": ["courier.js", "courier.d.ts", "courier_wasm.js", "courier_wasm.d.ts", "courier_wasm_bg.wasm", "courier_wasm_bg.wasm.d.ts", "README.md"],
  "sideEffects": false
}
JSON
echo "wasm/pkg: $(wc -c < wasm/pkg/courier_wasm_bg.wasm) bytes of wasm (after wasm-opt -Oz)" >&2
