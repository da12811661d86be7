// SPDX-License-Identifier: GPL-2.0-only
/*
 * GRO of the outer datagrams. The underlay's UDP GRO hands a device
 * socket's datagrams to these hooks, which let the inner packet's own
 * offload merge them: a train of segments of one inner flow, arriving
 * from a NIC as MTU-sized datagrams, is decapsulated once (as FOU and
 * vxlan are). The inner packet is bare IPv4/IPv6, so its version picks
 * the offload, the one of IP-in-IP / IPv6-in-IP (the inner_ipproto the
 * transmit path sets for GSO). Control datagrams are never merged.
 */

#include <linux/ip.h>
#include <linux/udp.h>
#include <net/gro.h>
#include <net/protocol.h>

#include "gro.h"

/* The inner protocol of a payload starting with @first; 0: control. */
static u8 ipudp_gro_proto(u8 first)
{
	switch (first >> 4) {
	case 4:
		return IPPROTO_IPIP;
	case 6:
		return IPPROTO_IPV6;
	}
	return 0;
}

/* The offload of @proto under the outer family of @skb. RCU. */
static const struct net_offload *ipudp_gro_offload(const struct sk_buff *skb,
						   u8 proto)
{
	const struct net_offload __rcu **offloads;

	offloads = NAPI_GRO_CB(skb)->is_ipv6 ? inet6_offloads : inet_offloads;
	return rcu_dereference(offloads[proto]);
}

/* udp_gro_receive() pulled the UDP header: @skb's GRO offset is the payload. */
struct sk_buff *ipudp_gro_receive(struct sock *sk, struct list_head *head,
				  struct sk_buff *skb)
{
	unsigned int off = skb_gro_offset(skb);
	const struct net_offload *ops;
	const u8 *first;
	u8 proto = 0;

	first = skb_gro_header(skb, off + 1, off);
	if (first)
		proto = ipudp_gro_proto(*first);
	ops = proto ? ipudp_gro_offload(skb, proto) : NULL;
	if (!ops || !ops->callbacks.gro_receive) {
		/* not held for merging: up the stack as it is */
		NAPI_GRO_CB(skb)->flush = 1;
		return NULL;
	}
	/* The UDP header is this tunnel's, not a second IP-in-IP layer's:
	 * the inner offload may take it as the first encapsulation.
	 */
	NAPI_GRO_CB(skb)->encap_mark = 0;
	NAPI_GRO_CB(skb)->is_fou = 1;
	return call_gro_receive(ops->callbacks.gro_receive, head, skb);
}

/* @nhoff: the inner IP header of a packet ipudp_gro_receive() merged. */
int ipudp_gro_complete(struct sock *sk, struct sk_buff *skb, int nhoff)
{
	const struct net_offload *ops;
	int err = -EPROTONOSUPPORT;
	u8 proto;

	proto = ipudp_gro_proto(skb->data[nhoff]);
	rcu_read_lock();
	ops = proto ? ipudp_gro_offload(skb, proto) : NULL;
	if (ops && ops->callbacks.gro_complete) {
		err = ops->callbacks.gro_complete(skb, nhoff);
		skb_set_inner_mac_header(skb, nhoff);
	}
	rcu_read_unlock();
	return err;
}
