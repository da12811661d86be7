// SPDX-License-Identifier: GPL-2.0-only
/*
 * Self-test of the prefix tries at module load, built only with
 * IPUDP_DEBUG=y (the debug-kernel stage), like WireGuard's allowedips
 * selftest: random overlapping prefixes of both families go into a trie,
 * and every lookup must agree with a linear longest-prefix search; again
 * after half the prefixes went, and the trie must be empty at the end.
 */

#include <linux/random.h>
#include <linux/rtnetlink.h>
#include <linux/slab.h>

#include "prefix.h"
#include "prefix_selftest.h"
#include "tunnel.h"

#define N_TUNNELS	4
#define N_PREFIXES	256	/* per family */
#define N_LOOKUPS	4096	/* per family and round */

struct ipudp_ref_prefix {
	u8 family;
	u8 cidr;
	u8 bits[16];
	u8 tunnel;
	bool live;
};

static bool ipudp_ref_matches(const struct ipudp_ref_prefix *r, const u8 *addr)
{
	unsigned int full = r->cidr / 8, rest = r->cidr % 8;

	if (memcmp(r->bits, addr, full))
		return false;
	return !rest || !((r->bits[full] ^ addr[full]) & (u8)(0xff << (8 - rest)));
}

/* Random addresses from a small space, so that prefixes overlap. */
static void ipudp_random_addr(u8 family, u8 *addr)
{
	memset(addr, 0, 16);
	get_random_bytes(addr, 16);
	addr[0] = family == AF_INET ? 10 : 0xfd;
	addr[1] &= 0x03;
}

static int ipudp_check_lookups(struct ipudp_prefixes *p,
			       const struct ipudp_ref_prefix *ref, unsigned int n,
			       struct ipudp_tunnel **tunnels, u8 family)
{
	const struct ipudp_ref_prefix *best;
	struct ipudp_tunnel *got, *want;
	unsigned int i, j;
	u8 addr[16];

	for (i = 0; i < N_LOOKUPS; i++) {
		ipudp_random_addr(family, addr);
		best = NULL;
		for (j = 0; j < n; j++)
			if (ref[j].live && ref[j].family == family &&
			    ipudp_ref_matches(&ref[j], addr) &&
			    (!best || ref[j].cidr > best->cidr))
				best = &ref[j];
		want = best ? tunnels[best->tunnel] : NULL;
		rcu_read_lock_bh();
		got = ipudp_prefixes_lookup(p, family, addr);
		rcu_read_unlock_bh();
		if (got != want) {
			pr_err("prefix self-test: lookup %*phN: got %p, want %p\n",
			       family == AF_INET ? 4 : 16, addr, got, want);
			return -EINVAL;
		}
	}
	return 0;
}

static int ipudp_selftest_run(struct ipudp_prefixes *p,
			      struct ipudp_ref_prefix *ref,
			      struct ipudp_tunnel **tunnels)
{
	unsigned int n = 0, i, k;
	u8 family, maxbits;
	int err;

	for (i = 0; i < 2 * N_PREFIXES; i++) {
		struct ipudp_ref_prefix *r = &ref[n];

		r->family = i < N_PREFIXES ? AF_INET : AF_INET6;
		maxbits = r->family == AF_INET ? 32 : 128;
		ipudp_random_addr(r->family, r->bits);
		r->cidr = 8 + get_random_u32_below(maxbits - 8 + 1);
		/* host bits off, as the trie keeps them */
		for (k = r->cidr; k < maxbits; k++)
			r->bits[k / 8] &= ~(0x80 >> (k % 8));
		r->tunnel = get_random_u32_below(N_TUNNELS);
		err = ipudp_prefixes_insert(p, r->family, r->bits, r->cidr,
					    tunnels[r->tunnel],
					    &tunnels[r->tunnel]->rules);
		if (err == -EEXIST)
			continue;	/* drawn twice: the first one stays */
		if (err)
			return err;
		r->live = true;
		n++;
	}
	for (family = AF_INET; ; family = AF_INET6) {
		err = ipudp_check_lookups(p, ref, n, tunnels, family);
		if (err || family == AF_INET6)
			break;
	}
	if (err)
		return err;
	for (i = 0; i < n; i += 2) {
		err = ipudp_prefixes_remove(p, ref[i].family, ref[i].bits,
					    ref[i].cidr, tunnels[ref[i].tunnel]);
		if (err)
			return err;
		ref[i].live = false;
	}
	err = ipudp_check_lookups(p, ref, n, tunnels, AF_INET) ?:
	      ipudp_check_lookups(p, ref, n, tunnels, AF_INET6);
	if (err)
		return err;
	for (i = 0; i < N_TUNNELS; i++)
		ipudp_prefixes_remove_list(p, &tunnels[i]->rules);
	if (p->count || rtnl_dereference(p->root4) || rtnl_dereference(p->root6)) {
		pr_err("prefix self-test: trie not empty after removing everything\n");
		return -EINVAL;
	}
	pr_info("prefix self-test passed: %u prefixes, %u lookups\n", n,
		4 * N_LOOKUPS);
	return 0;
}

int ipudp_prefix_selftest(void)
{
	struct ipudp_tunnel *tunnels[N_TUNNELS] = {};
	struct ipudp_prefixes p = {};
	struct ipudp_ref_prefix *ref;
	int err = -ENOMEM, i;

	ref = kcalloc(2 * N_PREFIXES, sizeof(*ref), GFP_KERNEL);
	if (!ref)
		return -ENOMEM;
	for (i = 0; i < N_TUNNELS; i++) {
		tunnels[i] = ipudp_tunnel_alloc(GFP_KERNEL);
		if (!tunnels[i])
			goto out;
	}
	rtnl_lock();
	err = ipudp_selftest_run(&p, ref, tunnels);
	for (i = 0; i < N_TUNNELS; i++)
		ipudp_prefixes_remove_list(&p, &tunnels[i]->rules);
	rtnl_unlock();
out:
	for (i = 0; i < N_TUNNELS; i++)
		ipudp_tunnel_free(tunnels[i]);
	rcu_barrier();	/* nothing of ours pending if the module load fails */
	kfree(ref);
	return err;
}
