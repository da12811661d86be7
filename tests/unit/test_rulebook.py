"""The server's book of rule owners (lvn/rulebook.py)."""

from lvn.rulebook import RuleBook


def test_an_adopted_tunnel_loses_the_previous_owners_rules() -> None:
    # after a restart, tunnel 7 (left by client A, 10.77.0.2) is adopted by
    # endpoint for client B, leased 10.77.0.3: A's addresses must go
    book = RuleBook()
    book.load([("10.77.0.2/32", 7), ("fd77::2/128", 7), ("10.77.0.9/32", 8)])
    delete, add = book.plan(7, ["10.77.0.3/32", "fd77::3/128"])
    assert delete == ["10.77.0.2/32", "fd77::2/128"]
    assert add == ["10.77.0.3/32", "fd77::3/128"]
    book.commit(7, delete, add)
    assert book.prefixes(7) == {"10.77.0.3/32", "fd77::3/128"}
    assert book.owner["10.77.0.9/32"] == 8
    assert book.plan(7, ["10.77.0.3/32", "fd77::3/128"]) == ([], [])  # a roam: nothing


def test_an_address_that_moves_is_taken_from_its_old_tunnel() -> None:
    book = RuleBook()
    book.load([("10.77.0.2/32", 1)])
    delete, add = book.plan(2, ["10.77.0.2/32"])
    assert (delete, add) == (["10.77.0.2/32"], ["10.77.0.2/32"])
    book.commit(2, delete, add)
    assert book.prefixes(1) == set() and book.owner == {"10.77.0.2/32": 2}
    book.forget_tunnel(2)
    assert book.owner == {} and book.owned == {}
