/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef _IPUDP_SEND_H
#define _IPUDP_SEND_H

struct ipudp_dev;
struct ipudp_tunnel;
struct sk_buff;

int ipudp_send_data(struct ipudp_dev *ipd, struct ipudp_tunnel *t,
		    struct sk_buff *skb);
void ipudp_send_keepalive(struct ipudp_dev *ipd, struct ipudp_tunnel *t);
int ipudp_send_path_mtu(struct ipudp_dev *ipd, struct ipudp_tunnel *t);

#endif /* _IPUDP_SEND_H */
