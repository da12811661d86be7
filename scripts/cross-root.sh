#!/usr/bin/env bash
# A Debian 12 root of another architecture for vm/cross-run.sh, made once
# with mmdebstrap from Debian's packages (qemu-user runs its maintainer
# scripts): the kernel (linux-image-armmp / -s390x / -4kc-malta, the release
# the module is built for by scripts/cross-build.sh), python3 with pytest and
# hypothesis, iproute2, ping, iperf3, tcpdump; on mipsel also what the node's
# scenario needs (the CPython server's pyOpenSSL and cryptography, nftables
# for the masquerading router).  pyroute2 is pure Python:
# the version of the project's .venv (the tests' fixtures use its 0.8+ API;
# Debian 12 ships 0.7.2) is installed from PyPI into build/cross/site, for
# every architecture.
# Usage: scripts/cross-root.sh ARCH...     (ARCH: armhf | s390x | mipsel)
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=mount,python3,python3-pytest,python3-hypothesis,iproute2,iputils-ping,kmod,busybox-static,procps,iperf3,tcpdump,ethtool

for tool in mmdebstrap qemu-arm-static qemu-s390x-static qemu-mipsel-static arch-test \
	qemu-system-arm qemu-system-s390x qemu-system-mipsel; do
	command -v "$tool" >/dev/null || missing=1
done
if [ -n "${missing:-}" ]; then
	apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends mmdebstrap \
		arch-test qemu-user-static binfmt-support qemu-system-arm qemu-system-misc \
		qemu-system-mips >&2
fi
# qemu-user runs the root's programs through binfmt_misc
[ -e /proc/sys/fs/binfmt_misc/register ] ||
	mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
update-binfmts --enable >/dev/null 2>&1 || true

for arch in "$@"; do
	case $arch in
	armhf) kernel=linux-image-armmp ;;
	s390x) kernel=linux-image-s390x ;;
	mipsel) kernel=linux-image-4kc-malta,python3-openssl,python3-cryptography,nftables ;;
	*) echo "cross-root: unknown architecture $arch (armhf, s390x, mipsel)" >&2; exit 2 ;;
	esac
	root=build/cross/$arch/rootfs
	[ -e "$root/.complete" ] && continue
	rm -rf "$root"
	mkdir -p "build/cross/$arch"
	start=$(date +%s)
	mmdebstrap --arch="$arch" --variant=apt --include="$PKGS,$kernel" bookworm "$root" \
		"deb http://deb.debian.org/debian bookworm main" \
		"deb http://deb.debian.org/debian-security bookworm-security main" \
		>"build/cross/$arch/mmdebstrap.log" 2>&1 || {
		tail -20 "build/cross/$arch/mmdebstrap.log" >&2
		echo "cross-root: mmdebstrap for $arch failed" >&2
		exit 1
	}
	touch "$root/.complete"
	echo "cross-root: $arch root made in $(( $(date +%s) - start )) s ($(du -sh "$root" | cut -f1))"
done

site=build/cross/site
pin=pyroute2==$(.venv/bin/python -c 'import pyroute2; print(pyroute2.__version__)')
if [ "$(cat "$site/.complete" 2>/dev/null)" != "$pin" ]; then
	rm -rf "$site"
	python3 -m pip install -q --no-deps --no-compile --target "$site" "$pin"
	echo "$pin" >"$site/.complete"
fi
