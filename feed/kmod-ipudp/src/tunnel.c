// SPDX-License-Identifier: GPL-2.0
/* Tunnel objects: endpoints, per-CPU counters, RCU lifetime. */

#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/rtnetlink.h>
#include <linux/slab.h>

#include "device.h"
#include "tunnel.h"

struct ipudp_tunnel *ipudp_tunnel_alloc(gfp_t gfp)
{
	struct ipudp_tunnel *t;

	t = kzalloc(sizeof(*t), gfp);
	if (!t)
		return NULL;
	t->stats = netdev_alloc_pcpu_stats(struct ipudp_tunnel_pcpu_stats);
	if (!t->stats)
		goto err_free_tunnel;
	if (dst_cache_init(&t->dst_cache, gfp))
		goto err_free_stats;
	return t;

err_free_stats:
	free_percpu(t->stats);
err_free_tunnel:
	kfree(t);
	return NULL;
}

static void ipudp_tunnel_free_rcu(struct rcu_head *head)
{
	struct ipudp_tunnel *t = container_of(head, struct ipudp_tunnel, rcu);

	dst_cache_destroy(&t->dst_cache);
	free_percpu(t->stats);
	kfree(t);
}

void ipudp_tunnel_put_rcu(struct ipudp_tunnel *t)
{
	if (t)
		call_rcu(&t->rcu, ipudp_tunnel_free_rcu);
}

/* Install @t (may be NULL) as the device's tunnel. Caller holds rtnl. */
void ipudp_tunnel_replace(struct ipudp_dev *ipd, struct ipudp_tunnel *t)
{
	struct ipudp_tunnel *old;

	old = rtnl_dereference(ipd->tunnel);
	rcu_assign_pointer(ipd->tunnel, t);
	if (old)
		pr_debug("%s: tunnel %u destroyed\n", ipd->dev->name, old->id);
	if (t)
		pr_debug("%s: tunnel %u created\n", ipd->dev->name, t->id);
	ipudp_tunnel_put_rcu(old);
}

/* Is the outer source of @skb (network header set) this tunnel's remote? */
bool ipudp_tunnel_matches(const struct ipudp_tunnel *t,
			  const struct sk_buff *skb, __be16 sport)
{
	if (t->remote_port != sport)
		return false;
	if (ip_hdr(skb)->version == 4)
		return t->remote.family == AF_INET &&
		       t->remote.v4 == ip_hdr(skb)->saddr;
	return t->remote.family == AF_INET6 &&
	       ipv6_addr_equal(&t->remote.v6, &ipv6_hdr(skb)->saddr);
}

static void ipudp_count(struct ipudp_tunnel *t, unsigned long *stamp,
			bool rx, unsigned int len)
{
	struct ipudp_tunnel_pcpu_stats *s = this_cpu_ptr(t->stats);
	unsigned long now = jiffies;

	u64_stats_update_begin(&s->syncp);
	u64_stats_inc(rx ? &s->rx_packets : &s->tx_packets);
	u64_stats_add(rx ? &s->rx_bytes : &s->tx_bytes, len);
	u64_stats_update_end(&s->syncp);
	/* Avoid dirtying the cache line more than once a jiffy. */
	if (READ_ONCE(*stamp) != now)
		WRITE_ONCE(*stamp, now);
}

void ipudp_tunnel_count_rx(struct ipudp_tunnel *t, unsigned int len)
{
	ipudp_count(t, &t->last_rx, true, len);
}

void ipudp_tunnel_count_tx(struct ipudp_tunnel *t, unsigned int len)
{
	ipudp_count(t, &t->last_tx, false, len);
}

void ipudp_tunnel_get_stats(const struct ipudp_tunnel *t,
			    struct ipudp_tunnel_stats *out)
{
	int cpu;

	memset(out, 0, sizeof(*out));
	for_each_possible_cpu(cpu) {
		const struct ipudp_tunnel_pcpu_stats *s = per_cpu_ptr(t->stats, cpu);
		u64 rxp, rxb, txp, txb;
		unsigned int start;

		do {
			start = u64_stats_fetch_begin(&s->syncp);
			rxp = u64_stats_read(&s->rx_packets);
			rxb = u64_stats_read(&s->rx_bytes);
			txp = u64_stats_read(&s->tx_packets);
			txb = u64_stats_read(&s->tx_bytes);
		} while (u64_stats_fetch_retry(&s->syncp, start));
		out->rx_packets += rxp;
		out->rx_bytes += rxb;
		out->tx_packets += txp;
		out->tx_bytes += txb;
	}
}
