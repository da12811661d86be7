#!/usr/bin/env bash
# Kernel coding style of the module: checkpatch.pl --strict must be clean.
# Two documented exceptions: compat.h exists to compare LINUX_VERSION_CODE,
# and EMBEDDED_FILENAME misfires on device.h including <linux/netdevice.h>.
set -euo pipefail
cd "$(dirname "$0")/.."
cp=build/checkpatch/scripts/checkpatch.pl
[ -x "$cp" ] || { echo "checkpatch.sh: $cp missing (run scripts/setup-deps.sh)" >&2; exit 1; }
cd feed/kmod-ipudp/src
run() { perl "../../../$cp" --strict --no-tree --terse --show-types --quiet -f "$@"; }
rc=0
for f in *.c *.h uapi/linux/*.h; do
	case "$f" in
	compat.h) run --ignore LINUX_VERSION_CODE,CONSTANT_COMPARISON "$f" || rc=1 ;;
	*) run --ignore EMBEDDED_FILENAME "$f" || rc=1 ;;
	esac
done
[ "$rc" = 0 ] && echo "checkpatch: clean"
exit "$rc"
