#!/usr/bin/env bash
# sparse (make C=2) over the module, against every kernel the VM stage uses,
# with the debug-only sources too: any sparse report fails.
set -euo pipefail
cd "$(dirname "$0")/.."
rc=0
while read -r rel; do
	out=$(mktemp -d)
	cp -r feed/kmod-ipudp/src/. "$out/"
	log=$out/sparse.log
	make -C "/lib/modules/$rel/build" M="$out" C=2 W=1 IPUDP_DEBUG=y modules >"$log" 2>&1 ||
		{ cat "$log" >&2; rc=1; }
	if grep -E '(warning|error):' "$log" >&2; then
		echo "sparse: reports against $rel" >&2
		rc=1
	fi
	rm -rf "$out"
done < <(vm/kernels.sh)
[ "$rc" = 0 ] && echo "sparse: clean"
exit "$rc"
