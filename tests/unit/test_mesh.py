"""The mesh between servers (lvn/mesh.py): which tunnels and routes a
server holds, from etcd's directory and its own sessions."""

from __future__ import annotations

from lvn import mesh

SERVERS = {"gw1": {"clients": 1, "mesh": ["10.0.0.1", 4500]},
           "gw2": {"clients": 2, "mesh": ["fd00::2", 4501]},
           "gw3": {"clients": 0}}  # no mesh end: not in the mesh
LEASES = {"a": ["10.77.0.2/16", "fd77::2/64"], "b": ["10.77.0.3/16"], "c": ["10.77.0.4/16"],
          "d": ["10.77.0.5/16"]}


def test_a_tunnel_to_every_other_server_with_a_mesh_end_and_its_clients_routed_there() -> None:
    where = {"a": "gw2", "b": "gw2", "c": "gw1", "d": "gw3"}
    assert mesh.plan("gw1", SERVERS, where, LEASES, ["c"]) == {
        "gw2": mesh.Peer("fd00::2", 4501, frozenset({"10.77.0.2/32", "fd77::2/128",
                                                     "10.77.0.3/32"}))}


def test_a_client_with_a_session_here_keeps_its_own_tunnel_whatever_etcd_says() -> None:
    # b joined gw1 a moment ago; etcd still says gw2
    plan = mesh.plan("gw1", SERVERS, {"a": "gw2", "b": "gw2"}, LEASES, ["b"])
    assert plan["gw2"].prefixes == {"10.77.0.2/32", "fd77::2/128"}


def test_a_dead_server_has_no_tunnel_and_its_clients_no_route() -> None:
    # gw2's keys expired (it lost power): its at/ keys went with them,
    # and one that lingers names a server that is not there
    alive = {"gw1": SERVERS["gw1"]}
    assert mesh.plan("gw1", alive, {"a": "gw2"}, LEASES, []) == {}


def test_a_server_with_no_clients_still_gets_its_tunnel() -> None:
    assert mesh.plan("gw2", SERVERS, {}, LEASES, []) == {
        "gw1": mesh.Peer("10.0.0.1", 4500, frozenset())}


def test_malformed_values_in_etcd_are_left_out() -> None:
    servers = {"gw1": {"mesh": ["10.0.0.1", 4500]},
               "x1": {"mesh": ["not an address", 4500]}, "x2": {"mesh": ["10.0.0.9", 0]},
               "x3": {"mesh": ["10.0.0.9", True]}, "x4": {"mesh": "10.0.0.9:4500"},
               "x5": {"mesh": ["10.0.0.9", 4500, 1]}}
    leases = {"a": ["nonsense"], "b": ["10.77.0.3/16"]}
    assert mesh.plan("gw2", servers, {"a": "gw1", "b": "gw1", "c": "gw1"}, leases, []) == {
        "gw1": mesh.Peer("10.0.0.1", 4500, frozenset({"10.77.0.3/32"}))}


def test_host_prefixes() -> None:
    assert mesh.host_prefixes(["10.77.0.2/16", "fd77::2/64", "10.1.1.1"]) == [
        "10.77.0.2/32", "fd77::2/128", "10.1.1.1/32"]
