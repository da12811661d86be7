#!/usr/bin/env bash
# The VM stage: for each kernel series, build ipudp.ko against its headers,
# boot it once under qemu and run every VM test in that boot.
# Usage: scripts/test-vm.sh [PYTEST ARGS...]   (LVN_KERNELS="6.1 6.12" by default;
#        LVN_TESTS="tests/kernel/test_x.py" picks tests, default tests/kernel;
#        LVN_MARKS is pytest's -m, default "not long": make test-long sets "long";
#        LVN_VM_JOBS: VMs at once, default 1;
#        LVN_VM_WORKERS: pytest workers inside each VM, default 2, see
#        vm/guest-pytest.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
read -r -a series <<<"${LVN_KERNELS:-6.1 6.12}"
mapfile -t releases < <(vm/kernels.sh "${series[@]}")
pyargs=""
# passed into the guest when set: LVN_TEARDOWN_ROUNDS (tests/kernel/test_teardown.py),
# LVN_VM_WORKERS
envs=""
for v in LVN_TEARDOWN_ROUNDS LVN_VM_WORKERS; do
	[ -z "${!v:-}" ] || envs+="$v=$(printf '%q' "${!v}") "
done
[ $# -eq 0 ] || pyargs=$(printf ' %q' "$@")
# tests marked "newest" (userspace scenarios) run in the newest kernel's VM
# only, unless LVN_MARKS says otherwise
newest=${releases[${#releases[@]}-1]}
# one VM per kernel; LVN_VM_JOBS of them at once (default 1: a TCG guest
# keeps both host cores busy, so two side by side took longer in all than
# two in a row; with more, console lines are prefixed with the series)
jobs=${LVN_VM_JOBS:-1}
run_one() {
	local rel=$1 junit=build/vm/$1/junit.xml marks=${LVN_MARKS-not long}
	# userspace scenarios run once: "newest" in the newest kernel's VM,
	# "oldest" in the oldest one's (one kernel alone runs both)
	if [ -z "${LVN_MARKS+set}" ] && [ ${#releases[@]} -gt 1 ]; then
		case $1 in
		"$newest") marks="not long and not oldest" ;;
		"${releases[0]}") marks="not long and not newest" ;;
		*) marks="not long and not newest and not oldest" ;;
		esac
	fi
	marks=$(printf '%q' "$marks")
	# the last report orders the files, longest first (tests/kernel/conftest.py)
	[ ! -s "$junit" ] || mv -f "$junit" "build/vm/$1/junit.prev.xml"
	rm -f "$junit"
	vm/run.sh "$rel" "${envs}LVN_IPK_DIR=$PWD/build/vm/$1/ipk LVN_TESTS=$(printf '%q' "${LVN_TESTS:-tests/kernel}") vm/guest-pytest.sh $junit $marks$pyargs"
}
for rel in "${releases[@]}"; do
	mkdir -p "build/vm/$rel"
	rm -f "build/vm/$rel/rc"
	vm/build-module.sh "$rel" >/dev/null
	# the router tests' ipks, built here: under TCG each site took a minute
	rm -rf "build/vm/$rel/ipk"
	scripts/router-ipks.sh "build/vm/$rel/ipk" "$rel"
done
# The guest writes no byte code (vm/guest-run.sh; its tree is shared over
# 9p): compile ours here, and let pytest write its rewritten test modules,
# or under TCG every Python start compiles them again (an agent, a command,
# each pytest worker).  Only a saving: a failure here is not the stage's.
env -u PYTHONDONTWRITEBYTECODE .venv/bin/python -m compileall -q lvn tests scripts >/dev/null || true
env -u PYTHONDONTWRITEBYTECODE .venv/bin/python -m pytest -p no:cacheprovider -q --collect-only \
	tests/kernel >/dev/null 2>&1 || true
pids=()
for rel in "${releases[@]}"; do
	echo "=== VM stage: $rel"
	if [ "$jobs" -le 1 ] || [ ${#releases[@]} -le 1 ]; then
		rc=0; run_one "$rel" || rc=$?
		echo "$rc" >"build/vm/$rel/rc"
	else
		( rc=0; run_one "$rel" 2>&1 | sed -u "s/^/[${rel%%-*}] /" || rc=$?
		  echo "$rc" >"build/vm/$rel/rc" ) &
		pids+=($!)
	fi
done
[ ${#pids[@]} -eq 0 ] || wait "${pids[@]}"
failed=()
for rel in "${releases[@]}"; do
	if [ "$(cat "build/vm/$rel/rc" 2>/dev/null)" != 0 ]; then
		failed+=("$rel")
	elif [ ! -s "build/vm/$rel/junit.xml" ]; then
		echo "VM stage $rel: no test report (the guest did not run pytest)" >&2
		failed+=("$rel")
	fi
done
if [ ${#failed[@]} -gt 0 ]; then
	echo "VM stage FAILED on: ${failed[*]}" >&2
	exit 1
fi
echo "VM stage passed on: ${releases[*]}"
