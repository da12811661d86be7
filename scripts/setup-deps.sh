#!/usr/bin/env bash
# Install everything the demo, the tests and the VM stage need, idempotently.
# Debian 12 (bookworm), run as root. Fast when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PKGS=(qemu-system-x86 busybox-static kmod cpio build-essential
	  iproute2 iputils-ping ethtool iperf3 tcpdump python3-venv python3-pip xz-utils
	  linux-image-amd64 linux-headers-amd64 shellcheck linux-source-6.1 nftables conntrack libfaketime
	  wireguard-tools fastd openvpn n2n linux-perf sparse chromium chromium-driver
	  gawk rsync unzip bzip2 wget file patch git perl python3-distutils libncurses-dev fakeroot
	  qemu-user-static etcd-server python3-openssl python3-cryptography)
# (the last lines: OpenWrt's build system checks these before its scan,
# scripts/owrt-feed.sh; qemu-user runs the node on big-endian MIPS; the
# tests start their own etcd members, tests/etcd; Debian's own pyOpenSSL and
# cryptography: the server must run on them, tests/unit/test_debian_packages.py)

apt_install() {
	apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "$@"
}

missing=()
for p in "${APT_PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$p")
done

# The 6.12 series: Debian 12 carries it as versioned packages. Pick the
# newest version that has both an image and headers (never -rt/-cloud).
# A new version's image may first appear only as the -unsigned package
# (the signed one follows days later): either provides /boot/vmlinuz-VER.
candidate() { apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2}'; }
image_pkg() {
	local p
	for p in "linux-image-$1" "linux-image-$1-unsigned"; do
		case $(candidate "$p") in ''|'(none)') ;; *) echo "$p"; return 0 ;; esac
	done
	return 1
}
newest_612() {
	apt-cache search --names-only '^linux-headers-6\.12\.[0-9]+\+deb12-amd64$' |
		awk '{print $1}' | sed 's/^linux-headers-//' | sort -V |
		while read -r v; do image_pkg "$v" >/dev/null && echo "$v"; done | tail -n 1
}
if ! ls -d /lib/modules/6.12.*-amd64/build >/dev/null 2>&1; then
	compgen -G '/var/lib/apt/lists/*_Packages' >/dev/null ||
		apt-get -o DPkg::Lock::Timeout=600 update -q
	ver=$(newest_612)
	if [ -z "$ver" ]; then
		apt-get -o DPkg::Lock::Timeout=600 update -q
		ver=$(newest_612)
	fi
	[ -n "$ver" ] || { echo "setup: no linux 6.12 kernel package found in apt" >&2; exit 1; }
	missing+=("$(image_pkg "$ver")" "linux-headers-$ver")
fi

if [ ${#missing[@]} -gt 0 ]; then
	echo "setup: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt_install "${missing[@]}" || {
		apt-get -o DPkg::Lock::Timeout=600 update -q
		apt_install "${missing[@]}"
	}
fi

# checkpatch.pl (and its data files) from Debian's kernel source tarball.
if [ ! -x build/checkpatch/scripts/checkpatch.pl ]; then
	mkdir -p build/checkpatch
	tar -xaf /usr/src/linux-source-6.1.tar.xz -C build/checkpatch --strip-components=1 \
		--wildcards '*/scripts/checkpatch.pl' '*/scripts/spelling.txt' \
		'*/scripts/const_structs.checkpatch'
fi

# Python environment in .venv (visible inside the VM through the 9p share).
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
	"$PY" -m venv .venv
fi
stamp=.venv/.lvn-deps-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -e "$stamp" ]; then
	.venv/bin/pip install -q --upgrade pip
	.venv/bin/pip install -q -e '.[dev]'
	touch "$stamp"
fi

# .venv-floor: the same, with the dependency versions of OpenWrt 24.10
pins=scripts/openwrt-24.10-pins.txt
if [ ! -x .venv-floor/bin/python ]; then
	"$PY" -m venv .venv-floor
fi
stamp=.venv-floor/.lvn-deps-$(cat pyproject.toml "$pins" | sha256sum | cut -c1-16)
if [ ! -e "$stamp" ]; then
	.venv-floor/bin/pip install -q --upgrade pip
	.venv-floor/bin/pip install -q -r "$pins" pytest hypothesis
	.venv-floor/bin/pip install -q --no-deps -e .
	.venv-floor/bin/pip check
	touch "$stamp"
fi

# OpenWrt's own MicroPython: the releases OpenWrt ships (24.10: 1.23.0, main:
# 1.28.0), built the way its micropython-mbedtls package is (patches, mbedTLS, flags)
# from $LVN_UPY_SRC into build/upy once; the host tests run the node's
# pure code under it (tests/unit/conftest.py)
upy_src=${LVN_UPY_SRC:-../shared/third_party/micropython}
for rel in $(.venv/bin/python -c 'import sys; sys.path.insert(0, "tests"); import upy; print(*upy.RELEASES)'); do
	if [ ! -x "build/upy/$rel/host-mbedtls/micropython" ]; then
		echo "setup: building OpenWrt's MicroPython $rel (build/upy-$rel.log)"
		mkdir -p build
		"$upy_src/build.sh" --release "$rel" build/upy >"build/upy-$rel.log" 2>&1 || {
			tail -n 30 "build/upy-$rel.log" >&2; exit 1; }
	fi
done
# and 1.28.0 without main's MBEDTLS_CONFIG_FILE define, whose TLS works (the
# node's TLS test; docs/openwrt.md says why main's own build cannot join)
if [ ! -x build/upy/1.28.0/host-mbedtls-nocfgdefine/micropython ]; then
	echo "setup: building MicroPython 1.28.0 without main's MBEDTLS_CONFIG_FILE define"
	"$upy_src/build.sh" --release 1.28.0 --no-config-file-define build/upy \
		>build/upy-1.28.0-nocfgdefine.log 2>&1 || {
		tail -n 30 build/upy-1.28.0-nocfgdefine.log >&2; exit 1; }
fi
# and 1.23.0 for big-endian MIPS (static; the host tests run it under qemu-mips-static)
if [ ! -x build/upy/1.23.0/mips-mbedtls/micropython ]; then
	echo "setup: building MicroPython 1.23.0 for big-endian MIPS"
	"$upy_src/build.sh" --release 1.23.0 --arch mips build/upy >build/upy-1.23.0-mips.log 2>&1 || {
		tail -n 30 build/upy-1.23.0-mips.log >&2; exit 1; }
fi
