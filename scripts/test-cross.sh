#!/usr/bin/env bash
# make test-cross: the module on 32-bit router-class architectures (armhf,
# and mipsel: the MIPS family of most community routers) and a big-endian
# one (s390x), each under qemu (TCG) with Debian 12's own kernel and a
# Debian root of that architecture: built W=1 + sparse clean
# (scripts/cross-build.sh), then the kernel tests whose outcome can depend
# on word size or byte order run inside (docs/testing.md).  On mipsel the
# node agent, on OpenWrt 24.10's MicroPython cross-built for it, then
# joins a CPython server through NAT in the same boot.
# Env: LVN_CROSS_ARCHS (default "armhf s390x mipsel"), LVN_TIME_SCALE
#      (default 6: emulating another ISA is several times slower than x86),
#      LVN_CROSS_NODE=0 leaves the node's scenario out.
set -euo pipefail
cd "$(dirname "$0")/.."
archs=${LVN_CROSS_ARCHS:-armhf s390x mipsel}
# shellcheck disable=SC2086 # a list of words
scripts/cross-build.sh $archs
# shellcheck disable=SC2086
scripts/cross-root.sh $archs

TESTS=(
	tests/kernel/test_traffic.py        # FIXED, IPv4/IPv6 inner and outer
	tests/kernel/test_multi.py          # MULTI, longest-prefix rules vs the Python reference
	tests/kernel/test_wire.py           # the exact bytes on the underlay
	tests/kernel/test_netlink_errors.py # the netlink ABI through the library
	tests/kernel/test_fuzz.py           # genetlink and packet fuzzing (sample)
	tests/kernel/test_handover.py       # the socket hand-over
	tests/kernel/test_lifecycle.py      # module unload, netns teardown
	tests/kernel/test_receive_filter.py
	tests/kernel/test_ecn.py
	tests/kernel/test_move.py           # 64-bit counters while the endpoint moves
)
# the node's scenario, where the node's MicroPython is built for the guest
NODE_TEST=tests/kernel/test_node_join.py
NODE_RELEASE=$(.venv/bin/python -c 'import sys; sys.path.insert(0, "tests"); import upy; print(upy.NODE_RELEASE)')
rc=0
for arch in $archs; do
	start=$(date +%s)
	run="python3 -m pytest -p no:cacheprovider -q"
	cmd="$run -m 'not long and not newest' --junitxml=build/cross/$arch/junit.xml ${TESTS[*]}"
	if [ "$arch" = mipsel ] && [ "${LVN_CROSS_NODE:-1}" = 1 ]; then
		upy=build/upy/$NODE_RELEASE/mipsel-mbedtls/micropython
		[ -x "$upy" ] || ../shared/third_party/micropython/build.sh --release "$NODE_RELEASE" \
			--arch mipsel build/upy >"build/upy-$NODE_RELEASE-mipsel.log" 2>&1 || {
			tail -n 30 "build/upy-$NODE_RELEASE-mipsel.log" >&2; exit 1; }
		# run from a copy: an exec from the work tree's 9P2000.L mount fails
		# on MIPS (vm/cross-run.sh); the scenario's output goes to a file,
		# printed here afterwards (the Malta UART stalled under long output)
		out=build/cross/$arch/node.log
		cmd="$cmd; r=\$?; cp $upy /tmp/micropython && LVN_NODE_MICROPYTHON=/tmp/micropython \
$run --junitxml=build/cross/$arch/node.xml $NODE_TEST >$out 2>&1; exit \$(( r | \$? ))"
	fi
	rm -f "build/cross/$arch/node.log"
	if vm/cross-run.sh "$arch" "export LVN_TIME_SCALE=${LVN_TIME_SCALE:-6} PYTHONPATH=$PWD/build/cross/site; $cmd"; then
		[ ! -e "build/cross/$arch/node.log" ] || cat "build/cross/$arch/node.log"
		echo "test-cross: $arch passed in $(( $(date +%s) - start )) s"
	else
		[ ! -e "build/cross/$arch/node.log" ] || tail -n 60 "build/cross/$arch/node.log"
		echo "test-cross: $arch FAILED after $(( $(date +%s) - start )) s" >&2
		rc=1
	fi
done
exit $rc
