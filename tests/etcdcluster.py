"""Real etcd members (Debian's etcd-server), started and stopped by the
tests: one member, or a cluster of three, on loopback (peers) and, with
``listen``, on every address of the namespace they start in (clients)."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from lvn.etcd import Etcd, EtcdUnavailable

ETCD = shutil.which("etcd") or "/usr/bin/etcd"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Member:
    """One etcd member: its data stays across stop() and start()."""

    def __init__(self, name: str, data: Path, client: int, peer: int,
                 listen: str = "127.0.0.1") -> None:
        self.name, self.data, self.client, self.peer = name, data, client, peer
        self.listen = f"http://{listen}:{client}"  # 0.0.0.0: every address of its namespace
        self.url = f"http://127.0.0.1:{client}"
        self.peer_url = f"http://127.0.0.1:{peer}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data.with_suffix(".log")

    def start(self, cluster: str, state: str = "new") -> None:
        self.proc = subprocess.Popen(
            [ETCD, "--name", self.name, "--data-dir", str(self.data),
             "--listen-client-urls", self.listen, "--advertise-client-urls", self.url,
             "--listen-peer-urls", self.peer_url, "--initial-advertise-peer-urls",
             self.peer_url, "--initial-cluster", cluster,
             "--initial-cluster-state", state, "--initial-cluster-token", "lvn-test"],
            stdout=self.log.open("ab"), stderr=subprocess.STDOUT)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(30)
        self.proc = None


class Cluster:
    def __init__(self, tmp: Path, size: int, listen: str = "127.0.0.1") -> None:
        self.members = [Member(f"m{i}", tmp / f"m{i}", free_port(), free_port(), listen)
                        for i in range(size)]
        self.spec = ",".join(f"{m.name}={m.peer_url}" for m in self.members)

    @property
    def endpoints(self) -> list[str]:
        return [m.url for m in self.members]

    def start(self) -> None:
        for m in self.members:
            m.start(self.spec)
        self.wait_ready()

    def restart(self, member: Member) -> None:
        member.start(self.spec, "existing")
        self.wait_ready()

    def wait_ready(self, timeout: float = 60) -> None:
        """Until a write goes through (the cluster has a leader)."""
        client = Etcd([m.url for m in self.members if m.proc is not None], timeout=2)
        deadline = time.monotonic() + timeout
        while True:
            try:
                client.put("/ready", "1")
                return
            except EtcdUnavailable as e:
                if time.monotonic() > deadline:
                    logs = "\n".join(m.log.read_text()[-1500:] for m in self.members)
                    raise AssertionError(f"etcd not ready after {timeout} s: {e}\n{logs}") from None
            time.sleep(0.2)

    def stop(self) -> None:
        for m in self.members:
            m.stop()
