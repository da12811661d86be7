"""Shared pytest set-up: the ``kmod`` marker.

Tests marked ``kmod`` need the ipudp module, which this host kernel cannot
load: outside the VM stage they error out with a pointer to it, never skip.
"""

from __future__ import annotations

import os

import pytest

KMOD_HINT = (
    "this test needs the ipudp kernel module, which only the VM stage loads: "
    "run `make test` (or `scripts/test-vm.sh`), not plain pytest on the host"
)


def module_available() -> bool:
    return os.path.isdir("/sys/module/ipudp") or bool(os.environ.get("LVN_KMOD"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/kernel/" in item.nodeid.replace(os.sep, "/"):
            item.add_marker(pytest.mark.kmod)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("kmod") and not module_available():
        pytest.fail(KMOD_HINT, pytrace=False)
