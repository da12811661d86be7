#!/usr/bin/env bash
# Inside the VM: the kernel tests in two parts, one JUnit report.
#  1. every test not marked "serial", in LVN_VM_WORKERS pytest-xdist workers
#     (default 2, one file per worker at a time): the scenarios mostly wait
#     on agents, timers and browsers, and one stream of tests kept the
#     guest's two vCPUs less than one host core busy (docs/testing.md);
#  2. then the "serial" tests alone: they unload the module, read
#     kernel-wide counters or measure.
# A part that selects no test is fine when the other ran some; none at all
# fails like pytest's exit 5.
# Usage: vm/guest-pytest.sh JUNIT MARKS [PYTEST ARGS...]   (LVN_TESTS: files)
set -uo pipefail
cd "$(dirname "$0")/.." || exit
junit=$1 marks=$2
shift 2
read -r -a tests <<<"${LVN_TESTS:-tests/kernel}"
workers=${LVN_VM_WORKERS:-2}
pytest=(.venv/bin/python -m pytest -p no:cacheprovider -q "${tests[@]}")
if [ -n "$marks" ]; then marks="($marks) and "; fi
rm -f "$junit" "$junit.parallel" "$junit.serial"

# how busy the guest's CPUs were during a part (under TCG the VM stage is
# CPU-bound when this is near 100 %): busy and all jiffies of /proc/stat
cpu_jiffies() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }
busy_since() {
	local b0 t0 b1 t1
	read -r b0 t0 <<<"$1"
	read -r b1 t1 <<<"$(cpu_jiffies)"
	echo "guest CPUs busy during $2: $(( (b1 - b0) * 100 / (t1 - t0 + 1) )) %"
}

par=()
# file by file (pytest 9 and xdist 3.8: --dist loadgroup no longer groups,
# it sends the tests of a file that share a router to both workers), in the
# order tests/kernel/conftest.py gives: longest first (xdist's own order, by
# number of tests, put the longest scenarios last)
[ "$workers" -le 1 ] || par=(-n "$workers" --dist loadfile --no-loadscope-reorder)
j0=$(cpu_jiffies)
"${pytest[@]}" -m "${marks}not serial" "${par[@]}" --junitxml="$junit.parallel" "$@"
prc=$?
busy_since "$j0" "the parallel part"
"${pytest[@]}" -m "${marks}serial" --junitxml="$junit.serial" "$@"
src=$?

# pytest's 5: this part collected nothing
if [ "$prc" -eq 5 ] && [ "$src" -eq 5 ]; then exit 5; fi
[ "$prc" -eq 5 ] && prc=0
[ "$src" -eq 5 ] && src=0
parts=()
for f in "$junit.parallel" "$junit.serial"; do [ ! -s "$f" ] || parts+=("$f"); done
.venv/bin/python scripts/junit_merge.py "$junit" "${parts[@]}" || exit 1
[ "$prc" -eq 0 ] || exit "$prc"
exit "$src"
