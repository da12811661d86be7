#!/usr/bin/env bash
# sparse (make C=2) over the module, against every kernel the VM stage uses
# (or the releases given as arguments), with the debug-only sources too: any
# sparse report fails.
# Env (as vm/build-module.sh): LVN_KDIR (kernel build tree, default
#      /lib/modules/RELEASE/build), LVN_KMOD_MAKEFLAGS (e.g. ARCH=, CROSS_COMPILE=)
set -euo pipefail
cd "$(dirname "$0")/.."
rc=0
while read -r rel; do
	out=$(mktemp -d)
	cp -r feed/kmod-ipudp/src/. "$out/"
	log=$out/sparse.log
	# shellcheck disable=SC2086 # LVN_KMOD_MAKEFLAGS: words, split on purpose
	make -j"$(nproc)" -C "${LVN_KDIR:-/lib/modules/$rel/build}" M="$out" C=2 W=1 IPUDP_DEBUG=y \
		${LVN_KMOD_MAKEFLAGS:-} modules >"$log" 2>&1 ||
		{ cat "$log" >&2; rc=1; }
	# arch/mips/Makefile hands sparse gcc's predefined macros, which sparse
	# defines itself: "builtin:1:9: warning: preprocessor token
	# __ATOMIC_RELEASE redefined" per file, about no source of ours
	if grep -E '(warning|error):' "$log" |
		grep -Ev '^builtin:1:9: warning: preprocessor token __ATOMIC_[A-Z_]+ redefined$' >&2; then
		echo "sparse: reports against $rel" >&2
		rc=1
	fi
	rm -rf "$out"
done < <(if [ $# -gt 0 ]; then printf '%s\n' "$@"; else vm/kernels.sh; fi)
[ "$rc" = 0 ] && echo "sparse: clean"
exit "$rc"
