// SPDX-License-Identifier: GPL-2.0-only
/*
 * Tunnel objects and a device's tunnel table: by id in an xarray (for
 * netlink), by remote endpoint in an rhashtable (for the receive path).
 * Readers use RCU; writers hold rtnl.
 */

#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/rhashtable.h>
#include <linux/rtnetlink.h>
#include <linux/slab.h>
#include <uapi/linux/ipudp.h>

#include "device.h"
#include "netlink.h"
#include "send.h"
#include "tunnel.h"

const struct rhashtable_params ipudp_endpoint_params = {
	.key_len = sizeof(struct ipudp_endpoint),
	.key_offset = offsetof(struct ipudp_tunnel, remote),
	.head_offset = offsetof(struct ipudp_tunnel, hash_node),
	.automatic_shrinking = true,
};

static void ipudp_keepalive_work(struct work_struct *work);

/*
 * A cache of its own: struct ipudp_tunnel is a little over 256 bytes, so
 * kmalloc would put every tunnel in a 512-byte object.
 */
static struct kmem_cache *ipudp_tunnel_cache;

int ipudp_tunnel_cache_init(void)
{
	ipudp_tunnel_cache = KMEM_CACHE(ipudp_tunnel, 0);
	return ipudp_tunnel_cache ? 0 : -ENOMEM;
}

/* After rcu_barrier(): no tunnel is waiting to be freed. */
void ipudp_tunnel_cache_destroy(void)
{
	kmem_cache_destroy(ipudp_tunnel_cache);
}

struct ipudp_tunnel *ipudp_tunnel_alloc(gfp_t gfp)
{
	struct ipudp_tunnel *t;

	t = kmem_cache_zalloc(ipudp_tunnel_cache, gfp);
	if (!t)
		return NULL;
	t->stats = __netdev_alloc_pcpu_stats(struct ipudp_tunnel_pcpu_stats, gfp);
	if (!t->stats)
		goto err_free_tunnel;
	if (dst_cache_init(&t->dst_cache, gfp))
		goto err_free_stats;
	INIT_LIST_HEAD(&t->rules);
	INIT_LIST_HEAD(&t->sources);
	INIT_DELAYED_WORK(&t->keepalive_work, ipudp_keepalive_work);
	return t;

err_free_stats:
	free_percpu(t->stats);
err_free_tunnel:
	kmem_cache_free(ipudp_tunnel_cache, t);
	return NULL;
}

static void ipudp_tunnel_free_rcu(struct rcu_head *head)
{
	struct ipudp_tunnel *t = container_of(head, struct ipudp_tunnel, rcu);

	dst_cache_destroy(&t->dst_cache);
	if (!t->stats_moved)
		free_percpu(t->stats);
	kmem_cache_free(ipudp_tunnel_cache, t);
}

/* Free after an RCU grace period: readers may still hold it. */
void ipudp_tunnel_free(struct ipudp_tunnel *t)
{
	if (!t)
		return;
	cancel_delayed_work_sync(&t->keepalive_work);
	call_rcu(&t->rcu, ipudp_tunnel_free_rcu);
}

static void ipudp_keepalive_work(struct work_struct *work)
{
	struct ipudp_tunnel *t = container_of(to_delayed_work(work),
					      struct ipudp_tunnel, keepalive_work);

	ipudp_send_keepalive(t->ipd, t);
	queue_delayed_work(system_power_efficient_wq, &t->keepalive_work,
			   t->keepalive * HZ);
}

/*
 * Hand @old's prefixes, counters and timestamps over to @t before @t is
 * published. @t takes @old's per-CPU counters before the first rule points
 * at it (rcu_assign_pointer() orders the stores), so no reader ever counts
 * into @t's own counters, which the caller may then free at once. Readers
 * of @old keep counting into the same counters until the grace period
 * ends; then only @t frees them.
 */
static void ipudp_tunnel_take_over(struct ipudp_tunnel *t, struct ipudp_tunnel *old)
{
	t->stats = old->stats;
	old->stats_moved = true;
	atomic64_set(&t->rx_spoofed, atomic64_read(&old->rx_spoofed));
	atomic64_set(&t->rx_malformed, atomic64_read(&old->rx_malformed));
	t->last_rx = READ_ONCE(old->last_rx);
	t->last_tx = READ_ONCE(old->last_tx);
	ipudp_prefixes_retarget(&old->rules, t);
	ipudp_prefixes_retarget(&old->sources, t);
	list_splice_init(&old->rules, &t->rules);
	list_splice_init(&old->sources, &t->sources);
}

/*
 * Undo ipudp_tunnel_take_over() when @t could not be published. Readers
 * that found @t through a rule meanwhile count into @old's counters or,
 * from here on, into @own, which ipudp_tunnel_free() releases with @t
 * after a grace period.
 */
static void ipudp_tunnel_give_back(struct ipudp_tunnel *t, struct ipudp_tunnel *old,
				   struct ipudp_tunnel_pcpu_stats __percpu *own)
{
	ipudp_prefixes_retarget(&t->rules, old);
	ipudp_prefixes_retarget(&t->sources, old);
	list_splice_init(&t->rules, &old->rules);
	list_splice_init(&t->sources, &old->sources);
	old->stats_moved = false;
	t->stats = own;
}

/*
 * Add @t (fully set up) to the device; with @replace, a tunnel with the same
 * id is replaced and its rules move to @t. Consumes @t on success.
 */
int ipudp_tunnel_add(struct ipudp_dev *ipd, struct ipudp_tunnel *t,
		     bool replace, struct netlink_ext_ack *extack)
{
	struct ipudp_tunnel_pcpu_stats __percpu *own;
	struct ipudp_tunnel *old, *clash;
	int err;

	ASSERT_RTNL();
	old = xa_load(&ipd->tunnels, t->id);
	if (old && !replace) {
		if (ipd->mode == IPUDP_MODE_FIXED)
			NL_SET_ERR_MSG(extack,
				       "FIXED device already has a tunnel (use IPUDP_F_REPLACE)");
		else
			NL_SET_ERR_MSG(extack,
				       "a tunnel with this id exists (use IPUDP_F_REPLACE)");
		return -EEXIST;
	}
	if (!old && ipd->mode == IPUDP_MODE_FIXED && ipd->n_tunnels) {
		NL_SET_ERR_MSG(extack, "FIXED device already has a tunnel with another id");
		return -EEXIST;
	}
	if (!old && ipd->n_tunnels >= IPUDP_MAX_TUNNELS) {
		NL_SET_ERR_MSG(extack, "too many tunnels on this device");
		return -ENOSPC;
	}
	clash = rhashtable_lookup_fast(&ipd->endpoints, &t->remote,
				       ipudp_endpoint_params);
	if (clash && clash != old) {
		NL_SET_ERR_MSG(extack, "another tunnel already uses this remote endpoint");
		return -EEXIST;
	}
	/*
	 * @t takes @old's place fully before any reader can find it (no
	 * counter of its own freed under a reader); while both are visible a
	 * rule may give either, which is why the source check compares ids.
	 */
	own = t->stats;
	t->ipd = ipd;
	if (old)
		ipudp_tunnel_take_over(t, old);
	if (old && !memcmp(&old->remote, &t->remote, sizeof(t->remote))) {
		/* Same endpoint: swap in place, readers see one or the other. */
		err = rhashtable_replace_fast(&ipd->endpoints, &old->hash_node,
					      &t->hash_node, ipudp_endpoint_params);
	} else {
		err = rhashtable_insert_fast(&ipd->endpoints, &t->hash_node,
					     ipudp_endpoint_params);
		if (!err && old)
			rhashtable_remove_fast(&ipd->endpoints, &old->hash_node,
					       ipudp_endpoint_params);
	}
	if (err) {
		if (old)
			ipudp_tunnel_give_back(t, old, own);
		return err;
	}
	if (old) {
		free_percpu(own);
		xa_store(&ipd->tunnels, t->id, t, GFP_KERNEL);
	} else {
		err = xa_insert(&ipd->tunnels, t->id, t, GFP_KERNEL);
		if (err) {
			rhashtable_remove_fast(&ipd->endpoints, &t->hash_node,
					       ipudp_endpoint_params);
			return err;
		}
		ipd->n_tunnels++;
	}
	if (ipd->mode == IPUDP_MODE_FIXED)
		rcu_assign_pointer(ipd->fixed, t);
	ipudp_device_changed(ipd);
	if (t->keepalive)
		queue_delayed_work(system_power_efficient_wq, &t->keepalive_work, 0);
	pr_debug("%s: tunnel %u created\n", ipd->dev->name, t->id);
	if (old) {
		pr_debug("%s: tunnel %u destroyed\n", ipd->dev->name, old->id);
		ipudp_tunnel_free(old);
	}
	return 0;
}

static void ipudp_tunnel_remove(struct ipudp_dev *ipd, struct ipudp_tunnel *t,
				enum ipudp_del_reason reason)
{
	ipudp_notify_tunnel_del(ipd, t, reason);
	ipudp_prefixes_remove_list(&ipd->rules, &t->rules);
	ipudp_prefixes_remove_list(&ipd->sources, &t->sources);
	rhashtable_remove_fast(&ipd->endpoints, &t->hash_node, ipudp_endpoint_params);
	if (rtnl_dereference(ipd->fixed) == t)
		RCU_INIT_POINTER(ipd->fixed, NULL);
	xa_erase(&ipd->tunnels, t->id);
	ipd->n_tunnels--;
	ipudp_device_changed(ipd);
	pr_debug("%s: tunnel %u destroyed\n", ipd->dev->name, t->id);
	ipudp_tunnel_free(t);
}

int ipudp_tunnel_del(struct ipudp_dev *ipd, u32 id)
{
	struct ipudp_tunnel *t;

	ASSERT_RTNL();
	t = xa_load(&ipd->tunnels, id);
	if (!t)
		return -ENOENT;
	ipudp_tunnel_remove(ipd, t, IPUDP_DEL_REQUEST);
	return 0;
}

void ipudp_tunnel_del_all(struct ipudp_dev *ipd)
{
	struct ipudp_tunnel *t;
	unsigned long id;

	ASSERT_RTNL();
	xa_for_each(&ipd->tunnels, id, t)
		ipudp_tunnel_remove(ipd, t, IPUDP_DEL_DEVICE);
}

/* The device's sockets changed: every tunnel looks its route up anew. */
void ipudp_tunnel_reset_routes(struct ipudp_dev *ipd)
{
	struct ipudp_tunnel *t;
	unsigned long id;

	ASSERT_RTNL();
	xa_for_each(&ipd->tunnels, id, t)
		dst_cache_reset(&t->dst_cache);
}

/* The tunnel whose remote is the outer source of @skb, or NULL. RCU. */
struct ipudp_tunnel *ipudp_tunnel_by_endpoint(struct ipudp_dev *ipd,
					      const struct sk_buff *skb,
					      __be16 sport)
{
	struct ipudp_endpoint key;

	memset(&key, 0, sizeof(key));
	key.port = sport;
	if (ip_hdr(skb)->version == 4) {
		key.family = AF_INET;
		key.addr.v4 = ip_hdr(skb)->saddr;
	} else {
		key.family = AF_INET6;
		key.addr.v6 = ipv6_hdr(skb)->saddr;
	}
	return rhashtable_lookup(&ipd->endpoints, &key, ipudp_endpoint_params);
}

/*
 * May @t send us a packet with this inner source (network header set on
 * the inner packet)? Explicit allowed sources win; otherwise a MULTI tunnel
 * may use the prefixes routed to it, and a FIXED tunnel anything.
 */
bool ipudp_tunnel_source_ok(struct ipudp_dev *ipd, struct ipudp_tunnel *t,
			    const struct sk_buff *skb)
{
	struct ipudp_tunnel *found;
	struct ipudp_prefixes *p;
	const void *src;
	u8 family;

	if (ip_hdr(skb)->version == 4) {
		family = AF_INET;
		src = &ip_hdr(skb)->saddr;
	} else {
		family = AF_INET6;
		src = &ipv6_hdr(skb)->saddr;
	}
	if (!list_empty_careful(&t->sources))
		p = &ipd->sources;
	else if (READ_ONCE(ipd->mode) == IPUDP_MODE_MULTI)
		p = &ipd->rules;
	else
		return true;
	/* a tunnel replaced in place keeps its id: either one is this tunnel */
	found = ipudp_prefixes_lookup(p, family, src);
	return found && found->id == t->id;
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

/*
 * Count a received packet. True if it is the first one after @idle jiffies
 * of silence (or ever): exactly one CPU wins the claim on last_rx.
 */
bool ipudp_tunnel_count_rx(struct ipudp_tunnel *t, unsigned int len,
			   unsigned long idle)
{
	unsigned long prev = READ_ONCE(t->last_rx), now = jiffies;
	bool woke = false;

	if (unlikely(!prev || time_after(now, prev + idle)))
		woke = cmpxchg(&t->last_rx, prev, now) == prev;
	ipudp_count(t, &t->last_rx, true, len);
	return woke;
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
