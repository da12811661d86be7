"""Kernel tests run on a host without the module must error, not skip."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_kernel_test_outside_vm_is_an_error_naming_the_vm_stage() -> None:
    if os.path.isdir("/sys/module/ipudp"):
        return  # this very host has the module: nothing to show here
    env = {k: v for k, v in os.environ.items() if k != "LVN_KMOD"}
    p = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
         "tests/kernel/test_lifecycle.py::test_ip_link_add_and_delete"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "1 error" in p.stdout
    assert "only the VM stage loads" in p.stdout
    assert "skipped" not in p.stdout
