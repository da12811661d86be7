"""The server's TLS on Debian 12's own packages (python3-openssl 23.0.0,
python3-cryptography 38.0.4: below OpenWrt 24.10's floor, but what a
Debian server and the cross guests of make test-cross run): with a
revocation list, ``tls_context`` raised AttributeError there (pyOpenSSL
23.0 takes only its own CRL type), so the server died at its start."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from lvn import pki

ROOT = Path(__file__).resolve().parents[2]
DEBIAN_PYTHON = "/usr/bin/python3"

CHECK = """
import sys
sys.path.insert(0, sys.argv[1])
import OpenSSL, cryptography
from lvn.agent import tls_context
d = sys.argv[2]
tls_context(d + "/ca.pem", d + "/issued/srv.pem", d + "/issued/srv.key", d + "/crl.pem",
            server=True)
print(OpenSSL.__version__, cryptography.__version__)
"""


def test_server_tls_with_a_crl_on_debian_12s_packages(tmp_path: Path) -> None:
    probe = subprocess.run([DEBIAN_PYTHON, "-c", "import OpenSSL, cryptography"],
                           capture_output=True, text=True)
    if probe.returncode != 0:  # scripts/setup-deps.sh installs them
        pytest.fail(f"Debian's python3-openssl and python3-cryptography: {probe.stderr}")
    pki.init(tmp_path)
    pki.issue(tmp_path, "srv", role="server")
    pki.issue(tmp_path, "gone")
    pki.revoke(tmp_path, "gone")
    res = subprocess.run([DEBIAN_PYTHON, "-c", CHECK, str(ROOT), str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    print("Debian's pyOpenSSL and cryptography:", res.stdout.strip())
