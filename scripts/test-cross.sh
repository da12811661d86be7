#!/usr/bin/env bash
# make test-cross: the module on a 32-bit router-class architecture (armhf)
# and a big-endian one (s390x), each under qemu (TCG) with Debian 12's own
# kernel and a Debian root of that architecture: built W=1 + sparse clean
# (scripts/cross-build.sh), then the kernel tests whose outcome can depend
# on word size or byte order run inside (docs/testing.md).
# mipsel (Debian's 4kc-malta kernel: the MIPS family of most community
# routers) is built W=1 + sparse clean too; it has no guest yet: on qemu's
# Malta board every exec from the 9p root fails (docs/testing.md).
# Env: LVN_CROSS_ARCHS (default "armhf s390x"), LVN_CROSS_BUILD_ONLY
#      (default "mipsel"), LVN_TIME_SCALE (default 6: emulating another
#      ISA is several times slower than x86 on x86).
set -euo pipefail
cd "$(dirname "$0")/.."
archs=${LVN_CROSS_ARCHS:-armhf s390x}
# shellcheck disable=SC2086 # a list of words
scripts/cross-build.sh $archs ${LVN_CROSS_BUILD_ONLY-mipsel}
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
)
rc=0
for arch in $archs; do
	start=$(date +%s)
	if vm/cross-run.sh "$arch" "LVN_TIME_SCALE=${LVN_TIME_SCALE:-6} PYTHONPATH=build/cross/site \
python3 -m pytest -p no:cacheprovider -q -m 'not long and not newest' \
--junitxml=build/cross/$arch/junit.xml ${TESTS[*]}"; then
		echo "test-cross: $arch passed in $(( $(date +%s) - start )) s"
	else
		echo "test-cross: $arch FAILED after $(( $(date +%s) - start )) s" >&2
		rc=1
	fi
done
exit $rc
