"""When the server's detached tunnels go (pure: events in, actions out).

A client whose control channel is gone keeps its tunnel while packets
arrive on it; after ``idle_timeout`` seconds of silence the tunnel goes
(its lease stays for the client's return).  The kernel knows when a
tunnel last received; asking it costs a netlink request, so this planner
keeps one deadline per detached tunnel and asks only about a tunnel whose
deadline passed (``CheckRx``: one TUNNEL_GET, never a dump of all).  The
kernel's TUNNEL_ACTIVE notification (the first packet after a silence)
pushes a deadline out without asking.  A tunnel that keeps receiving is
thus asked about once per ``idle_timeout``, a silent one once, and no
tunnel at all while no deadline is due.
"""

from __future__ import annotations

from dataclasses import dataclass

from .tunnelids import leftover_name


@dataclass(frozen=True)
class CheckRx:
    """Ask the kernel when tunnel ``tunnel_id`` last received, then call on_rx()."""

    name: str
    tunnel_id: int


@dataclass(frozen=True)
class RemoveTunnel:
    """The tunnel of ``name`` was silent for idle_timeout: remove it."""

    name: str
    tunnel_id: int


class DetachedTunnels:
    def __init__(self, idle_timeout: float) -> None:
        self.idle_timeout = idle_timeout
        self.heard: dict[str, float] = {}     # name -> when last heard (monotonic)
        self.tunnel_ids: dict[str, int] = {}  # name -> its tunnel
        self.asking: set[str] = set()         # CheckRx given, on_rx() not yet called
        # endpoint -> tunnel id an earlier run of the server left there
        self.adoptable: dict[tuple[str, int], int] = {}

    def __contains__(self, name: str) -> bool:
        return name in self.heard

    def __len__(self) -> int:
        return len(self.heard)

    def items(self) -> list[tuple[str, float]]:
        return list(self.heard.items())

    def detach(self, name: str, tunnel_id: int, last_heard: float) -> None:
        """The client's control channel is gone; its tunnel stays for now."""
        self.heard[name] = last_heard
        self.tunnel_ids[name] = tunnel_id

    def left_by_earlier_run(self, name: str, tunnel_id: int, endpoint: tuple[str, int],
                            now: float) -> None:
        """A tunnel found at start-up: detached under ``name`` (lvn/tunnelids.py's
        ``#ID``) until its client comes back from ``endpoint`` (adopt()) or
        it is silent."""
        self.detach(name, tunnel_id, now)
        self.adoptable[endpoint] = tunnel_id

    def adopt(self, endpoint: tuple[str, int]) -> int | None:
        """The tunnel an earlier run left for a client now at ``endpoint``
        (None: none, or it expired): it is the client's from now on."""
        tid = self.adoptable.pop(endpoint, None)
        if tid is None or self.tunnel_ids.get(leftover_name(tid)) != tid:
            return None
        self.attach(leftover_name(tid))
        return tid

    def attach(self, name: str) -> None:
        """The client is back (a new session) or its tunnel was removed."""
        self.heard.pop(name, None)
        self.tunnel_ids.pop(name, None)
        self.asking.discard(name)

    def on_active(self, tunnel_id: int, now: float) -> None:
        """The kernel's TUNNEL_ACTIVE: the tunnel receives again."""
        for name, tid in self.tunnel_ids.items():
            if tid == tunnel_id:
                self.heard[name] = now

    def next_due(self) -> float | None:
        """The monotonic time of the next deadline (None: nothing detached)."""
        due = [t + self.idle_timeout for n, t in self.heard.items() if n not in self.asking]
        return min(due) if due else None

    def due(self, now: float) -> list[CheckRx]:
        """The tunnels whose deadline passed: ask the kernel about each."""
        out = []
        for name, heard in self.heard.items():
            if name not in self.asking and now - heard > self.idle_timeout:
                self.asking.add(name)
                out.append(CheckRx(name, self.tunnel_ids[name]))
        return out

    def on_rx(self, name: str, last_rx_ms: int | None, now: float) -> list[RemoveTunnel]:
        """The kernel's answer to a CheckRx: milliseconds since the tunnel
        last received (None: never, or the tunnel is gone)."""
        if name not in self.asking:
            return []  # attached again meanwhile
        self.asking.discard(name)
        if last_rx_ms is not None:
            self.heard[name] = max(self.heard[name], now - last_rx_ms / 1000)
        if now - self.heard[name] <= self.idle_timeout:
            return []
        tid = self.tunnel_ids[name]
        self.attach(name)
        return [RemoveTunnel(name, tid)]
