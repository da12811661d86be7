/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef _IPUDP_SOCKET_H
#define _IPUDP_SOCKET_H

#include <linux/netlink.h>

#include "device.h"

struct ipudp_dev;

/* The slot of a device's socket for outer @family. */
static inline int ipudp_sk_index(sa_family_t family)
{
	return family == AF_INET6 ? IPUDP_SK6 : IPUDP_SK4;
}

int ipudp_socket_ensure(struct ipudp_dev *ipd, sa_family_t family,
			struct netlink_ext_ack *extack);
int ipudp_socket_return_fd(struct ipudp_dev *ipd, struct netlink_ext_ack *extack);
int ipudp_socket_attach_fd(struct ipudp_dev *ipd, int fd,
			   struct netlink_ext_ack *extack);
void ipudp_socket_release_all(struct ipudp_dev *ipd);
int ipudp_socket_set_port(struct ipudp_dev *ipd, u16 port,
			  struct netlink_ext_ack *extack);
u32 ipudp_socket_flags(struct ipudp_dev *ipd);

#endif /* _IPUDP_SOCKET_H */
