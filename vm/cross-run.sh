#!/usr/bin/env bash
# Boot Debian 12's kernel of another architecture under qemu (TCG) with a
# Debian root of that architecture (scripts/cross-root.sh) shared over 9p
# and the work tree at its own path, run a shell command in the work tree
# inside it (vm/guest-run.sh, as for x86), exit with its status.
# Usage: vm/cross-run.sh ARCH 'command ...'      ARCH: armhf | s390x | mipsel
# Env: LVN_VM_TIMEOUT (s, default 3600), LVN_VM_MEM (MiB, default 1024)
set -euo pipefail
cd "$(dirname "$0")/.."
work=$PWD
arch=$1
cmd=$2
rootfs=$work/build/cross/$arch/rootfs
[ -e "$rootfs/.complete" ] || { echo "vm/cross-run.sh: no $arch root (scripts/cross-root.sh $arch)" >&2; exit 1; }
kernel=$(find "$rootfs/boot" -name 'vmlinuz-*' | sort -V | tail -n 1)
rel=${kernel##*/vmlinuz-}
state=$work/build/vm/$rel
mkdir -p "$state"
rm -f "$state/rc" "$state/dmesg.txt" "$state/dmesg-bad.txt" "$state/dmesg-boot.txt"
printf '%s\n' "$cmd" >"$state/cmd.sh"

initrd=$state/initramfs.cpio.gz
if [ ! -e "$initrd" ] || [ vm/initramfs-init -nt "$initrd" ] || [ vm/mkinitramfs.sh -nt "$initrd" ]; then
	LVN_INITRAMFS_ROOT=$rootfs vm/mkinitramfs.sh "$rel" "$initrd"
fi

fs9p() { # TAG PATH [readonly]
	echo "-fsdev local,id=$1,path=$2,security_model=none,multidevs=remap${3:+,readonly=on}"
	echo "-device $virtio9p,fsdev=$1,mount_tag=$1"
}
case $arch in
armhf)
	qemu="qemu-system-arm"
	# highmem=off: a 32-bit kernel cannot reach the PCIe ECAM placed above 4 GiB
	machine=(-M "virt,highmem=off" -cpu cortex-a15)
	console=ttyAMA0
	virtio9p=virtio-9p-pci ;;
s390x)
	qemu="qemu-system-s390x"
	machine=(-M s390-ccw-virtio -cpu max)
	console=ttysclp0
	virtio9p=virtio-9p-ccw ;;
mipsel)
	qemu="qemu-system-mipsel"
	# the Malta board: 256 MiB of low memory, one CPU (4kc-malta has no SMP)
	machine=(-M malta -cpu 24Kf)
	mem=256 smp=1
	console=ttyS0
	virtio9p=virtio-9p-pci
	# 9P2000.L hands the host's errno numbers through as they are; MIPS
	# numbers them otherwise: x86's EOPNOTSUPP, qemu's answer to an
	# attribute lookup of an exec, is its ENOTSOCK and failed every exec.
	# 9P2000.u carries errors as text (the root only: an fsync on a
	# 9P2000.u mount never returned, so the work tree stays on .L)
	nine=9p2000.u ;;
*) echo "vm/cross-run.sh: unknown architecture $arch" >&2; exit 2 ;;
esac

start=$(date +%s)
set +e
# shellcheck disable=SC2046 # fs9p prints options, one word each
timeout --foreground "${LVN_VM_TIMEOUT:-3600}" "$qemu" "${machine[@]}" \
	-m "${LVN_VM_MEM:-${mem:-1024}}" -smp "${smp:-2}" -nographic -no-reboot -nodefaults -serial stdio \
	-kernel "$kernel" -initrd "$initrd" \
	-append "console=$console panic=-1 oops=panic quiet loglevel=4 lvn.work=$work lvn.state=$state${nine:+ lvn.9proot=$nine}" \
	$(fs9p hostroot "$rootfs" ro) $(fs9p work "$work") \
	</dev/null 2>&1 | sed -u -e 's/\x1b\[[0-9;?]*[A-Za-z]//g' -e 's/\x1bc//g' -e 's/\r$//'
set -e
echo "vm: $arch $rel finished in $(( $(date +%s) - start )) s"
if [ ! -s "$state/rc" ]; then
	echo "vm: $arch $rel: no exit status from the guest (crash, panic or timeout)" >&2
	exit 98
fi
exit "$(cat "$state/rc")"
