"""Up/down hook scripts: run on tunnel establishment and removal without
blocking the event loop.

A hook is started with ``subprocess.Popen`` and reaped on the agent's tick;
one that runs longer than ``HOOK_TIMEOUT`` is killed.  Its environment
names the event, the peer, its overlay addresses and its endpoint
(``hook_env``, pure, in lvn/hookenv.py).
"""

from __future__ import annotations

import logging
import os
import subprocess
import time

from .hookenv import hook_env

__all__ = ["HOOK_TIMEOUT", "Hooks", "hook_env"]

log = logging.getLogger("lvn")

HOOK_TIMEOUT = 60.0


class Hooks:
    """The configured scripts and the ones still running."""

    def __init__(self, up: str | None, down: str | None) -> None:
        self.scripts = {"up": up, "down": down}
        self.running: list[tuple[subprocess.Popen[bytes], float, str]] = []

    def run(self, env: dict[str, str]) -> None:
        script = self.scripts.get(env["LVN_EVENT"])
        if not script:
            return
        what = f"{env['LVN_EVENT']} hook {script} for {env['LVN_PEER']!r}"
        try:
            proc = subprocess.Popen([script, env["LVN_EVENT"]], env={**os.environ, **env},
                                    stdin=subprocess.DEVNULL, close_fds=True)
        except OSError as e:
            log.warning("%s: cannot start: %s", what, e)
            return
        self.running.append((proc, time.monotonic(), what))

    def reap(self, now: float) -> None:
        """Collect finished hooks (logging failures) and kill overdue ones."""
        still = []
        for proc, started, what in self.running:
            rc = proc.poll()
            if rc is None and now - started > HOOK_TIMEOUT:
                proc.kill()
                rc = proc.wait()
                log.warning("%s: killed after %.0f s", what, HOOK_TIMEOUT)
            elif rc is None:
                still.append((proc, started, what))
            elif rc != 0:
                log.warning("%s: exit status %d", what, rc)
        self.running = still
