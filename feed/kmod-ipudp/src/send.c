// SPDX-License-Identifier: GPL-2.0-only
/*
 * The transmit path: an inner packet (or a keepalive) encapsulated in UDP
 * and sent to its tunnel's remote over the IPv4 or IPv6 underlay.
 */

#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <net/dsfield.h>
#include <net/dst_cache.h>
#include <net/icmp.h>
#include <net/inet_ecn.h>
#include <net/ip6_route.h>
#include <net/ip_tunnels.h>
#include <net/ipv6.h>
#include <net/ipv6_stubs.h>
#include <net/route.h>
#include <net/udp_tunnel.h>

#include "device.h"
#include "send.h"
#include "socket.h"
#include "tunnel.h"

/* Outer TOS / traffic class: the inner DSCP, ECN as INET_ECN_encapsulate. */
static u8 ipudp_outer_tos(const struct sk_buff *skb)
{
	u8 dsfield;

	if (skb->protocol == htons(ETH_P_IP))
		dsfield = ip_hdr(skb)->tos;
	else
		dsfield = ipv6_get_dsfield(ipv6_hdr(skb));
	return ip_tunnel_ecn_encap(dsfield & ~INET_ECN_MASK, ip_hdr(skb), skb);
}

/*
 * Room for the outer headers, and checksum/GSO state for a UDP tunnel
 * carrying a bare IP packet: segmentation then runs over the inner IP
 * header (inet/inet6 offloads of IPPROTO_IPIP/IPV6, as for FOU).
 */
static int ipudp_prepare_skb(struct sk_buff *skb, const struct dst_entry *dst,
			     unsigned int outer_len, bool outer6)
{
	if (skb_cow_head(skb, LL_RESERVED_SPACE(dst->dev) + dst->header_len +
			 outer_len + sizeof(struct udphdr)))
		return -ENOMEM;
	skb_set_inner_ipproto(skb, skb->protocol == htons(ETH_P_IP) ?
			      IPPROTO_IPIP : IPPROTO_IPV6);
	return iptunnel_handle_offloads(skb, SKB_GSO_UDP_TUNNEL_CSUM |
					(outer6 ? SKB_GSO_IPXIP6 : SKB_GSO_IPXIP4));
}

/*
 * Path MTU for the inner packet: the outer route's MTU minus our headers.
 * A packet that must not be fragmented and does not fit gets the ICMP error
 * a router would send, and the inner route learns the MTU, so senders adapt
 * instead of losing packets in a black hole. *@df: set DF on the outer
 * packet (inner IPv4 with DF, or inner IPv6). Returns -EMSGSIZE to drop.
 */
static int ipudp_pmtu(struct ipudp_dev *ipd, struct sk_buff *skb,
		      struct dst_entry *dst, unsigned int overhead, bool *df)
{
	bool inner4 = skb->protocol == htons(ETH_P_IP);
	int mtu = (int)dst_mtu(dst) - (int)overhead;

	*df = inner4 ? !!(ip_hdr(skb)->frag_off & htons(IP_DF)) : true;
	if (!inner4 && mtu < IPV6_MIN_MTU) {
		/* IPv6 cannot be told less than 1280: fragment the outer. */
		*df = false;
		return 0;
	}
	if (!*df || mtu < IPV4_MIN_MTU)
		return 0;
	if (skb_is_gso(skb) ? skb_gso_validate_network_len(skb, mtu) :
	    skb->len <= mtu)
		return 0;
	atomic64_inc(&ipd->drops.tx_too_big);
	skb_dst_update_pmtu_no_confirm(skb, mtu);
	if (inner4)
		icmp_ndo_send(skb, ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, htonl(mtu));
	else
		icmpv6_ndo_send(skb, ICMPV6_PKT_TOOBIG, 0, mtu);
	return -EMSGSIZE;
}

/*
 * The outer route along @path from @sk, from the path's cache or looked up
 * and cached; *@saddr: the outer source (in: the path's, if set). BH off.
 * -ELOOP: the route leads back into the device.
 */
static struct rtable *ipudp_route4(struct ipudp_dev *ipd, struct ipudp_path *path,
				   struct sock *sk, __be32 *saddr)
{
	struct flowi4 fl4 = {
		.daddr = path->remote.addr.v4,
		.saddr = *saddr,
		.flowi4_proto = IPPROTO_UDP,
		.fl4_sport = inet_sk(sk)->inet_sport,
		.fl4_dport = path->remote.port,
	};
	struct rtable *rt;

	rt = dst_cache_get_ip4(&path->dst_cache, saddr);
	if (rt)
		return rt;
	rt = ip_route_output_key(sock_net(sk), &fl4);
	if (IS_ERR(rt))
		return rt;
	if (rt->dst.dev == ipd->dev) {
		ip_rt_put(rt);
		return ERR_PTR(-ELOOP);
	}
	dst_cache_set_ip4(&path->dst_cache, &rt->dst, fl4.saddr);
	*saddr = fl4.saddr;
	return rt;
}

#if IS_ENABLED(CONFIG_IPV6)
static struct dst_entry *ipudp_route6(struct ipudp_dev *ipd,
				      struct ipudp_path *path, struct sock *sk,
				      struct in6_addr *saddr)
{
	struct flowi6 fl6 = {
		.daddr = path->remote.addr.v6,
		.saddr = *saddr,
		.flowi6_proto = IPPROTO_UDP,
		.fl6_sport = inet_sk(sk)->inet_sport,
		.fl6_dport = path->remote.port,
	};
	struct dst_entry *dst;

	dst = dst_cache_get_ip6(&path->dst_cache, saddr);
	if (dst)
		return dst;
	dst = ipv6_stub->ipv6_dst_lookup_flow(sock_net(sk), sk, &fl6, NULL);
	if (IS_ERR(dst))
		return dst;
	if (dst->dev == ipd->dev) {
		dst_release(dst);
		return ERR_PTR(-ELOOP);
	}
	dst_cache_set_ip6(&path->dst_cache, dst, &fl6.saddr);
	*saddr = fl6.saddr;
	return dst;
}
#endif

/*
 * Encapsulating send over an IPv4 / IPv6 underlay. @control: @skb holds a
 * control datagram (keepalive), not an inner IP packet: no PMTU, no GSO.
 */
static int ipudp_send4(struct ipudp_dev *ipd, struct ipudp_path *path,
		       struct sock *sk, struct sk_buff *skb, bool control)
{
	__be32 saddr = path->local.addr.v4;
	struct rtable *rt;
	bool df = false;
	int err;
	u8 tos;

	rt = ipudp_route4(ipd, path, sk, &saddr);
	if (IS_ERR(rt))
		return PTR_ERR(rt);
	err = control ? 0 : ipudp_pmtu(ipd, skb, &rt->dst, IPUDP_OVERHEAD4, &df);
	if (!err && !control)
		err = ipudp_prepare_skb(skb, &rt->dst, sizeof(struct iphdr), false);
	if (err) {
		ip_rt_put(rt);
		return err;
	}
	tos = control ? 0 : ipudp_outer_tos(skb);
	udp_tunnel_xmit_skb(rt, sk, skb, saddr, path->remote.addr.v4, tos,
			    ip4_dst_hoplimit(&rt->dst), df ? htons(IP_DF) : 0,
			    inet_sk(sk)->inet_sport, path->remote.port,
			    !net_eq(sock_net(sk), dev_net(ipd->dev)), false);
	return 0;
}

#if IS_ENABLED(CONFIG_IPV6)
static int ipudp_send6(struct ipudp_dev *ipd, struct ipudp_path *path,
		       struct sock *sk, struct sk_buff *skb, bool control)
{
	struct in6_addr saddr = {};
	struct dst_entry *dst;
	bool df = false;
	int err;
	u8 prio;

	if (path->local.family == AF_INET6)
		saddr = path->local.addr.v6;
	dst = ipudp_route6(ipd, path, sk, &saddr);
	if (IS_ERR(dst))
		return PTR_ERR(dst);
	err = control ? 0 : ipudp_pmtu(ipd, skb, dst, IPUDP_OVERHEAD6, &df);
	if (!err && !control)
		err = ipudp_prepare_skb(skb, dst, sizeof(struct ipv6hdr), true);
	if (err) {
		dst_release(dst);
		return err;
	}
	prio = control ? 0 : ipudp_outer_tos(skb);
	/* Drop the inner route and, across netns, the skb's state, before
	 * udp_tunnel6_xmit_skb() sets the outer route (as vxlan, geneve do).
	 */
	skb_scrub_packet(skb, !net_eq(sock_net(sk), dev_net(ipd->dev)));
	/* IPv6 routers never fragment: only we may, when DF is off. */
	skb->ignore_df = !df;
	udp_tunnel6_xmit_skb(dst, sk, skb, ipd->dev, &saddr, &path->remote.addr.v6,
			     prio, ip6_dst_hoplimit(dst), 0,
			     inet_sk(sk)->inet_sport, path->remote.port, false);
	return 0;
}
#endif

/* BH off, in an RCU read-side section: @t's path stays while we use it. */
static int ipudp_send(struct ipudp_dev *ipd, struct ipudp_tunnel *t,
		      struct sk_buff *skb, bool control)
{
	struct ipudp_path *path = rcu_dereference_bh(t->path);
	struct sock *sk;

	sk = rcu_dereference_bh(ipd->sk[ipudp_sk_index(path->remote.family)]);
	if (unlikely(!sk))
		return -ENOTCONN;
	if (path->remote.family == AF_INET)
		return ipudp_send4(ipd, path, sk, skb, control);
#if IS_ENABLED(CONFIG_IPV6)
	return ipudp_send6(ipd, path, sk, skb, control);
#else
	return -EAFNOSUPPORT;
#endif
}

/* Encapsulate and send @skb to @t. Consumes @skb only on success. */
int ipudp_send_data(struct ipudp_dev *ipd, struct ipudp_tunnel *t,
		    struct sk_buff *skb)
{
	return ipudp_send(ipd, t, skb, false);
}

/*
 * Send the keepalive control datagram (0xFFFFFFFF, docs/wire-format.md) to
 * @t from the device's socket, so NAT bindings on the way stay open.
 * Process context (the tunnel's keepalive work).
 */
void ipudp_send_keepalive(struct ipudp_dev *ipd, struct ipudp_tunnel *t)
{
	struct sk_buff *skb;

	skb = alloc_skb(IPUDP_HEADROOM + sizeof(__be32), GFP_KERNEL);
	if (!skb)
		return;
	skb_reserve(skb, IPUDP_HEADROOM);
	memset(skb_put(skb, sizeof(__be32)), 0xFF, sizeof(__be32));
	skb_reset_network_header(skb);
	rcu_read_lock_bh();
	if (ipudp_send(ipd, t, skb, true))
		kfree_skb(skb);
	rcu_read_unlock_bh();
}

/*
 * The inner MTU that fits the underlay path to @t right now: the outer
 * route's MTU minus our headers. Called under rtnl when a tunnel is set;
 * the route it finds is the one sending will use (and is cached for it).
 */
int ipudp_send_path_mtu(struct ipudp_dev *ipd, struct ipudp_tunnel *t)
{
	struct ipudp_path *path;
	struct dst_entry *dst;
	struct sock *sk;
	bool v4;
	int mtu;

	rcu_read_lock_bh();
	path = rcu_dereference_bh(t->path);
	v4 = path->remote.family == AF_INET;
	sk = rcu_dereference_bh(ipd->sk[ipudp_sk_index(path->remote.family)]);
	if (!sk) {
		dst = ERR_PTR(-ENOTCONN);
	} else if (v4) {
		__be32 saddr = path->local.addr.v4;
		struct rtable *rt = ipudp_route4(ipd, path, sk, &saddr);

		dst = IS_ERR(rt) ? ERR_CAST(rt) : &rt->dst;
	} else {
#if IS_ENABLED(CONFIG_IPV6)
		struct in6_addr saddr = {};

		if (path->local.family == AF_INET6)
			saddr = path->local.addr.v6;
		dst = ipudp_route6(ipd, path, sk, &saddr);
#else
		dst = ERR_PTR(-EAFNOSUPPORT);
#endif
	}
	rcu_read_unlock_bh();
	if (IS_ERR(dst))
		return PTR_ERR(dst);
	mtu = (int)dst_mtu(dst) - (int)(v4 ? IPUDP_OVERHEAD4 : IPUDP_OVERHEAD6);
	dst_release(dst);
	return mtu;
}
