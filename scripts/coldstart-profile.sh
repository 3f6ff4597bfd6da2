#!/usr/bin/env bash
# `make coldstart-profile`: where each function's init goes, in instructions.
#
# Wall-clock cold starts (`make bench`) move by ~10% between runs on a shared
# machine; callgrind counts instructions, which repeat (to within 0.01%) for
# the same binary and environment. Each release binary (built with symbols into its own
# target dir, so the stripped release build stays untouched) runs under
# callgrind from process start until it connects to a stand-in for the Lambda
# runtime API, which then hangs up so the process exits and callgrind writes
# its profile. Reported per binary: the total, the dynamic loader's relocation
# work, and the SDK's endpoint-partition parsing (which every
# `aws_sdk_*::Client::from_conf` does for its own crate).
# Results: bench/results/coldstart-profile.md.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

TARGET_DIR="$ROOT/target/symbolized"
OUT_DIR="$ROOT/target/callgrind"
RESULTS=bench/results/coldstart-profile.md
BINARIES=(hello hello-current-thread api device-events dispatcher sweeper)

command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)" >&2; exit 1; }

step "release build with symbols (target/symbolized)"
CARGO_PROFILE_RELEASE_STRIP=none cargo build --locked --release --target-dir "$TARGET_DIR" \
  -p courier-functions -p courier-bench-hello

mkdir -p "$OUT_DIR"
for bin in "${BINARIES[@]}"; do
  step "callgrind: $bin until its first runtime-API request"
  python3 - "$TARGET_DIR/release/$bin" "$OUT_DIR/$bin.out" <<'PY'
import socket, subprocess, sys
binary, out = sys.argv[1:3]
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(1)
port = listener.getsockname()[1]
# The same variables bench-coldstart (local/src/bin/bench_coldstart.rs) sets.
env = {
    "PATH": "/usr/bin:/bin",
    "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}",
    "AWS_LAMBDA_FUNCTION_NAME": "bench", "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256", "AWS_LAMBDA_LOG_GROUP_NAME": "/bench",
    "AWS_LAMBDA_LOG_STREAM_NAME": "bench", "AWS_LAMBDA_LOG_FORMAT": "JSON",
    "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench", "AWS_SESSION_TOKEN": "bench",
    "TABLE_NAME": "courier-bench", "PAGE_TOKEN_SECRET": "bench-page-token-secret",
}
proc = subprocess.Popen(
    ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", binary],
    env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
conn, _ = listener.accept()
conn.close()
listener.close()
proc.wait(timeout=120)
PY
done

python3 - "$OUT_DIR" "$RESULTS" "${BINARIES[@]}" <<'PY'
import re, subprocess, sys
out_dir, results, binaries = sys.argv[1], sys.argv[2], sys.argv[3:]

def inclusive(profile):
    text = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", profile],
                          capture_output=True, text=True, check=True).stdout
    rows = []
    for line in text.splitlines():
        m = re.match(r"\s*([\d,]+)\s+\([\s\d.]+%\)\s+(.*)", line)
        if m:
            rows.append((int(m.group(1).replace(",", "")), m.group(2)))
    return rows

lines = ["| binary | instructions to first request | dynamic loader: relocations | SDK endpoint partitions (clients) | rest |",
         "|---|---|---|---|---|"]
for binary in binaries:
    rows = inclusive(f"{out_dir}/{binary}.out")
    total = next(n for n, name in rows if "PROGRAM TOTALS" in name)
    reloc = max((n for n, name in rows if name.startswith("./elf/./elf/dl-reloc.c:_dl_relocate_object")), default=0)
    parses = [n for n, name in rows if "endpoint_lib::partition::PartitionResolver::new_from_json" in name]
    partitions = sum(parses)
    rest = total - reloc - partitions
    lines.append(f"| {binary} | {total:,} | {reloc:,} | {partitions:,} ({len(parses)}) | {rest:,} |")

note = ("\nInstructions counted by `valgrind --tool=callgrind` (`make coldstart-profile`), from process start "
        "until the first request to a runtime-API stand-in; x86_64 release builds with symbols. "
        "Counts repeat to within 0.01% for the same binaries (two runs); they are not times (page faults and cache misses are not in them).\n")
with open(results, "w") as f:
    f.write("\n".join(lines) + "\n" + note)
print("\n".join(lines))
PY
