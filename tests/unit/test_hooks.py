"""Hook scripts: their environment, started without waiting, reaped, killed
when overdue, failures logged."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from lvn import hooks
from lvn.hooks import Hooks, hook_env


def test_env_names_peer_addresses_endpoint() -> None:
    env = hook_env("up", "server", "lvn0", "node-a", ["10.77.0.2/24", "fd77::2/64"],
                   ("198.51.100.7", 61001), 3)
    assert env == {"LVN_EVENT": "up", "LVN_ROLE": "server", "LVN_IFNAME": "lvn0",
                   "LVN_PEER": "node-a", "LVN_ADDRESSES": "10.77.0.2/24 fd77::2/64",
                   "LVN_ADDRESS4": "10.77.0.2/24", "LVN_ADDRESS6": "fd77::2/64",
                   "LVN_ENDPOINT_ADDRESS": "198.51.100.7", "LVN_ENDPOINT_PORT": "61001",
                   "LVN_TUNNEL_ID": "3"}
    bare = hook_env("down", "client", "lvn0", "srv", [], None, None)
    assert "LVN_ENDPOINT_ADDRESS" not in bare and "LVN_TUNNEL_ID" not in bare
    assert bare["LVN_ADDRESSES"] == ""


def script(tmp_path: Path, body: str) -> str:
    p = tmp_path / "hook.sh"
    p.write_text("#!/bin/sh\n" + body)
    p.chmod(0o755)
    return str(p)


def wait_reaped(h: Hooks) -> None:
    deadline = time.monotonic() + 10
    while h.running and time.monotonic() < deadline:
        h.reap(time.monotonic())
        time.sleep(0.01)
    assert not h.running


def test_runs_with_environment_and_argument(tmp_path: Path) -> None:
    out = tmp_path / "out"
    h = Hooks(script(tmp_path, f'echo "$1 $LVN_PEER $LVN_ENDPOINT_PORT" > {out}\n'), None)
    h.run(hook_env("up", "server", "lvn0", "node-a", [], ("192.0.2.1", 4000), 1))
    h.run(hook_env("down", "server", "lvn0", "node-a", [], None, 1))  # no down hook: nothing
    assert len(h.running) == 1
    wait_reaped(h)
    assert out.read_text() == "up node-a 4000\n"


def test_does_not_block_and_kills_overdue(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    h = Hooks(script(tmp_path, "sleep 30\n"), None)
    t0 = time.monotonic()
    h.run(hook_env("up", "client", "lvn0", "srv", [], None, 0))
    assert time.monotonic() - t0 < 2 and len(h.running) == 1
    h.reap(time.monotonic())
    assert len(h.running) == 1  # still running, not waited for
    with caplog.at_level(logging.WARNING, logger="lvn"):
        h.reap(time.monotonic() + hooks.HOOK_TIMEOUT + 1)
    assert not h.running and "killed after" in caplog.text


def test_failures_are_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    h = Hooks(script(tmp_path, "exit 3\n"), str(tmp_path / "missing"))
    with caplog.at_level(logging.WARNING, logger="lvn"):
        h.run(hook_env("up", "client", "lvn0", "srv", [], None, 0))
        wait_reaped(h)
        h.run(hook_env("down", "client", "lvn0", "srv", [], None, 0))
    assert "exit status 3" in caplog.text and "cannot start" in caplog.text
