/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef _IPUDP_NETLINK_H
#define _IPUDP_NETLINK_H

#include <linux/gfp.h>
#include <uapi/linux/ipudp.h>
#include <linux/types.h>

struct ipudp_dev;
struct ipudp_tunnel;

int ipudp_genetlink_init(void);
void ipudp_notify_tunnel(struct ipudp_dev *ipd, struct ipudp_tunnel *t,
			 u8 cmd, u32 flags, gfp_t gfp);
void ipudp_notify_tunnel_del(struct ipudp_dev *ipd, struct ipudp_tunnel *t,
			     enum ipudp_del_reason reason);
void ipudp_genetlink_uninit(void);

#endif /* _IPUDP_NETLINK_H */
