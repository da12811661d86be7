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
	for pid in ${agents:-}; do kill "$pid" 2>/dev/null || true; done
	for ns in site-a site-b hub nat home road; do ip netns del $ns 2>/dev/null || true; done
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
say "agents: a server, a MicroPython node behind NAT (home) and a CPython client (road)"
# hub (server) 10.88.0.1 --- nat 10.88.0.254 [masquerade] 192.168.88.1 --- home 192.168.88.2
# hub 10.89.0.1 --- road 10.89.0.2
for ns in hub nat home road; do ip netns add $ns; ip -n $ns link set lo up; done
ip link add ul0 netns hub type veth peer name wan netns nat
ip link add lan netns nat type veth peer name ul0 netns home
ip link add ul1 netns hub type veth peer name ul0 netns road
for l in "hub ul0 10.88.0.1/24" "hub ul1 10.89.0.1/24" "nat wan 10.88.0.254/24" \
	 "nat lan 192.168.88.1/24" "home ul0 192.168.88.2/24" "road ul0 10.89.0.2/24"; do
	# shellcheck disable=SC2086 # split the line into its fields
	set -- $l
	ip -n "$1" addr add "$3" dev "$2"
	ip -n "$1" link set "$2" up
done
ip -n home route add default via 192.168.88.1
ip netns exec nat sysctl -qw net.ipv4.ip_forward=1
# the hub routes between its clients (/etc/init.d/lvn does this for a server)
ip netns exec hub sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
ip netns exec nat nft 'add table ip nat; add chain ip nat post { type nat hook postrouting priority 100 ; }; add rule ip nat post oifname wan masquerade'
work=$(mktemp -d)
pki=$work/pki
echo "+ lvn pki init $pki; lvn pki issue --server $pki hub; lvn pki issue $pki home|road"
$lvn pki init "$pki" >/dev/null
$lvn pki issue --server "$pki" hub >/dev/null
for n in home road; do $lvn pki issue "$pki" $n >/dev/null; done
conf() {  # conf NAME ROLE SERVER
	mkdir -p "$work/$1"
	cat >"$work/$1/lvn" <<EOC
config agent 'agent'
	option enabled '1'
	option role '$2'
	option state_dir '$work/$1/state'
config $2 '$2'
	option ca '$pki/ca.pem'
	option cert '$pki/issued/$1.pem'
	option key '$pki/issued/$1.key'
EOC
	if [ "$2" = server ]; then
		printf "\toption pool4 '10.66.0.0/24'\n\toption pool6 'fd66::/64'\n" >>"$work/$1/lvn"
		printf "\toption keepalive '5'\n" >>"$work/$1/lvn"
	else
		printf "\toption server '%s'\n\toption server_name 'hub'\n" "$3" >>"$work/$1/lvn"
	fi
}
conf hub server
conf home client 10.88.0.1
conf road client 10.89.0.1
echo "+ /etc/config/lvn of the home client:"
sed 's/^/    /' "$work/home/lvn"
agents=""
for n in hub road; do
	ip netns exec $n $lvn agent -c "$work/$n" --state "$work/$n/static.json" \
		>"$work/$n/log" 2>&1 &
	agents="$agents $!"
done
# the node's agent: MicroPython (the unix port) in a 1 MiB heap, as on a router
# (on a router: /usr/sbin/lvn-node from the lvn package, started by procd)
node() { MICROPYPATH=".frozen:$PWD" ip netns exec home .venv/bin/micropython -X heapsize=1M \
	-m lvn.node "$@"; }
echo "+ micropython -X heapsize=1M -m lvn.node --control $work/home/control.sock $work/home/lvn"
node --control "$work/home/control.sock" "$work/home/lvn" >"$work/home/log" 2>&1 &
agents="$agents $!"
joined() { $lvn -n home -j status -c "$work/home" 2>/dev/null | grep -q '"state": "up"' &&
	   $lvn -n road -j status -c "$work/road" 2>/dev/null | grep -q '"state": "up"'; }
i=0
until joined; do
	i=$((i + 1))
	if [ $i -gt 120 ]; then cat "$work"/*/log; echo "clients did not join" >&2; exit 1; fi
	sleep 1
done
say "lvn status on the server: both clients, home's endpoint is the NAT's public address"
$lvn -n hub status -c "$work/hub"
say "lvn status on the clients"
$lvn -n home status -c "$work/home"
$lvn -n road status -c "$work/road"
road4=$($lvn -n road -j status -c "$work/road" | python3 -c 'import json,sys; print(json.load(sys.stdin)["peers"][0]["addresses"][0].split("/")[0])')
say "the node's lvn ubus object, as rpcd's plugin reaches it: lvn-node status"
node status --control "$work/home/control.sock" | python3 -m json.tool
say "home -> server overlay address, and home -> road through the server"
ip netns exec home ping -c 2 -i 0.3 10.66.0.1
ip netns exec home ping -c 2 -i 0.3 "$road4"
ip netns exec home ping -6 -c 2 -i 0.3 fd66::1
say "the server's agent log"
sed 's/^/    /' "$work/hub/log"
say "the MicroPython node's log"
sed 's/^/    /' "$work/home/log"
rm -rf "$work"
say "demo finished: L-VN carried IPv4 and IPv6 over IPv4 and IPv6 underlays, and the agents joined two clients (a MicroPython node behind NAT) automatically"
