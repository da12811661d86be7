"""One rtnetlink request creates a device with its mode and port
(IFLA_INFO_DATA: IFLA_IPUDP_MODE, IFLA_IPUDP_PORT), and reads them back."""

from __future__ import annotations

import errno

import pytest

from lvn.cli import main
from lvn.netlink import Ipudp, KernelError

from .netns import Netns


def test_create_multi_on_a_port(netns: type[Netns]) -> None:
    ns = netns()
    with Ipudp(netns=ns.name) as k:
        k.add_device("hub0", mode="multi", port=50001)
        dev = k.device("hub0")
        assert (dev.mode, dev.port) == ("multi", 50001)
        assert k.link_info("hub0") == {"mode": "multi", "port": 50001}
        k.set_tunnel("hub0", "10.99.0.2", tunnel_id=7)
        assert ":50001 " in ns.run("ss", "-Hnuln")
        # the defaults, when nothing is given
        k.add_device("lvn0")
        assert k.link_info("lvn0") == {"mode": "fixed", "port": 50000}


def test_cli_dev_add_mode_and_port(netns: type[Netns]) -> None:
    ns = netns()
    assert main(["-n", ns.name, "dev", "add", "hub1", "--mode", "multi", "--port", "50002"]) == 0
    with Ipudp(netns=ns.name) as k:
        dev = k.device("hub1")
    assert (dev.mode, dev.port) == ("multi", 50002)


@pytest.mark.parametrize("data, text", [
    ({"mode": 9}, "mode"),
    ({"port": 0}, "port"),
])
def test_bad_link_data_refused(netns: type[Netns], data: dict[str, int], text: str) -> None:
    ns = netns()
    with Ipudp(netns=ns.name) as k:
        with pytest.raises(KernelError) as exc:
            k._add_link("bad0", **data)
        assert exc.value.errno in (errno.EINVAL, errno.ERANGE)
        assert text in str(exc.value).lower()
        assert "bad0" not in ns.ip("link", "show")
