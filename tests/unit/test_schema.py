"""lvn.schema's own address parsers (MicroPython has no ipaddress) against
Python's ipaddress: the same texts accepted, the same values meant."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from lvn import schema

ADDRESS_TEXT = st.text(alphabet="0123456789abcdefABCDEF:.", max_size=45)
PREFIX_TEXT = st.builds(lambda a, n: f"{a}/{n}", ADDRESS_TEXT,
                        st.text(alphabet="0123456789", min_size=1, max_size=4))


def _ipaddress_reads(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


@given(st.ip_addresses())
def test_every_address_reads_back(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    text = schema.parse_ip(str(ip))
    assert ipaddress.ip_address(text) == ip
    if not (ip.version == 6 and ip.ipv4_mapped):  # RFC 5952 mixed notation there
        assert text == str(ip)


@given(ADDRESS_TEXT)
@example("::ffff:1.2.3.04")
@example("1.2.3.04")
@example("1:2:3:4:5:6:7::")
@example(":1::")
def test_accepts_what_ipaddress_accepts(text: str) -> None:
    want = _ipaddress_reads(text)
    try:
        got = ipaddress.ip_address(schema.parse_ip(text))
    except ValueError as e:
        assert want is None, f"{text!r}: refused ({e}), ipaddress reads {want}"
        assert "is not an IPv4 or IPv6 address" in str(e)
        return
    assert got == want


@given(PREFIX_TEXT)
@example("10.0.0.0/08")
@example("10.0.0.1/8")
@example("fd00::/129")
@example("::/0")
def test_prefixes_as_ipaddress_reads_them(text: str) -> None:
    try:
        want: str | None = str(ipaddress.ip_network(text, strict=True))
    except ValueError:
        want = None
    try:
        got: str | None = schema.SCHEMA["tunnel"]["route"].parse(text)  # type: ignore[assignment]
    except ValueError as e:
        assert "is not a valid prefix" in str(e)
        got = None
    if want is not None and got is not None:
        assert ipaddress.ip_network(got) == ipaddress.ip_network(want)
    else:
        assert got == want, text


@pytest.mark.parametrize("text, fragment", [
    ("10.0.0.1/8", "host bits set: the network is 10.0.0.0/8"),
    ("10.0.0.0/33", "longer than the address (32 bits)"),
    ("10.0.0.0/x", "'x' is not a prefix length"),
])
def test_prefix_messages(text: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        schema.SCHEMA["tunnel"]["route"].parse(text)


@pytest.mark.parametrize("hook", ["/sbin/reboot", "/etc/lvn/hooks.d/../../../sbin/reboot",
                                  "/etc/lvn/hooks.d/", "/etc/lvn/hooks.d/a/b", "hook.sh",
                                  "/etc/lvn/hooks.dx/up"])
def test_hooks_only_from_the_hooks_directory(hook: str,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Hooks run as root: a login that may edit the configuration (LuCI's
    write ACL) must not make the service run any program."""
    monkeypatch.delenv("LVN_HOOKS_DIR", raising=False)
    pkg = schema.uci.parse(f"config server 's'\n\toption up_hook '{hook}'\n")
    _, problems = schema.check(pkg, check_files=False)
    assert [str(p) for p in problems if "up_hook" in p.where] == [
        f"lvn.s.up_hook: {hook!r} is not a script in /etc/lvn/hooks.d (hooks run as root: "
        "only scripts there)"] or (not hook.startswith("/") and problems), problems
    good = schema.uci.parse("config server 's'\n\toption up_hook '/etc/lvn/hooks.d/up.sh'\n")
    assert not [p for p in schema.check(good, check_files=False)[1] if "up_hook" in p.where]
