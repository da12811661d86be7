/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef _IPUDP_RECEIVE_H
#define _IPUDP_RECEIVE_H

struct sock;
struct sk_buff;

int ipudp_encap_recv(struct sock *sk, struct sk_buff *skb);

#endif /* _IPUDP_RECEIVE_H */
