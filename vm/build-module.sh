#!/usr/bin/env bash
# Build ipudp.ko against one kernel's headers, warnings as errors (W=1).
# Usage: vm/build-module.sh RELEASE   -> build/kmod/RELEASE/ipudp.ko
# Env: LVN_KDIR (kernel build tree, default /lib/modules/RELEASE/build),
#      LVN_KMOD_SRC (module source, default feed/kmod-ipudp/src),
#      LVN_KMOD_MAKEFLAGS (extra make variables, e.g. IPUDP_DEBUG=y)
set -euo pipefail
cd "$(dirname "$0")/.."
rel=$1
out=build/kmod/$rel
rm -rf "$out"
mkdir -p "$out"
cp -r "${LVN_KMOD_SRC:-feed/kmod-ipudp/src}/." "$out/"
log=$out/build.log
# shellcheck disable=SC2086 # LVN_KMOD_MAKEFLAGS: words, split on purpose
if ! make -j"$(nproc)" -C "${LVN_KDIR:-/lib/modules/$rel/build}" M="$PWD/$out" W=1 ${LVN_KMOD_MAKEFLAGS:-} modules >"$log" 2>&1; then
	cat "$log" >&2
	echo "vm/build-module.sh: build against $rel failed" >&2
	exit 1
fi
# Any compiler warning fails the build: the module must be W=1 clean.
if grep -E 'warning:' "$log" >&2; then
	echo "vm/build-module.sh: compiler warnings against $rel" >&2
	exit 1
fi
ls "$out"/*.ko
