"""The thin adapter between ubusd and :mod:`lvn.ubus_api` (python ``ubus`` binding).

Facts of the binding (python3-ubus 0.1.3) this relies on: one global
connection; a method callback must call ``handler.reply(dict)`` before it
returns; every argument of a signature is required; ``ubus.loop(ms)``
releases the GIL; nothing is thread-safe, so everything stays on the
service's thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from . import ubus_api
from .errors import LvnError

log = logging.getLogger("lvn")

Call = Callable[[str, dict[str, Any]], dict[str, Any]]


class UbusServer:
    def __init__(self, socket_path: str, call: Call) -> None:
        try:
            import ubus
        except ImportError:
            raise LvnError("the python ubus binding is not installed "
                           "(opkg install python3-ubus)") from None
        self._ubus = ubus
        if not ubus.connect(socket_path=socket_path):
            raise LvnError(f"cannot connect to ubusd at {socket_path}")
        methods = {name: {"method": self._handler(name, call), "signature": sig}
                   for name, sig in ubus_api.SIGNATURES.items()}
        ubus.add("lvn", methods)

    @staticmethod
    def _handler(name: str, call: Call) -> Callable[[Any, dict[str, Any]], None]:
        def handle(handler: Any, data: dict[str, Any]) -> None:
            try:
                reply = call(name, data or {})
            except LvnError as e:
                reply = {"error": str(e)}
            except Exception as e:  # a bug must not kill the service
                log.exception("ubus %s failed", name)
                reply = {"error": f"internal error: {e}"}
            handler.reply(reply)
        return handle

    def send_all(self, events: list[tuple[str, dict[str, Any]]]) -> None:
        while events:
            name, data = events.pop(0)
            self._ubus.send(name, data)

    def loop(self, timeout_ms: int) -> None:
        self._ubus.loop(timeout_ms)

    def close(self) -> None:
        self._ubus.disconnect()
