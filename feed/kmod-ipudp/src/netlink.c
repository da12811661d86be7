// SPDX-License-Identifier: GPL-2.0-only
/* Generic netlink family "ipudp": policies, then handlers, then the family. */

#include <linux/netdevice.h>
#include <linux/rtnetlink.h>
#include <net/genetlink.h>
#include <net/sock.h>
#include <uapi/linux/ipudp.h>

#include "device.h"
#include "netlink.h"
#include "prefix.h"
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
	[IPUDP_TUNNEL_A_KEEPALIVE] = NLA_POLICY_MAX(NLA_U16, 3600),
};

static const struct nla_policy ipudp_rule_policy[IPUDP_RULE_A_MAX + 1] = {
	[IPUDP_RULE_A_TUNNEL_ID] = { .type = NLA_U32 },
	[IPUDP_RULE_A_PREFIX4] = NLA_POLICY_EXACT_LEN(sizeof(struct in_addr)),
	[IPUDP_RULE_A_PREFIX6] = NLA_POLICY_EXACT_LEN(sizeof(struct in6_addr)),
	[IPUDP_RULE_A_PREFIX_LEN] = NLA_POLICY_MAX(NLA_U8, 128),
	[IPUDP_RULE_A_TYPE] = NLA_POLICY_MAX(NLA_U8, IPUDP_RULE_MAX),
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
	[IPUDP_A_RULE] = NLA_POLICY_NESTED(ipudp_rule_policy),
	[IPUDP_A_N_TUNNELS] = { .type = NLA_REJECT },
	[IPUDP_A_N_RULES] = { .type = NLA_REJECT },
	[IPUDP_A_IDLE_TIMEOUT] = NLA_POLICY_MIN(NLA_U16, 1),
	[IPUDP_A_RETURN_FD] = { .type = NLA_FLAG },
	[IPUDP_A_REASON] = { .type = NLA_REJECT },
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
			  const struct ipudp_endpoint *a)
{
	if (a->family == AF_INET)
		return nla_put_in_addr(skb, attr4, a->addr.v4);
	if (a->family == AF_INET6)
		return nla_put_in6_addr(skb, attr6, &a->addr.v6);
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
	const struct ipudp_path *path = ipudp_tunnel_path(t);
	struct ipudp_tunnel_stats st;
	struct nlattr *nest, *stats;

	nest = nla_nest_start(skb, IPUDP_A_TUNNEL);
	if (!nest)
		return -EMSGSIZE;
	ipudp_tunnel_get_stats(t, &st);
	if (nla_put_u32(skb, IPUDP_TUNNEL_A_ID, t->id) ||
	    ipudp_put_addr(skb, IPUDP_TUNNEL_A_LOCAL4, IPUDP_TUNNEL_A_LOCAL6,
			   &path->local) ||
	    ipudp_put_addr(skb, IPUDP_TUNNEL_A_REMOTE4, IPUDP_TUNNEL_A_REMOTE6,
			   &path->remote) ||
	    nla_put_u16(skb, IPUDP_TUNNEL_A_REMOTE_PORT, ntohs(path->remote.port)) ||
	    ipudp_put_age(skb, IPUDP_TUNNEL_A_LAST_RX_MS, READ_ONCE(t->last_rx)) ||
	    ipudp_put_age(skb, IPUDP_TUNNEL_A_LAST_TX_MS, READ_ONCE(t->last_tx)) ||
	    nla_put_u16(skb, IPUDP_TUNNEL_A_KEEPALIVE, t->keepalive))
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
			      IPUDP_STATS_A_PAD) ||
	    nla_put_u64_64bit(skb, IPUDP_STATS_A_RX_SPOOFED,
			      atomic64_read(&t->rx_spoofed), IPUDP_STATS_A_PAD) ||
	    nla_put_u64_64bit(skb, IPUDP_STATS_A_RX_MALFORMED,
			      atomic64_read(&t->rx_malformed), IPUDP_STATS_A_PAD))
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
			      atomic64_read(&d->tx_no_route), IPUDP_STATS_A_PAD) ||
	    nla_put_u64_64bit(skb, IPUDP_STATS_A_RX_SPOOFED,
			      atomic64_read(&d->rx_spoofed), IPUDP_STATS_A_PAD) ||
	    nla_put_u64_64bit(skb, IPUDP_STATS_A_TX_TOO_BIG,
			      atomic64_read(&d->tx_too_big), IPUDP_STATS_A_PAD))
		return -EMSGSIZE;
	nla_nest_end(skb, nest);
	return 0;
}

/* Mark a dump's message if the tables changed since its last part. */
static void ipudp_dump_check(struct netlink_callback *cb, void *hdr)
{
	if (cb)
		genl_dump_check_consistent(cb, hdr);
}

/* Caller holds rtnl. @cb: the dump this message belongs to, or NULL. */
static int ipudp_fill_dev(struct sk_buff *skb, struct ipudp_dev *ipd,
			  struct netlink_callback *cb, u32 portid, u32 seq,
			  int flags)
{
	struct ipudp_tunnel *t;
	void *hdr;

	hdr = genlmsg_put(skb, portid, seq, &ipudp_family, flags,
			  IPUDP_CMD_DEV_GET);
	if (!hdr)
		return -EMSGSIZE;
	ipudp_dump_check(cb, hdr);
	if (nla_put_u32(skb, IPUDP_A_IFINDEX, ipd->dev->ifindex) ||
	    nla_put_string(skb, IPUDP_A_IFNAME, ipd->dev->name) ||
	    nla_put_u8(skb, IPUDP_A_MODE, ipd->mode) ||
	    nla_put_u16(skb, IPUDP_A_PORT, READ_ONCE(ipd->port)) ||
	    nla_put_u32(skb, IPUDP_A_SOCK_FLAGS, ipudp_socket_flags(ipd)) ||
	    nla_put_u32(skb, IPUDP_A_N_TUNNELS, READ_ONCE(ipd->n_tunnels)) ||
	    nla_put_u32(skb, IPUDP_A_N_RULES, READ_ONCE(ipd->rules.count) +
			READ_ONCE(ipd->sources.count)) ||
	    nla_put_u16(skb, IPUDP_A_IDLE_TIMEOUT,
			READ_ONCE(ipd->idle_jiffies) / HZ) ||
	    ipudp_fill_drops(skb, &ipd->drops))
		goto cancel;
	rcu_read_lock();
	t = rcu_dereference(ipd->fixed);
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

/*
 * Every doit names a device: ipudp_pre_doit() takes rtnl and looks it up
 * (info->user_ptr[0]), ipudp_post_doit() lets rtnl go.
 */
static struct ipudp_dev *ipudp_info_dev(struct genl_info *info)
{
	return info->user_ptr[0];
}

static int ipudp_nl_dev_get_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct sk_buff *msg;
	int err;

	msg = nlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	if (!msg)
		return -ENOMEM;
	err = ipudp_fill_dev(msg, ipudp_info_dev(info), NULL, info->snd_portid,
			     info->snd_seq, 0);
	if (err) {
		nlmsg_free(msg);
		return err;
	}
	return genlmsg_reply(msg, info);
}

/*
 * cb->args[0]: index of the next device to emit. The netns's device list
 * sequence tells whether devices came or went since the last part.
 */
static int ipudp_nl_dev_get_dumpit(struct sk_buff *skb, struct netlink_callback *cb)
{
	struct net *net = sock_net(skb->sk);
	struct net_device *dev;
	long idx = 0, start = cb->args[0];

	rtnl_lock();
	cb->seq = net->dev_base_seq;
	for_each_netdev(net, dev) {
		if (!ipudp_is_ipudp_dev(dev))
			continue;
		if (idx++ < start)
			continue;
		if (ipudp_fill_dev(skb, netdev_priv(dev), cb,
				   NETLINK_CB(cb->skb).portid, cb->nlh->nlmsg_seq,
				   NLM_F_MULTI)) {
			idx--;
			break;
		}
	}
	rtnl_unlock();
	cb->args[0] = idx;
	return skb->len;
}

/*
 * The device's sockets live in the netns that created it, which may not be
 * the caller's: binding there needs the right to administer it (the genl
 * permission flag checked only the caller's own netns).
 */
static bool ipudp_may_change_sockets(struct ipudp_dev *ipd,
				     struct netlink_ext_ack *extack)
{
	struct net *net = ipd->src_net;

	if (!net || ns_capable(net->user_ns, CAP_NET_ADMIN))
		return true;
	NL_SET_ERR_MSG(extack,
		       "changing the sockets needs CAP_NET_ADMIN in the device's creating network namespace");
	return false;
}

static int ipudp_nl_dev_set_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct ipudp_dev *ipd = ipudp_info_dev(info);
	struct nlattr **attrs = info->attrs;
	int err = 0;

	if ((attrs[IPUDP_A_PORT] || attrs[IPUDP_A_FD] || attrs[IPUDP_A_RETURN_FD]) &&
	    !ipudp_may_change_sockets(ipd, info->extack))
		return -EPERM;
	if (attrs[IPUDP_A_FD] && attrs[IPUDP_A_RETURN_FD]) {
		NL_SET_ERR_MSG_ATTR(info->extack, attrs[IPUDP_A_RETURN_FD],
				    "IPUDP_A_FD and IPUDP_A_RETURN_FD exclude each other");
		return -EINVAL;
	}
	if (attrs[IPUDP_A_MODE] && nla_get_u8(attrs[IPUDP_A_MODE]) != ipd->mode) {
		if (ipd->n_tunnels) {
			NL_SET_ERR_MSG_ATTR(info->extack, attrs[IPUDP_A_MODE],
					    "the mode can only change while the device has no tunnel");
			return -EBUSY;
		}
		ipudp_device_set_mode(ipd, nla_get_u8(attrs[IPUDP_A_MODE]));
	}
	if (attrs[IPUDP_A_IDLE_TIMEOUT])
		WRITE_ONCE(ipd->idle_jiffies,
			   nla_get_u16(attrs[IPUDP_A_IDLE_TIMEOUT]) * HZ);
	if (attrs[IPUDP_A_RETURN_FD]) {
		err = ipudp_socket_return_fd(ipd, info->extack);
		if (err)
			return err;
	}
	if (attrs[IPUDP_A_FD]) {
		err = ipudp_socket_attach_fd(ipd, nla_get_u32(attrs[IPUDP_A_FD]),
					     info->extack);
		if (err)
			return err;
	}
	if (attrs[IPUDP_A_PORT] && nla_get_u16(attrs[IPUDP_A_PORT]) != ipd->port)
		err = ipudp_socket_set_port(ipd, nla_get_u16(attrs[IPUDP_A_PORT]),
					    info->extack);
	return err;
}

static int ipudp_parse_addr(struct nlattr *a4, struct nlattr *a6,
			    struct ipudp_endpoint *out)
{
	if (a4 && a6)
		return -EINVAL;
	if (a4) {
		out->family = AF_INET;
		out->addr.v4 = nla_get_in_addr(a4);
	} else if (a6) {
		out->family = AF_INET6;
		out->addr.v6 = nla_get_in6_addr(a6);
	}
	return 0;
}

static int ipudp_parse_tunnel(struct nlattr *nest, struct ipudp_tunnel_spec *spec,
			      struct netlink_ext_ack *extack)
{
	struct nlattr *tb[IPUDP_TUNNEL_A_MAX + 1];
	int err;

	err = nla_parse_nested(tb, IPUDP_TUNNEL_A_MAX, nest, ipudp_tunnel_policy,
			       extack);
	if (err)
		return err;
	if (ipudp_parse_addr(tb[IPUDP_TUNNEL_A_REMOTE4], tb[IPUDP_TUNNEL_A_REMOTE6],
			     &spec->remote) || !spec->remote.family) {
		NL_SET_ERR_MSG_ATTR(extack, nest,
				    "need exactly one of IPUDP_TUNNEL_A_REMOTE4 and _REMOTE6");
		return -EINVAL;
	}
	if (ipudp_parse_addr(tb[IPUDP_TUNNEL_A_LOCAL4], tb[IPUDP_TUNNEL_A_LOCAL6],
			     &spec->local) ||
	    (spec->local.family && spec->local.family != spec->remote.family)) {
		NL_SET_ERR_MSG_ATTR(extack, nest,
				    "local and remote address families differ");
		return -EINVAL;
	}
	if ((spec->remote.family == AF_INET &&
	     (ipv4_is_multicast(spec->remote.addr.v4) || ipv4_is_zeronet(spec->remote.addr.v4) ||
	      ipv4_is_lbcast(spec->remote.addr.v4))) ||
	    (spec->remote.family == AF_INET6 &&
	     (ipv6_addr_any(&spec->remote.addr.v6) ||
	      ipv6_addr_is_multicast(&spec->remote.addr.v6)))) {
		NL_SET_ERR_MSG_ATTR(extack, nest,
				    "remote must be a unicast address");
		return -EINVAL;
	}
	spec->remote.port = htons(tb[IPUDP_TUNNEL_A_REMOTE_PORT] ?
				  nla_get_u16(tb[IPUDP_TUNNEL_A_REMOTE_PORT]) :
				  IPUDP_DEFAULT_PORT);
	if (tb[IPUDP_TUNNEL_A_ID])
		spec->id = nla_get_u32(tb[IPUDP_TUNNEL_A_ID]);
	if (tb[IPUDP_TUNNEL_A_KEEPALIVE])
		spec->keepalive = nla_get_u16(tb[IPUDP_TUNNEL_A_KEEPALIVE]);
	return 0;
}

/*
 * Tell listeners of the events group that a tunnel came, went, or received
 * its first packet after being idle (from the receive path: @gfp atomic).
 * @flags: IPUDP_A_FLAGS of a TUNNEL_NEW (0: none); @reason: IPUDP_A_REASON
 * of a TUNNEL_DEL (-1: none).
 */
static void ipudp_notify(struct ipudp_dev *ipd, struct ipudp_tunnel *t,
			 u8 cmd, u32 flags, int reason, gfp_t gfp)
{
	struct net *net = dev_net(ipd->dev);
	struct sk_buff *msg;
	const struct ipudp_path *path;
	struct nlattr *nest;
	void *hdr;

	if (!genl_has_listeners(&ipudp_family, net, 0))
		return;
	msg = nlmsg_new(NLMSG_DEFAULT_SIZE, gfp);
	if (!msg)
		return;
	hdr = genlmsg_put(msg, 0, 0, &ipudp_family, 0, cmd);
	if (!hdr)
		goto err_free;
	if (nla_put_u32(msg, IPUDP_A_IFINDEX, ipd->dev->ifindex) ||
	    nla_put_string(msg, IPUDP_A_IFNAME, ipd->dev->name) ||
	    (flags && nla_put_u32(msg, IPUDP_A_FLAGS, flags)) ||
	    (reason >= 0 && nla_put_u8(msg, IPUDP_A_REASON, reason)))
		goto err_free;
	path = ipudp_tunnel_path(t);
	nest = nla_nest_start(msg, IPUDP_A_TUNNEL);
	if (!nest ||
	    nla_put_u32(msg, IPUDP_TUNNEL_A_ID, t->id) ||
	    ipudp_put_addr(msg, IPUDP_TUNNEL_A_REMOTE4, IPUDP_TUNNEL_A_REMOTE6,
			   &path->remote) ||
	    nla_put_u16(msg, IPUDP_TUNNEL_A_REMOTE_PORT, ntohs(path->remote.port)))
		goto err_free;
	nla_nest_end(msg, nest);
	genlmsg_end(msg, hdr);
	genlmsg_multicast_netns(&ipudp_family, net, msg, 0, 0, gfp);
	return;

err_free:
	nlmsg_free(msg);
}

void ipudp_notify_tunnel(struct ipudp_dev *ipd, struct ipudp_tunnel *t,
			 u8 cmd, u32 flags, gfp_t gfp)
{
	ipudp_notify(ipd, t, cmd, flags, -1, gfp);
}

/* @t is being removed (rtnl): its TUNNEL_DEL, with why. */
void ipudp_notify_tunnel_del(struct ipudp_dev *ipd, struct ipudp_tunnel *t,
			     enum ipudp_del_reason reason)
{
	ipudp_notify(ipd, t, IPUDP_CMD_TUNNEL_DEL, 0, reason, GFP_KERNEL);
}

static int ipudp_nl_tunnel_new_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct ipudp_dev *ipd = ipudp_info_dev(info);
	struct nlattr **attrs = info->attrs;
	struct ipudp_tunnel_spec spec = {};
	struct ipudp_tunnel *t;
	bool replace;
	int err;

	if (GENL_REQ_ATTR_CHECK(info, IPUDP_A_TUNNEL))
		return -EINVAL;
	err = ipudp_parse_tunnel(attrs[IPUDP_A_TUNNEL], &spec, info->extack);
	if (err)
		return err;
	replace = attrs[IPUDP_A_FLAGS] &&
		  (nla_get_u32(attrs[IPUDP_A_FLAGS]) & IPUDP_F_REPLACE);
	err = ipudp_socket_ensure(ipd, spec.remote.family, info->extack);
	if (err)
		return err;
	err = ipudp_tunnel_set(ipd, &spec, replace, &t, info->extack);
	if (err)
		return err;
	ipudp_device_adjust_mtu(ipd, t);
	ipudp_notify_tunnel(ipd, t, IPUDP_CMD_TUNNEL_NEW, replace ? IPUDP_F_REPLACE : 0,
			    GFP_KERNEL);
	return 0;
}

/* The id named by TUNNEL { ID }, or in FIXED mode the one tunnel's. */
static int ipudp_tunnel_id(struct ipudp_dev *ipd, struct nlattr *nest, u32 *id,
			   struct netlink_ext_ack *extack)
{
	struct nlattr *tb[IPUDP_TUNNEL_A_MAX + 1];
	struct ipudp_tunnel *t;
	int err;

	if (nest) {
		err = nla_parse_nested(tb, IPUDP_TUNNEL_A_MAX, nest,
				       ipudp_tunnel_policy, extack);
		if (err)
			return err;
		if (tb[IPUDP_TUNNEL_A_ID]) {
			*id = nla_get_u32(tb[IPUDP_TUNNEL_A_ID]);
			return 0;
		}
	}
	t = rtnl_dereference(ipd->fixed);
	if (ipd->mode == IPUDP_MODE_FIXED && t) {
		*id = t->id;
		return 0;
	}
	if (ipd->mode == IPUDP_MODE_FIXED) {
		NL_SET_ERR_MSG(extack, "device has no tunnel");
		return -ENOENT;
	}
	NL_SET_ERR_MSG(extack, "MULTI device: IPUDP_TUNNEL_A_ID is required");
	return -EINVAL;
}

/* The tunnel a request names (see ipudp_tunnel_id()). Under rtnl. */
static struct ipudp_tunnel *ipudp_info_tunnel(struct genl_info *info)
{
	struct ipudp_dev *ipd = ipudp_info_dev(info);
	struct ipudp_tunnel *t;
	int err;
	u32 id;

	err = ipudp_tunnel_id(ipd, info->attrs[IPUDP_A_TUNNEL], &id, info->extack);
	if (err)
		return ERR_PTR(err);
	t = xa_load(&ipd->tunnels, id);
	if (!t) {
		NL_SET_ERR_MSG(info->extack, "no tunnel with this id");
		return ERR_PTR(-ENOENT);
	}
	return t;
}

static int ipudp_nl_tunnel_del_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct ipudp_dev *ipd = ipudp_info_dev(info);
	struct ipudp_tunnel *t = ipudp_info_tunnel(info);

	if (IS_ERR(t))
		return PTR_ERR(t);
	return ipudp_tunnel_del(ipd, t->id);
}

static int ipudp_fill_tunnel_msg(struct sk_buff *skb, struct ipudp_dev *ipd,
				 struct ipudp_tunnel *t,
				 struct netlink_callback *cb, u32 portid,
				 u32 seq, int flags)
{
	void *hdr = genlmsg_put(skb, portid, seq, &ipudp_family, flags,
				IPUDP_CMD_TUNNEL_GET);

	if (!hdr)
		return -EMSGSIZE;
	ipudp_dump_check(cb, hdr);
	if (nla_put_u32(skb, IPUDP_A_IFINDEX, ipd->dev->ifindex) ||
	    ipudp_fill_tunnel(skb, t)) {
		genlmsg_cancel(skb, hdr);
		return -EMSGSIZE;
	}
	genlmsg_end(skb, hdr);
	return 0;
}

/* Answer a doit with @t (TUNNEL_GET, ROUTE_GET). */
static int ipudp_reply_tunnel(struct genl_info *info, struct ipudp_tunnel *t)
{
	struct sk_buff *msg;
	int err;

	msg = nlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	if (!msg)
		return -ENOMEM;
	err = ipudp_fill_tunnel_msg(msg, ipudp_info_dev(info), t, NULL,
				    info->snd_portid, info->snd_seq, 0);
	if (err) {
		nlmsg_free(msg);
		return err;
	}
	return genlmsg_reply(msg, info);
}

static int ipudp_nl_tunnel_get_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct ipudp_tunnel *t = ipudp_info_tunnel(info);

	if (IS_ERR(t))
		return PTR_ERR(t);
	return ipudp_reply_tunnel(info, t);
}

/* Dumps of one device's tunnels or rules; the device is looked up per call. */
static struct ipudp_dev *ipudp_dump_dev(struct sk_buff *skb,
					struct netlink_callback *cb)
{
	return ipudp_lookup_dev(sock_net(skb->sk), COMPAT_DUMPIT_INFO_ATTRS(cb),
				cb->extack);
}

/* cb->args[0]: the next tunnel id to emit. */
static int ipudp_nl_tunnel_get_dumpit(struct sk_buff *skb,
				      struct netlink_callback *cb)
{
	struct ipudp_tunnel *t;
	struct ipudp_dev *ipd;
	unsigned long id;
	int err = 0;

	rtnl_lock();
	ipd = ipudp_dump_dev(skb, cb);
	if (IS_ERR(ipd)) {
		err = PTR_ERR(ipd);
		goto out;
	}
	cb->seq = ipd->gen;
	id = cb->args[0];
	xa_for_each_start(&ipd->tunnels, id, t, cb->args[0]) {
		if (ipudp_fill_tunnel_msg(skb, ipd, t, cb,
					  NETLINK_CB(cb->skb).portid,
					  cb->nlh->nlmsg_seq, NLM_F_MULTI))
			break;
		cb->args[0] = id + 1;
	}
out:
	rtnl_unlock();
	return err ? err : skb->len;
}

struct ipudp_rule {
	u8 family;
	u8 cidr;
	u8 type;
	bool has_tunnel;
	u32 tunnel_id;
	u8 addr[16];
};

static int ipudp_parse_rule(struct nlattr *nest, struct ipudp_rule *r,
			    bool need_len, struct netlink_ext_ack *extack)
{
	struct nlattr *tb[IPUDP_RULE_A_MAX + 1];
	int err;

	if (!nest) {
		NL_SET_ERR_MSG(extack, "missing IPUDP_A_RULE");
		return -EINVAL;
	}
	err = nla_parse_nested(tb, IPUDP_RULE_A_MAX, nest, ipudp_rule_policy, extack);
	if (err)
		return err;
	memset(r, 0, sizeof(*r));
	if (!!tb[IPUDP_RULE_A_PREFIX4] == !!tb[IPUDP_RULE_A_PREFIX6]) {
		NL_SET_ERR_MSG_ATTR(extack, nest,
				    "need exactly one of IPUDP_RULE_A_PREFIX4 and _PREFIX6");
		return -EINVAL;
	}
	if (tb[IPUDP_RULE_A_PREFIX4]) {
		r->family = AF_INET;
		nla_memcpy(r->addr, tb[IPUDP_RULE_A_PREFIX4], 4);
	} else {
		r->family = AF_INET6;
		nla_memcpy(r->addr, tb[IPUDP_RULE_A_PREFIX6], 16);
	}
	r->cidr = r->family == AF_INET ? 32 : 128;
	if (tb[IPUDP_RULE_A_PREFIX_LEN]) {
		r->cidr = nla_get_u8(tb[IPUDP_RULE_A_PREFIX_LEN]);
		if (r->cidr > (r->family == AF_INET ? 32 : 128)) {
			NL_SET_ERR_MSG_ATTR(extack, tb[IPUDP_RULE_A_PREFIX_LEN],
					    "prefix length longer than the address");
			return -EINVAL;
		}
	} else if (need_len) {
		NL_SET_ERR_MSG_ATTR(extack, nest, "missing IPUDP_RULE_A_PREFIX_LEN");
		return -EINVAL;
	}
	if (tb[IPUDP_RULE_A_TYPE])
		r->type = nla_get_u8(tb[IPUDP_RULE_A_TYPE]);
	if (tb[IPUDP_RULE_A_TUNNEL_ID]) {
		r->has_tunnel = true;
		r->tunnel_id = nla_get_u32(tb[IPUDP_RULE_A_TUNNEL_ID]);
	}
	return 0;
}

static struct ipudp_prefixes *ipudp_rule_trie(struct ipudp_dev *ipd, u8 type)
{
	return type == IPUDP_RULE_SOURCE ? &ipd->sources : &ipd->rules;
}

static int ipudp_nl_rule_change(struct genl_info *info, bool add)
{
	struct ipudp_dev *ipd = ipudp_info_dev(info);
	struct ipudp_tunnel *t = NULL;
	struct ipudp_prefixes *trie;
	struct ipudp_rule r;
	int err;

	err = ipudp_parse_rule(info->attrs[IPUDP_A_RULE], &r, true, info->extack);
	if (err)
		return err;
	if (add && !r.has_tunnel) {
		NL_SET_ERR_MSG(info->extack, "missing IPUDP_RULE_A_TUNNEL_ID");
		return -EINVAL;
	}
	if (r.has_tunnel) {
		t = xa_load(&ipd->tunnels, r.tunnel_id);
		if (!t) {
			NL_SET_ERR_MSG(info->extack, "no tunnel with this id");
			return -ENOENT;
		}
	}
	trie = ipudp_rule_trie(ipd, r.type);
	if (add) {
		if (ipd->rules.count + ipd->sources.count >= IPUDP_MAX_PREFIXES) {
			NL_SET_ERR_MSG(info->extack, "too many rules on this device");
			return -ENOSPC;
		}
		err = ipudp_prefixes_insert(trie, r.family, r.addr, r.cidr, t,
					    r.type == IPUDP_RULE_SOURCE ?
					    &t->sources : &t->rules);
		if (err == -EEXIST)
			NL_SET_ERR_MSG(info->extack, "a rule for this prefix exists");
	} else {
		err = ipudp_prefixes_remove(trie, r.family, r.addr, r.cidr, t);
		if (err == -ENOENT)
			NL_SET_ERR_MSG(info->extack, "no such rule");
	}
	if (!err)
		ipudp_device_changed(ipd);
	return err;
}

static int ipudp_nl_rule_new_doit(struct sk_buff *skb, struct genl_info *info)
{
	return ipudp_nl_rule_change(info, true);
}

static int ipudp_nl_rule_del_doit(struct sk_buff *skb, struct genl_info *info)
{
	return ipudp_nl_rule_change(info, false);
}

static int ipudp_fill_rule(struct sk_buff *skb, struct ipudp_dev *ipd,
			   struct ipudp_tunnel *t, struct ipudp_prefix_node *node,
			   u8 type, struct netlink_callback *cb)
{
	struct nlattr *nest;
	void *hdr;

	hdr = genlmsg_put(skb, NETLINK_CB(cb->skb).portid, cb->nlh->nlmsg_seq,
			  &ipudp_family, NLM_F_MULTI, IPUDP_CMD_RULE_GET);
	if (!hdr)
		return -EMSGSIZE;
	ipudp_dump_check(cb, hdr);
	if (nla_put_u32(skb, IPUDP_A_IFINDEX, ipd->dev->ifindex))
		goto cancel;
	nest = nla_nest_start(skb, IPUDP_A_RULE);
	if (!nest ||
	    nla_put_u32(skb, IPUDP_RULE_A_TUNNEL_ID, t->id) ||
	    (node->family == AF_INET ?
	     nla_put(skb, IPUDP_RULE_A_PREFIX4, 4, node->bits) :
	     nla_put(skb, IPUDP_RULE_A_PREFIX6, 16, node->bits)) ||
	    nla_put_u8(skb, IPUDP_RULE_A_PREFIX_LEN, node->cidr) ||
	    nla_put_u8(skb, IPUDP_RULE_A_TYPE, type))
		goto cancel;
	nla_nest_end(skb, nest);
	genlmsg_end(skb, hdr);
	return 0;

cancel:
	genlmsg_cancel(skb, hdr);
	return -EMSGSIZE;
}

/*
 * The first rule of @head a dump part emits: where the last part stopped.
 * While the device's generation is unchanged no rule was added or freed,
 * so the node the last part stopped at (cb->args[3]) is still there and
 * the walk goes on from it: a dump of N rules costs O(N). After a change
 * the index (cb->args[2]) is walked to instead, and the generation marks
 * the dump NLM_F_DUMP_INTR. rtnl is held.
 */
static struct ipudp_prefix_node *ipudp_dump_resume(struct ipudp_dev *ipd,
						   struct list_head *head,
						   struct netlink_callback *cb)
{
	struct ipudp_prefix_node *node;
	long idx = 0;

	if (cb->args[3] && (u32)cb->args[4] == ipd->gen)
		return (struct ipudp_prefix_node *)cb->args[3];
	list_for_each_entry(node, head, tunnel_list)
		if (idx++ == cb->args[2])
			return node;
	return NULL;
}

/*
 * cb->args[0]: tunnel id, [1]: rule type, [2]: index in that tunnel's list,
 * [3]: the node at that index, [4]: the device's generation when it was
 * taken (see ipudp_dump_resume()).
 */
static int ipudp_nl_rule_get_dumpit(struct sk_buff *skb, struct netlink_callback *cb)
{
	struct ipudp_prefix_node *node;
	struct list_head *head;
	struct ipudp_tunnel *t;
	struct ipudp_dev *ipd;
	unsigned long id;
	int err = 0;
	u8 type;

	rtnl_lock();
	ipd = ipudp_dump_dev(skb, cb);
	if (IS_ERR(ipd)) {
		err = PTR_ERR(ipd);
		goto out;
	}
	cb->seq = ipd->gen;
	xa_for_each_start(&ipd->tunnels, id, t, cb->args[0]) {
		if (id != cb->args[0]) {
			cb->args[0] = id;
			cb->args[1] = 0;
			cb->args[2] = 0;
			cb->args[3] = 0;
		}
		for (type = cb->args[1]; type <= IPUDP_RULE_MAX; type++) {
			head = type == IPUDP_RULE_SOURCE ? &t->sources : &t->rules;
			node = ipudp_dump_resume(ipd, head, cb);
			if (node) {
				list_for_each_entry_from(node, head, tunnel_list) {
					if (ipudp_fill_rule(skb, ipd, t, node, type, cb)) {
						cb->args[3] = (long)node;
						cb->args[4] = ipd->gen;
						goto out;
					}
					cb->args[2]++;
				}
			}
			cb->args[1] = type + 1;
			cb->args[2] = 0;
			cb->args[3] = 0;
		}
		cb->args[0] = id + 1;
		cb->args[1] = 0;
	}
out:
	rtnl_unlock();
	return err ? err : skb->len;
}

/* Which tunnel would the data path choose for an address? (like ip route get) */
static int ipudp_nl_route_get_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct ipudp_dev *ipd = ipudp_info_dev(info);
	struct ipudp_tunnel *t;
	struct ipudp_rule r;
	int err;

	err = ipudp_parse_rule(info->attrs[IPUDP_A_RULE], &r, false, info->extack);
	if (err)
		return err;
	/* rtnl keeps @t: tunnels are freed only after removal under it */
	rcu_read_lock_bh();
	t = ipudp_prefixes_lookup(ipudp_rule_trie(ipd, r.type), r.family, r.addr);
	rcu_read_unlock_bh();
	if (!t) {
		NL_SET_ERR_MSG(info->extack, "no rule matches this address");
		return -ENOENT;
	}
	return ipudp_reply_tunnel(info, t);
}

static int ipudp_pre_doit(const struct COMPAT_GENL_DOIT_OPS *ops,
			  struct sk_buff *skb, struct genl_info *info)
{
	struct ipudp_dev *ipd;

	rtnl_lock();
	ipd = ipudp_lookup_dev(genl_info_net(info), info->attrs, info->extack);
	if (IS_ERR(ipd)) {
		rtnl_unlock();
		return PTR_ERR(ipd);
	}
	info->user_ptr[0] = ipd;
	return 0;
}

static void ipudp_post_doit(const struct COMPAT_GENL_DOIT_OPS *ops,
			    struct sk_buff *skb, struct genl_info *info)
{
	rtnl_unlock();
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
	}, {
		.cmd = IPUDP_CMD_TUNNEL_GET,
		.doit = ipudp_nl_tunnel_get_doit,
		.dumpit = ipudp_nl_tunnel_get_dumpit,
		.flags = GENL_UNS_ADMIN_PERM,
	}, {
		.cmd = IPUDP_CMD_RULE_NEW,
		.doit = ipudp_nl_rule_new_doit,
		.flags = GENL_UNS_ADMIN_PERM,
	}, {
		.cmd = IPUDP_CMD_RULE_DEL,
		.doit = ipudp_nl_rule_del_doit,
		.flags = GENL_UNS_ADMIN_PERM,
	}, {
		.cmd = IPUDP_CMD_RULE_GET,
		.dumpit = ipudp_nl_rule_get_dumpit,
		.flags = GENL_UNS_ADMIN_PERM,
	}, {
		.cmd = IPUDP_CMD_ROUTE_GET,
		.doit = ipudp_nl_route_get_doit,
		.flags = GENL_UNS_ADMIN_PERM,
	},
};

/*
 * Events carry peers' public endpoints: CAP_NET_ADMIN, as every command
 * (GENL_MCAST_CAP_NET_ADMIN: 6.7, in the 6.1 and 6.6 stable series too).
 */
static const struct genl_multicast_group ipudp_mcgrps[] = {
	{ .name = IPUDP_MCGRP_EVENTS, .flags = GENL_MCAST_CAP_NET_ADMIN, },
};

static struct genl_family ipudp_family __ro_after_init = {
	.name = IPUDP_GENL_NAME,
	.version = IPUDP_GENL_VERSION,
	.maxattr = IPUDP_A_MAX,
	.policy = ipudp_policy,
	.netnsok = true,
	.pre_doit = ipudp_pre_doit,
	.post_doit = ipudp_post_doit,
	.module = THIS_MODULE,
	.small_ops = ipudp_ops,
	.n_small_ops = ARRAY_SIZE(ipudp_ops),
	.mcgrps = ipudp_mcgrps,
	.n_mcgrps = ARRAY_SIZE(ipudp_mcgrps),
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
