#!/usr/bin/env bash
# The feed built by OpenWrt's own rules (docs/openwrt.md): for each release
# (default: 24.10 and main), ../shared/third_party/openwrt-buildroot's
# feed-build.sh runs OpenWrt's scan, make defconfig and the host-only build
# of our architecture-independent packages with include/package.mk,
# python3-package.mk and luci.mk themselves; the node's .mpy files come
# from the mpy-cross of that release's MicroPython (build/upy, made by
# scripts/setup-deps.sh).  Any error or warning naming our packages fails.
# Results: build/owrt-feed/RELEASE/{ipk,apk}/, logs in build/owrt-feed/RELEASE.log.
# Usage: scripts/owrt-feed.sh [RELEASE...]   ($LVN_OWRT_BUILDROOT: the buildroot folder)
set -euo pipefail
cd "$(dirname "$0")/.."
buildroot=${LVN_OWRT_BUILDROOT:-../shared/third_party/openwrt-buildroot}
[ -f "$buildroot/feed-build.sh" ] || { echo "owrt-feed: no $buildroot/feed-build.sh" >&2; exit 1; }
releases=("$@")
[ ${#releases[@]} -gt 0 ] || releases=(24.10 main)
for rel in "${releases[@]}"; do
	upy=$(.venv/bin/python -c 'import sys; sys.path.insert(0, "tests"); import upy; print(upy.OPENWRT[sys.argv[1]])' "$rel")
	mpy=$PWD/build/upy/$upy/bin/mpy-cross
	[ -x "$mpy" ] || { echo "owrt-feed: $mpy is not built (scripts/setup-deps.sh)" >&2; exit 1; }
	out=build/owrt-feed/$rel
	mkdir -p "$out"
	rm -rf "$out/ipk" "$out/apk"
	start=$(date +%s)
	if ! MPY_CROSS=$mpy bash "$buildroot/feed-build.sh" "$rel" . "$out" >"$out.log" 2>&1; then
		tail -n 40 "$out.log" >&2
		echo "owrt-feed: OpenWrt $rel's build of the feed failed (log: $out.log)" >&2
		exit 1
	fi
	if grep -q '^feed-build: warnings:' "$out.log"; then
		sed -n '/^feed-build: warnings:/,$p' "$out.log" >&2
		echo "owrt-feed: OpenWrt $rel warned about the feed (log: $out.log)" >&2
		exit 1
	fi
	built=""
	for pkg in "$out"/ipk/*.ipk "$out"/apk/*.apk; do
		if [ -e "$pkg" ]; then built+="${pkg#"$out"/} "; fi
	done
	echo "owrt-feed: OpenWrt $rel: $built($(( $(date +%s) - start )) s, MicroPython $upy)"
done
