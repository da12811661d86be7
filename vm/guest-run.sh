#!/bin/sh
# Runs inside the VM after switch_root: finish the mounts, load the modules,
# run the command from the state dir, record its exit code and the kernel
# log on the work share, power off.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# PYTHONFAULTHANDLER: a Python killed by SIGILL/SIGSEGV prints where it was;
# PYTHONUNBUFFERED: pytest's progress reaches the console as it happens
export HOME=/root PYTHONDONTWRITEBYTECODE=1 PYTHONFAULTHANDLER=1 PYTHONUNBUFFERED=1 LVN_IN_VM=1
mount -t proc proc /proc
mount -t sysfs sysfs /sys
work=$(sed -n 's/.*lvn\.work=\([^ ]*\).*/\1/p' /proc/cmdline)
state=$(sed -n 's/.*lvn\.state=\([^ ]*\).*/\1/p' /proc/cmdline)
# Fresh tmpfs only where it cannot hide the work tree.
for d in /run /tmp; do
	case "$work/" in "$d"/*) continue ;; esac
	mount -t tmpfs tmpfs "$d"
done
mkdir -p /dev/pts /dev/shm /run/netns
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
ip link set lo up
hostname lvn-vm

rel=$(uname -r)
echo "vm: kernel $rel, $(nproc) cpus"
if [ -d "/lib/modules/$rel" ]; then
	for m in udp_tunnel ip6_udp_tunnel veth dummy; do
		modprobe "$m" || echo "vm: modprobe $m failed"
	done
fi
export LVN_KMOD="$work/build/kmod/$rel/ipudp.ko"

# Keep the static keys that the tests would flip all day on for the whole
# boot: each flip patches kernel text, and qemu's multi-threaded TCG has let
# a vCPU run a stale int3 of such a patch (Oops: int3 in netif_rx_internal,
# the timestamp key every ping flips, 2026-12-07; in ip_rcv, the netfilter
# hook keys every nftables table flips, 2026-12-06).  Not ipudp's code.
python3 -c 'import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, 29, 1)  # SO_TIMESTAMP (asm-generic, x86)
time.sleep(10 ** 9)' &
if command -v nft >/dev/null; then
	nft -f - <<'EOF' || echo "vm: pinning the netfilter hook keys failed"
table inet lvn_vm_pin {
	chain p_pre { type filter hook prerouting priority 0; }
	chain p_in { type filter hook input priority 0; }
	chain p_fwd { type filter hook forward priority 0; }
	chain p_out { type filter hook output priority 0; }
	chain p_post { type filter hook postrouting priority 0; }
}
EOF
fi

cd "$work" || exit 1
echo "vm: command starts at $(cut -d' ' -f1 /proc/uptime) s uptime"
echo "lvn-vm: command starts" >/dev/kmsg
: >"$state/started"
sh "$state/cmd.sh"
rc=$?

# Leak check (debug kernels): unload, scan twice, fail on reports that
# name one of the modules in lvn.leakcheck= (comma-separated).
leakcheck=$(sed -n 's/.*lvn\.leakcheck=\([^ ]*\).*/\1/p' /proc/cmdline)
if [ -n "$leakcheck" ] && [ -e /sys/kernel/debug/kmemleak ]; then
	ranges=""
	for m in $(echo "$leakcheck" | tr , ' '); do
		r=$(awk -v m="$m" '$1 == m { print m ":" $6 ":" $2 }' /proc/modules)
		ranges="$ranges $r"
		rmmod "$m" 2>/dev/null
	done
	echo "vm: kmemleak scan (modules:$ranges)"
	# Objects younger than 5 s are not reported: scan, wait, scan again.
	echo scan >/sys/kernel/debug/kmemleak
	sleep 6
	echo scan >/sys/kernel/debug/kmemleak
	sleep 1
	cat /sys/kernel/debug/kmemleak >"$state/kmemleak.txt"
	# shellcheck disable=SC2086 # one word per module
	if ! python3 "$work/vm/kmemleak_match.py" "$state/kmemleak.txt" $ranges \
		>"$state/kmemleak-bad.txt"; then
		echo "vm: kmemleak reports leaks in $leakcheck:"
		cat "$state/kmemleak-bad.txt"
		[ "$rc" -ne 0 ] || rc=97
	fi
fi

# Any kernel warning once the command started fails the run ("taints
# kernel" from loading an out-of-tree module is expected and not matched).
# Reports from the boot itself, before anything of ours ran, are shown but
# do not count: the debug kernel under TCG sometimes reports one there.
dmesg >"$state/dmesg.txt"
bad='WARNING:|BUG:|Oops|unregister_netdevice: waiting|dst_release underflow|KASAN|UBSAN|ODEBUG|general protection|suspicious RCU|possible circular locking|possible recursive locking|inconsistent lock state|refcount_t:'
if sed '/lvn-vm: command starts/q' "$state/dmesg.txt" | grep -E "$bad" >"$state/dmesg-boot.txt"; then
	echo "vm: note: the kernel reported problems while booting, before the tests:"
	cat "$state/dmesg-boot.txt"
fi
if sed '1,/lvn-vm: command starts/d' "$state/dmesg.txt" | grep -E "$bad" >"$state/dmesg-bad.txt"; then
	echo "vm: kernel log shows problems:"
	cat "$state/dmesg-bad.txt"
	[ "$rc" -ne 0 ] || rc=99
fi
echo "$rc" >"$state/rc"
sync
echo o >/proc/sysrq-trigger
# PID 1 must not exit before the power-off completes (no external commands:
# the 9p root may already be gone).
while :; do :; done
