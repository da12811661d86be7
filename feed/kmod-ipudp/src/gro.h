/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef _IPUDP_GRO_H
#define _IPUDP_GRO_H

struct list_head;
struct sk_buff;
struct sock;

struct sk_buff *ipudp_gro_receive(struct sock *sk, struct list_head *head,
				  struct sk_buff *skb);
int ipudp_gro_complete(struct sock *sk, struct sk_buff *skb, int nhoff);

#endif /* _IPUDP_GRO_H */
