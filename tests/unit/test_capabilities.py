"""The service and the node agent keep only the capabilities they need
(lvn/capabilities.py), in every set including the bounding set, so a hook
they start has no more; the system calls run for real in a child process
(the host tests run as root), on CPython and on each MicroPython."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import upy

from lvn import capabilities, schema, uci

ROOT = Path(__file__).resolve().parents[2]

# each child drops (with net_raw for hooks), then a shell it starts reports
# its own sets: what a hook gets
DROP = {
    "cpython": "from lvn import privilege as p\n",
    "micropython": "from lvn import nodeprivilege as p\n",
}
CHILD = """import sys
sys.path.insert(0, {root!r})
{imp}print(p.drop({extra!r}))
import os
os.system("grep ^Cap /proc/self/status")
"""

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (capabilities to drop)")


def run_child(interpreter: str, kind: str, extra: list[str],
              prefix: tuple[str, ...] = (), root: Path = ROOT) -> tuple[int, dict[str, int]]:
    code = CHILD.format(root=str(root), imp=DROP[kind], extra=extra)
    res = subprocess.run([*prefix, interpreter, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0, res.stderr
    first, _, rest = res.stdout.partition("\n")
    return int(first), capabilities.from_status(rest)


WANT = (1 << 10) | (1 << 12) | (1 << 13)  # net_bind_service, net_admin, net_raw


def check_kept(kept: int, hook: dict[str, int]) -> None:
    assert kept == WANT
    # a program the agent starts as root (a hook) gets the bounding set at
    # exec: it holds no more than the agent
    assert hook["CapBnd"] == WANT and hook["CapEff"] == WANT and hook["CapPrm"] == WANT
    assert hook["CapAmb"] == 0


@needs_root
def test_service_keeps_only_the_needed_in_every_set() -> None:
    check_kept(*run_child(sys.executable, "cpython", ["net_raw"]))


@needs_root
def test_node_keeps_only_the_needed_in_every_set(micropython: str) -> None:
    if micropython == str(upy.pypi()):
        # PyPI's build has no ffi: the node says so (and warns that it runs
        # with root's capabilities, lvn/node.py)
        res = subprocess.run([micropython, "-c", CHILD.format(
            root=str(ROOT), imp=DROP["micropython"], extra=[])], capture_output=True, text=True)
        assert "OSError: this MicroPython has no ffi module" in res.stdout + res.stderr
        return
    check_kept(*run_child(micropython, "micropython", ["net_raw"]))


@needs_root
def test_a_process_without_capabilities_is_left_as_it_is() -> None:
    # nobody may not reach a checkout in a private directory (mktemp -d is
    # 0700): the package and the interpreter it needs, where anyone can
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)
        shutil.copytree(ROOT / "lvn", Path(tmp) / "lvn",
                        ignore=shutil.ignore_patterns("__pycache__"))
        for d, _, files in os.walk(tmp):
            os.chmod(d, 0o755)
            for f in files:
                os.chmod(os.path.join(d, f), 0o644)
        kept, hook = run_child(os.path.realpath(sys.executable), "cpython", [],
                               ("setpriv", "--reuid", "65534", "--regid", "65534",
                                "--clear-groups"), root=Path(tmp))
    assert kept == 0 and hook["CapEff"] == 0


def test_names_and_masks() -> None:
    assert capabilities.keep_mask() == (1 << 10) | (1 << 12)
    assert capabilities.keep_mask(["CAP_SYS_ADMIN"]) >> 21 & 1
    assert capabilities.names(capabilities.keep_mask(["net_raw"])) == [
        "net_bind_service", "net_admin", "net_raw"]
    with pytest.raises(ValueError, match="'cap_nonsense' is not a Linux capability"):
        capabilities.parse_name("cap_nonsense")
    data = capabilities.capset_data(1 << 40 | 1 << 12)
    assert len(data) == 24 and capabilities.capset_header()[:4] in (
        b"\x22\x05\x08\x20", b"\x20\x08\x05\x22")


def test_config_refuses_unknown_capabilities_and_unsafe_state_dirs() -> None:
    pkg = uci.parse("config agent 'agent'\n\tlist capabilities 'sys_admin'\n"
                    "\tlist capabilities 'root'\n\toption state_dir '/etc'\n", "lvn")
    _, problems = schema.check(pkg, check_files=False)
    text = "\n".join(str(p) for p in problems)
    assert "lvn.agent.capabilities: 'root' is not a Linux capability" in text
    assert "lvn.agent.state_dir: '/etc' is not a directory under /var/lib/" in text
    for bad in ("/var/lib/../../etc", "/var/lib/", "/usr/sbin"):
        with pytest.raises(ValueError, match="is not a directory under"):
            schema.SCHEMA["agent"]["state_dir"].parse(bad)
    assert schema.SCHEMA["agent"]["state_dir"].parse("/etc/lvn/state") == "/etc/lvn/state"
