"""Dumps that span several messages stay honest while the tables change: a
dump either lists every rule that existed throughout exactly once, or it is
marked NLM_F_DUMP_INTR (and the library then dumps again). The first test
changes the rules between two parts of one dump, deterministically; the
second checks the library's answers while another process churns."""

from __future__ import annotations

import socket
import struct
import subprocess
import sys
from collections.abc import Callable

from pyroute2_oracle import ipudp_msg

from lvn.ipudp_abi import CMD_RULE_GET, GENL_VERSION
from lvn.model import Rule
from lvn.netlink import Ipudp
from lvn.nlcodec import encode_attrs

from .netns import Netns, scaled

NLM_F_REQUEST, NLM_F_MULTI, NLM_F_DUMP_INTR, NLM_F_DUMP = 0x1, 0x2, 0x10, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
HDR = struct.Struct("=IHHII")

CHURN = [f"10.1.0.{i}/32" for i in range(1, 51)]          # listed first
STABLE = [f"10.2.{i // 250}.{i % 250 + 1}/32" for i in range(600)]


def multi_device(ns: Netns) -> None:
    ns.ip("link", "add", "lvn0", "type", "ipudp")
    with Ipudp(netns=ns.name) as k:
        k.set_mode("lvn0", "multi")
        k.set_tunnel("lvn0", "10.99.0.2", tunnel_id=1)
        k.set_tunnel("lvn0", "10.99.0.3", tunnel_id=2)
        k.add_rules("lvn0", [Rule(p, 1) for p in CHURN + STABLE])


def read_dump(sock: socket.socket, between_parts: list[object]) -> tuple[list[str], bool]:
    """Prefixes of a rule dump, and whether any part was marked interrupted.
    ``between_parts``: callables run after the first part was read."""
    prefixes: list[str] = []
    interrupted = False
    parts = 0
    while True:
        buf = sock.recv(8192)
        parts += 1
        if parts == 1:
            for step in between_parts:
                step()  # type: ignore[operator]
        off = 0
        while off < len(buf):
            length, mtype, flags, _, _ = HDR.unpack_from(buf, off)
            if mtype == NLMSG_DONE:
                assert parts >= 3, f"the dump fitted in {parts} parts: not a dump in parts"
                return prefixes, interrupted
            assert mtype != NLMSG_ERROR, struct.unpack_from("=i", buf, off + HDR.size)
            interrupted |= bool(flags & NLM_F_DUMP_INTR)
            msg = ipudp_msg(buf[off:off + length])
            msg.decode()
            rule = msg.get_attr("IPUDP_A_RULE")
            addr = rule.get_attr("IPUDP_RULE_A_PREFIX4")
            prefixes.append(f"{addr}/{rule.get_attr('IPUDP_RULE_A_PREFIX_LEN')}")
            off += (length + 3) & ~3


def dumped(ns: Netns, between: Callable[[Ipudp], list[object]]) -> tuple[list[str], bool]:
    """A rule dump of the MULTI device made in ``ns``, read part by part;
    ``between(k)`` gives the steps run after its first part."""
    multi_device(ns)
    with Ipudp(netns=ns.name) as k, ns.entered():
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 16)
        with sock:
            body = struct.pack("=BBH", CMD_RULE_GET, GENL_VERSION, 0)
            body += encode_attrs(ipudp_msg, [("IPUDP_A_IFNAME", "lvn0")])
            sock.send(HDR.pack(HDR.size + len(body), k.family_id,
                               NLM_F_REQUEST | NLM_F_DUMP, 1, 0) + body)
            return read_dump(sock, between(k))


def test_rule_dump_in_parts_lists_each_rule_once_in_order(netns: type[Netns]) -> None:
    """Unchanged between its parts, a dump resumes at the rule where the
    last part stopped (a reference, not a position walked to again): every
    rule once, in the tunnel's order, nothing marked interrupted."""
    got, interrupted = dumped(netns(), lambda k: [])
    assert got == CHURN + STABLE and not interrupted


def test_rule_dump_changed_midway_is_marked(netns: type[Netns]) -> None:
    # rules ahead of the dump's position go away between its parts
    got, interrupted = dumped(netns(), lambda k: [lambda p=p: k.del_rule("lvn0", p)
                                                   for p in CHURN[:10]])
    assert len(got) == len(set(got)), "a rule was listed twice"
    missing = set(STABLE) - set(got)
    assert interrupted, f"the dump was not marked interrupted (missing {len(missing)} rules)"


CHURNER = """
import sys
from lvn.netlink import Ipudp
with Ipudp(netns=sys.argv[1]) as k:
    for line in sys.stdin:  # one round of changes per line, while a dump runs
        for tid in (2, 1):
            for p in sys.argv[2:]:
                k.del_rule("lvn0", p)
            for p in sys.argv[2:]:
                k.add_rule("lvn0", p, tid)
"""


def test_library_dumps_are_consistent_under_churn(netns: type[Netns]) -> None:
    ns = netns()
    multi_device(ns)
    churn = subprocess.Popen([sys.executable, "-c", CHURNER, ns.name, *CHURN[:10]],
                             stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    assert churn.stdin
    try:
        with Ipudp(netns=ns.name) as k:
            for _ in range(8):
                churn.stdin.write(b"round\n")
                churn.stdin.flush()
                listed = [r.prefix for r in k.rules("lvn0")]
                assert len(listed) == len(set(listed)), "a rule was listed twice"
                assert set(STABLE) <= set(listed), "a rule that stayed was not listed"
        _, err = churn.communicate(timeout=scaled(120))  # closes its stdin: it ends
        assert churn.returncode == 0, err.decode()
    finally:
        churn.kill()
