// SPDX-License-Identifier: GPL-2.0-only
/* The ipudp net_device: setup, transmit, lifetime, netns. */

#include <linux/if_arp.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/inetdevice.h>
#include <linux/module.h>
#include <linux/random.h>
#include <linux/rhashtable.h>
#include <net/addrconf.h>
#include <net/icmp.h>
#include <net/ip_tunnels.h>
#include <net/net_namespace.h>
#include <net/rtnetlink.h>
#include <uapi/linux/ipudp.h>

#include "device.h"
#include "send.h"
#include "socket.h"
#include "tunnel.h"

/*
 * What the stack may hand us: segmentation and checksums are done after
 * encapsulation, by the underlay device or in software (UDP tunnel GSO).
 */
#define IPUDP_FEATURES (NETIF_F_SG | NETIF_F_FRAGLIST | NETIF_F_HIGHDMA | \
			NETIF_F_GSO_SOFTWARE | NETIF_F_HW_CSUM)

static LIST_HEAD(ipudp_dev_list);	/* under rtnl */

bool ipudp_is_ipudp_dev(const struct net_device *dev)
{
	return dev->rtnl_link_ops == &ipudp_link_ops;
}

static bool ipudp_inner_ok(struct sk_buff *skb)
{
	switch (skb->protocol) {
	case htons(ETH_P_IP):
		return pskb_network_may_pull(skb, sizeof(struct iphdr)) &&
		       ip_hdr(skb)->version == 4;
	case htons(ETH_P_IPV6):
		return pskb_network_may_pull(skb, sizeof(struct ipv6hdr)) &&
		       ipv6_hdr(skb)->version == 6;
	default:
		return false;
	}
}

/* MULTI mode: the tunnel of the longest prefix matching the destination. */
static struct ipudp_tunnel *ipudp_route(struct ipudp_dev *ipd, struct sk_buff *skb)
{
	if (skb->protocol == htons(ETH_P_IP))
		return ipudp_prefixes_lookup(&ipd->rules, AF_INET, &ip_hdr(skb)->daddr);
	return ipudp_prefixes_lookup(&ipd->rules, AF_INET6, &ipv6_hdr(skb)->daddr);
}

/* Nowhere to send @skb: send the ICMP error a router without a route would. */
static void ipudp_unreachable(struct sk_buff *skb)
{
	if (skb->protocol == htons(ETH_P_IP))
		icmp_ndo_send(skb, ICMP_DEST_UNREACH, ICMP_NET_UNREACH, 0);
	else
		icmpv6_ndo_send(skb, ICMPV6_DEST_UNREACH, ICMPV6_NOROUTE, 0);
}

static netdev_tx_t ipudp_xmit(struct sk_buff *skb, struct net_device *dev)
{
	struct ipudp_dev *ipd = netdev_priv(dev);
	struct ipudp_tunnel *t;
	unsigned int len;
	int err;

	if (unlikely(!ipudp_inner_ok(skb))) {
		DEV_STATS_INC(dev, tx_errors);
		goto drop;
	}
	if (READ_ONCE(ipd->mode) == IPUDP_MODE_FIXED)
		t = rcu_dereference_bh(ipd->fixed);
	else
		t = ipudp_route(ipd, skb);
	if (unlikely(!t)) {
		atomic64_inc(&ipd->drops.tx_no_tunnel);
		DEV_STATS_INC(dev, tx_dropped);
		ipudp_unreachable(skb);
		goto drop;
	}
	len = skb->len;
	err = ipudp_send_data(ipd, t, skb);
	if (unlikely(err == -EMSGSIZE)) {
		DEV_STATS_INC(dev, tx_dropped);	/* ICMP sent, counted */
		goto drop;
	}
	if (unlikely(err)) {
		atomic64_inc(&ipd->drops.tx_no_route);
		DEV_STATS_INC(dev, tx_carrier_errors);
		goto drop;
	}
	ipudp_tunnel_count_tx(t, len);
	return NETDEV_TX_OK;

drop:
	kfree_skb(skb);
	return NETDEV_TX_OK;
}

static int ipudp_change_mtu(struct net_device *dev, int new_mtu)
{
	struct ipudp_dev *ipd = netdev_priv(dev);

	if (!ipd->mtu_adjusting)
		ipd->mtu_auto = false;	/* set by hand: keep it */
	WRITE_ONCE(dev->mtu, new_mtu);
	return 0;
}

/*
 * Default MTU = underlay path MTU minus our headers, taken when a tunnel
 * is set, unless the MTU was given: a FIXED device follows its tunnel,
 * a MULTI device takes the smallest of its tunnels'. Under rtnl.
 */
void ipudp_device_adjust_mtu(struct ipudp_dev *ipd, struct ipudp_tunnel *t)
{
	struct net_device *dev = ipd->dev;
	int mtu;

	ASSERT_RTNL();
	if (!ipd->mtu_auto)
		return;
	mtu = ipudp_send_path_mtu(ipd, t);
	if (mtu <= 0)
		return;
	mtu = clamp_t(int, mtu, dev->min_mtu, dev->max_mtu);
	if (ipd->mode == IPUDP_MODE_MULTI && ipd->n_tunnels > 1 && mtu > dev->mtu)
		return;
	if (mtu == dev->mtu)
		return;
	ipd->mtu_adjusting = true;
	if (dev_set_mtu(dev, mtu))
		netdev_dbg(dev, "could not follow the underlay MTU %d\n", mtu);
	ipd->mtu_adjusting = false;
}

/*
 * The peers of a MULTI device share no link: forwarding between two of them
 * must not tell one to reach the other directly. IPv4 sends redirects if the
 * device's or the netns's "all" send_redirects is set, so both go (as
 * WireGuard does); IPv6 sends them only from a link-local address, which a
 * MULTI device has no use for (it carries no multicast). Under rtnl.
 */
static void ipudp_device_no_redirects(struct net_device *dev)
{
	struct in_device *in_dev = __in_dev_get_rtnl(dev);
	struct inet6_dev *in6_dev = __in6_dev_get(dev);

	if (in_dev) {
		IN_DEV_CONF_SET(in_dev, SEND_REDIRECTS, false);
		IPV4_DEVCONF_ALL(dev_net(dev), SEND_REDIRECTS) = false;
	}
	if (in6_dev)
		WRITE_ONCE(in6_dev->cnf.addr_gen_mode, IN6_ADDR_GEN_MODE_NONE);
}

/* Only while the device has no tunnel. Under rtnl. */
void ipudp_device_set_mode(struct ipudp_dev *ipd, u8 mode)
{
	WRITE_ONCE(ipd->mode, mode);
	if (mode == IPUDP_MODE_MULTI)
		ipudp_device_no_redirects(ipd->dev);
}

static int ipudp_open(struct net_device *dev)
{
	struct ipudp_dev *ipd = netdev_priv(dev);

	if (ipd->mode == IPUDP_MODE_MULTI)
		ipudp_device_no_redirects(dev);
	return 0;
}

static int ipudp_dev_init(struct net_device *dev)
{
	struct ipudp_dev *ipd = netdev_priv(dev);
	int err;

#ifndef COMPAT_CORE_ALLOCS_TSTATS
	dev->tstats = netdev_alloc_pcpu_stats(struct pcpu_sw_netstats);
	if (!dev->tstats)
		return -ENOMEM;
#endif
	err = gro_cells_init(&ipd->gro_cells, dev);
	if (err)
		goto err_free_tstats;
	err = rhashtable_init(&ipd->endpoints, &ipudp_endpoint_params);
	if (err)
		goto err_gro_cells;
	xa_init(&ipd->tunnels);
	return 0;

err_gro_cells:
	gro_cells_destroy(&ipd->gro_cells);
err_free_tstats:
#ifndef COMPAT_CORE_ALLOCS_TSTATS
	free_percpu(dev->tstats);
	dev->tstats = NULL;
#endif
	return err;
}

/* Runs under rtnl when the device is unregistered, module unload included. */
static void ipudp_dev_uninit(struct net_device *dev)
{
	struct ipudp_dev *ipd = netdev_priv(dev);

	list_del_init(&ipd->dev_list);
	ipudp_socket_release_all(ipd);
	/* A receive that found ipd through a socket before the socket let go
	 * may still be using the tables: wait for it before freeing them.
	 */
	synchronize_net();
	ipudp_tunnel_del_all(ipd);
	rhashtable_destroy(&ipd->endpoints);
	xa_destroy(&ipd->tunnels);
	gro_cells_destroy(&ipd->gro_cells);
	pr_debug("%s: device destroyed\n", dev->name);
}

static void ipudp_destruct(struct net_device *dev)
{
#ifndef COMPAT_CORE_ALLOCS_TSTATS
	free_percpu(dev->tstats);
#endif
}

static const struct net_device_ops ipudp_netdev_ops = {
	.ndo_init = ipudp_dev_init,
	.ndo_uninit = ipudp_dev_uninit,
	.ndo_open = ipudp_open,
	.ndo_start_xmit = ipudp_xmit,
	.ndo_get_stats64 = dev_get_tstats64,
	.ndo_change_mtu = ipudp_change_mtu,
};

static void ipudp_setup(struct net_device *dev)
{
	dev->netdev_ops = &ipudp_netdev_ops;
	dev->type = ARPHRD_NONE;
	dev->hard_header_len = 0;
	dev->addr_len = 0;
	dev->mtu = ETH_DATA_LEN - IPUDP_OVERHEAD4;
	dev->min_mtu = IPV4_MIN_MTU;
	/* an inner packet that fits in a maximal outer IPv6 packet */
	dev->max_mtu = IP_MAX_MTU - IPUDP_OVERHEAD6;
	dev->flags = IFF_POINTOPOINT | IFF_NOARP;
	dev->priv_flags |= IFF_NO_QUEUE;
	/* Keep skb_dst() to xmit: ICMP errors (and PMTU) need the route. */
	netif_keep_dst(dev);
	dev->needed_headroom = IPUDP_HEADROOM;
#ifdef COMPAT_HAS_DEV_LLTX
	dev->lltx = true;
#else
	dev->features |= NETIF_F_LLTX;
#endif
#ifdef COMPAT_CORE_ALLOCS_TSTATS
	dev->pcpu_stat_type = NETDEV_PCPU_STAT_TSTATS;
#endif
	dev->features |= IPUDP_FEATURES;
	dev->hw_features |= IPUDP_FEATURES;
	dev->needs_free_netdev = true;
	dev->priv_destructor = ipudp_destruct;
}

static const struct nla_policy ipudp_link_policy[IFLA_IPUDP_MAX + 1] = {
	[IFLA_IPUDP_MODE] = { .type = NLA_U8 },
	[IFLA_IPUDP_PORT] = { .type = NLA_U16 },
};

static int ipudp_validate(struct nlattr *tb[], struct nlattr *data[],
			  struct netlink_ext_ack *extack)
{
	if (!data)
		return 0;
	if (data[IFLA_IPUDP_MODE] &&
	    nla_get_u8(data[IFLA_IPUDP_MODE]) > IPUDP_MODE_MAX) {
		NL_SET_ERR_MSG_ATTR(extack, data[IFLA_IPUDP_MODE],
				    "unknown mode (0: fixed, 1: multi)");
		return -EINVAL;
	}
	if (data[IFLA_IPUDP_PORT] && !nla_get_u16(data[IFLA_IPUDP_PORT])) {
		NL_SET_ERR_MSG_ATTR(extack, data[IFLA_IPUDP_PORT],
				    "port must not be 0");
		return -EINVAL;
	}
	return 0;
}

static int ipudp_newlink(struct net *src_net, struct net_device *dev,
			 struct nlattr *tb[], struct nlattr *data[],
			 struct netlink_ext_ack *extack)
{
	struct ipudp_dev *ipd = netdev_priv(dev);
	int err;

	ipd->dev = dev;
	ipd->src_net = src_net;
	ipd->port = IPUDP_DEFAULT_PORT;
	if (data && data[IFLA_IPUDP_PORT])
		ipd->port = nla_get_u16(data[IFLA_IPUDP_PORT]);
	ipd->mode = IPUDP_MODE_FIXED;
	ipd->mtu_auto = !tb[IFLA_MTU];
	ipd->idle_jiffies = IPUDP_DEFAULT_IDLE * HZ;
	/* odd, and never the same as another device's by chance */
	ipd->gen = get_random_u32() | 1;
	spin_lock_init(&ipd->sock_lock);
	INIT_LIST_HEAD(&ipd->dev_list);

	err = register_netdevice(dev);
	if (err)
		return err;
	if (data && data[IFLA_IPUDP_MODE])
		ipudp_device_set_mode(ipd, nla_get_u8(data[IFLA_IPUDP_MODE]));
	list_add(&ipd->dev_list, &ipudp_dev_list);
	pr_debug("%s: device created\n", dev->name);
	return 0;
}

static size_t ipudp_get_size(const struct net_device *dev)
{
	return nla_total_size(sizeof(u8)) +	/* IFLA_IPUDP_MODE */
	       nla_total_size(sizeof(u16));	/* IFLA_IPUDP_PORT */
}

static int ipudp_fill_info(struct sk_buff *skb, const struct net_device *dev)
{
	const struct ipudp_dev *ipd = netdev_priv(dev);

	if (nla_put_u8(skb, IFLA_IPUDP_MODE, READ_ONCE(ipd->mode)) ||
	    nla_put_u16(skb, IFLA_IPUDP_PORT, READ_ONCE(ipd->port)))
		return -EMSGSIZE;
	return 0;
}

struct rtnl_link_ops ipudp_link_ops __read_mostly = {
	.kind = IPUDP_GENL_NAME,
	.maxtype = IFLA_IPUDP_MAX,
	.policy = ipudp_link_policy,
	.priv_size = sizeof(struct ipudp_dev),
	.setup = ipudp_setup,
	.validate = ipudp_validate,
	.newlink = ipudp_newlink,
	.get_size = ipudp_get_size,
	.fill_info = ipudp_fill_info,
};

/*
 * The netns that holds a device's sockets is going away while the device
 * may live on elsewhere: close those sockets now (WireGuard does the same).
 */
static void __net_exit ipudp_netns_pre_exit(struct net *net)
{
	struct ipudp_dev *ipd;

	rtnl_lock();
	list_for_each_entry(ipd, &ipudp_dev_list, dev_list) {
		if (ipd->src_net != net)
			continue;
		ipd->src_net = NULL;
		ipudp_socket_release_all(ipd);
		/* nothing can be sent or received any more: tell routing daemons */
		netif_carrier_off(ipd->dev);
	}
	rtnl_unlock();
}

static struct pernet_operations ipudp_net_ops = {
	.pre_exit = ipudp_netns_pre_exit,
};

int ipudp_device_init(void)
{
	int err;

	err = register_pernet_device(&ipudp_net_ops);
	if (err)
		return err;
	err = rtnl_link_register(&ipudp_link_ops);
	if (err)
		goto err_unregister_pernet;
	return 0;

err_unregister_pernet:
	unregister_pernet_device(&ipudp_net_ops);
	return err;
}

void ipudp_device_uninit(void)
{
	rtnl_link_unregister(&ipudp_link_ops);
	unregister_pernet_device(&ipudp_net_ops);
	rcu_barrier();
}
