#!/usr/bin/env bash
# The VM stage: for each kernel series, build ipudp.ko against its headers,
# boot it once under qemu and run every VM test in that boot.
# Usage: scripts/test-vm.sh [PYTEST ARGS...]   (LVN_KERNELS="6.1 6.12" by default;
#        LVN_TESTS="tests/kernel/test_x.py" picks tests, default tests/kernel;
#        LVN_MARKS is pytest's -m, default "not long": make test-long sets "long")
set -euo pipefail
cd "$(dirname "$0")/.."
read -r -a series <<<"${LVN_KERNELS:-6.1 6.12}"
mapfile -t releases < <(vm/kernels.sh "${series[@]}")
pyargs=""
# passed into the guest when set: LVN_TEARDOWN_ROUNDS (tests/kernel/test_teardown.py)
envs=""
for var in LVN_TEARDOWN_ROUNDS; do
	[ -z "${!var:-}" ] || envs+="$var=$(printf '%q' "${!var}") "
done
[ $# -eq 0 ] || pyargs=$(printf ' %q' "$@")
failed=()
for rel in "${releases[@]}"; do
	echo "=== VM stage: $rel"
	vm/build-module.sh "$rel" >/dev/null
	junit=build/vm/$rel/junit.xml
	mkdir -p "build/vm/$rel"
	rm -f "$junit"
	marks=$(printf '%q' "${LVN_MARKS-not long}")
	if ! vm/run.sh "$rel" "$envs.venv/bin/python -m pytest -p no:cacheprovider -q ${LVN_TESTS:-tests/kernel} -m $marks --junitxml=$junit$pyargs"; then
		failed+=("$rel")
	fi
	if [ ! -s "$junit" ]; then
		echo "VM stage $rel: no test report (the guest did not run pytest)" >&2
		failed+=("$rel")
	fi
done
if [ ${#failed[@]} -gt 0 ]; then
	echo "VM stage FAILED on: ${failed[*]}" >&2
	exit 1
fi
echo "VM stage passed on: ${releases[*]}"
