#!/bin/sh
# Runs inside the VM (see scripts/demo.sh). Topology:
#
#   site-a                                        site-b
#   lvn0 192.168.77.1/30 fd77::1/64               lvn0 192.168.77.2/30 fd77::2/64
#     | ipudp FIXED, UDP 50000                      |
#   eth0 10.77.0.1/24 fd10:77::1/64 ---veth--- eth0 10.77.0.2/24 fd10:77::2/64
set -eu
lvn=".venv/bin/lvn"
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
cleanup() {
	ip netns del site-a 2>/dev/null || true
	ip netns del site-b 2>/dev/null || true
}
trap cleanup EXIT

insmod "$LVN_KMOD"
say "underlay: two sites joined by a veth pair"
ip netns add site-a
ip netns add site-b
ip link add eth0 netns site-a type veth peer name eth0 netns site-b
for s in a b; do
	n=1; [ $s = b ] && n=2
	ip -n site-$s link set lo up
	ip -n site-$s link set eth0 up
	ip -n site-$s addr add 10.77.0.$n/24 dev eth0
	ip -n site-$s addr add fd10:77::$n/64 dev eth0 nodad
done

say "overlay: one ipudp device per site, configured with the lvn CLI"
for s in a b; do
	n=1; peer=2; [ $s = b ] && n=2 && peer=1
	echo "+ lvn -n site-$s dev add lvn0"
	$lvn -n site-$s dev add lvn0
	echo "+ lvn -n site-$s tunnel set lvn0 --remote 10.77.0.$peer --local 10.77.0.$n"
	$lvn -n site-$s tunnel set lvn0 --remote 10.77.0.$peer --local 10.77.0.$n
	ip -n site-$s addr add 192.168.77.$n/30 dev lvn0
	ip -n site-$s addr add fd77::$n/64 dev lvn0 nodad
	ip -n site-$s link set lvn0 up
done

say "IPv4 through the tunnel"
ip netns exec site-a ping -c 3 -i 0.2 192.168.77.2
say "IPv6 through the same tunnel"
ip netns exec site-a ping -c 3 -i 0.2 fd77::2

say "TCP throughput through the tunnel (iperf3, 3 s)"
ip netns exec site-b iperf3 -s -1 -D -B 192.168.77.2 >/dev/null
sleep 0.5
ip netns exec site-a iperf3 -c 192.168.77.2 -t 3 -f m | grep -E 'sender|receiver'

say "status: lvn show (site-a)"
$lvn -n site-a show
say "status: lvn -j show (site-b)"
$lvn -n site-b -j show
say "the same tunnel, now with an IPv6 outer header"
$lvn -n site-a tunnel set lvn0 --remote fd10:77::2 --replace
$lvn -n site-b tunnel set lvn0 --remote fd10:77::1 --replace
ip netns exec site-a ping -c 2 -i 0.2 192.168.77.2
ip netns exec site-a ping -c 2 -i 0.2 fd77::2
$lvn -n site-a show
say "demo finished: L-VN carried IPv4 and IPv6 over IPv4 and IPv6 underlays"
