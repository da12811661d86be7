"""Network namespace helpers for the VM tests (the shape of WireGuard's netns.sh).

Every namespace is named ``lvn-<pid>-<n>`` and deleted on teardown, so a
failing test leaves nothing behind.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from itertools import count
from typing import Any

from lvn.netlink import in_netns

_ids = count()

# Debug kernels run several times slower: every timeout is multiplied by this.
TIME_SCALE = float(os.environ.get("LVN_TIME_SCALE", "1"))


def scaled(seconds: float) -> float:
    return seconds * TIME_SCALE


def sh(*argv: str, check: bool = True, input: bytes | None = None) -> str:
    p = subprocess.run(argv, capture_output=True, input=input, timeout=scaled(120))
    if check and p.returncode != 0:
        raise AssertionError(
            f"command failed ({p.returncode}): {shlex.join(argv)}\n"
            f"{p.stdout.decode(errors='replace')}{p.stderr.decode(errors='replace')}"
        )
    return p.stdout.decode(errors="replace")


class Netns:
    def __init__(self) -> None:
        self.name = f"lvn-{os.getpid()}-{next(_ids)}"
        sh("ip", "netns", "add", self.name)
        self.ip("link", "set", "lo", "up")

    def ip(self, *args: str, check: bool = True) -> str:
        return sh("ip", "-n", self.name, *args, check=check)

    def run(self, *argv: str, check: bool = True) -> str:
        return sh("ip", "netns", "exec", self.name, *argv, check=check)

    def popen(self, *argv: str, **kw: Any) -> subprocess.Popen[bytes]:
        return subprocess.Popen(["ip", "netns", "exec", self.name, *argv], **kw)

    def delete(self) -> None:
        sh("ip", "netns", "del", self.name, check=False)

    @contextmanager
    def entered(self) -> Iterator[None]:
        """Run the block with this thread inside the namespace (for sockets)."""
        with in_netns(self.name):
            yield


def veth(a: Netns, b: Netns, name_a: str = "ul0", name_b: str = "ul0") -> None:
    tmp = f"v{os.getpid() % 100000}{next(_ids)}"
    sh("ip", "link", "add", tmp + "a", "type", "veth", "peer", "name", tmp + "b")
    sh("ip", "link", "set", tmp + "a", "netns", a.name, "name", name_a)
    sh("ip", "link", "set", tmp + "b", "netns", b.name, "name", name_b)
    a.ip("link", "set", name_a, "up")
    b.ip("link", "set", name_b, "up")


def wait_for(cond: Callable[[], bool], timeout: float = 10.0, what: str = "condition",
             every: float = 0.05) -> None:
    """Until ``cond()``; ``every``: seconds between looks (longer for a
    look that costs, such as a call to another process)."""
    timeout = scaled(timeout)
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)
