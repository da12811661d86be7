"""A host without the module talks to an ipudp tunnel with the kernel's own
FOU/GUE (docs/wire-format.md, "A stock Linux peer"): ``ip fou add … gue``
receives (GUE variant 1 is a bare IP packet in UDP, which is ipudp's wire
format), and a sit (IPv4 underlay) or ip6tnl (IPv6 underlay) device in
``mode any`` with ``encap fou`` sends, both inner families over one device."""

from __future__ import annotations

import pytest

from lvn.netlink import Ipudp

from .conftest import OVERLAY4, OVERLAY6, UNDERLAY, add_overlay, add_underlay, tcp_stream
from .netns import Netns, scaled, sh, veth

STOCK_DEVICE = {  # outer family -> the kernel's tunnel type for "mode any"
    "ipv4": ["sit", "mode", "any"],
    "ipv6": ["ip6tnl", "mode", "any", "encaplimit", "none"],
}


def stock_peer(ns: Netns, outer: str) -> None:
    """ns: 'b' of the usual pair, made of stock kernel tunnels only."""
    local, remote = UNDERLAY[outer][1], UNDERLAY[outer][0]
    # modules on Debian's kernels, built in on the debug kernel (whose
    # modprobe finds no module tree): "ip fou" below names what is missing
    for mod in ("fou", "fou6") if outer == "ipv6" else ("fou",):
        sh("modprobe", mod, check=False)
    ns.ip("fou", "add", "port", "50000", "gue", *(["-6"] if outer == "ipv6" else []))
    ns.ip("link", "add", "lvn0", "type", *STOCK_DEVICE[outer], "remote", remote,
          "local", local, "ttl", "64", "encap", "fou", "encap-sport", "50000",
          "encap-dport", "50000")
    add_overlay(ns, "lvn0", OVERLAY4[1], OVERLAY6[1])


@pytest.mark.parametrize("outer", ["ipv4", "ipv6"])
def test_stock_fou_gue_peer(netns: type[Netns], outer: str) -> None:
    a, b = netns(), netns()
    veth(a, b)
    add_underlay(a, "10.99.0.1", "fd99::1")
    add_underlay(b, "10.99.0.2", "fd99::2")
    a.ip("link", "add", "lvn0", "type", "ipudp")
    with Ipudp(netns=a.name) as k:
        k.set_tunnel("lvn0", UNDERLAY[outer][1], local=UNDERLAY[outer][0])
    add_overlay(a, "lvn0", OVERLAY4[0], OVERLAY6[0])
    stock_peer(b, outer)
    wait = str(int(scaled(3)))
    for src, dst in ((a, OVERLAY4[1]), (a, OVERLAY6[1]), (b, OVERLAY4[0]), (b, OVERLAY6[0])):
        src.run("ping", "-c", "2", "-i", "0.2", "-W", wait, dst)
    tcp_stream(a, b, OVERLAY4[0], 1 << 20)
    tcp_stream(b, a, OVERLAY6[1], 1 << 20)
    with Ipudp(netns=a.name) as k:
        st = k.device("lvn0").tunnels[0].stats
    # both streams crossed the ipudp device (inner bytes; packets may be GSO)
    assert st.rx_bytes > 1 << 20 and st.tx_bytes > 1 << 20
