#!/usr/bin/env bash
# Build ipudp.ko for another architecture against Debian 12's kernel headers
# for it, W=1 (any warning fails) and sparse (C=2, debug sources too).
# Usage: scripts/cross-build.sh ARCH...      ARCH: armhf | s390x | mipsel
#   armhf: 32-bit ARM (armmp), the router class: 32-bit words, 64-bit
#          counters that need u64_stats seqcounts, little-endian
#   s390x: the big-endian kernel Debian 12 has
#   mipsel: 32-bit MIPS (4kc-malta), the CPU family of most community
#          routers (ramips is little-endian; ath79 big-endian, which
#          Debian 12 no longer builds)
# The headers' .debs are downloaded (apt-get download) and unpacked under
# build/cross/ARCH/headers once: installing them would pull the target's native
# compiler, which cannot be co-installed.  The kbuild tools are the host's
# linux-kbuild-6.1 (Multi-Arch: foreign), as Debian's cross builds use;
# Debian's cross gcc-12 is installed when missing.
# Out: build/kmod/RELEASE/ipudp.ko (where vm/guest-run.sh looks for the
# running kernel's module); sparse runs through scripts/sparse.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

headers() { # ARCH -> the unpacked kernel build tree (echoed)
	local arch=$1 flavour root pkg rel common dl
	case $arch in
	armhf) flavour=armmp ;;
	s390x) flavour=s390x ;;
	mipsel) flavour=4kc-malta ;;
	*) echo "cross-build: unknown architecture $arch (armhf, s390x, mipsel)" >&2; return 1 ;;
	esac
	# its own directory: build/cross/ARCH also holds the guest's root
	# (scripts/cross-root.sh), which a fresh unpack must not remove
	root=$PWD/build/cross/$arch/headers
	if [ ! -e "$root/.unpacked" ]; then
		grep -qx "$arch" <(dpkg --print-foreign-architectures) || {
			dpkg --add-architecture "$arch"
			apt-get -o DPkg::Lock::Timeout=600 update -q >&2
		}
		pkg=$(apt-cache depends "linux-headers-$flavour:$arch" | awk '/Depends:/ {print $2; exit}')
		[ -n "$pkg" ] || { echo "cross-build: no linux-headers-$flavour:$arch in apt" >&2; return 1; }
		rel=${pkg#linux-headers-}
		rel=${rel%%:*}
		common=linux-headers-${rel%-"$flavour"}-common
		rm -rf "$root"
		dl=$(mktemp -d)
		chmod 755 "$dl"
		(cd "$dl" && apt-get download "$pkg" "$common" >&2)
		mkdir -p "$root"
		for deb in "$dl"/*.deb; do dpkg-deb -x "$deb" "$root"; done
		rm -rf "$dl"
		# the tree refers to its common half and to kbuild by absolute or
		# /usr-relative paths: point them at the unpacked copy and the host's
		sed -i "s|^include /usr/src/|include $root/usr/src/|" "$root/usr/src/linux-headers-$rel/Makefile"
		for d in "$root"/usr/src/linux-headers-*; do
			for l in scripts tools; do
				ln -sfn "/usr/lib/linux-kbuild-${rel%%.0-*}/$l" "$d/$l"
			done
		done
		echo "$rel" >"$root/.unpacked"
	fi
	echo "$root/usr/src/linux-headers-$(cat "$root/.unpacked")"
}

triple() {
	case $1 in
	armhf) echo arm arm-linux-gnueabihf ;;
	s390x) echo s390 s390x-linux-gnu ;;
	mipsel) echo mips mipsel-linux-gnu ;;
	esac
}

rc=0
for arch in "$@"; do
	kdir=$(headers "$arch")
	read -r karch cross < <(triple "$arch")
	# Debian's kernel makefiles call gcc-12 by name (the release's compiler)
	command -v "$cross-gcc-12" >/dev/null ||
		apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends \
			"gcc-12-$cross" >&2
	flags="ARCH=$karch CROSS_COMPILE=$cross-"
	rel=$(basename "$kdir")
	rel=${rel#linux-headers-}
	LVN_KDIR=$kdir LVN_KMOD_MAKEFLAGS=$flags vm/build-module.sh "$rel"
	if LVN_KDIR=$kdir LVN_KMOD_MAKEFLAGS=$flags scripts/sparse.sh "$rel"; then
		echo "cross-build: $arch ($rel): W=1 and sparse clean"
	else
		echo "cross-build: sparse or W=1 reports for $arch ($rel)" >&2
		rc=1
	fi
done
exit $rc
