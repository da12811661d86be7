#!/usr/bin/env bash
# The agent and fault scenarios (both clients) in the newest kernel's VM with a CPU
# hog beside it: `stress-ng --cpu 1` takes one of the host's cores for the
# whole run.  The tests wait on events with generous ceilings, never on
# fixed sleeps; this shows they pass on a busy machine (docs/testing.md).
# Usage: scripts/test-busy.sh [PYTEST ARGS...]   (LVN_BUSY_CPUS: hogs, default 1)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v stress-ng >/dev/null || apt-get install -y -q stress-ng >/dev/null
stress-ng --cpu "${LVN_BUSY_CPUS:-1}" --quiet &
hog=$!
trap 'kill "$hog" 2>/dev/null; wait "$hog" 2>/dev/null || true' EXIT
newest=$(vm/kernels.sh | tail -1)
echo "test-busy: stress-ng --cpu ${LVN_BUSY_CPUS:-1} (pid $hog) beside the $newest VM"
LVN_KERNELS=$(echo "$newest" | cut -d. -f1-2) LVN_TESTS=${LVN_TESTS:-"tests/kernel/test_agent.py tests/kernel/test_faults.py tests/kernel/test_nat.py tests/kernel/test_floods.py"} scripts/test-vm.sh "$@"
