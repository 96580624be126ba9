#!/usr/bin/env bash
# Installs what is missing, builds into build/ and runs the whole test suite. CI runs this.
#   MOEGRAD_TEST_TIMEOUT  seconds a test may take when it sets no TIMEOUT of its own (default 300)
#   extra arguments go to ctest, e.g. ./scripts/test.sh -R Reduce
set -euo pipefail
cd "$(dirname "$0")/.."
# ctest runs two test programs at once on two cores: OpenMP threads that spin while they wait
# would steal the cores from each other (a 4x slowdown measured here); passive threads sleep.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}

./scripts/setup.sh

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
ctest --test-dir build --output-on-failure -j2 --timeout "${MOEGRAD_TEST_TIMEOUT:-300}" "$@" 2>&1 |
  tee "$log" || status=$?
# ctest lists skipped and failed tests after its summary line (on a machine without a GPU, every
# CUDA test); CI reads the summary from the closing lines, so it is repeated last.
grep -E '^[0-9]+% tests passed' "$log" | tail -n 1 || true
exit "$status"
