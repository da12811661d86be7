// SPDX-License-Identifier: GPL-2.0
/*
 * Deliberately broken module for the debug stage's self-test only (never
 * shipped): it leaks one allocation and reads another after freeing it,
 * so KASAN and kmemleak must both report it.
 */

#include <linux/module.h>
#include <linux/slab.h>

static char *leaky_keep;

static noinline void leaky_leak(void)
{
	int i;

	/* Several objects whose only references die here: leaks. */
	for (i = 0; i < 8; i++) {
		char *leak = kmalloc(200, GFP_KERNEL);

		if (leak)
			memset(leak, 0x5a, 200);
	}
}

static int __init leaky_init(void)
{
	char *gone = kmalloc(64, GFP_KERNEL);

	if (!gone)
		return -ENOMEM;
	leaky_leak();
	kfree(gone);
	leaky_keep = gone;
	pr_info("leaky: reading freed memory: %d\n", READ_ONCE(leaky_keep[8]));
	return 0;
}

static void __exit leaky_exit(void)
{
}

module_init(leaky_init);
module_exit(leaky_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("L-VN debug-stage self-test: a leak and a use-after-free");
