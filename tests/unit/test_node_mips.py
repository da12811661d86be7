"""The node on big-endian 32-bit MIPS (ath79, the CPU of most community
routers): OpenWrt 24.10's MicroPython cross-built static for mips and run
under qemu-mips-static.  The pure core (protocol, sessions, datagrams,
netlink codec in both byte orders) and the socket options, whose numbers
differ on MIPS (SOL_SOCKET 0xffff, SO_REUSEPORT 0x200): the node hard-coded
asm-generic's 15 and its hand-over socket failed there.  (The UCI corpus
is not run here: under qemu-user a 32-bit guest's os.listdir of this
host's ext4 returns nothing, a qemu limit, not the node's.)"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import upy

ROOT = Path(__file__).resolve().parents[2]

# two UDP sockets on one loopback port, as the node's hand-over needs
REUSEPORT = """
import socket
from lvn import node
assert socket.SOL_SOCKET == 0xffff, hex(socket.SOL_SOCKET)
socks = []
for _ in range(2):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, node.so_reuseport(), 1)
    s.bind(socket.getaddrinfo("127.0.0.1", 47123)[0][-1])
    socks.append(s)
print("two sockets share a port with SO_REUSEPORT", hex(node.so_reuseport()))
"""


def run(*args: str) -> subprocess.CompletedProcess[str]:
    qemu = shutil.which("qemu-mips-static")
    binary = upy.mips()
    if qemu is None or not binary.exists():
        pytest.fail("qemu-mips-static or the MIPS MicroPython is missing "
                    "(scripts/setup-deps.sh installs and builds them)")
    return subprocess.run([qemu, str(binary), *args], capture_output=True, text=True,
                          timeout=300, cwd=ROOT, env={"MICROPYPATH": f".frozen:{ROOT}"})


def test_core_checks_on_big_endian_mips() -> None:
    res = run("tests/protocol/check_core.py")
    assert res.returncode == 0 and " 0 failed" in res.stdout, res.stdout + res.stderr


def test_reuseport_is_the_abis_own() -> None:
    res = run("-c", REUSEPORT)
    assert res.returncode == 0 and "0x200" in res.stdout, res.stdout + res.stderr
