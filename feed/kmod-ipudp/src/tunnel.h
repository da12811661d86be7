/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef _IPUDP_TUNNEL_H
#define _IPUDP_TUNNEL_H

#include <linux/workqueue.h>
#include <linux/in6.h>
#include <linux/rhashtable-types.h>
#include <linux/u64_stats_sync.h>
#include <net/dst_cache.h>

struct ipudp_dev;
struct netlink_ext_ack;

/* An outer address and port; the whole struct is the hash key. */
struct ipudp_endpoint {
	union {
		__be32 v4;
		struct in6_addr v6;
	} addr;
	__be16 port;
	u16 family;			/* AF_INET or AF_INET6; 0: unset */
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

/*
 * Where a tunnel's packets go, and the route there. Set up whole, then
 * published; a move publishes a new one and frees the old after a grace
 * period, so a reader sees one endpoint and the route cached for it.
 */
struct ipudp_path {
	struct ipudp_endpoint remote;	/* key of ipudp_dev.endpoints */
	struct ipudp_endpoint local;	/* optional outer source address */
	struct rhash_head hash_node;
	struct dst_cache dst_cache;
	struct ipudp_tunnel *tunnel;
	struct rcu_head rcu;
};

/* What a request asks a tunnel to be (netlink). */
struct ipudp_tunnel_spec {
	u32 id;
	struct ipudp_endpoint remote;
	struct ipudp_endpoint local;
	u16 keepalive;			/* seconds, 0: off */
};

/* A tunnel lives as long as it is configured: a move changes its path only. */
struct ipudp_tunnel {
	u32 id;
	struct ipudp_path __rcu *path;
	struct ipudp_tunnel_pcpu_stats __percpu *stats;
	atomic64_t rx_spoofed;		/* inner source not allowed */
	atomic64_t rx_malformed;
	unsigned long last_rx;		/* jiffies; 0: never */
	unsigned long last_tx;
	struct list_head rules;		/* destination prefixes, rtnl */
	struct list_head sources;	/* allowed inner sources, rtnl */
	struct ipudp_dev *ipd;
	u16 keepalive;			/* seconds, 0: off */
	struct delayed_work keepalive_work;
	struct rcu_head rcu;
};

extern const struct rhashtable_params ipudp_endpoint_params;

int ipudp_tunnel_cache_init(void);
void ipudp_tunnel_cache_destroy(void);
struct ipudp_tunnel *ipudp_tunnel_alloc(gfp_t gfp);
void ipudp_tunnel_free(struct ipudp_tunnel *t);
int ipudp_tunnel_set(struct ipudp_dev *ipd, const struct ipudp_tunnel_spec *spec,
		     bool replace, struct ipudp_tunnel **out,
		     struct netlink_ext_ack *extack);
struct ipudp_path *ipudp_tunnel_path(const struct ipudp_tunnel *t);
int ipudp_tunnel_del(struct ipudp_dev *ipd, u32 id);
void ipudp_tunnel_del_all(struct ipudp_dev *ipd);
void ipudp_tunnel_reset_routes(struct ipudp_dev *ipd);
struct ipudp_tunnel *ipudp_tunnel_by_endpoint(struct ipudp_dev *ipd,
					      const struct sk_buff *skb,
					      __be16 sport);
bool ipudp_tunnel_source_ok(struct ipudp_dev *ipd, struct ipudp_tunnel *t,
			    const struct sk_buff *skb);
bool ipudp_tunnel_count_rx(struct ipudp_tunnel *t, unsigned int len,
			   unsigned long idle);
void ipudp_tunnel_count_tx(struct ipudp_tunnel *t, unsigned int len);
void ipudp_tunnel_get_stats(const struct ipudp_tunnel *t,
			    struct ipudp_tunnel_stats *out);

#endif /* _IPUDP_TUNNEL_H */
