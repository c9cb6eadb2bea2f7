#!/bin/bash
# Run the libFuzzer targets built in BUILD for SECONDS each, growing fuzz/corpus/<target>.
#   scripts/fuzz.sh BUILD SECONDS [target...]
set -euo pipefail
build=$1; secs=$2; shift 2
here=$(cd "$(dirname "$0")/.." && pwd)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=($(cd "$build/fuzz" && ls fuzz_* | sed 's/^fuzz_//'))
status=0
for t in "${targets[@]}"; do
  echo "== fuzz $t for ${secs}s"
  mkdir -p "$here/fuzz/corpus/$t"
  "$build/fuzz/fuzz_$t" -max_total_time="$secs" -print_final_stats=1 -artifact_prefix="$here/fuzz/" \
      "$here/fuzz/corpus/$t" 2>&1 | tail -25 || status=1
done
exit $status
