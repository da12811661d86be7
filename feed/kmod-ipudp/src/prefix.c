// SPDX-License-Identifier: GPL-2.0-only
/*
 * Prefix tries for MULTI-mode routing rules and allowed inner sources.
 * The shape follows WireGuard's allowedips: nodes hold a prefix and a
 * tunnel (or none, for glue nodes joining two subtrees); a lookup walks
 * down while the node's prefix matches and remembers the last tunnel seen.
 */

#include <linux/rtnetlink.h>
#include <linux/slab.h>

#include "prefix.h"

#define ipudp_prefix_deref(p) \
	rcu_dereference_check(p, rcu_read_lock_bh_held() || lockdep_rtnl_is_held())

static u8 ipudp_maxbits(u8 family)
{
	return family == AF_INET ? 32 : 128;
}

static int ipudp_bit_at(const u8 *key, u8 pos)
{
	return (key[pos / 8] >> (7 - pos % 8)) & 1;
}

/* Number of leading bits @a and @b share, at most @limit. */
static u8 ipudp_common_bits(const u8 *a, const u8 *b, u8 limit)
{
	u8 n = 0;

	while (n < limit) {
		u8 x = a[n / 8] ^ b[n / 8];

		if (x) {
			n += __builtin_clz((unsigned int)x) - 24;
			break;
		}
		n += 8;
	}
	return min(n, limit);
}

static bool ipudp_node_matches(const struct ipudp_prefix_node *node,
			       const u8 *key)
{
	return ipudp_common_bits(node->bits, key, node->cidr) == node->cidr;
}

static struct ipudp_prefix_node __rcu **
ipudp_root(struct ipudp_prefixes *p, u8 family)
{
	return family == AF_INET ? &p->root4 : &p->root6;
}

static void ipudp_mask(u8 *out, const void *addr, u8 family, u8 cidr)
{
	unsigned int len = ipudp_maxbits(family) / 8, i;

	memset(out, 0, 16);
	memcpy(out, addr, len);
	for (i = 0; i < len; i++) {
		if (cidr >= 8 * (i + 1))
			continue;
		out[i] &= cidr > 8 * i ? (u8)(0xff << (8 - (cidr - 8 * i))) : 0;
	}
}

struct ipudp_tunnel *ipudp_prefixes_lookup(struct ipudp_prefixes *p, u8 family,
					   const void *addr)
{
	struct ipudp_tunnel *best = NULL, *t;
	struct ipudp_prefix_node *node;
	u8 key[16] = {}, maxbits = ipudp_maxbits(family);

	memcpy(key, addr, maxbits / 8);
	node = ipudp_prefix_deref(*ipudp_root(p, family));
	while (node && ipudp_node_matches(node, key)) {
		t = ipudp_prefix_deref(node->tunnel);
		if (t)
			best = t;
		if (node->cidr == maxbits)
			break;
		node = ipudp_prefix_deref(node->bit[ipudp_bit_at(key, node->cidr)]);
	}
	return best;
}

static struct ipudp_prefix_node *ipudp_node_new(u8 family, const u8 *bits, u8 cidr,
						struct ipudp_prefix_node *parent)
{
	struct ipudp_prefix_node *node = kzalloc(sizeof(*node), GFP_KERNEL);

	if (!node)
		return NULL;
	node->family = family;
	node->cidr = cidr;
	node->parent = parent;
	INIT_LIST_HEAD(&node->tunnel_list);
	ipudp_mask(node->bits, bits, family, cidr);
	return node;
}

static struct ipudp_prefix_node __rcu **
ipudp_parent_slot(struct ipudp_prefixes *p, struct ipudp_prefix_node *node)
{
	struct ipudp_prefix_node *parent = node->parent;

	if (!parent)
		return ipudp_root(p, node->family);
	return &parent->bit[ipudp_bit_at(node->bits, parent->cidr)];
}

/* Bind @addr/@cidr to @t; the node joins @list (the tunnel's). rtnl held. */
int ipudp_prefixes_insert(struct ipudp_prefixes *p, u8 family, const void *addr,
			  u8 cidr, struct ipudp_tunnel *t, struct list_head *list)
{
	struct ipudp_prefix_node __rcu **slot = ipudp_root(p, family);
	struct ipudp_prefix_node *node, *parent = NULL, *newnode, *glue;
	u8 bits[16];
	u8 common;

	if (cidr > ipudp_maxbits(family))
		return -EINVAL;
	ipudp_mask(bits, addr, family, cidr);
	node = rtnl_dereference(*slot);
	while (node && node->cidr <= cidr && ipudp_node_matches(node, bits)) {
		if (node->cidr == cidr) {
			if (rtnl_dereference(node->tunnel))
				return -EEXIST;
			rcu_assign_pointer(node->tunnel, t);
			list_add_tail(&node->tunnel_list, list);
			p->count++;
			return 0;
		}
		parent = node;
		slot = &node->bit[ipudp_bit_at(bits, node->cidr)];
		node = rtnl_dereference(*slot);
	}

	newnode = ipudp_node_new(family, bits, cidr, parent);
	if (!newnode)
		return -ENOMEM;
	RCU_INIT_POINTER(newnode->tunnel, t);
	list_add_tail(&newnode->tunnel_list, list);
	if (node) {
		common = ipudp_common_bits(node->bits, bits, min(node->cidr, cidr));
		if (common == cidr) {
			/* The new prefix covers @node: it goes on top. */
			RCU_INIT_POINTER(newnode->bit[ipudp_bit_at(node->bits, cidr)], node);
			node->parent = newnode;
		} else {
			/* Siblings: join them under a glue node. */
			glue = ipudp_node_new(family, bits, common, parent);
			if (!glue) {
				list_del(&newnode->tunnel_list);
				kfree(newnode);
				return -ENOMEM;
			}
			RCU_INIT_POINTER(glue->bit[ipudp_bit_at(bits, common)], newnode);
			RCU_INIT_POINTER(glue->bit[ipudp_bit_at(node->bits, common)], node);
			newnode->parent = glue;
			node->parent = glue;
			newnode = glue;
		}
	}
	rcu_assign_pointer(*slot, newnode);
	p->count++;
	return 0;
}

/* Unbind @node's prefix and drop nodes that are no longer needed. */
static void ipudp_node_unbind(struct ipudp_prefixes *p,
			      struct ipudp_prefix_node *node)
{
	struct ipudp_prefix_node *child, *parent;

	list_del_init(&node->tunnel_list);
	RCU_INIT_POINTER(node->tunnel, NULL);
	p->count--;
	while (node && !rtnl_dereference(node->tunnel)) {
		struct ipudp_prefix_node *c0 = rtnl_dereference(node->bit[0]);
		struct ipudp_prefix_node *c1 = rtnl_dereference(node->bit[1]);

		if (c0 && c1)
			break;		/* still joins two subtrees */
		child = c0 ? c0 : c1;
		parent = node->parent;
		if (child)
			child->parent = parent;
		rcu_assign_pointer(*ipudp_parent_slot(p, node), child);
		kfree_rcu(node, rcu);
		node = parent;
	}
}

int ipudp_prefixes_remove(struct ipudp_prefixes *p, u8 family, const void *addr,
			  u8 cidr, struct ipudp_tunnel *t)
{
	struct ipudp_prefix_node *node;
	u8 bits[16];

	if (cidr > ipudp_maxbits(family))
		return -EINVAL;
	ipudp_mask(bits, addr, family, cidr);
	node = rtnl_dereference(*ipudp_root(p, family));
	while (node && node->cidr <= cidr && ipudp_node_matches(node, bits)) {
		if (node->cidr == cidr) {
			if (!rtnl_dereference(node->tunnel) ||
			    (t && rtnl_dereference(node->tunnel) != t))
				return -ENOENT;
			ipudp_node_unbind(p, node);
			return 0;
		}
		node = rtnl_dereference(node->bit[ipudp_bit_at(bits, node->cidr)]);
	}
	return -ENOENT;
}

/* Remove every prefix on @list (a tunnel's). rtnl held. */
void ipudp_prefixes_remove_list(struct ipudp_prefixes *p, struct list_head *list)
{
	struct ipudp_prefix_node *node, *tmp;

	list_for_each_entry_safe(node, tmp, list, tunnel_list)
		ipudp_node_unbind(p, node);
}
