/* SPDX-License-Identifier: (GPL-2.0 WITH Linux-syscall-note) OR MIT */
/*
 * ipudp: IP-in-UDP tunnel devices, generic netlink API.
 *
 * Family "ipudp", version IPUDP_GENL_VERSION. Every attribute is typed and
 * nested; no C structure crosses this ABI. Ports are host byte order u16,
 * IPv4 addresses are 4 network-order bytes, IPv6 addresses 16 bytes.
 *
 * Creating a device (rtnetlink, "ip link add NAME type ipudp"): IFLA_INFO_DATA
 * may carry IFLA_IPUDP_MODE (u8, enum ipudp_mode) and IFLA_IPUDP_PORT (u16,
 * not 0), so that one request makes, e.g., a MULTI device on its own port;
 * RTM_GETLINK reports both.
 *
 * Commands (all need CAP_NET_ADMIN in the device's user namespace; changing
 * the sockets - PORT, FD, RETURN_FD - also in the user namespace of the
 * network namespace that created the device, where its sockets live):
 *
 *  IPUDP_CMD_DEV_GET     doit: one device (IFINDEX or IFNAME)
 *                        dumpit: every ipudp device of the netns
 *  IPUDP_CMD_DEV_SET     IFINDEX|IFNAME, [MODE], [PORT], [FD | RETURN_FD],
 *                        [IDLE_TIMEOUT]; RETURN_FD (flag) hands the
 *                        caller's sockets back and goes on with module
 *                        sockets on the same ports (SO_REUSEPORT), so an
 *                        agent can restart without closing the port
 *  IPUDP_CMD_TUNNEL_NEW  IFINDEX|IFNAME, TUNNEL { REMOTE4|REMOTE6,
 *                        [LOCAL4|LOCAL6], [REMOTE_PORT], [ID] }, [FLAGS];
 *                        EEXIST unless FLAGS has IPUDP_F_REPLACE (genetlink
 *                        cannot use NLM_F_REPLACE: it aliases NLM_F_ROOT)
 *  IPUDP_CMD_TUNNEL_DEL  IFINDEX|IFNAME, [TUNNEL { ID }]
 *  IPUDP_CMD_TUNNEL_GET  doit: IFINDEX|IFNAME, TUNNEL { ID }
 *                        dumpit: IFINDEX|IFNAME -> one message per tunnel
 *  IPUDP_CMD_RULE_NEW    IFINDEX|IFNAME, RULE { TUNNEL_ID, PREFIX4|PREFIX6,
 *                        PREFIX_LEN, [TYPE] }
 *  IPUDP_CMD_RULE_DEL    same attributes (TUNNEL_ID optional)
 *  IPUDP_CMD_RULE_GET    dumpit: IFINDEX|IFNAME -> one message per rule
 *  IPUDP_CMD_ROUTE_GET   IFINDEX|IFNAME, RULE { PREFIX4|PREFIX6 [, TYPE] }:
 *                        which tunnel the data path picks for that address
 *
 * MULTI mode (IPUDP_A_MODE, settable while the device has no tunnel): many
 * tunnels per device; transmit picks the tunnel of the longest DEST prefix
 * matching the inner destination; receive accepts an inner source only if
 * the longest SOURCE prefix (or, if the tunnel has none, DEST prefix)
 * matching it belongs to the tunnel the packet came from.
 *
 * Dumps of devices, tunnels and rules that ran while the tables changed set
 * NLM_F_DUMP_INTR on their messages: dump again for a consistent view.
 *
 * Multicast group IPUDP_MCGRP_EVENTS: TUNNEL_NEW / TUNNEL_DEL / TUNNEL_ACTIVE
 * (first packet received after IPUDP_A_IDLE_TIMEOUT of silence) messages
 * (IFINDEX, IFNAME, TUNNEL { ID, REMOTE*, REMOTE_PORT }) on every change:
 * TUNNEL_NEW carries IPUDP_A_FLAGS IPUDP_F_REPLACE when it changed a tunnel
 * in place; TUNNEL_DEL carries IPUDP_A_REASON (enum ipudp_del_reason) and
 * is sent on every removal, the device's and the module's included.
 *
 * Replies to DEV_GET carry this tree:
 *
 *  IPUDP_A_IFINDEX         u32
 *  IPUDP_A_IFNAME          string
 *  IPUDP_A_MODE            u8, enum ipudp_mode
 *  IPUDP_A_PORT            u16, local UDP port of the device
 *  IPUDP_A_SOCK_FLAGS      u32, IPUDP_SOCK_F_*: which sockets are attached
 *  IPUDP_A_STATS           nest, device drop counters (IPUDP_STATS_A_*)
 *  IPUDP_A_N_TUNNELS       u32, IPUDP_A_N_RULES u32 (both tries)
 *  IPUDP_A_IDLE_TIMEOUT    u16 seconds (DEV_SET/DEV_GET, default 30): a
 *                          tunnel silent this long announces its next
 *                          received packet with IPUDP_CMD_TUNNEL_ACTIVE
 *  IPUDP_A_TUNNEL          nest, FIXED mode only (TUNNEL_GET for all):
 *    IPUDP_TUNNEL_A_ID           u32
 *    IPUDP_TUNNEL_A_LOCAL4/6     source address used for the outer header
 *    IPUDP_TUNNEL_A_REMOTE4/6    remote endpoint address
 *    IPUDP_TUNNEL_A_REMOTE_PORT  u16
 *    IPUDP_TUNNEL_A_LAST_RX_MS   u64, milliseconds since the last packet
 *    IPUDP_TUNNEL_A_LAST_TX_MS   u64 (attribute absent: never)
 *    IPUDP_TUNNEL_A_KEEPALIVE    u16 seconds, 0: off (TUNNEL_NEW/GET): send
 *                                the 0xFFFFFFFF control datagram this often,
 *                                so NAT bindings hold without an agent
 *    IPUDP_TUNNEL_A_STATS        nest, IPUDP_STATS_A_{RX,TX}_{PACKETS,BYTES},
 *                                RX_SPOOFED, RX_MALFORMED
 */
#ifndef _UAPI_LINUX_IPUDP_H
#define _UAPI_LINUX_IPUDP_H

#define IPUDP_GENL_NAME		"ipudp"
#define IPUDP_GENL_VERSION	1
#define IPUDP_DEFAULT_PORT	50000

/* A control datagram: its payload starts with four 0xff bytes and has at
 * most IPUDP_CONTROL_MAX_LEN bytes; any other payload that is not IP is
 * malformed (docs/wire-format.md).
 */
#define IPUDP_CONTROL_PREFIX_LEN	4
#define IPUDP_CONTROL_MAX_LEN		512

enum ipudp_mode {
	IPUDP_MODE_FIXED,
	IPUDP_MODE_MULTI,
	__IPUDP_MODE_LAST
};

#define IPUDP_MODE_MAX (__IPUDP_MODE_LAST - 1)

enum ipudp_cmd {
	IPUDP_CMD_UNSPEC,
	IPUDP_CMD_DEV_GET,
	IPUDP_CMD_DEV_SET,
	IPUDP_CMD_TUNNEL_NEW,
	IPUDP_CMD_TUNNEL_DEL,
	IPUDP_CMD_TUNNEL_GET,
	IPUDP_CMD_RULE_NEW,
	IPUDP_CMD_RULE_DEL,
	IPUDP_CMD_RULE_GET,
	IPUDP_CMD_ROUTE_GET,
	IPUDP_CMD_TUNNEL_ACTIVE,	/* notification only: see below */
	__IPUDP_CMD_LAST
};

#define IPUDP_CMD_MAX (__IPUDP_CMD_LAST - 1)

enum ipudp_sock_flag {
	IPUDP_SOCK_F_V4 = 1U << 0,	/* an IPv4 socket is attached */
	IPUDP_SOCK_F_V6 = 1U << 1,	/* an IPv6 socket is attached */
	IPUDP_SOCK_F_V4_USER = 1U << 2,	/* ... and it came from userspace */
	IPUDP_SOCK_F_V6_USER = 1U << 3,
	__IPUDP_SOCK_F_ALL = (1U << 4) - 1
};

enum ipudp_del_reason {
	IPUDP_DEL_REQUEST,	/* an IPUDP_CMD_TUNNEL_DEL */
	IPUDP_DEL_DEVICE,	/* its device went (deleted, netns gone, module unloaded) */
	__IPUDP_DEL_LAST
};

enum ipudp_flag {
	IPUDP_F_REPLACE = 1U << 0,	/* TUNNEL_NEW: replace an existing tunnel */
	__IPUDP_F_ALL = (1U << 1) - 1
};

enum ipudp_attr {
	IPUDP_A_UNSPEC,
	IPUDP_A_IFINDEX,
	IPUDP_A_IFNAME,
	IPUDP_A_MODE,
	IPUDP_A_PORT,
	IPUDP_A_FD,
	IPUDP_A_SOCK_FLAGS,
	IPUDP_A_STATS,
	IPUDP_A_TUNNEL,
	IPUDP_A_FLAGS,
	IPUDP_A_RULE,
	IPUDP_A_N_TUNNELS,
	IPUDP_A_N_RULES,
	IPUDP_A_IDLE_TIMEOUT,
	IPUDP_A_RETURN_FD,
	IPUDP_A_REASON,		/* u8, enum ipudp_del_reason: TUNNEL_DEL events only */
	__IPUDP_A_LAST
};

#define IPUDP_A_MAX (__IPUDP_A_LAST - 1)

enum ipudp_tunnel_attr {
	IPUDP_TUNNEL_A_UNSPEC,
	IPUDP_TUNNEL_A_ID,
	IPUDP_TUNNEL_A_LOCAL4,
	IPUDP_TUNNEL_A_LOCAL6,
	IPUDP_TUNNEL_A_REMOTE4,
	IPUDP_TUNNEL_A_REMOTE6,
	IPUDP_TUNNEL_A_REMOTE_PORT,
	IPUDP_TUNNEL_A_LAST_RX_MS,
	IPUDP_TUNNEL_A_LAST_TX_MS,
	IPUDP_TUNNEL_A_STATS,
	IPUDP_TUNNEL_A_PAD,
	IPUDP_TUNNEL_A_KEEPALIVE,
	__IPUDP_TUNNEL_A_LAST
};

#define IPUDP_TUNNEL_A_MAX (__IPUDP_TUNNEL_A_LAST - 1)

enum ipudp_stats_attr {
	IPUDP_STATS_A_UNSPEC,
	IPUDP_STATS_A_RX_PACKETS,
	IPUDP_STATS_A_RX_BYTES,
	IPUDP_STATS_A_TX_PACKETS,
	IPUDP_STATS_A_TX_BYTES,
	IPUDP_STATS_A_RX_UNKNOWN_ENDPOINT,	/* IP payload from a stranger */
	IPUDP_STATS_A_RX_MALFORMED,		/* truncated inner header, or
						 * neither IP nor control
						 */
	IPUDP_STATS_A_RX_CONTROL_DROPPED,	/* control datagram, no listener */
	IPUDP_STATS_A_TX_NO_TUNNEL,		/* nothing to send it to */
	IPUDP_STATS_A_TX_NO_ROUTE,		/* outer route lookup failed */
	IPUDP_STATS_A_RX_SPOOFED,		/* inner source not allowed */
	IPUDP_STATS_A_PAD,
	IPUDP_STATS_A_TX_TOO_BIG,		/* did not fit the path: ICMP sent */
	__IPUDP_STATS_A_LAST
};

#define IPUDP_STATS_A_MAX (__IPUDP_STATS_A_LAST - 1)

enum ipudp_rule_type {
	IPUDP_RULE_DEST,	/* transmit: inner destination prefix -> tunnel */
	IPUDP_RULE_SOURCE,	/* receive: inner source prefix allowed from tunnel */
	__IPUDP_RULE_LAST
};

#define IPUDP_RULE_MAX (__IPUDP_RULE_LAST - 1)

enum ipudp_rule_attr {
	IPUDP_RULE_A_UNSPEC,
	IPUDP_RULE_A_TUNNEL_ID,
	IPUDP_RULE_A_PREFIX4,
	IPUDP_RULE_A_PREFIX6,
	IPUDP_RULE_A_PREFIX_LEN,
	IPUDP_RULE_A_TYPE,
	__IPUDP_RULE_A_LAST
};

#define IPUDP_RULE_A_MAX (__IPUDP_RULE_A_LAST - 1)

#define IPUDP_MCGRP_EVENTS	"events"

/* rtnetlink: IFLA_INFO_DATA of link kind "ipudp" */
enum ipudp_link_attr {
	IFLA_IPUDP_UNSPEC,
	IFLA_IPUDP_MODE,
	IFLA_IPUDP_PORT,
	__IFLA_IPUDP_LAST
};

#define IFLA_IPUDP_MAX (__IFLA_IPUDP_LAST - 1)

#endif /* _UAPI_LINUX_IPUDP_H */
