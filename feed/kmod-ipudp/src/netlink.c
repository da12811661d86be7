// SPDX-License-Identifier: GPL-2.0
/* Generic netlink family "ipudp": policies, then handlers, then the family. */

#include <linux/netdevice.h>
#include <linux/rtnetlink.h>
#include <net/genetlink.h>
#include <net/sock.h>
#include <uapi/linux/ipudp.h>

#include "device.h"
#include "netlink.h"
#include "socket.h"
#include "tunnel.h"

static const struct nla_policy ipudp_tunnel_policy[IPUDP_TUNNEL_A_MAX + 1] = {
	[IPUDP_TUNNEL_A_ID] = { .type = NLA_U32 },
	[IPUDP_TUNNEL_A_LOCAL4] = NLA_POLICY_EXACT_LEN(sizeof(struct in_addr)),
	[IPUDP_TUNNEL_A_LOCAL6] = NLA_POLICY_EXACT_LEN(sizeof(struct in6_addr)),
	[IPUDP_TUNNEL_A_REMOTE4] = NLA_POLICY_EXACT_LEN(sizeof(struct in_addr)),
	[IPUDP_TUNNEL_A_REMOTE6] = NLA_POLICY_EXACT_LEN(sizeof(struct in6_addr)),
	[IPUDP_TUNNEL_A_REMOTE_PORT] = NLA_POLICY_MIN(NLA_U16, 1),
	[IPUDP_TUNNEL_A_LAST_RX_MS] = { .type = NLA_REJECT },
	[IPUDP_TUNNEL_A_LAST_TX_MS] = { .type = NLA_REJECT },
	[IPUDP_TUNNEL_A_STATS] = { .type = NLA_REJECT },
	[IPUDP_TUNNEL_A_PAD] = { .type = NLA_REJECT },
};

static const struct nla_policy ipudp_policy[IPUDP_A_MAX + 1] = {
	[IPUDP_A_IFINDEX] = NLA_POLICY_MIN(NLA_U32, 1),
	[IPUDP_A_IFNAME] = { .type = NLA_NUL_STRING, .len = IFNAMSIZ - 1 },
	[IPUDP_A_MODE] = NLA_POLICY_MAX(NLA_U8, IPUDP_MODE_MAX),
	[IPUDP_A_PORT] = NLA_POLICY_MIN(NLA_U16, 1),
	[IPUDP_A_FD] = { .type = NLA_U32 },
	[IPUDP_A_SOCK_FLAGS] = { .type = NLA_REJECT },
	[IPUDP_A_STATS] = { .type = NLA_REJECT },
	[IPUDP_A_TUNNEL] = NLA_POLICY_NESTED(ipudp_tunnel_policy),
	[IPUDP_A_FLAGS] = NLA_POLICY_MASK(NLA_U32, __IPUDP_F_ALL),
};

static struct genl_family ipudp_family;

/* Find the device named by IFINDEX or IFNAME. Caller holds rtnl. */
static struct ipudp_dev *ipudp_lookup_dev(struct net *net, struct nlattr **attrs,
					  struct netlink_ext_ack *extack)
{
	struct net_device *dev = NULL;

	if (attrs[IPUDP_A_IFINDEX]) {
		dev = __dev_get_by_index(net, nla_get_u32(attrs[IPUDP_A_IFINDEX]));
		if (dev && attrs[IPUDP_A_IFNAME] &&
		    nla_strcmp(attrs[IPUDP_A_IFNAME], dev->name)) {
			NL_SET_ERR_MSG(extack, "IPUDP_A_IFINDEX and IPUDP_A_IFNAME disagree");
			return ERR_PTR(-EINVAL);
		}
	} else if (attrs[IPUDP_A_IFNAME]) {
		dev = __dev_get_by_name(net, nla_data(attrs[IPUDP_A_IFNAME]));
	} else {
		NL_SET_ERR_MSG(extack, "device not given: need IPUDP_A_IFINDEX or IPUDP_A_IFNAME");
		return ERR_PTR(-EINVAL);
	}
	if (!dev) {
		NL_SET_ERR_MSG(extack, "no such device");
		return ERR_PTR(-ENODEV);
	}
	if (!ipudp_is_ipudp_dev(dev)) {
		NL_SET_ERR_MSG(extack, "device is not an ipudp device");
		return ERR_PTR(-EOPNOTSUPP);
	}
	return netdev_priv(dev);
}

static int ipudp_put_addr(struct sk_buff *skb, int attr4, int attr6,
			  const struct ipudp_addr *a)
{
	if (a->family == AF_INET)
		return nla_put_in_addr(skb, attr4, a->v4);
	if (a->family == AF_INET6)
		return nla_put_in6_addr(skb, attr6, &a->v6);
	return 0;
}

static int ipudp_put_age(struct sk_buff *skb, int attr, unsigned long stamp)
{
	if (!stamp)
		return 0;
	return nla_put_u64_64bit(skb, attr,
				 jiffies_to_msecs(jiffies - stamp),
				 IPUDP_TUNNEL_A_PAD);
}

static int ipudp_fill_tunnel(struct sk_buff *skb, const struct ipudp_tunnel *t)
{
	struct ipudp_tunnel_stats st;
	struct nlattr *nest, *stats;

	nest = nla_nest_start(skb, IPUDP_A_TUNNEL);
	if (!nest)
		return -EMSGSIZE;
	ipudp_tunnel_get_stats(t, &st);
	if (nla_put_u32(skb, IPUDP_TUNNEL_A_ID, t->id) ||
	    ipudp_put_addr(skb, IPUDP_TUNNEL_A_LOCAL4, IPUDP_TUNNEL_A_LOCAL6,
			   &t->local) ||
	    ipudp_put_addr(skb, IPUDP_TUNNEL_A_REMOTE4, IPUDP_TUNNEL_A_REMOTE6,
			   &t->remote) ||
	    nla_put_u16(skb, IPUDP_TUNNEL_A_REMOTE_PORT, ntohs(t->remote_port)) ||
	    ipudp_put_age(skb, IPUDP_TUNNEL_A_LAST_RX_MS, READ_ONCE(t->last_rx)) ||
	    ipudp_put_age(skb, IPUDP_TUNNEL_A_LAST_TX_MS, READ_ONCE(t->last_tx)))
		goto cancel;
	stats = nla_nest_start(skb, IPUDP_TUNNEL_A_STATS);
	if (!stats ||
	    nla_put_u64_64bit(skb, IPUDP_STATS_A_RX_PACKETS, st.rx_packets,
			      IPUDP_STATS_A_PAD) ||
	    nla_put_u64_64bit(skb, IPUDP_STATS_A_RX_BYTES, st.rx_bytes,
			      IPUDP_STATS_A_PAD) ||
	    nla_put_u64_64bit(skb, IPUDP_STATS_A_TX_PACKETS, st.tx_packets,
			      IPUDP_STATS_A_PAD) ||
	    nla_put_u64_64bit(skb, IPUDP_STATS_A_TX_BYTES, st.tx_bytes,
			      IPUDP_STATS_A_PAD))
		goto cancel;
	nla_nest_end(skb, stats);
	nla_nest_end(skb, nest);
	return 0;

cancel:
	nla_nest_cancel(skb, nest);
	return -EMSGSIZE;
}

static int ipudp_fill_drops(struct sk_buff *skb, struct ipudp_dev_drops *d)
{
	struct nlattr *nest = nla_nest_start(skb, IPUDP_A_STATS);

	if (!nest ||
	    nla_put_u64_64bit(skb, IPUDP_STATS_A_RX_UNKNOWN_ENDPOINT,
			      atomic64_read(&d->rx_unknown_endpoint), IPUDP_STATS_A_PAD) ||
	    nla_put_u64_64bit(skb, IPUDP_STATS_A_RX_MALFORMED,
			      atomic64_read(&d->rx_malformed), IPUDP_STATS_A_PAD) ||
	    nla_put_u64_64bit(skb, IPUDP_STATS_A_RX_CONTROL_DROPPED,
			      atomic64_read(&d->rx_control_dropped), IPUDP_STATS_A_PAD) ||
	    nla_put_u64_64bit(skb, IPUDP_STATS_A_TX_NO_TUNNEL,
			      atomic64_read(&d->tx_no_tunnel), IPUDP_STATS_A_PAD) ||
	    nla_put_u64_64bit(skb, IPUDP_STATS_A_TX_NO_ROUTE,
			      atomic64_read(&d->tx_no_route), IPUDP_STATS_A_PAD))
		return -EMSGSIZE;
	nla_nest_end(skb, nest);
	return 0;
}

/* Caller holds rtnl or the RCU read lock. */
static int ipudp_fill_dev(struct sk_buff *skb, struct ipudp_dev *ipd,
			  u32 portid, u32 seq, int flags)
{
	struct ipudp_tunnel *t;
	void *hdr;

	hdr = genlmsg_put(skb, portid, seq, &ipudp_family, flags,
			  IPUDP_CMD_DEV_GET);
	if (!hdr)
		return -EMSGSIZE;
	if (nla_put_u32(skb, IPUDP_A_IFINDEX, ipd->dev->ifindex) ||
	    nla_put_string(skb, IPUDP_A_IFNAME, ipd->dev->name) ||
	    nla_put_u8(skb, IPUDP_A_MODE, ipd->mode) ||
	    nla_put_u16(skb, IPUDP_A_PORT, READ_ONCE(ipd->port)) ||
	    nla_put_u32(skb, IPUDP_A_SOCK_FLAGS, ipudp_socket_flags(ipd)) ||
	    ipudp_fill_drops(skb, &ipd->drops))
		goto cancel;
	rcu_read_lock();
	t = rcu_dereference(ipd->tunnel);
	if (t && ipudp_fill_tunnel(skb, t)) {
		rcu_read_unlock();
		goto cancel;
	}
	rcu_read_unlock();
	genlmsg_end(skb, hdr);
	return 0;

cancel:
	genlmsg_cancel(skb, hdr);
	return -EMSGSIZE;
}

static int ipudp_nl_dev_get_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct ipudp_dev *ipd;
	struct sk_buff *msg;
	int err;

	msg = nlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	if (!msg)
		return -ENOMEM;
	rtnl_lock();
	ipd = ipudp_lookup_dev(genl_info_net(info), info->attrs, info->extack);
	if (IS_ERR(ipd)) {
		err = PTR_ERR(ipd);
		goto err_unlock;
	}
	err = ipudp_fill_dev(msg, ipd, info->snd_portid, info->snd_seq, 0);
	if (err)
		goto err_unlock;
	rtnl_unlock();
	return genlmsg_reply(msg, info);

err_unlock:
	rtnl_unlock();
	nlmsg_free(msg);
	return err;
}

/* cb->args[0]: index of the next device to emit. */
static int ipudp_nl_dev_get_dumpit(struct sk_buff *skb, struct netlink_callback *cb)
{
	struct net *net = sock_net(skb->sk);
	struct net_device *dev;
	long idx = 0, start = cb->args[0];

	rcu_read_lock();
	for_each_netdev_rcu(net, dev) {
		if (!ipudp_is_ipudp_dev(dev))
			continue;
		if (idx++ < start)
			continue;
		if (ipudp_fill_dev(skb, netdev_priv(dev),
				   NETLINK_CB(cb->skb).portid, cb->nlh->nlmsg_seq,
				   NLM_F_MULTI)) {
			idx--;
			break;
		}
	}
	rcu_read_unlock();
	cb->args[0] = idx;
	return skb->len;
}

static int ipudp_nl_dev_set_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct nlattr **attrs = info->attrs;
	struct ipudp_dev *ipd;
	struct ipudp_tunnel *t;
	int err = 0;

	rtnl_lock();
	ipd = ipudp_lookup_dev(genl_info_net(info), attrs, info->extack);
	if (IS_ERR(ipd)) {
		err = PTR_ERR(ipd);
		goto out;
	}
	if (attrs[IPUDP_A_MODE] &&
	    nla_get_u8(attrs[IPUDP_A_MODE]) != IPUDP_MODE_FIXED) {
		NL_SET_ERR_MSG_ATTR(info->extack, attrs[IPUDP_A_MODE],
				    "only FIXED mode is supported by this module version");
		err = -EOPNOTSUPP;
		goto out;
	}
	if (attrs[IPUDP_A_FD]) {
		err = ipudp_socket_attach_fd(ipd, nla_get_u32(attrs[IPUDP_A_FD]),
					     info->extack);
		if (err)
			goto out;
	}
	if (attrs[IPUDP_A_PORT]) {
		u16 port = nla_get_u16(attrs[IPUDP_A_PORT]);

		if (port != ipd->port) {
			WRITE_ONCE(ipd->port, port);
			ipudp_socket_release_kernel(ipd);
			t = rtnl_dereference(ipd->tunnel);
			if (t)
				err = ipudp_socket_ensure(ipd, t->remote.family,
							  info->extack);
		}
	}
out:
	rtnl_unlock();
	return err;
}

static int ipudp_parse_addr(struct nlattr *a4, struct nlattr *a6,
			    struct ipudp_addr *out)
{
	if (a4 && a6)
		return -EINVAL;
	if (a4) {
		out->family = AF_INET;
		out->v4 = nla_get_in_addr(a4);
	} else if (a6) {
		out->family = AF_INET6;
		out->v6 = nla_get_in6_addr(a6);
	}
	return 0;
}

static int ipudp_parse_tunnel(struct nlattr *nest, struct ipudp_tunnel *t,
			      struct netlink_ext_ack *extack)
{
	struct nlattr *tb[IPUDP_TUNNEL_A_MAX + 1];
	int err;

	err = nla_parse_nested(tb, IPUDP_TUNNEL_A_MAX, nest, ipudp_tunnel_policy,
			       extack);
	if (err)
		return err;
	if (ipudp_parse_addr(tb[IPUDP_TUNNEL_A_REMOTE4], tb[IPUDP_TUNNEL_A_REMOTE6],
			     &t->remote) || !t->remote.family) {
		NL_SET_ERR_MSG_ATTR(extack, nest,
				    "need exactly one of IPUDP_TUNNEL_A_REMOTE4 and _REMOTE6");
		return -EINVAL;
	}
	if (ipudp_parse_addr(tb[IPUDP_TUNNEL_A_LOCAL4], tb[IPUDP_TUNNEL_A_LOCAL6],
			     &t->local) ||
	    (t->local.family && t->local.family != t->remote.family)) {
		NL_SET_ERR_MSG_ATTR(extack, nest,
				    "local and remote address families differ");
		return -EINVAL;
	}
	if ((t->remote.family == AF_INET &&
	     (ipv4_is_multicast(t->remote.v4) || ipv4_is_zeronet(t->remote.v4) ||
	      ipv4_is_lbcast(t->remote.v4))) ||
	    (t->remote.family == AF_INET6 &&
	     (ipv6_addr_any(&t->remote.v6) ||
	      ipv6_addr_is_multicast(&t->remote.v6)))) {
		NL_SET_ERR_MSG_ATTR(extack, nest,
				    "remote must be a unicast address");
		return -EINVAL;
	}
	t->remote_port = htons(tb[IPUDP_TUNNEL_A_REMOTE_PORT] ?
			       nla_get_u16(tb[IPUDP_TUNNEL_A_REMOTE_PORT]) :
			       IPUDP_DEFAULT_PORT);
	if (tb[IPUDP_TUNNEL_A_ID])
		t->id = nla_get_u32(tb[IPUDP_TUNNEL_A_ID]);
	return 0;
}

static int ipudp_nl_tunnel_new_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct nlattr **attrs = info->attrs;
	struct ipudp_tunnel *t;
	struct ipudp_dev *ipd;
	int err;

	if (GENL_REQ_ATTR_CHECK(info, IPUDP_A_TUNNEL))
		return -EINVAL;
	t = ipudp_tunnel_alloc(GFP_KERNEL);
	if (!t)
		return -ENOMEM;
	err = ipudp_parse_tunnel(attrs[IPUDP_A_TUNNEL], t, info->extack);
	if (err)
		goto err_free;

	rtnl_lock();
	ipd = ipudp_lookup_dev(genl_info_net(info), attrs, info->extack);
	if (IS_ERR(ipd)) {
		err = PTR_ERR(ipd);
		goto err_unlock;
	}
	if (rtnl_dereference(ipd->tunnel) &&
	    !(attrs[IPUDP_A_FLAGS] &&
	      (nla_get_u32(attrs[IPUDP_A_FLAGS]) & IPUDP_F_REPLACE))) {
		NL_SET_ERR_MSG(info->extack,
			       "FIXED device already has a tunnel (use IPUDP_F_REPLACE)");
		err = -EEXIST;
		goto err_unlock;
	}
	err = ipudp_socket_ensure(ipd, t->remote.family, info->extack);
	if (err)
		goto err_unlock;
	ipudp_tunnel_replace(ipd, t);
	rtnl_unlock();
	return 0;

err_unlock:
	rtnl_unlock();
err_free:
	ipudp_tunnel_put_rcu(t);
	return err;
}

static int ipudp_nl_tunnel_del_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct ipudp_dev *ipd;
	int err = 0;

	rtnl_lock();
	ipd = ipudp_lookup_dev(genl_info_net(info), info->attrs, info->extack);
	if (IS_ERR(ipd)) {
		err = PTR_ERR(ipd);
	} else if (!rtnl_dereference(ipd->tunnel)) {
		NL_SET_ERR_MSG(info->extack, "device has no tunnel");
		err = -ENOENT;
	} else {
		ipudp_tunnel_replace(ipd, NULL);
	}
	rtnl_unlock();
	return err;
}

static const struct genl_small_ops ipudp_ops[] = {
	{
		.cmd = IPUDP_CMD_DEV_GET,
		.doit = ipudp_nl_dev_get_doit,
		.dumpit = ipudp_nl_dev_get_dumpit,
		.flags = GENL_UNS_ADMIN_PERM,
	}, {
		.cmd = IPUDP_CMD_DEV_SET,
		.doit = ipudp_nl_dev_set_doit,
		.flags = GENL_UNS_ADMIN_PERM,
	}, {
		.cmd = IPUDP_CMD_TUNNEL_NEW,
		.doit = ipudp_nl_tunnel_new_doit,
		.flags = GENL_UNS_ADMIN_PERM,
	}, {
		.cmd = IPUDP_CMD_TUNNEL_DEL,
		.doit = ipudp_nl_tunnel_del_doit,
		.flags = GENL_UNS_ADMIN_PERM,
	},
};

static struct genl_family ipudp_family __ro_after_init = {
	.name = IPUDP_GENL_NAME,
	.version = IPUDP_GENL_VERSION,
	.maxattr = IPUDP_A_MAX,
	.policy = ipudp_policy,
	.netnsok = true,
	.module = THIS_MODULE,
	.small_ops = ipudp_ops,
	.n_small_ops = ARRAY_SIZE(ipudp_ops),
	.resv_start_op = IPUDP_CMD_DEV_GET,
};

int __init ipudp_genetlink_init(void)
{
	return genl_register_family(&ipudp_family);
}

void ipudp_genetlink_uninit(void)
{
	genl_unregister_family(&ipudp_family);
}
