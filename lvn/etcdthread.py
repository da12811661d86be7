"""A server's periodic work against etcd, in a thread of its own, so that an
etcd that does not answer never stalls the server's loop (docs/servers.md).
A subclass says what one round does (``_step``); a failing round is logged
once, and once more when etcd answers again."""

from __future__ import annotations

import logging
import threading
from typing import Any

from .etcd import Etcd, EtcdUnavailable

log = logging.getLogger("lvn")


class EtcdThread:
    every = 5.0        # s between rounds
    failing = "etcd"   # the start of the message when a round fails
    recovered = "etcd answers again"

    def __init__(self, etcd: Etcd, name: str) -> None:
        self.etcd = etcd
        self.problem = ""  # the last one logged, so that each is logged once
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        if self.thread.is_alive():
            self.thread.join(timeout=2 * self.etcd.timeout * len(self.etcd.endpoints) + 1)

    def _run(self) -> None:
        while not self.stopping.is_set():
            self.step()
            self.stopping.wait(self.every)

    def step(self) -> Any:
        """One round: what ``_step`` returned, None if it failed."""
        try:
            done = self._step()
        except EtcdUnavailable as e:
            self._trouble(f"{self.failing}: {e}")
            return None
        except Exception as e:  # noqa: BLE001 - the thread must go on
            self._trouble(f"{self.failing}: {type(e).__name__}: {e}")
            return None
        if self.problem:
            log.info("%s", self.recovered)
            self.problem = ""
        return done

    def _step(self) -> Any:
        raise NotImplementedError

    def _trouble(self, text: str) -> None:
        if text != self.problem:
            log.warning("%s", text)
            self.problem = text
