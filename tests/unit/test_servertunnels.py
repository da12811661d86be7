"""The server's tunnel policy (lvn/servertunnels.py): ids, adoption by
endpoint, rule ownership and expiry as typed kernel actions."""

from __future__ import annotations

from lvn.servertunnels import AddRules, DelRule, DelTunnel, ServerTunnels, SetTunnel

A, B = ("192.0.2.1", 40000), ("192.0.2.2", 40000)


def joined(t: ServerTunnels, name: str, at: tuple[str, int], prefixes: list[str]) -> int:
    """``name`` placed at ``at`` and routed ``prefixes``, as the shell does."""
    tid, actions = t.place(name, *at)
    actions += t.route(tid, prefixes)
    t.done(actions)
    return tid


def test_a_join_makes_the_tunnel_then_its_routes() -> None:
    t = ServerTunnels(90)
    tid, actions = t.place("node-1", *A)
    route = t.route(tid, ["10.77.0.2/32", "fd77::2/128"])
    assert (tid, actions, route) == (1, [SetTunnel(1, *A)],
                                     [AddRules(1, ["10.77.0.2/32", "fd77::2/128"])])
    t.done(actions + route)
    assert t.route(tid, ["10.77.0.2/32", "fd77::2/128"]) == []  # recorded: nothing to do


def test_a_rejoin_from_elsewhere_moves_the_same_tunnel() -> None:
    t = ServerTunnels(90)
    joined(t, "node-1", A, ["10.77.0.2/32"])
    tid, actions = t.place("node-1", *B)
    assert (tid, actions) == (1, [SetTunnel(1, *B)])


def test_an_address_that_moved_leaves_its_old_tunnel_first() -> None:
    t = ServerTunnels(90)
    joined(t, "node-1", A, ["10.77.0.2/32"])
    tid = joined(t, "node-2", B, ["10.77.0.3/32"])
    assert t.route(tid, ["10.77.0.2/32"]) == [DelRule("10.77.0.3/32"), DelRule("10.77.0.2/32"),
                                              AddRules(2, ["10.77.0.2/32"])]


def test_a_leftover_tunnel_is_adopted_by_endpoint_without_its_old_rules() -> None:
    """After a restart, a new identity behind the NAT port a departed client
    had takes its tunnel, and none of the old owner's addresses."""
    t = ServerTunnels(90)
    t.adopt_leftovers([(7, A), (8, B)], [("10.77.0.9/32", 7), ("10.77.0.8/32", 8)], 0.0)
    tid, actions = t.place("node-new", *A)
    assert (tid, actions) == (7, [SetTunnel(7, *A)])
    assert t.route(7, ["10.77.0.2/32"]) == [DelRule("10.77.0.9/32"),
                                            AddRules(7, ["10.77.0.2/32"])]
    other, _ = t.place("node-3", "192.0.2.3", 40000)  # elsewhere: a fresh id
    assert other not in (7, 8)
    # once taken, the endpoint gives nothing to a second newcomer
    assert t.place("node-4", *A)[0] not in (7, 8, other)


def test_a_removed_tunnel_frees_its_id_and_rules() -> None:
    t = ServerTunnels(90)
    joined(t, "node-1", A, ["10.77.0.2/32"])
    joined(t, "node-2", B, ["10.77.0.3/32"])
    actions = t.remove("node-1", "the tunnel of 'node-1'")
    assert actions == [DelTunnel(1, "the tunnel of 'node-1'")]
    t.done(actions)
    assert t.tunnel_id("node-1") is None and t.remove("node-1", "again") == []
    assert joined(t, "node-5", ("192.0.2.5", 1), ["10.77.0.2/32"]) == 1  # lowest free id
    assert t.route(1, ["10.77.0.2/32"]) == []  # the kernel dropped the old rule with it


def test_actions_not_done_leave_the_books_as_the_kernel_is() -> None:
    """The kernel refused the batch: the shell does not report it, and the
    next plan asks for the same rules again."""
    t = ServerTunnels(90)
    tid, _ = t.place("node-1", *A)
    first = t.route(tid, ["10.77.0.2/32"])
    assert t.route(tid, ["10.77.0.2/32"]) == first == [AddRules(1, ["10.77.0.2/32"])]


def test_a_detached_tunnel_goes_after_a_silent_idle_timeout() -> None:
    t = ServerTunnels(90)
    joined(t, "node-1", A, ["10.77.0.2/32"])
    assert t.detach("node-1", 100.0) and not t.detach("node-9", 100.0)
    assert t.detached_since() == [("node-1", 100.0)]
    assert t.due(150.0) == []
    t.active(1, 150.0)  # the kernel: it received again
    [check] = t.due(241.0)
    assert (check.name, check.tunnel_id) == ("node-1", 1)
    assert t.gone("node-1", 100_000, 241.0) != []  # silent for 100 s of 90
    assert t.remove("node-1", "x") == [DelTunnel(1, "x")]
    assert t.detached_since() == [] and t.names() == set()


def test_a_session_that_comes_back_keeps_its_tunnel_attached() -> None:
    t = ServerTunnels(90)
    joined(t, "node-1", A, ["10.77.0.2/32"])
    t.detach("node-1", 0.0)
    t.attach("node-1")
    assert t.due(1000.0) == [] and t.names() == {"node-1"}
