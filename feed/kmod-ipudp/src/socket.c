// SPDX-License-Identifier: GPL-2.0-only
/*
 * The device's UDP sockets: made here or handed over by userspace
 * (IPUDP_A_FD), handed back (IPUDP_A_RETURN_FD) through SO_REUSEPORT so a
 * port never closes, and released. The data path is in send.c/receive.c.
 */

#include <linux/file.h>
#include <linux/net.h>
#include <linux/rtnetlink.h>
#include <linux/udp.h>
#include <net/ipv6.h>
#include <net/udp.h>
#include <net/udp_tunnel.h>
#include <uapi/linux/ipudp.h>

#include "device.h"
#include "gro.h"
#include "receive.h"
#include "socket.h"
#include "tunnel.h"

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
		.gro_receive = ipudp_gro_receive,
		.gro_complete = ipudp_gro_complete,
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
	WRITE_ONCE(udp_sk(sk)->gro_receive, NULL);
	WRITE_ONCE(udp_sk(sk)->gro_complete, NULL);
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
	/* routes cached through the old socket (its port, mark, netns) go */
	ipudp_tunnel_reset_routes(ipd);
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
 * Move the module's own sockets to @port. The new sockets are made before
 * the old ones go, so a port that is taken changes nothing: the device
 * keeps its port and its working sockets. Userspace-owned sockets stay
 * where their owner bound them. Caller holds rtnl.
 */
int ipudp_socket_set_port(struct ipudp_dev *ipd, u16 port,
			  struct netlink_ext_ack *extack)
{
	static const sa_family_t families[] = { AF_INET, AF_INET6 };
	struct socket *fresh[IPUDP_NSK] = {};
	unsigned int i;
	int idx, err = 0;

	for (i = 0; i < ARRAY_SIZE(families) && !err; i++) {
		idx = ipudp_sk_index(families[i]);
		if (rcu_access_pointer(ipd->sk[idx]) && !READ_ONCE(ipd->sk_user[idx]))
			err = ipudp_socket_create(ipd, families[i], port, false,
						  &fresh[idx], extack);
	}
	if (err) {
		for (idx = 0; idx < IPUDP_NSK; idx++)
			if (fresh[idx])
				ipudp_sock_free(fresh[idx]->sk, false);
		return err;
	}
	WRITE_ONCE(ipd->port, port);
	for (idx = 0; idx < IPUDP_NSK; idx++)
		if (fresh[idx])
			ipudp_socket_swap(ipd, idx, fresh[idx]->sk, false);
	return 0;
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
	if (!ipd->src_net || !net_eq(sock_net(sk), ipd->src_net)) {
		NL_SET_ERR_MSG(extack,
			       "IPUDP_A_FD socket is not in the device's underlay netns");
		goto out;
	}
	err = -EBUSY;
	if (READ_ONCE(sk->sk_user_data) || udp_sk(sk)->encap_type) {
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
