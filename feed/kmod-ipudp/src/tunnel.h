/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _IPUDP_TUNNEL_H
#define _IPUDP_TUNNEL_H

#include <linux/in6.h>
#include <linux/u64_stats_sync.h>
#include <net/dst_cache.h>

struct ipudp_dev;

struct ipudp_addr {
	sa_family_t family;		/* AF_INET or AF_INET6; 0: unset */
	union {
		__be32 v4;
		struct in6_addr v6;
	};
};

struct ipudp_tunnel_pcpu_stats {
	u64_stats_t rx_packets;
	u64_stats_t rx_bytes;
	u64_stats_t tx_packets;
	u64_stats_t tx_bytes;
	struct u64_stats_sync syncp;
};

struct ipudp_tunnel_stats {
	u64 rx_packets, rx_bytes, tx_packets, tx_bytes;
};

struct ipudp_tunnel {
	u32 id;
	struct ipudp_addr local;	/* optional outer source address */
	struct ipudp_addr remote;
	__be16 remote_port;
	struct dst_cache dst_cache;
	struct ipudp_tunnel_pcpu_stats __percpu *stats;
	unsigned long last_rx;		/* jiffies; 0: never */
	unsigned long last_tx;
	struct rcu_head rcu;
};

struct ipudp_tunnel *ipudp_tunnel_alloc(gfp_t gfp);
/* Free after an RCU grace period: readers may still hold it. */
void ipudp_tunnel_put_rcu(struct ipudp_tunnel *t);
void ipudp_tunnel_replace(struct ipudp_dev *ipd, struct ipudp_tunnel *t);
bool ipudp_tunnel_matches(const struct ipudp_tunnel *t,
			  const struct sk_buff *skb, __be16 sport);
void ipudp_tunnel_count_rx(struct ipudp_tunnel *t, unsigned int len);
void ipudp_tunnel_count_tx(struct ipudp_tunnel *t, unsigned int len);
void ipudp_tunnel_get_stats(const struct ipudp_tunnel *t,
			    struct ipudp_tunnel_stats *out);

#endif /* _IPUDP_TUNNEL_H */
