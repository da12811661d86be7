"""Which Linux capabilities the service keeps (docs/threat-model.md).

The service and the node agent run as root (procd starts them so) but drop
every capability except these two and the ones ``agent.capabilities``
lists for hooks, from the bounding set too, so nothing they start (a hook,
a setuid program) gets one back.  Pure and MicroPython-friendly: the
system calls are at the edges (lvn/privilege.py on CPython, lvn/node.py's
``drop_capabilities`` on MicroPython).
"""

import struct

# what the service itself needs: genetlink/rtnetlink changes and
# SO_RCVBUFFORCE (net_admin), a listen or data port below 1024
NEEDED = ("net_admin", "net_bind_service")

# linux/capability.h, lower-case without the CAP_ prefix
NUMBERS = {
    "chown": 0, "dac_override": 1, "dac_read_search": 2, "fowner": 3, "fsetid": 4,
    "kill": 5, "setgid": 6, "setuid": 7, "setpcap": 8, "linux_immutable": 9,
    "net_bind_service": 10, "net_broadcast": 11, "net_admin": 12, "net_raw": 13,
    "ipc_lock": 14, "ipc_owner": 15, "sys_module": 16, "sys_rawio": 17, "sys_chroot": 18,
    "sys_ptrace": 19, "sys_pacct": 20, "sys_admin": 21, "sys_boot": 22, "sys_nice": 23,
    "sys_resource": 24, "sys_time": 25, "sys_tty_config": 26, "mknod": 27, "lease": 28,
    "audit_write": 29, "audit_control": 30, "setfcap": 31, "mac_override": 32,
    "mac_admin": 33, "syslog": 34, "wake_alarm": 35, "block_suspend": 36,
    "audit_read": 37, "perfmon": 38, "bpf": 39, "checkpoint_restore": 40,
}

# prctl(2) and capset(2)
PR_CAPBSET_DROP = 24
LINUX_CAPABILITY_VERSION_3 = 0x20080522


def parse_name(text: str) -> str:
    """A capability's name as ``agent.capabilities`` lists it (``net_raw``;
    ``CAP_NET_RAW`` is accepted too)."""
    name = text.strip().lower()
    if name.startswith("cap_"):
        name = name[4:]
    if name not in NUMBERS:
        raise ValueError(repr(text) + " is not a Linux capability (e.g. net_raw, sys_admin)")
    return name


def keep_mask(extra: "tuple[str, ...] | list[str]" = ()) -> int:
    """The bit mask of the capabilities kept: NEEDED and ``extra``."""
    mask = 0
    for name in tuple(NEEDED) + tuple(extra):
        mask |= 1 << NUMBERS[parse_name(name)]
    return mask


def names(mask: int) -> "list[str]":
    """The names of the capabilities in ``mask``, by number."""
    return [n for n, bit in sorted(NUMBERS.items(), key=lambda kv: kv[1]) if mask >> bit & 1]


def capset_header() -> bytes:
    """capset(2)'s header: version 3, this process."""
    return struct.pack("@Ii", LINUX_CAPABILITY_VERSION_3, 0)


def capset_data(mask: int) -> bytes:
    """capset(2)'s two data words, each (effective, permitted, inheritable):
    ``mask`` in all three."""
    low, high = mask & 0xFFFFFFFF, mask >> 32 & 0xFFFFFFFF
    return struct.pack("@IIIIII", low, low, low, high, high, high)


def from_status(text: str) -> "dict[str, int]":
    """CapInh, CapPrm, CapEff, CapBnd and CapAmb of a /proc/PID/status text."""
    caps = {}
    for line in text.splitlines():
        if line.startswith("Cap") and ":" in line:
            key, value = line.split(":", 1)
            caps[key] = int(value.strip(), 16)
    return caps
