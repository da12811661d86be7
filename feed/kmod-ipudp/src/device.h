/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef _IPUDP_DEVICE_H
#define _IPUDP_DEVICE_H

#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/netdevice.h>
#include <linux/udp.h>
#include <linux/rhashtable-types.h>
#include <linux/spinlock.h>
#include <linux/xarray.h>
#include <net/gro_cells.h>

#include "prefix.h"

struct ipudp_tunnel;

enum ipudp_sock_index { IPUDP_SK4, IPUDP_SK6, IPUDP_NSK };

/* Drop counters that belong to no tunnel. */
struct ipudp_dev_drops {
	atomic64_t rx_unknown_endpoint;
	atomic64_t rx_malformed;
	atomic64_t rx_control_dropped;
	atomic64_t tx_no_tunnel;
	atomic64_t tx_no_route;
	atomic64_t rx_spoofed;
	atomic64_t tx_too_big;
};

/* Outer headers: IPv4 or IPv6, and UDP. */
#define IPUDP_OVERHEAD4 (sizeof(struct iphdr) + sizeof(struct udphdr))
#define IPUDP_OVERHEAD6 (sizeof(struct ipv6hdr) + sizeof(struct udphdr))
/*
 * Room before an inner packet: the largest outer headers and an Ethernet
 * underlay's link header as the neighbour code aligns it (64 bytes).
 */
#define IPUDP_HEADROOM (IPUDP_OVERHEAD6 + HH_DATA_ALIGN(ETH_HLEN))

#define IPUDP_DEFAULT_IDLE	30	/* seconds, IPUDP_A_IDLE_TIMEOUT */

/* Limits that keep one device from eating a router's memory. */
#define IPUDP_MAX_TUNNELS	65536
#define IPUDP_MAX_PREFIXES	BIT(20)

struct ipudp_dev {
	struct net_device *dev;
	struct list_head dev_list;	/* ipudp_dev_list, under rtnl */
	/* netns of the sockets: where the device was created; NULL once dead */
	struct net *src_net;
	struct gro_cells gro_cells;

	/* Writers hold rtnl and sock_lock; encap_destroy holds sock_lock. */
	spinlock_t sock_lock;
	struct sock __rcu *sk[IPUDP_NSK];
	bool sk_user[IPUDP_NSK];	/* came from userspace (IPUDP_A_FD) */
	/* userspace sockets after IPUDP_A_RETURN_FD: they keep decapsulating
	 * what still reaches them until their owner closes them
	 */
	struct sock __rcu *sk_retired[IPUDP_NSK];

	u16 port;			/* local port of module-made sockets */
	/* MTU follows the underlay until someone sets it (rtnl) */
	bool mtu_auto;
	bool mtu_adjusting;
	u8 mode;			/* enum ipudp_mode; changes only when empty */
	unsigned long idle_jiffies;	/* silence before TUNNEL_ACTIVE is sent */
	/* changes with every tunnel or rule change (rtnl): dumps compare it */
	u32 gen;

	/* Tunnels: by id (netlink), by remote endpoint (receive). rtnl. */
	struct xarray tunnels;
	struct rhashtable endpoints;
	unsigned int n_tunnels;
	struct ipudp_tunnel __rcu *fixed;	/* FIXED mode: the one tunnel */
	struct ipudp_prefixes rules;		/* MULTI: destination -> tunnel */
	struct ipudp_prefixes sources;		/* explicit allowed sources */

	struct ipudp_dev_drops drops;
};

extern struct rtnl_link_ops ipudp_link_ops;

int ipudp_device_init(void);
void ipudp_device_uninit(void);
bool ipudp_is_ipudp_dev(const struct net_device *dev);
void ipudp_device_adjust_mtu(struct ipudp_dev *ipd, struct ipudp_tunnel *t);
void ipudp_device_set_mode(struct ipudp_dev *ipd, u8 mode);

/* A tunnel or rule was added, replaced or removed. Under rtnl. */
static inline void ipudp_device_changed(struct ipudp_dev *ipd)
{
	ipd->gen += 2;
}

#endif /* _IPUDP_DEVICE_H */
