// SPDX-License-Identifier: GPL-2.0-only
/*
 * Tunnel objects and a device's tunnel table: by id in an xarray (for
 * netlink), by remote endpoint in an rhashtable of their paths (for the
 * receive path). Readers use RCU; writers hold rtnl. A tunnel keeps its
 * counters, rules and timers for as long as it exists; when its endpoint
 * moves, only its path (endpoint and route cache) is replaced.
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
	.key_offset = offsetof(struct ipudp_path, remote),
	.head_offset = offsetof(struct ipudp_path, hash_node),
	.automatic_shrinking = true,
};

static void ipudp_keepalive_work(struct work_struct *work);

/*
 * A cache of its own: a server has many tunnels, and kmalloc would round
 * each up to the next power of two.
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
	if (!t->stats) {
		kmem_cache_free(ipudp_tunnel_cache, t);
		return NULL;
	}
	INIT_LIST_HEAD(&t->rules);
	INIT_LIST_HEAD(&t->sources);
	INIT_DELAYED_WORK(&t->keepalive_work, ipudp_keepalive_work);
	return t;
}

static struct ipudp_path *ipudp_path_alloc(const struct ipudp_tunnel_spec *spec)
{
	struct ipudp_path *path;

	path = kzalloc(sizeof(*path), GFP_KERNEL);
	if (!path)
		return NULL;
	if (dst_cache_init(&path->dst_cache, GFP_KERNEL)) {
		kfree(path);
		return NULL;
	}
	path->remote = spec->remote;
	path->local = spec->local;
	return path;
}

static void ipudp_path_free_rcu(struct rcu_head *head)
{
	struct ipudp_path *path = container_of(head, struct ipudp_path, rcu);

	dst_cache_destroy(&path->dst_cache);
	kfree(path);
}

/* @path is unpublished: free it after readers are done with it. */
static void ipudp_path_free(struct ipudp_path *path)
{
	if (path)
		call_rcu(&path->rcu, ipudp_path_free_rcu);
}

/* The tunnel's path, under rtnl or an RCU read-side section of any kind. */
struct ipudp_path *ipudp_tunnel_path(const struct ipudp_tunnel *t)
{
	return rcu_dereference_check(t->path, rcu_read_lock_any_held() ||
				     lockdep_rtnl_is_held());
}

static void ipudp_tunnel_free_rcu(struct rcu_head *head)
{
	struct ipudp_tunnel *t = container_of(head, struct ipudp_tunnel, rcu);

	free_percpu(t->stats);
	kmem_cache_free(ipudp_tunnel_cache, t);
}

/* Free after an RCU grace period: readers may still hold it or its path. */
void ipudp_tunnel_free(struct ipudp_tunnel *t)
{
	if (!t)
		return;
	cancel_delayed_work_sync(&t->keepalive_work);
	ipudp_path_free(rcu_dereference_protected(t->path, true));
	call_rcu(&t->rcu, ipudp_tunnel_free_rcu);
}

static void ipudp_keepalive_work(struct work_struct *work)
{
	struct ipudp_tunnel *t = container_of(to_delayed_work(work),
					      struct ipudp_tunnel, keepalive_work);

	u16 keepalive = READ_ONCE(t->keepalive);

	if (!keepalive)
		return;
	ipudp_send_keepalive(t->ipd, t);
	queue_delayed_work(system_power_efficient_wq, &t->keepalive_work,
			   keepalive * HZ);
}

/* Keepalives every @keepalive seconds from now on, the first at once. */
static void ipudp_tunnel_set_keepalive(struct ipudp_tunnel *t, u16 keepalive)
{
	WRITE_ONCE(t->keepalive, keepalive);
	if (keepalive)
		mod_delayed_work(system_power_efficient_wq, &t->keepalive_work, 0);
	else
		cancel_delayed_work_sync(&t->keepalive_work);
}

/*
 * Point @t at @path: in the endpoint table first (a packet from the new
 * endpoint finds @t at once), then for sending; the old path leaves the
 * table and is freed after a grace period. Nothing else of @t changes.
 */
static int ipudp_tunnel_move(struct ipudp_dev *ipd, struct ipudp_tunnel *t,
			     struct ipudp_path *path)
{
	struct ipudp_path *old = rtnl_dereference(t->path);
	int err;

	path->tunnel = t;
	if (!memcmp(&old->remote, &path->remote, sizeof(path->remote))) {
		err = rhashtable_replace_fast(&ipd->endpoints, &old->hash_node,
					      &path->hash_node, ipudp_endpoint_params);
	} else {
		err = rhashtable_insert_fast(&ipd->endpoints, &path->hash_node,
					     ipudp_endpoint_params);
		if (!err)
			rhashtable_remove_fast(&ipd->endpoints, &old->hash_node,
					       ipudp_endpoint_params);
	}
	if (err)
		return err;
	rcu_assign_pointer(t->path, path);
	ipudp_path_free(old);
	return 0;
}

/* A new tunnel for @spec on @path, published in both tables. */
static int ipudp_tunnel_create(struct ipudp_dev *ipd,
			       const struct ipudp_tunnel_spec *spec,
			       struct ipudp_path *path, struct ipudp_tunnel **out)
{
	struct ipudp_tunnel *t;
	int err;

	t = ipudp_tunnel_alloc(GFP_KERNEL);
	if (!t) {
		ipudp_path_free(path);
		return -ENOMEM;
	}
	t->id = spec->id;
	t->ipd = ipd;
	t->keepalive = spec->keepalive;
	path->tunnel = t;
	RCU_INIT_POINTER(t->path, path);
	err = rhashtable_insert_fast(&ipd->endpoints, &path->hash_node,
				     ipudp_endpoint_params);
	if (err)
		goto err_free;
	err = xa_insert(&ipd->tunnels, t->id, t, GFP_KERNEL);
	if (err) {
		rhashtable_remove_fast(&ipd->endpoints, &path->hash_node,
				       ipudp_endpoint_params);
		goto err_free;
	}
	ipd->n_tunnels++;
	if (ipd->mode == IPUDP_MODE_FIXED)
		rcu_assign_pointer(ipd->fixed, t);
	if (t->keepalive)
		queue_delayed_work(system_power_efficient_wq, &t->keepalive_work, 0);
	pr_debug("%s: tunnel %u created\n", ipd->dev->name, t->id);
	*out = t;
	return 0;

err_free:
	/* never published: the path goes with the tunnel */
	ipudp_tunnel_free(t);
	return err;
}

/*
 * Make the tunnel @spec describes: a new one, or with @replace, the tunnel
 * with that id moved to @spec's endpoint in place (its counters, rules,
 * sources and timestamps stay; one path allocated, none if the endpoint is
 * unchanged). *@out: the tunnel.
 */
int ipudp_tunnel_set(struct ipudp_dev *ipd, const struct ipudp_tunnel_spec *spec,
		     bool replace, struct ipudp_tunnel **out,
		     struct netlink_ext_ack *extack)
{
	struct ipudp_tunnel *t, *clash_t = NULL;
	struct ipudp_path *path, *clash, *cur;
	int err;

	ASSERT_RTNL();
	t = xa_load(&ipd->tunnels, spec->id);
	if (t && !replace) {
		if (ipd->mode == IPUDP_MODE_FIXED)
			NL_SET_ERR_MSG(extack,
				       "FIXED device already has a tunnel (use IPUDP_F_REPLACE)");
		else
			NL_SET_ERR_MSG(extack,
				       "a tunnel with this id exists (use IPUDP_F_REPLACE)");
		return -EEXIST;
	}
	if (!t && ipd->mode == IPUDP_MODE_FIXED && ipd->n_tunnels) {
		NL_SET_ERR_MSG(extack, "FIXED device already has a tunnel with another id");
		return -EEXIST;
	}
	if (!t && ipd->n_tunnels >= IPUDP_MAX_TUNNELS) {
		NL_SET_ERR_MSG(extack, "too many tunnels on this device");
		return -ENOSPC;
	}
	clash = rhashtable_lookup_fast(&ipd->endpoints, &spec->remote,
				       ipudp_endpoint_params);
	if (clash)
		clash_t = clash->tunnel;
	if (clash_t && clash_t != t) {
		NL_SET_ERR_MSG(extack, "another tunnel already uses this remote endpoint");
		return -EEXIST;
	}
	if (t) {
		cur = rtnl_dereference(t->path);
		if (memcmp(&cur->remote, &spec->remote, sizeof(spec->remote)) ||
		    memcmp(&cur->local, &spec->local, sizeof(spec->local))) {
			path = ipudp_path_alloc(spec);
			if (!path)
				return -ENOMEM;
			err = ipudp_tunnel_move(ipd, t, path);
			if (err) {
				ipudp_path_free(path);
				return err;
			}
			pr_debug("%s: tunnel %u moved\n", ipd->dev->name, t->id);
		}
		if (t->keepalive != spec->keepalive || spec->keepalive)
			ipudp_tunnel_set_keepalive(t, spec->keepalive);
	} else {
		path = ipudp_path_alloc(spec);
		if (!path)
			return -ENOMEM;
		err = ipudp_tunnel_create(ipd, spec, path, &t);
		if (err)
			return err;
	}
	ipudp_device_changed(ipd);
	*out = t;
	return 0;
}

static void ipudp_tunnel_remove(struct ipudp_dev *ipd, struct ipudp_tunnel *t,
				enum ipudp_del_reason reason)
{
	ipudp_notify_tunnel_del(ipd, t, reason);
	ipudp_prefixes_remove_list(&ipd->rules, &t->rules);
	ipudp_prefixes_remove_list(&ipd->sources, &t->sources);
	rhashtable_remove_fast(&ipd->endpoints, &rtnl_dereference(t->path)->hash_node,
			       ipudp_endpoint_params);
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
		dst_cache_reset(&rtnl_dereference(t->path)->dst_cache);
}

/* The tunnel whose remote is the outer source of @skb, or NULL. RCU. */
struct ipudp_tunnel *ipudp_tunnel_by_endpoint(struct ipudp_dev *ipd,
					      const struct sk_buff *skb,
					      __be16 sport)
{
	struct ipudp_endpoint key;
	struct ipudp_path *path;

	memset(&key, 0, sizeof(key));
	key.port = sport;
	if (ip_hdr(skb)->version == 4) {
		key.family = AF_INET;
		key.addr.v4 = ip_hdr(skb)->saddr;
	} else {
		key.family = AF_INET6;
		key.addr.v6 = ipv6_hdr(skb)->saddr;
	}
	path = rhashtable_lookup(&ipd->endpoints, &key, ipudp_endpoint_params);
	return path ? path->tunnel : NULL;
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
	found = ipudp_prefixes_lookup(p, family, src);
	return found == t;
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
