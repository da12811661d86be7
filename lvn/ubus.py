"""ubus events (``lvn.tunnel.add`` ...) sent with OpenWrt's ``ubus`` CLI.

The ``lvn`` object itself belongs to rpcd (see :mod:`lvn.control`); the
service only announces changes, which are rare (configuration applied,
peers joining or leaving), so a short-lived ``ubus send`` is enough and
the service needs no libubus binding.
"""

from __future__ import annotations

import json
import logging
import subprocess
from typing import Any

log = logging.getLogger("lvn")

SEND_TIMEOUT = 5.0


class EventSender:
    def __init__(self, socket_path: str, ubus_cli: str = "ubus") -> None:
        self.argv = [ubus_cli, "-s", socket_path, "send"]

    def send_all(self, events: list[tuple[str, dict[str, Any]]]) -> None:
        while events:
            name, data = events.pop(0)
            try:
                res = subprocess.run([*self.argv, name, json.dumps(data)],
                                     capture_output=True, text=True, timeout=SEND_TIMEOUT)
            except (OSError, subprocess.TimeoutExpired) as e:
                log.warning("ubus event %s not sent: %s", name, e)
                continue
            if res.returncode != 0:
                log.warning("ubus event %s not sent: %s", name,
                            res.stderr.strip() or f"exit {res.returncode}")
