#!/usr/bin/env bash
# Build a tiny initramfs (busybox + the modules needed to mount the host
# root over 9p) for one kernel release.
# Usage: vm/mkinitramfs.sh RELEASE OUT.cpio.gz
# Env: LVN_INITRAMFS_ROOT: take busybox and the kernel's modules from this
#      root (another architecture's, vm/cross-run.sh) instead of the host's
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
rel=$1
out=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

mkdir -p "$tmp"/{bin,dev,proc,sys,mnt/lower,mnt/upper,mnt/root,lib/mod}
root=${LVN_INITRAMFS_ROOT:-}
cp "$root/bin/busybox" "$tmp/bin/busybox"
# Modules in dependency order; built-ins print "builtin" and are skipped.
: >"$tmp/lib/mod/order"
# A kernel without /lib/modules (the debug kernel) has all of them built in.
# The virtio transport is per architecture (PCI; CCW on s390x): the one a
# kernel lacks is skipped; 9p and overlay must be there.
deps() { modprobe ${root:+-d "$root"} -S "$rel" --show-depends "$1"; }
[ -d "$root/lib/modules/$rel" ] &&
{
	for m in virtio_pci virtio_ccw; do deps "$m" 2>/dev/null || true; done
	for m in 9pnet_virtio 9p overlay; do deps "$m"; done
} |
	awk '$1 == "insmod" {print $2}' | awk '!seen[$0]++' |
	while read -r ko; do
		name=$(basename "$ko")
		case "$name" in
		*.xz) xz -dc "$ko" >"$tmp/lib/mod/${name%.xz}"; name=${name%.xz} ;;
		*.zst) zstd -qdc "$ko" >"$tmp/lib/mod/${name%.zst}"; name=${name%.zst} ;;
		*) cp "$ko" "$tmp/lib/mod/$name" ;;
		esac
		echo "$name" >>"$tmp/lib/mod/order"
	done
cp "$here/initramfs-init" "$tmp/init"
chmod +x "$tmp/init"
(cd "$tmp" && find . | cpio -o -H newc --quiet | gzip -1) >"$out"
