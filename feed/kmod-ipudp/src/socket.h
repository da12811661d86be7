/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _IPUDP_SOCKET_H
#define _IPUDP_SOCKET_H

#include <linux/netlink.h>

struct ipudp_dev;
struct ipudp_tunnel;
struct sk_buff;

int ipudp_socket_ensure(struct ipudp_dev *ipd, sa_family_t family,
			struct netlink_ext_ack *extack);
int ipudp_socket_return_fd(struct ipudp_dev *ipd, struct netlink_ext_ack *extack);
int ipudp_socket_attach_fd(struct ipudp_dev *ipd, int fd,
			   struct netlink_ext_ack *extack);
void ipudp_socket_release_all(struct ipudp_dev *ipd);
void ipudp_socket_release_kernel(struct ipudp_dev *ipd);
u32 ipudp_socket_flags(struct ipudp_dev *ipd);
int ipudp_socket_send(struct ipudp_dev *ipd, struct ipudp_tunnel *t,
		      struct sk_buff *skb);
void ipudp_socket_send_keepalive(struct ipudp_dev *ipd, struct ipudp_tunnel *t);
int ipudp_socket_path_mtu(struct ipudp_dev *ipd, const struct ipudp_tunnel *t);

#endif /* _IPUDP_SOCKET_H */
