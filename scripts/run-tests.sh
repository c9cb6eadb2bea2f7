#!/bin/bash
# Run every test against one build directory: the Meson suite (cmocka unit tests, fuzz corpus
# replays), then the pytest integration suite. Ends with one "N passed, N failed" line.
#   scripts/run-tests.sh BUILD_DIR [pytest args...]
set -uo pipefail
build=${1:?build dir}; shift
here=$(cd "$(dirname "$0")/.." && pwd)
unit_log=$(mktemp); py_log=$(mktemp)
trap 'rm -f "$unit_log" "$py_log"' EXIT

meson test -C "$build" --print-errorlogs --num-processes 2 2>&1 | tee "$unit_log"
unit_ok=$(sed -n 's/^Ok: *\([0-9]*\).*/\1/p' "$unit_log" | tail -1)
unit_fail=$(sed -n 's/^Fail: *\([0-9]*\).*/\1/p' "$unit_log" | tail -1)
unit_to=$(sed -n 's/^Timeout: *\([0-9]*\).*/\1/p' "$unit_log" | tail -1)
unit_ok=${unit_ok:-0}; unit_fail=$(( ${unit_fail:-0} + ${unit_to:-0} ))
if [ "$unit_ok" = 0 ] && [ "$unit_fail" = 0 ]; then unit_fail=1; echo "meson test ran nothing"; fi

export FCGIHOST_BIN="$here/$build/fcgihost"
[ -d "$build/tests/apps" ] && export FCGIHOST_APPS="$here/$build/tests/apps"
cd "$here"
/usr/bin/python3 -m pytest -p no:cacheprovider -q tests/integration "$@" 2>&1 | tee "$py_log"
py_rc=${PIPESTATUS[0]}
last=$(grep -E '(passed|failed|error|skipped|no tests ran).* in [0-9.]+s' "$py_log" | tail -1)
py_ok=$(echo "$last" | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+' || true)
py_fail=$(echo "$last" | grep -oE '[0-9]+ (failed|error|errors)' | awk '{s+=$1} END {print s+0}')
py_skip=$(echo "$last" | grep -oE '[0-9]+ skipped' | grep -oE '[0-9]+' || true)
py_ok=${py_ok:-0}; py_fail=${py_fail:-0}
if [ "$py_rc" -ne 0 ] && [ "$py_fail" = 0 ]; then py_fail=1; fi

passed=$((unit_ok + py_ok)); failed=$((unit_fail + py_fail))
echo "unit: $unit_ok passed, $unit_fail failed; integration: $py_ok passed, $py_fail failed, ${py_skip:-0} skipped"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
