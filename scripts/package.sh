#!/usr/bin/env bash
# `make package`: a release arm64 (Graviton) `bootstrap.zip` per function,
# cross-compiled by cargo-lambda through zig, in build/lambda/<function>/;
# prints each zip's size against the 5 MB goal. `make deploy` (or `sam
# build`) builds the same way for AWS.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
scripts/setup.sh
step "cargo lambda build --release --arm64 (lto, codegen-units = 1, panic = abort)"
cargo lambda build --locked --release --arm64 --output-format zip --lambda-dir build/lambda -p courier-functions
step "arm64 bootstrap zips (goal: each under 5 MB)"
python3 - <<'PY'
import os, sys
rows, over = [], []
for name in sorted(os.listdir("build/lambda")):
    path = os.path.join("build/lambda", name, "bootstrap.zip")
    if os.path.exists(path):
        size = os.path.getsize(path)
        rows.append((name, size))
        if size >= 5 * 1024 * 1024:
            over.append(name)
for name, size in rows:
    print(f"{name:16} {size:>10,} bytes  {size / 1048576:5.2f} MiB  build/lambda/{name}/bootstrap.zip")
if not rows:
    sys.exit("no zips were built")
if over:
    print("over the 5 MB goal:", ", ".join(over))
PY
