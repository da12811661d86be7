from __future__ import annotations

import errno

from lvn.netlink import KernelError, explain


def test_kernel_message_preferred_with_errno_text() -> None:
    e = KernelError("creating lvn0", errno.EEXIST, "device name taken")
    assert str(e) == "creating lvn0: device name taken (already exists)"
    assert e.errno == errno.EEXIST


def test_plain_errno() -> None:
    assert explain(errno.EPERM) == "operation not permitted (needs root / CAP_NET_ADMIN)"
    assert explain(errno.ENOENT) == "No such file or directory"
