/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef _IPUDP_PREFIX_H
#define _IPUDP_PREFIX_H

#include <linux/list.h>
#include <linux/rcupdate.h>
#include <linux/types.h>

struct ipudp_tunnel;

/*
 * A path-compressed binary trie of IPv4 or IPv6 prefixes, each bound to a
 * tunnel: longest-prefix match in at most 32 or 128 steps whatever the
 * number of prefixes, lock-free for readers (RCU), writers under rtnl.
 */
struct ipudp_prefix_node {
	struct ipudp_prefix_node __rcu *bit[2];
	struct ipudp_prefix_node *parent;	/* rtnl */
	struct ipudp_tunnel __rcu *tunnel;	/* NULL: a glue node */
	struct list_head tunnel_list;		/* on the tunnel's list, rtnl */
	struct rcu_head rcu;
	u8 family;
	u8 cidr;
	u8 bits[16];				/* the prefix, host bits zero */
};

struct ipudp_prefixes {
	struct ipudp_prefix_node __rcu *root4;
	struct ipudp_prefix_node __rcu *root6;
	unsigned int count;
};

struct ipudp_tunnel *ipudp_prefixes_lookup(struct ipudp_prefixes *p, u8 family,
					   const void *addr);
int ipudp_prefixes_insert(struct ipudp_prefixes *p, u8 family, const void *addr,
			  u8 cidr, struct ipudp_tunnel *t, struct list_head *list);
int ipudp_prefixes_remove(struct ipudp_prefixes *p, u8 family, const void *addr,
			  u8 cidr, struct ipudp_tunnel *t);
void ipudp_prefixes_remove_list(struct ipudp_prefixes *p, struct list_head *list);

#endif /* _IPUDP_PREFIX_H */
