"""``lvn agent``: the long-running service that procd starts.

It applies the static tunnels of /etc/config/lvn, re-applies them by diff
on SIGHUP or ``ubus call lvn reload`` (an invalid file is refused and what
runs keeps running), answers the ``lvn`` ubus object's calls on its control
socket (rpcd forwards them, see :mod:`lvn.control`), and on SIGTERM removes
the static devices it created.  The agent's device stays, its data port
handed to the kernel, so a restart adopts it without cutting traffic.  A
reload applies a changed agent section in place where it can (timers,
MTU, hooks, rate limits) and otherwise restarts the agent the same way.
Without an agent it sleeps in ``select()`` on the control socket: no
wake-ups while idle.
"""

from __future__ import annotations

import logging
import os
import select
import selectors
import signal
import time
from types import FrameType
from typing import TYPE_CHECKING, Any

from . import LvnError, config, privilege, static, ubus_api, uci, uciwrite
from .control import ControlServer
from .files import write_atomic
from .ubus import EventSender

if TYPE_CHECKING:
    from . import agent
    from .netlink import Ipudp

log = logging.getLogger("lvn")


class Service:
    """State and actions of the service; every method runs on one thread."""

    def __init__(self, kernel: Ipudp, confdir: str = config.DEFAULT_CONFDIR,
                 state_file: str = static.STATE_FILE) -> None:
        self.kernel = kernel
        self.confdir = confdir
        self.state_file = state_file
        self.config: config.Config | None = None  # the last good one
        self.config_errors: tuple[str, ...] = ()
        self.last_reload: float | None = None
        self.pending_events: list[tuple[str, dict[str, Any]]] = []
        self.agent: agent.Server | agent.Client | None = None  # when the agent role is on
        self.agent_conf: config.ServerConfig | config.ClientConfig | None = None  # its section
        # agent.capabilities as the service started with it (None: not yet dropped)
        self.capabilities: tuple[str, ...] | None = None

    def reload(self) -> dict[str, Any]:
        """Validate, then apply by diff; a bad file changes nothing."""
        try:
            conf = config.build(config.load(self.confdir), check_files=False)
        except LvnError as e:
            self.config_errors = tuple(str(e).splitlines())
            if self.config is None:
                log.error("configuration refused, running without tunnels or agent "
                          "until a valid one is loaded: %s", e)
            else:
                log.error("reload refused, keeping the running configuration: %s", e)
            return {"ok": False, "errors": list(self.config_errors)}
        try:
            acts = static.apply(self.kernel, conf.tunnels, self.state_file)
        except LvnError as e:
            log.error("applying %s/lvn failed: %s", self.confdir, e)
            return {"ok": False, "errors": [str(e)]}
        self.config, self.config_errors = conf, ()
        log.setLevel(conf.agent.log_level.upper())
        if self.capabilities is not None and conf.agent.capabilities != self.capabilities:
            log.warning("agent.capabilities changed: it takes effect when the service "
                        "restarts (service lvn restart)")
        self.last_reload = time.time()
        self.pending_events += ubus_api.events(acts)
        for a in acts:
            log.info("%s", a)
        self._reload_agent(conf)
        return {"ok": True, "changes": [str(a) for a in acts]}

    def drop_capabilities(self) -> None:
        """At start (run): keep only what the service and the hooks need
        (agent.capabilities of the file read at start; none with an
        invalid one).  A later change of the list takes effect at a restart."""
        self.capabilities = self.config.agent.capabilities if self.config else ()
        privilege.drop(self.capabilities)

    def _reload_agent(self, conf: config.Config) -> None:
        role = conf.agent.role if conf.agent.enabled else "none"
        section = {"server": conf.server, "client": conf.client}.get(role)
        if self.agent is not None:
            if self.agent.role == role and section == self.agent_conf:
                return
            if self.agent.role == role and self.agent.reconfigure(section):
                self.agent_conf = section
                return
            log.info("agent configuration changed: restarting the %s agent", self.agent.role)
            self.agent.release()
            if role == "none":
                self._remove_agent_device()
            self.agent = self.agent_conf = None
        if section is not None:
            self.agent = self._start_agent(conf)
            self.agent_conf = section if self.agent is not None else None

    def _remove_agent_device(self) -> None:
        """The agent was switched off: its device goes too."""
        if self.agent_conf is None:
            return
        ifname = self.agent_conf.ifname
        try:
            self.kernel.del_device(ifname)
            log.info("agent disabled: %s removed", ifname)
        except LvnError as e:
            log.warning("agent disabled, but removing %s failed: %s", ifname, e)

    def _start_agent(self, conf: config.Config) -> agent.Server | agent.Client | None:
        from . import agent  # pyOpenSSL: imported only where an agent runs
        try:
            if conf.agent.role == "server" and conf.server is not None:
                return agent.Server(conf.server, self.kernel, conf.agent.state_dir)
            if conf.agent.role == "client" and conf.client is not None:
                return agent.Client(conf.client, self.kernel, conf.agent.state_dir)
        except (LvnError, OSError) as e:
            log.error("cannot start the %s agent: %s", conf.agent.role, e)
        return None

    def snapshot(self) -> ubus_api.Snapshot:
        conf = self.config or config.Config()
        st = self.agent.status() if self.agent is not None else {"peers": []}
        return ubus_api.Snapshot(
            confdir=self.confdir, role=conf.agent.role, agent_enabled=conf.agent.enabled,
            config_valid=not self.config_errors, config_errors=self.config_errors,
            last_reload=self.last_reload, devices=tuple(self.kernel.devices()),
            static=ubus_api.static_names(conf),
            peers=tuple(st["peers"]), warnings=tuple(st.get("warnings", ())))

    def call(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        """One ubus call; raises ubus_api.CallError for bad arguments."""
        if method == "status":
            return ubus_api.status(self.snapshot())
        if method == "tunnels":
            ifname = args.get("ifname")
            return ubus_api.tunnels(self.snapshot(), None if ifname is None else str(ifname))
        if method == "validate":
            return ubus_api.validate(args.get("sections"))
        if method == "peers":
            return ubus_api.peers(self.snapshot())
        if method == "reload":
            return self.reload()
        if method in ("drain", "undrain"):
            rate = args.get("rate")
            if rate is not None and (isinstance(rate, bool) or not isinstance(rate, int)
                                     or not 1 <= rate <= 1000):
                raise ubus_api.CallError("'rate' must be 1-1000 clients a second")
            from . import agent  # loaded already where an agent runs
            if not isinstance(self.agent, agent.Server):
                raise ubus_api.CallError(f"{method}: this agent is not a server")
            return self.agent.set_draining(method == "drain", rate)
        if method in ("tunnel_add", "tunnel_del"):
            pkg = config.load(self.confdir)
            if method == "tunnel_add":
                options = args.get("tunnel")
                if not isinstance(options, dict):
                    raise ubus_api.CallError("'tunnel' must be a table of options")
                pkg = ubus_api.tunnel_add(pkg, str(args.get("name", "")), options)
            else:
                pkg = ubus_api.tunnel_del(pkg, str(args.get("name", "")))
            self._write(pkg)
            return self.reload()
        raise ubus_api.CallError(f"unknown method {method!r}")

    def _write(self, pkg: uci.Package) -> None:
        """Like ``uci commit``: the whole file rewritten (comments are lost),
        atomically, keeping the file's permissions (the conffile is 0600)."""
        path = os.path.join(self.confdir, config.PACKAGE)
        write_atomic(path, uciwrite.export(pkg).encode(), os.stat(path).st_mode & 0o7777)

    def stop(self) -> None:
        """Remove the devices that the static configuration created; leave the
        agent's device to the kernel for the next run to adopt."""
        if self.agent is not None:
            self.agent.release()
            self.agent = None
        acts = static.apply(self.kernel, (), self.state_file)
        for a in acts:
            log.info("%s", a)


def run(service: Service, control_path: str | None, ubus_socket: str | None) -> int:
    """The main loop until SIGTERM/SIGINT: the agent's I/O, control calls
    (rpcd's ``lvn`` object) and signals; no wake-ups while there is no agent."""
    flags = {"reload": False, "stop": False}

    def on_hup(signum: int, frame: FrameType | None) -> None:
        flags["reload"] = True

    def on_term(signum: int, frame: FrameType | None) -> None:
        flags["stop"] = True

    signal.signal(signal.SIGHUP, on_hup)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    # a signal wakes select() through this pipe (select itself just retries)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)

    control = ControlServer(control_path) if control_path else None
    sender = EventSender(ubus_socket) if ubus_socket else None
    service.reload()
    service.drop_capabilities()
    log.info("lvn service running (config %s/lvn, control %s, ubus events %s)",
             service.confdir, control_path or "off", ubus_socket or "off")
    served_agent = None
    try:
        while not flags["stop"]:
            if service.agent is not None:
                if control is not None and service.agent is not served_agent:
                    served_agent = service.agent
                    served_agent.sel.register(control, selectors.EVENT_READ,
                                              lambda: control.serve_one(service.call))
                service.agent.step(1.0)
                service.pending_events += service.agent.events
                service.agent.events.clear()
            else:
                fds = [wake_r] + ([control.fileno()] if control is not None else [])
                ready, _, _ = select.select(fds, [], [])
                if control is not None and control.fileno() in ready:
                    control.serve_one(service.call)
            _drain(wake_r)
            if sender is not None:
                sender.send_all(service.pending_events)
            service.pending_events.clear()
            if flags["reload"]:
                flags["reload"] = False
                log.info("SIGHUP: reloading")
                service.reload()
    finally:
        signal.set_wakeup_fd(-1)
        os.close(wake_r)
        os.close(wake_w)
        if control is not None:
            control.close()
    service.stop()
    log.info("lvn service stopped")
    return 0


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 512):
            pass
    except BlockingIOError:
        pass
