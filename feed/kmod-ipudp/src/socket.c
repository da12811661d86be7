// SPDX-License-Identifier: GPL-2.0
/*
 * The UDP underlay: sockets (made here or handed over by userspace),
 * the receive hook and the encapsulating send.
 *
 * Wire format: outer IPv4|IPv6 | UDP | inner IPv4|IPv6 packet. A payload
 * whose first nibble is not 4 or 6 is control traffic: it is left to the
 * socket, so a userspace owner of the socket reads it untouched.
 */

#include <linux/file.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/net.h>
#include <linux/rtnetlink.h>
#include <linux/udp.h>
#include <net/icmp.h>
#include <net/inet_ecn.h>
#include <net/ip6_route.h>
#include <net/ip_tunnels.h>
#include <net/ipv6.h>
#include <net/ipv6_stubs.h>
#include <net/route.h>
#include <net/udp.h>
#include <net/udp_tunnel.h>
#include <uapi/linux/ipudp.h>

#include "device.h"
#include "netlink.h"
#include "socket.h"
#include "tunnel.h"

static int ipudp_sk_index(sa_family_t family)
{
	return family == AF_INET6 ? IPUDP_SK6 : IPUDP_SK4;
}

/* Is @skb's payload after the UDP header an inner IP packet? */
static bool ipudp_payload_is_ip(struct sk_buff *skb)
{
	u8 version;

	if (!pskb_may_pull(skb, sizeof(struct udphdr) + 1))
		return false;
	version = skb->data[sizeof(struct udphdr)] >> 4;
	return version == 4 || version == 6;
}

/* Point the network header at the inner packet and check it is whole. */
static bool ipudp_pull_inner(struct sk_buff *skb, __be16 *proto)
{
	u8 version = skb->data[0] >> 4;

	skb_reset_network_header(skb);
	if (version == 4) {
		*proto = htons(ETH_P_IP);
		return pskb_may_pull(skb, sizeof(struct iphdr)) &&
		       ip_hdr(skb)->ihl >= 5;
	}
	*proto = htons(ETH_P_IPV6);
	return pskb_may_pull(skb, sizeof(struct ipv6hdr));
}

/* The DS field of the IP header at the network header. */
static u8 ipudp_dsfield(struct sk_buff *skb)
{
	if (ip_hdr(skb)->version == 4)
		return ip_hdr(skb)->tos;
	return ipv6_get_dsfield(ipv6_hdr(skb));
}

static int ipudp_encap_recv(struct sock *sk, struct sk_buff *skb)
{
	struct ipudp_tunnel *t;
	struct ipudp_dev *ipd;
	struct net_device *dev;
	__be16 sport, proto;
	unsigned int len;
	u8 outer_ds;

	ipd = rcu_dereference_sk_user_data(sk);
	if (unlikely(!ipd))
		return 1;
	dev = ipd->dev;

	if (!ipudp_payload_is_ip(skb)) {
		/* Control traffic: a userspace socket's owner reads it, also
		 * after IPUDP_A_RETURN_FD retired the socket.
		 */
		if (!sk->sk_kern_sock)
			return 1;
		atomic64_inc(&ipd->drops.rx_control_dropped);
		goto drop;
	}

	sport = udp_hdr(skb)->source;
	outer_ds = ipudp_dsfield(skb);
	t = ipudp_tunnel_by_endpoint(ipd, skb, sport);
	if (unlikely(!t)) {
		atomic64_inc(&ipd->drops.rx_unknown_endpoint);
		DEV_STATS_INC(dev, rx_dropped);
		goto drop;
	}

	if (iptunnel_pull_header(skb, sizeof(struct udphdr), htons(ETH_P_IP),
				 !net_eq(sock_net(sk), dev_net(dev))) ||
	    !ipudp_pull_inner(skb, &proto)) {
		atomic64_inc(&t->rx_malformed);
		goto malformed;
	}
	if (unlikely(!ipudp_tunnel_source_ok(ipd, t, skb))) {
		atomic64_inc(&t->rx_spoofed);
		atomic64_inc(&ipd->drops.rx_spoofed);
		DEV_STATS_INC(dev, rx_dropped);
		goto drop;
	}
	skb->protocol = proto;
	/* RFC 6040: CE on the outer header is kept; on a not-ECT inner
	 * packet it cannot be, and the packet goes (as ip_tunnel_rcv does).
	 */
	if (unlikely(INET_ECN_decapsulate(skb, outer_ds, ipudp_dsfield(skb)) > 1)) {
		DEV_STATS_INC(dev, rx_frame_errors);
		DEV_STATS_INC(dev, rx_errors);
		goto drop;
	}
	skb_reset_mac_header(skb);
	skb->dev = dev;

	len = skb->len;
	if (ipudp_tunnel_count_rx(t, len, READ_ONCE(ipd->idle_jiffies)))
		ipudp_notify_tunnel(ipd, t, IPUDP_CMD_TUNNEL_ACTIVE, GFP_ATOMIC);
	dev_sw_netstats_rx_add(dev, len);
	gro_cells_receive(&ipd->gro_cells, skb);
	return 0;

malformed:
	atomic64_inc(&ipd->drops.rx_malformed);
	DEV_STATS_INC(dev, rx_errors);
drop:
	kfree_skb(skb);
	return 0;
}

/*
 * Userspace closed a socket it handed to us: forget it. The device keeps
 * working; sending through that family fails until a new socket arrives.
 */
static void ipudp_encap_destroy(struct sock *sk)
{
	struct ipudp_dev *ipd;
	bool ours = false;
	int i;

	rcu_read_lock();
	ipd = rcu_dereference_sk_user_data(sk);
	if (ipd) {
		spin_lock_bh(&ipd->sock_lock);
		for (i = 0; i < IPUDP_NSK; i++) {
			if (rcu_access_pointer(ipd->sk[i]) == sk) {
				RCU_INIT_POINTER(ipd->sk[i], NULL);
				ours = true;
			}
			if (rcu_access_pointer(ipd->sk_retired[i]) == sk) {
				RCU_INIT_POINTER(ipd->sk_retired[i], NULL);
				ours = true;
			}
		}
		spin_unlock_bh(&ipd->sock_lock);
	}
	rcu_read_unlock();
	if (ours) {
		/* out of its SO_REUSEPORT group first: what arrives goes to the
		 * socket that took over, not to this closing one
		 */
		sk->sk_prot->unhash(sk);
		rcu_assign_sk_user_data(sk, NULL);
		/* UDP sockets are SOCK_RCU_FREE: readers stay safe. */
		sock_put(sk);
	}
}

static void ipudp_setup_sock(struct ipudp_dev *ipd, struct net *net,
			     struct socket *sock)
{
	struct udp_tunnel_sock_cfg cfg = {
		.sk_user_data = ipd,
		.encap_type = 1,
		.encap_rcv = ipudp_encap_recv,
		.encap_destroy = ipudp_encap_destroy,
	};

	setup_udp_tunnel_sock(net, sock, &cfg);
}

/* Undo what we did to a socket; called after it left ipd->sk[]. */
static void ipudp_sock_free(struct sock *sk, bool user)
{
	if (!user) {
		/* see ipudp_encap_destroy() */
		sk->sk_prot->unhash(sk);
		udp_tunnel_sock_release(sk->sk_socket);
		return;
	}
	/* Give the socket back to userspace as a plain UDP socket. */
	lock_sock(sk);
	WRITE_ONCE(udp_sk(sk)->encap_rcv, NULL);
	WRITE_ONCE(udp_sk(sk)->encap_destroy, NULL);
	WRITE_ONCE(udp_sk(sk)->encap_type, 0);
	rcu_assign_sk_user_data(sk, NULL);
	release_sock(sk);
	synchronize_net();
	sock_put(sk);
}

/*
 * Put @sk (NULL: none) in @slot, free what was there. @user: where the
 * slot's ownership flag is kept (NULL: retired sockets, always userspace's).
 * Caller holds rtnl.
 */
static void ipudp_slot_swap(struct ipudp_dev *ipd, struct sock __rcu **slot,
			    bool *user, struct sock *sk, bool sk_user)
{
	struct sock *old;
	bool old_user;

	spin_lock_bh(&ipd->sock_lock);
	old = rcu_dereference_protected(*slot, lockdep_is_held(&ipd->sock_lock));
	old_user = user ? *user : true;
	rcu_assign_pointer(*slot, sk);
	if (user)
		WRITE_ONCE(*user, sk_user);
	spin_unlock_bh(&ipd->sock_lock);
	if (!old)
		return;
	synchronize_net();
	ipudp_sock_free(old, old_user);
}

static void ipudp_socket_swap(struct ipudp_dev *ipd, int idx, struct sock *sk,
			      bool user)
{
	ipudp_slot_swap(ipd, &ipd->sk[idx], &ipd->sk_user[idx], sk, user);
}

static void ipudp_socket_release_retired(struct ipudp_dev *ipd, int idx)
{
	ipudp_slot_swap(ipd, &ipd->sk_retired[idx], NULL, NULL, false);
}

static void ipudp_socket_release(struct ipudp_dev *ipd, int idx)
{
	ipudp_socket_swap(ipd, idx, NULL, false);
}

void ipudp_socket_release_all(struct ipudp_dev *ipd)
{
	int i;

	for (i = 0; i < IPUDP_NSK; i++) {
		ipudp_socket_release(ipd, i);
		ipudp_socket_release_retired(ipd, i);
	}
}

/* Drop module-made sockets (port change); userspace ones stay. */
void ipudp_socket_release_kernel(struct ipudp_dev *ipd)
{
	int i;

	for (i = 0; i < IPUDP_NSK; i++)
		if (!READ_ONCE(ipd->sk_user[i]))
			ipudp_socket_release(ipd, i);
}

/* @ss := the wildcard address of @family with @port; returns its length. */
static int ipudp_wildcard(struct sockaddr_storage *ss, sa_family_t family,
			  u16 port)
{
	memset(ss, 0, sizeof(*ss));
	ss->ss_family = family;
	if (family == AF_INET6) {
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
		return sizeof(struct sockaddr_in6);
	}
	((struct sockaddr_in *)ss)->sin_port = htons(port);
	return sizeof(struct sockaddr_in);
}

/*
 * Like udp_sock_create(), and with SO_REUSEPORT set before bind if @reuse:
 * then IPUDP_A_RETURN_FD can take a port over from the agent, and a process
 * of the same user (the agent again) can take it back with IPUDP_A_FD,
 * without a moment in which the port is closed. Other module sockets do
 * not share their port: two devices on one port would split its traffic.
 */
static int ipudp_sock_create(struct net *net, sa_family_t family, u16 port,
			     bool reuse, struct socket **res)
{
	struct sockaddr_storage ss;
	struct socket *sock;
	int err;

	err = sock_create_kern(net, family, SOCK_DGRAM, IPPROTO_UDP, &sock);
	if (err)
		return err;
	if (reuse)
		sock_set_reuseport(sock->sk);
	if (family == AF_INET6) {
		ip6_sock_set_v6only(sock->sk);
		udp_set_no_check6_tx(sock->sk, true);
		udp_set_no_check6_rx(sock->sk, true);
	} else {
		sock->sk->sk_no_check_tx = 1;
	}
	err = kernel_bind(sock, (struct sockaddr *)&ss,
			  ipudp_wildcard(&ss, family, port));
	if (err) {
		sock_release(sock);
		return err;
	}
	*res = sock;
	return 0;
}

/* A module socket for outer @family on @port, set up. Caller holds rtnl. */
static int ipudp_socket_create(struct ipudp_dev *ipd, sa_family_t family,
			       u16 port, bool reuse, struct socket **res,
			       struct netlink_ext_ack *extack)
{
	int err;

	if (!ipd->src_net) {
		NL_SET_ERR_MSG(extack, "the device's underlay netns is gone");
		return -ENETUNREACH;
	}
	if (family == AF_INET6 && !IS_ENABLED(CONFIG_IPV6)) {
		NL_SET_ERR_MSG(extack, "IPv6 is not available in this kernel");
		return -EAFNOSUPPORT;
	}
	err = ipudp_sock_create(ipd->src_net, family, port, reuse, res);
	if (err) {
		if (err == -EADDRINUSE && reuse)
			NL_SET_ERR_MSG(extack, "the socket to take over lacks SO_REUSEPORT");
		else if (err == -EADDRINUSE)
			NL_SET_ERR_MSG(extack, "UDP port already in use in the underlay netns");
		else
			NL_SET_ERR_MSG(extack, "cannot create the UDP socket");
		return err;
	}
	ipudp_setup_sock(ipd, ipd->src_net, *res);
	return 0;
}

/* Make sure a socket for outer @family exists. Caller holds rtnl. */
int ipudp_socket_ensure(struct ipudp_dev *ipd, sa_family_t family,
			struct netlink_ext_ack *extack)
{
	int idx = ipudp_sk_index(family);
	struct socket *sock;
	int err;

	if (rcu_access_pointer(ipd->sk[idx]))
		return 0;
	err = ipudp_socket_create(ipd, family, ipd->port, false, &sock, extack);
	if (!err)
		ipudp_socket_swap(ipd, idx, sock->sk, false);
	return err;
}

/*
 * Stop using the userspace-owned sockets: module sockets bound to the same
 * ports (SO_REUSEPORT) take over transmit, while the old ones keep
 * decapsulating what still reaches them until their owner closes them. An
 * agent can so exit, or restart and take the port back with IPUDP_A_FD,
 * without a moment in which the port is closed. Caller holds rtnl.
 */
int ipudp_socket_return_fd(struct ipudp_dev *ipd, struct netlink_ext_ack *extack)
{
	struct socket *sock;
	sa_family_t family;
	struct sock *old;
	int i, err;
	u16 port;

	for (i = 0; i < IPUDP_NSK; i++) {
		/* only encap_destroy can empty the slot meanwhile (attaching
		 * needs rtnl): read @old under sock_lock, compare it later
		 */
		spin_lock_bh(&ipd->sock_lock);
		old = rcu_dereference_protected(ipd->sk[i],
						lockdep_is_held(&ipd->sock_lock));
		if (old && ipd->sk_user[i]) {
			family = old->sk_family;
			port = ntohs(inet_sk(old)->inet_sport);
		} else {
			old = NULL;
		}
		spin_unlock_bh(&ipd->sock_lock);
		if (!old)
			continue;
		err = ipudp_socket_create(ipd, family, port, true, &sock, extack);
		if (err)
			return err;
		ipudp_socket_release_retired(ipd, i);
		spin_lock_bh(&ipd->sock_lock);
		if (rcu_access_pointer(ipd->sk[i]) == old)
			rcu_assign_pointer(ipd->sk_retired[i], old);
		rcu_assign_pointer(ipd->sk[i], sock->sk);
		WRITE_ONCE(ipd->sk_user[i], false);
		WRITE_ONCE(ipd->port, port);
		spin_unlock_bh(&ipd->sock_lock);
	}
	return 0;
}

/*
 * The module's own socket holds the port without SO_REUSEPORT (made for a
 * first tunnel, not by IPUDP_A_RETURN_FD): close it so that the caller can
 * bind. The port is closed for that moment. Caller holds rtnl.
 */
static bool ipudp_socket_yield(struct ipudp_dev *ipd, sa_family_t family)
{
	int idx = ipudp_sk_index(family);
	struct sock *sk;
	bool yield;

	/* encap_destroy may empty a userspace slot meanwhile: look under the lock */
	spin_lock_bh(&ipd->sock_lock);
	sk = rcu_dereference_protected(ipd->sk[idx], lockdep_is_held(&ipd->sock_lock));
	yield = sk && !ipd->sk_user[idx] && !sk->sk_reuseport &&
		ntohs(inet_sk(sk)->inet_sport) == ipd->port;
	spin_unlock_bh(&ipd->sock_lock);
	if (yield)
		ipudp_socket_release(ipd, idx);
	return yield;
}

/*
 * Take over a UDP socket that userspace owns (like L2TP's fd attribute). An
 * unbound one is bound here, to the device's port with SO_REUSEPORT, after
 * it was set up: what reaches it is decapsulated from the first packet on,
 * so an agent takes a port over from the module without losing any.
 */
int ipudp_socket_attach_fd(struct ipudp_dev *ipd, int fd,
			   struct netlink_ext_ack *extack)
{
	struct sockaddr_storage ss;
	struct socket *sock;
	bool yielded;
	struct sock *sk;
	int err, len;

	sock = sockfd_lookup(fd, &err);
	if (!sock) {
		NL_SET_ERR_MSG(extack, "IPUDP_A_FD is not a socket");
		return err;
	}
	sk = sock->sk;
	err = -EINVAL;
	if (sk->sk_protocol != IPPROTO_UDP || sk->sk_type != SOCK_DGRAM ||
	    (sk->sk_family != AF_INET && sk->sk_family != AF_INET6)) {
		NL_SET_ERR_MSG(extack, "IPUDP_A_FD must be an IPv4 or IPv6 UDP socket");
		goto out;
	}
	err = -EBUSY;
	if (rcu_access_pointer(sk->sk_user_data) || udp_sk(sk)->encap_type) {
		NL_SET_ERR_MSG(extack, "IPUDP_A_FD socket is already used by a tunnel");
		goto out;
	}
	sock_hold(sk);
	ipudp_setup_sock(ipd, sock_net(sk), sock);
	if (!inet_sk(sk)->inet_num) {
		len = ipudp_wildcard(&ss, sk->sk_family, ipd->port);
		sock_set_reuseport(sk);
		err = kernel_bind(sock, (struct sockaddr *)&ss, len);
		yielded = err == -EADDRINUSE && ipudp_socket_yield(ipd, sk->sk_family);
		if (yielded)
			err = kernel_bind(sock, (struct sockaddr *)&ss, len);
		if (err) {
			NL_SET_ERR_MSG(extack, "cannot bind the IPUDP_A_FD socket to the port");
			ipudp_sock_free(sk, true);
			if (yielded)	/* the module's socket comes back */
				ipudp_socket_ensure(ipd, sk->sk_family, NULL);
			goto out;
		}
	}
	ipudp_socket_swap(ipd, ipudp_sk_index(sk->sk_family), sk, true);
	err = 0;
out:
	sockfd_put(sock);
	return err;
}

u32 ipudp_socket_flags(struct ipudp_dev *ipd)
{
	u32 flags = 0;

	rcu_read_lock();
	if (rcu_dereference(ipd->sk[IPUDP_SK4]))
		flags |= IPUDP_SOCK_F_V4 |
			 (READ_ONCE(ipd->sk_user[IPUDP_SK4]) ? IPUDP_SOCK_F_V4_USER : 0);
	if (rcu_dereference(ipd->sk[IPUDP_SK6]))
		flags |= IPUDP_SOCK_F_V6 |
			 (READ_ONCE(ipd->sk_user[IPUDP_SK6]) ? IPUDP_SOCK_F_V6_USER : 0);
	rcu_read_unlock();
	return flags;
}

/* Outer TOS / traffic class: the inner DSCP, ECN as INET_ECN_encapsulate. */
static u8 ipudp_outer_tos(const struct sk_buff *skb)
{
	u8 dsfield;

	if (skb->protocol == htons(ETH_P_IP))
		dsfield = ip_hdr(skb)->tos;
	else
		dsfield = ipv6_get_dsfield(ipv6_hdr(skb));
	return ip_tunnel_ecn_encap(dsfield & ~INET_ECN_MASK, ip_hdr(skb), skb);
}

/*
 * Room for the outer headers, and checksum/GSO state for a UDP tunnel
 * carrying a bare IP packet: segmentation then runs over the inner IP
 * header (inet/inet6 offloads of IPPROTO_IPIP/IPV6, as for FOU).
 */
static int ipudp_prepare_skb(struct sk_buff *skb, const struct dst_entry *dst,
			     unsigned int outer_len, bool outer6)
{
	if (skb_cow_head(skb, LL_RESERVED_SPACE(dst->dev) + dst->header_len +
			 outer_len + sizeof(struct udphdr)))
		return -ENOMEM;
	skb_set_inner_ipproto(skb, skb->protocol == htons(ETH_P_IP) ?
			      IPPROTO_IPIP : IPPROTO_IPV6);
	return iptunnel_handle_offloads(skb, SKB_GSO_UDP_TUNNEL_CSUM |
					(outer6 ? SKB_GSO_IPXIP6 : SKB_GSO_IPXIP4));
}

/*
 * Path MTU for the inner packet: the outer route's MTU minus our headers.
 * A packet that must not be fragmented and does not fit gets the ICMP error
 * a router would send, and the inner route learns the MTU, so senders adapt
 * instead of losing packets in a black hole. *@df: set DF on the outer
 * packet (inner IPv4 with DF, or inner IPv6). Returns -EMSGSIZE to drop.
 */
static int ipudp_pmtu(struct ipudp_dev *ipd, struct sk_buff *skb,
		      struct dst_entry *dst, unsigned int overhead, bool *df)
{
	bool inner4 = skb->protocol == htons(ETH_P_IP);
	int mtu = (int)dst_mtu(dst) - (int)overhead;

	*df = inner4 ? !!(ip_hdr(skb)->frag_off & htons(IP_DF)) : true;
	if (!inner4 && mtu < IPV6_MIN_MTU) {
		/* IPv6 cannot be told less than 1280: fragment the outer. */
		*df = false;
		return 0;
	}
	if (!*df || mtu < IPV4_MIN_MTU)
		return 0;
	if (skb_is_gso(skb) ? skb_gso_validate_network_len(skb, mtu) :
	    skb->len <= mtu)
		return 0;
	atomic64_inc(&ipd->drops.tx_too_big);
	skb_dst_update_pmtu_no_confirm(skb, mtu);
	if (inner4)
		icmp_ndo_send(skb, ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, htonl(mtu));
	else
		icmpv6_ndo_send(skb, ICMPV6_PKT_TOOBIG, 0, mtu);
	return -EMSGSIZE;
}

/*
 * Encapsulating send over an IPv4 / IPv6 underlay. @control: @skb holds a
 * control datagram (keepalive), not an inner IP packet: no PMTU, no GSO.
 */
static int ipudp_send4(struct ipudp_dev *ipd, struct ipudp_tunnel *t,
		       struct sock *sk, struct sk_buff *skb, bool control)
{
	struct net *net = sock_net(sk);
	struct flowi4 fl4 = {
		.daddr = t->remote.addr.v4,
		.saddr = t->local.addr.v4,
		.flowi4_proto = IPPROTO_UDP,
		.fl4_sport = inet_sk(sk)->inet_sport,
		.fl4_dport = t->remote.port,
	};
	struct rtable *rt;
	bool df;
	int err;
	u8 tos;

	rt = dst_cache_get_ip4(&t->dst_cache, &fl4.saddr);
	if (!rt) {
		rt = ip_route_output_key(net, &fl4);
		if (IS_ERR(rt))
			return PTR_ERR(rt);
		if (rt->dst.dev == ipd->dev) {
			ip_rt_put(rt);	/* would loop into ourselves */
			return -ELOOP;
		}
		dst_cache_set_ip4(&t->dst_cache, &rt->dst, fl4.saddr);
	}
	df = false;
	err = control ? 0 : ipudp_pmtu(ipd, skb, &rt->dst, IPUDP_OVERHEAD4, &df);
	if (!err && !control)
		err = ipudp_prepare_skb(skb, &rt->dst, sizeof(struct iphdr), false);
	if (err) {
		ip_rt_put(rt);
		return err;
	}
	tos = control ? 0 : ipudp_outer_tos(skb);
	udp_tunnel_xmit_skb(rt, sk, skb, fl4.saddr, fl4.daddr, tos,
			    ip4_dst_hoplimit(&rt->dst), df ? htons(IP_DF) : 0,
			    fl4.fl4_sport, fl4.fl4_dport,
			    !net_eq(net, dev_net(ipd->dev)), false);
	return 0;
}

#if IS_ENABLED(CONFIG_IPV6)
static int ipudp_send6(struct ipudp_dev *ipd, struct ipudp_tunnel *t,
		       struct sock *sk, struct sk_buff *skb, bool control)
{
	struct net *net = sock_net(sk);
	struct flowi6 fl6 = {
		.daddr = t->remote.addr.v6,
		.flowi6_proto = IPPROTO_UDP,
		.fl6_sport = inet_sk(sk)->inet_sport,
		.fl6_dport = t->remote.port,
	};
	struct dst_entry *dst;
	bool df;
	int err;
	u8 prio;

	if (t->local.family == AF_INET6)
		fl6.saddr = t->local.addr.v6;
	dst = dst_cache_get_ip6(&t->dst_cache, &fl6.saddr);
	if (!dst) {
		dst = ipv6_stub->ipv6_dst_lookup_flow(net, sk, &fl6, NULL);
		if (IS_ERR(dst))
			return PTR_ERR(dst);
		if (dst->dev == ipd->dev) {
			dst_release(dst);
			return -ELOOP;
		}
		dst_cache_set_ip6(&t->dst_cache, dst, &fl6.saddr);
	}
	df = false;
	err = control ? 0 : ipudp_pmtu(ipd, skb, dst, IPUDP_OVERHEAD6, &df);
	if (!err && !control)
		err = ipudp_prepare_skb(skb, dst, sizeof(struct ipv6hdr), true);
	if (err) {
		dst_release(dst);
		return err;
	}
	prio = control ? 0 : ipudp_outer_tos(skb);
	/* Drop the inner route and, across netns, the skb's state, before
	 * udp_tunnel6_xmit_skb() sets the outer route (as vxlan, geneve do).
	 */
	skb_scrub_packet(skb, !net_eq(net, dev_net(ipd->dev)));
	/* IPv6 routers never fragment: only we may, when DF is off. */
	skb->ignore_df = !df;
	udp_tunnel6_xmit_skb(dst, sk, skb, ipd->dev, &fl6.saddr, &fl6.daddr,
			     prio, ip6_dst_hoplimit(dst), 0, fl6.fl6_sport,
			     fl6.fl6_dport, false);
	return 0;
}
#endif

static int ipudp_send(struct ipudp_dev *ipd, struct ipudp_tunnel *t,
		      struct sk_buff *skb, bool control)
{
	int idx = ipudp_sk_index(t->remote.family);
	struct sock *sk;

	sk = rcu_dereference_bh(ipd->sk[idx]);
	if (unlikely(!sk))
		return -ENOTCONN;
	if (t->remote.family == AF_INET)
		return ipudp_send4(ipd, t, sk, skb, control);
#if IS_ENABLED(CONFIG_IPV6)
	return ipudp_send6(ipd, t, sk, skb, control);
#else
	return -EAFNOSUPPORT;
#endif
}

/* Encapsulate and send @skb to @t. Consumes @skb only on success. */
int ipudp_socket_send(struct ipudp_dev *ipd, struct ipudp_tunnel *t,
		      struct sk_buff *skb)
{
	return ipudp_send(ipd, t, skb, false);
}

/*
 * Send the keepalive control datagram (0xFFFFFFFF, docs/wire-format.md) to
 * @t from the device's socket, so NAT bindings on the way stay open.
 * Process context (the tunnel's keepalive work).
 */
void ipudp_socket_send_keepalive(struct ipudp_dev *ipd, struct ipudp_tunnel *t)
{
	struct sk_buff *skb;

	skb = alloc_skb(IPUDP_HEADROOM + sizeof(__be32), GFP_KERNEL);
	if (!skb)
		return;
	skb_reserve(skb, IPUDP_HEADROOM);
	memset(skb_put(skb, sizeof(__be32)), 0xFF, sizeof(__be32));
	skb_reset_network_header(skb);
	rcu_read_lock_bh();
	if (ipudp_send(ipd, t, skb, true))
		kfree_skb(skb);
	rcu_read_unlock_bh();
}

/*
 * The inner MTU that fits the underlay path to @t right now: the outer
 * route's MTU minus our headers. Called under rtnl when a tunnel is set.
 */
int ipudp_socket_path_mtu(struct ipudp_dev *ipd, const struct ipudp_tunnel *t)
{
	struct net *net = ipd->src_net;
	int mtu;

	if (!net)
		return -ENETDOWN;
	if (t->remote.family == AF_INET) {
		struct flowi4 fl4 = {
			.daddr = t->remote.addr.v4,
			.saddr = t->local.addr.v4,
			.flowi4_proto = IPPROTO_UDP,
		};
		struct rtable *rt = ip_route_output_key(net, &fl4);

		if (IS_ERR(rt))
			return PTR_ERR(rt);
		mtu = (int)dst_mtu(&rt->dst) - (int)IPUDP_OVERHEAD4;
		ip_rt_put(rt);
		return mtu;
	}
#if IS_ENABLED(CONFIG_IPV6)
	{
		struct flowi6 fl6 = {
			.daddr = t->remote.addr.v6,
			.flowi6_proto = IPPROTO_UDP,
		};
		struct dst_entry *dst;

		if (t->local.family == AF_INET6)
			fl6.saddr = t->local.addr.v6;
		dst = ipv6_stub->ipv6_dst_lookup_flow(net, NULL, &fl6, NULL);
		if (IS_ERR(dst))
			return PTR_ERR(dst);
		mtu = (int)dst_mtu(dst) - (int)IPUDP_OVERHEAD6;
		dst_release(dst);
		return mtu;
	}
#else
	return -EAFNOSUPPORT;
#endif
}
