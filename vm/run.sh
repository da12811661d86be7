#!/usr/bin/env bash
# Boot one Debian kernel under qemu (TCG) with the host filesystem shared,
# run a shell command in the work tree inside it, and exit with its status.
# Usage: vm/run.sh RELEASE 'command ...'
# Env: LVN_VM_TIMEOUT (s, default 3600), LVN_VM_MEM (MiB, default 2048),
#      LVN_VM_KERNEL (image, default /boot/vmlinuz-RELEASE),
#      LVN_VM_CPU (qemu -cpu model under TCG, default max),
#      LVN_VM_APPEND (extra kernel arguments),
#      LVN_VM_BOOT_TRIES (boots when the kernel dies before the command, default 2),
#      LVN_VM_BOOT_WAIT (s a boot may take to start the command, default 300)
set -euo pipefail
cd "$(dirname "$0")/.."
work=$PWD
rel=$1
cmd=$2
state=$work/build/vm/$rel
mkdir -p "$state"
rm -f "$state/rc" "$state/started" "$state/dmesg.txt" "$state/dmesg-bad.txt" "$state/kmemleak.txt" "$state/kmemleak-bad.txt" "$state/dmesg-boot.txt"
printf '%s\n' "$cmd" >"$state/cmd.sh"

initrd=$state/initramfs.cpio.gz
if [ ! -e "$initrd" ] || [ vm/initramfs-init -nt "$initrd" ] || [ vm/mkinitramfs.sh -nt "$initrd" ]; then
	vm/mkinitramfs.sh "$rel" "$initrd"
fi

accel=tcg,thread=multi
cpu=${LVN_VM_CPU:-max}
if [ "${LVN_VM_KVM:-0}" = 1 ]; then accel=kvm; cpu=host; fi

start=$(date +%s)
boot() {
	rm -f "$state/qemu.pid"
	timeout --foreground "${LVN_VM_TIMEOUT:-3600}" qemu-system-x86_64 -pidfile "$state/qemu.pid" \
		-accel "$accel" -cpu "$cpu" -machine q35 -m "${LVN_VM_MEM:-2048}" -smp 2 \
		-nographic -no-reboot -nodefaults -serial stdio \
		-kernel "${LVN_VM_KERNEL:-/boot/vmlinuz-$rel}" -initrd "$initrd" \
		-append "console=ttyS0 panic=-1 oops=panic quiet loglevel=4 mitigations=off lvn.work=$work lvn.state=$state ${LVN_VM_APPEND:-}" \
		-virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
		-virtfs "local,path=$work,mount_tag=work,security_model=none,multidevs=remap" \
		</dev/null 2>&1 | sed -u -e 's/\x1b\[[0-9;?]*[A-Za-z]//g' -e 's/\x1bc//g' -e 's/\r$//'
	return "${PIPESTATUS[0]}"
}
# A boot that never starts the command is stopped: the debug kernel under
# TCG has looped on a KASAN report from the timer interrupt during CPU
# identification (kasan_multi_shot prints it on every tick), before
# anything of ours ran. Polls once a second: qemu tells no event here.
watch_boot() {
	local waited=0
	while [ ! -e "$state/started" ] && [ ! -s "$state/rc" ]; do
		if [ "$waited" -ge "${LVN_VM_BOOT_WAIT:-300}" ]; then
			echo "vm: $rel: the command did not start within $waited s of booting; stopping qemu"
			[ -s "$state/qemu.pid" ] && kill "$(cat "$state/qemu.pid")" 2>/dev/null
			return 0
		fi
		sleep 1
		waited=$((waited + 1))
	done
}
# A kernel that dies while booting, or never starts the command, before the
# guest ran anything of ours (TCG sometimes faults on the kernel's own code
# patching: an int3 Oops in sched_clock_cpu was seen on 6.12), boots again,
# once by default.
tries=${LVN_VM_BOOT_TRIES:-2}
set +e
for try in $(seq "$tries"); do
	watch_boot &
	watcher=$!
	boot
	qrc=$?
	kill "$watcher" 2>/dev/null
	wait "$watcher" 2>/dev/null
	if [ -e "$state/started" ] || [ -s "$state/rc" ] || [ "$try" -ge "$tries" ]; then break; fi
	echo "vm: $rel died before the command started (qemu exit $qrc); booting again"
done
set -e
echo "vm: $rel finished in $(( $(date +%s) - start )) s (qemu exit $qrc)"
if [ ! -s "$state/rc" ]; then
	echo "vm: $rel: no exit status from the guest (crash, panic or timeout)" >&2
	exit 98
fi
exit "$(cat "$state/rc")"
