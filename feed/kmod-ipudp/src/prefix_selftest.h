/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef _IPUDP_PREFIX_SELFTEST_H
#define _IPUDP_PREFIX_SELFTEST_H

#ifdef IPUDP_DEBUG
int ipudp_prefix_selftest(void);
#else
static inline int ipudp_prefix_selftest(void)
{
	return 0;
}
#endif

#endif /* _IPUDP_PREFIX_SELFTEST_H */
