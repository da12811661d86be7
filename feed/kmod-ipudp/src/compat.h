/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Kernel API differences between 6.1 and 6.12, turned into feature macros.
 * Force-included by Kbuild: the .c files test only the COMPAT_* names.
 */
#ifndef _IPUDP_COMPAT_H
#define _IPUDP_COMPAT_H

#include <linux/version.h>

/* 6.12 replaced NETIF_F_LLTX with the dev->lltx bit. */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 12, 0)
#define COMPAT_HAS_DEV_LLTX 1
#endif

/*
 * From 6.7 the core allocates dev->tstats when pcpu_stat_type is set, and
 * later iptunnel_xmit_stats() insists on it; before, the driver allocates.
 */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 7, 0)
#define COMPAT_CORE_ALLOCS_TSTATS 1
#endif

/* 6.2 moved the parsed attributes of a dump into genl_dumpit_info.info. */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 2, 0)
#define COMPAT_DUMPIT_INFO_ATTRS(cb) (genl_dumpit_info(cb)->info.attrs)
#else
#define COMPAT_DUMPIT_INFO_ATTRS(cb) (genl_dumpit_info(cb)->attrs)
#endif

/* 6.2 split the ops that pre_doit/post_doit are handed. */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 2, 0)
#define COMPAT_GENL_DOIT_OPS genl_split_ops
#else
#define COMPAT_GENL_DOIT_OPS genl_ops
#endif

#endif /* _IPUDP_COMPAT_H */
