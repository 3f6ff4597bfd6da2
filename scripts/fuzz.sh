#!/usr/bin/env bash
# `make fuzz`: runs every cargo-fuzz target (fuzz/fuzz_targets/) for
# FUZZ_SECONDS each (default 60) on the nightly toolchain, from the corpus
# kept in fuzz/corpus/. A crash fails the run and is copied into
# fuzz/regressions/<target>/, which `make test` replays
# (core/tests/fuzz_regressions.rs): fix it, and it stays fixed.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
SECONDS_EACH=${FUZZ_SECONDS:-60}
if ! rustup toolchain list | grep -q '^nightly'; then
  echo "make fuzz needs the nightly toolchain (rustup toolchain list)" >&2; exit 1
fi
if ! command -v cargo-fuzz >/dev/null; then
  step "cargo install cargo-fuzz (once)"
  cargo install -q cargo-fuzz
fi
failed=()
for target in $(ls fuzz/fuzz_targets | sed 's/\.rs$//'); do
  step "fuzz $target for ${SECONDS_EACH}s"
  mkdir -p "fuzz/corpus/$target"
  # Seed from the kept inputs, so runs start from interesting shapes.
  cp -n fuzz/regressions/"$target"/* "fuzz/corpus/$target/" 2>/dev/null || true
  if ! cargo +nightly fuzz run "$target" "fuzz/corpus/$target" -- \
      -max_total_time="$SECONDS_EACH" -max_len=4096 -timeout=10 -print_final_stats=1 2>&1 | tail -25; then
    failed+=("$target")
    for crash in fuzz/artifacts/"$target"/*; do
      [ -f "$crash" ] && cp "$crash" "fuzz/regressions/$target/" && echo "kept $crash in fuzz/regressions/$target/"
    done
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzzing found crashes in: ${failed[*]} (inputs kept in fuzz/regressions/)" >&2
  exit 1
fi
echo "fuzzing: no crash in $(ls fuzz/fuzz_targets | wc -l) targets x ${SECONDS_EACH}s"
