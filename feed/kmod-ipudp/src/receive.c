// SPDX-License-Identifier: GPL-2.0-only
/*
 * The receive path: a UDP datagram on a device's socket becomes the inner
 * packet of the tunnel it came from, or stays a control datagram for the
 * socket's owner.
 *
 * Wire format: outer IPv4|IPv6 | UDP | inner IPv4|IPv6 packet. A payload
 * whose first nibble is not 4 or 6 is control traffic if it starts with
 * the control prefix, else malformed.
 */

#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <net/dsfield.h>
#include <net/inet_ecn.h>
#include <net/ip_tunnels.h>
#include <net/udp.h>
#include <uapi/linux/ipudp.h>

#include "device.h"
#include "netlink.h"
#include "receive.h"
#include "tunnel.h"

/* Is @skb's payload after the UDP header an inner IP packet? */
static bool ipudp_payload_is_ip(struct sk_buff *skb)
{
	u8 version;

	if (!pskb_may_pull(skb, sizeof(struct udphdr) + 1))
		return false;
	version = skb->data[sizeof(struct udphdr)] >> 4;
	return version == 4 || version == 6;
}

/*
 * Is @skb's payload after the UDP header an L-VN control datagram: the
 * prefix (four 0xff bytes), at most IPUDP_CONTROL_MAX_LEN bytes in all?
 */
static bool ipudp_payload_is_control(struct sk_buff *skb)
{
	static const u8 prefix[IPUDP_CONTROL_PREFIX_LEN] = { 0xff, 0xff, 0xff, 0xff };
	unsigned int len = skb->len - sizeof(struct udphdr);

	return len >= IPUDP_CONTROL_PREFIX_LEN && len <= IPUDP_CONTROL_MAX_LEN &&
	       pskb_may_pull(skb, sizeof(struct udphdr) + IPUDP_CONTROL_PREFIX_LEN) &&
	       !memcmp(skb->data + sizeof(struct udphdr), prefix, sizeof(prefix));
}

/* Point the network header at the inner packet and check it is whole. */
static bool ipudp_pull_inner(struct sk_buff *skb, __be16 *proto)
{
	u8 version = skb->data[0] >> 4;

	skb_reset_network_header(skb);
	if (version == 4) {
		*proto = htons(ETH_P_IP);
		return pskb_may_pull(skb, sizeof(struct iphdr)) &&
		       ip_hdr(skb)->ihl >= 5;
	}
	*proto = htons(ETH_P_IPV6);
	return pskb_may_pull(skb, sizeof(struct ipv6hdr));
}

/* The DS field of the IP header at the network header. */
static u8 ipudp_dsfield(struct sk_buff *skb)
{
	if (ip_hdr(skb)->version == 4)
		return ip_hdr(skb)->tos;
	return ipv6_get_dsfield(ipv6_hdr(skb));
}

/*
 * GRO merges inner TCP segments; any other inner packet would only pay for
 * it: with a UDP tunnel socket open, udp_gro_receive() looks up the inner
 * packet's socket too. Those go straight to the backlog.
 */
static void ipudp_deliver(struct ipudp_dev *ipd, struct sk_buff *skb)
{
	u8 proto;

	if (ip_hdr(skb)->version == 4)
		proto = ip_hdr(skb)->protocol;
	else
		proto = ipv6_hdr(skb)->nexthdr;
	if (proto == IPPROTO_TCP)
		gro_cells_receive(&ipd->gro_cells, skb);
	else if (netif_rx(skb) == NET_RX_DROP)
		DEV_STATS_INC(ipd->dev, rx_dropped);
}

/*
 * The encap_rcv hook of the device's UDP sockets: decapsulate a data packet
 * of a known tunnel, leave control traffic to the socket. 0: consumed;
 * 1: the socket receives @skb as a datagram.
 */
int ipudp_encap_recv(struct sock *sk, struct sk_buff *skb)
{
	struct ipudp_tunnel *t;
	struct ipudp_dev *ipd;
	struct net_device *dev;
	__be16 sport, proto;
	unsigned int len;
	u8 outer_ds;

	ipd = rcu_dereference_sk_user_data(sk);
	if (unlikely(!ipd))
		return 1;
	dev = ipd->dev;

	if (!ipudp_payload_is_ip(skb)) {
		/* Junk never reaches the socket's owner: a flood of it costs
		 * the agent nothing.
		 */
		if (!ipudp_payload_is_control(skb))
			goto malformed;
		/* Control traffic: a userspace socket's owner reads it, also
		 * after IPUDP_A_RETURN_FD retired the socket.
		 */
		if (!sk->sk_kern_sock)
			return 1;
		atomic64_inc(&ipd->drops.rx_control_dropped);
		goto drop;
	}

	sport = udp_hdr(skb)->source;
	outer_ds = ipudp_dsfield(skb);
	t = ipudp_tunnel_by_endpoint(ipd, skb, sport);
	if (unlikely(!t)) {
		atomic64_inc(&ipd->drops.rx_unknown_endpoint);
		DEV_STATS_INC(dev, rx_dropped);
		goto drop;
	}

	if (iptunnel_pull_header(skb, sizeof(struct udphdr), htons(ETH_P_IP),
				 !net_eq(sock_net(sk), dev_net(dev))) ||
	    !ipudp_pull_inner(skb, &proto)) {
		atomic64_inc(&t->rx_malformed);
		goto malformed;
	}
	if (unlikely(!ipudp_tunnel_source_ok(ipd, t, skb))) {
		atomic64_inc(&t->rx_spoofed);
		atomic64_inc(&ipd->drops.rx_spoofed);
		DEV_STATS_INC(dev, rx_dropped);
		goto drop;
	}
	skb->protocol = proto;
	/* RFC 6040: CE on the outer header is kept; on a not-ECT inner
	 * packet it cannot be, and the packet goes (as ip_tunnel_rcv does).
	 */
	if (unlikely(INET_ECN_decapsulate(skb, outer_ds, ipudp_dsfield(skb)) > 1)) {
		DEV_STATS_INC(dev, rx_frame_errors);
		DEV_STATS_INC(dev, rx_errors);
		goto drop;
	}
	skb_reset_mac_header(skb);
	skb->dev = dev;

	len = skb->len;
	if (ipudp_tunnel_count_rx(t, len, READ_ONCE(ipd->idle_jiffies)))
		ipudp_notify_tunnel(ipd, t, IPUDP_CMD_TUNNEL_ACTIVE, 0, GFP_ATOMIC);
	dev_sw_netstats_rx_add(dev, len);
	ipudp_deliver(ipd, skb);
	return 0;

malformed:
	atomic64_inc(&ipd->drops.rx_malformed);
	DEV_STATS_INC(dev, rx_errors);
drop:
	kfree_skb(skb);
	return 0;
}
