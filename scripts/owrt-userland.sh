#!/usr/bin/env bash
# Build OpenWrt's own userland (libubox, ubus, uci, procd, rpcd, jsonfilter,
# opkg; the PyPI ubus/pyuci bindings in a venv; the web stack: ucode, uhttpd,
# lucihttp, luci-base, the bootstrap theme) from the pristine sources in
# $LVN_OWRT_SRC (default ../shared/third_party/openwrt) into build/owrt, once:
# the upstream build.sh rebuilds only what changed.
# Exit 0: built (or up to date).  Exit 3: the sources are not there, and the
# tests that need them report themselves as skipped with that reason.
set -euo pipefail
cd "$(dirname "$0")/.."
src=${LVN_OWRT_SRC:-../shared/third_party/openwrt}
if [ ! -x "$src/build.sh" ]; then
	echo "owrt-userland: no OpenWrt sources at $src (set LVN_OWRT_SRC)" >&2
	exit 3
fi
start=$(date +%s)
mkdir -p build
"$src/build.sh" "$PWD/build/owrt" --python --luci "-j$(nproc)" >build/owrt-build.log 2>&1 || {
	tail -30 build/owrt-build.log >&2
	echo "owrt-userland: build failed, full log in build/owrt-build.log" >&2
	exit 1
}
echo "owrt-userland: build/owrt ready in $(( $(date +%s) - start )) s ($(tail -1 build/owrt-build.log))"
