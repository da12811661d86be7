/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _IPUDP_NETLINK_H
#define _IPUDP_NETLINK_H

int ipudp_genetlink_init(void);
void ipudp_genetlink_uninit(void);

#endif /* _IPUDP_NETLINK_H */
