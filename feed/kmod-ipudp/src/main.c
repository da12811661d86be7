// SPDX-License-Identifier: GPL-2.0-only
/*
 * ipudp: IP-in-UDP encapsulation devices for L-VN, the Lite Virtual Network.
 * Module init and exit only; each subsystem lives in its own file.
 */

#include <linux/module.h>
#include <net/genetlink.h>
#include <net/rtnetlink.h>
#include <uapi/linux/ipudp.h>

#include "device.h"
#include "tunnel.h"
#include "netlink.h"
#include "prefix_selftest.h"

static int __init ipudp_mod_init(void)
{
	int err;

	err = ipudp_tunnel_cache_init();
	if (err)
		return err;
	err = ipudp_prefix_selftest();
	if (err)
		goto err_cache;
	err = ipudp_device_init();
	if (err)
		goto err_cache;
	err = ipudp_genetlink_init();
	if (err)
		goto err_device;
	pr_info("IP-in-UDP tunnels, genl family %s v%d\n", IPUDP_GENL_NAME,
		IPUDP_GENL_VERSION);
	return 0;

err_device:
	ipudp_device_uninit();
err_cache:
	ipudp_tunnel_cache_destroy();
	return err;
}

static void __exit ipudp_mod_exit(void)
{
	/* devices first: their tunnels' TUNNEL_DEL events need the family */
	ipudp_device_uninit();	/* ends with rcu_barrier() */
	ipudp_genetlink_uninit();
	ipudp_tunnel_cache_destroy();
}

module_init(ipudp_mod_init);
module_exit(ipudp_mod_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("IP-in-UDP tunnel devices (L-VN)");
MODULE_AUTHOR("L-VN developers");
MODULE_VERSION("0.1.0");
MODULE_ALIAS_RTNL_LINK(IPUDP_GENL_NAME);
MODULE_ALIAS_GENL_FAMILY(IPUDP_GENL_NAME);
