"""The OpenWrt package: `make ipk` output, init script, feed Makefile."""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INIT = ROOT / "files" / "etc" / "init.d" / "lvn"


@pytest.fixture(scope="module")
def ipks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``make ipk``'s two packages of feed/lvn: lvn (node) and lvn-server."""
    out = tmp_path_factory.mktemp("ipk")
    res = subprocess.run([sys.executable, str(ROOT / "scripts" / "build-ipk.py"), str(out)],
                         capture_output=True, text=True, check=True)
    paths = [Path(line) for line in res.stdout.split()]
    return {p.name.split("_")[0]: p for p in paths}


@pytest.fixture(scope="module")
def ipk(ipks: dict[str, Path]) -> Path:
    return ipks["lvn"]


@pytest.fixture(scope="module")
def server_ipk(ipks: dict[str, Path]) -> Path:
    return ipks["lvn-server"]


def members(blob: bytes) -> dict[str, tuple[tarfile.TarInfo, bytes]]:
    out = {}
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
        for m in tar.getmembers():
            f = tar.extractfile(m)
            out[m.name] = (m, f.read() if f else b"")
    return out


def version() -> str:
    return str(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"])


def test_outer_layout(ipks: dict[str, Path]) -> None:
    assert sorted(p.name for p in ipks.values()) == [f"lvn-server_{version()}-1_all.ipk",
                                                    f"lvn_{version()}-1_all.ipk"]
    for ipk in ipks.values():
        with tarfile.open(ipk, "r:gz") as tar:
            assert tar.getnames() == ["./debian-binary", "./data.tar.gz", "./control.tar.gz"]
        assert members(ipk.read_bytes())["./debian-binary"][1] == b"2.0\n"


def fields_of(ipk: Path) -> dict[str, str]:
    ctrl = members(members(ipk.read_bytes())["./control.tar.gz"][1])
    return dict(line.split(": ", 1) for line in ctrl["./control"][1].decode().splitlines())


def test_the_node_package_needs_no_python3(ipk: Path, server_ipk: Path) -> None:
    """lvn (every node) pulls MicroPython, the module and rpcd's plugin deps,
    never python3; lvn-server brings the CPython stack on top of lvn."""
    node, server = fields_of(ipk), fields_of(server_ipk)
    assert node["Depends"].split(", ") == [
        "micropython-mbedtls", "kmod-ipudp", "rpcd", "rpcd-mod-ucode", "ucode-mod-socket"]
    assert server["Depends"].split(", ") == [
        "lvn", "python3-light", "python3-logging", "python3-ctypes",
        "python3-pyopenssl", "python3-cryptography"]
    assert server["Package"] == "lvn-server" and server["Version"] == f"{version()}-1"
    # the budget of docs/openwrt.md: the node package installs in <= 100 kB
    assert int(node["Installed-Size"]) <= 100_000


def test_control_fields_and_scripts(ipk: Path) -> None:
    outer = members(ipk.read_bytes())
    ctrl = members(outer["./control.tar.gz"][1])
    assert set(ctrl) == {"./control", "./conffiles", "./postinst", "./prerm", "./postinst-pkg"}
    fields = dict(line.split(": ", 1) for line in ctrl["./control"][1].decode().splitlines())
    assert fields["Package"] == "lvn" and fields["Version"] == f"{version()}-1"
    assert fields["Architecture"] == "all" and fields["Section"] == "net"
    assert fields["License"] == "GPL-2.0-only" and fields["LicenseFiles"] == "LICENSE"
    assert "Maintainer" not in fields and "URL" not in fields  # none yet, no placeholder
    data = members(outer["./data.tar.gz"][1])
    size = sum(len(body) for info, body in data.values() if info.isfile())
    assert int(fields["Installed-Size"]) == size
    assert ctrl["./conffiles"][1] == b"/etc/config/lvn\n"
    # OpenWrt's own postinst/prerm (enable+start, stop+disable, an admin's
    # disable kept on upgrade); the package adds only an rpcd reload and a
    # reload_config run (so that reload triggers see lvn's config from now on),
    # and on an apk upgrade (no pre-deinstall ran) a restart of the running agent
    assert b"default_postinst $0 $@" in ctrl["./postinst"][1]
    assert b"default_prerm $0 $@" in ctrl["./prerm"][1]
    assert [line for line in ctrl["./postinst-pkg"][1].splitlines()
            if b"/etc/init.d/lvn" in line] == [
        b'if [ "${PKG_UPGRADE}" = 1 ] && /etc/init.d/lvn running; then '
        b'/etc/init.d/lvn restart; fi']
    assert b"/sbin/reload_config" in ctrl["./postinst-pkg"][1]
    for script in ("./postinst", "./prerm", "./postinst-pkg"):
        info, body = ctrl[script]
        assert info.mode == 0o755 and body.startswith(b"#!/bin/sh\n")
        assert b"${IPKG_INSTROOT}" in body and b"$$" not in body
    # OpenWrt's generated scripts are its own; the package's part is checked
    for script in ("./postinst-pkg",):
        body = ctrl[script][1]
        res = subprocess.run(["shellcheck", "-s", "sh", "-"], input=body, capture_output=True)
        assert res.returncode == 0, res.stdout.decode()


NODE_MODULES = ("__init__", "node", "nodecontrol", "controlwire", "session", "messages",
                "protocol", "datagram", "schema", "static", "nlcodec", "ipudp_abi", "rawnl", "uci",
                "hookenv", "files", "jsonlimit", "clientpolicy", "replies",
                "capabilities", "nodeprivilege")


def test_data_files_and_permissions(ipk: Path, server_ipk: Path) -> None:
    data = members(members(ipk.read_bytes())["./data.tar.gz"][1])
    files = {name: info for name, (info, _) in data.items() if info.isfile()}
    # MicroPython byte code of the node's modules (mpy-cross): no sources
    expected = {f"./usr/lib/lvn/mpy/lvn/{m}.mpy" for m in NODE_MODULES} | {
        "./usr/sbin/lvn-node", "./etc/init.d/lvn", "./etc/config/lvn",
        "./usr/share/rpcd/acl.d/lvn.json", "./usr/share/rpcd/ucode/lvn.uc"}
    assert set(files) == expected
    modes = {name: info.mode for name, info in files.items()}
    assert modes.pop("./usr/sbin/lvn-node") == 0o755 and modes.pop("./etc/init.d/lvn") == 0o755
    assert modes.pop("./etc/config/lvn") == 0o600
    assert set(modes.values()) == {0o644}
    assert {(i.uid, i.gid, i.uname) for i, _ in data.values()} == {(0, 0, "root")}
    # lvn-server: byte-compiled, as python3-package.mk does
    data = members(members(server_ipk.read_bytes())["./data.tar.gz"][1])
    files = {name: info for name, (info, _) in data.items() if info.isfile()}
    modules = {f"./usr/lib/lvn/lvn/{p.stem}.pyc" for p in (ROOT / "lvn").glob("*.py")}
    assert set(files) == modules | {"./usr/sbin/lvn"}
    assert files["./usr/sbin/lvn"].mode == 0o755


def test_node_modules_are_what_the_node_imports(micropython: str, tmp_path: Path) -> None:
    """NODE_MODULES is the import closure of lvn.node under MicroPython."""
    code = ("import sys\nfrom lvn import node\n"
            "print(' '.join(sorted(k[4:] for k in sys.modules if k.startswith('lvn.'))))")
    res = subprocess.run([micropython, "-c", code], capture_output=True, text=True,
                         env={"MICROPYPATH": f".frozen:{ROOT}"}, timeout=60)
    assert res.returncode == 0, res.stderr
    assert set(res.stdout.split()) | {"__init__"} == set(NODE_MODULES)


def install(ipk: Path, root: Path) -> None:
    with tarfile.open(fileobj=io.BytesIO(members(ipk.read_bytes())["./data.tar.gz"][1]),
                      mode="r:gz") as tar:
        tar.extractall(root, filter="data")


def test_installed_node_tree_runs(ipk: Path, micropython: str, tmp_path: Path) -> None:
    """The node package alone (its .mpy files, no sources) runs lvn-node:
    the default configuration and a client one validate, a bad one is
    refused with the schema's message."""
    install(ipk, tmp_path)
    conf = tmp_path / "etc/config/lvn"
    env = {"MICROPYPATH": f".frozen:{tmp_path}/usr/lib/lvn/mpy"}
    res = subprocess.run([micropython, "-m", "lvn.node", "validate", str(conf)],
                         capture_output=True, text=True, env=env, timeout=60)
    assert res.returncode == 0 and "valid (static tunnels: 0 enabled)" in res.stdout, res
    bad = tmp_path / "bad"
    bad.write_text(conf.read_text() + "config tunnel 'x'\n\toption ifname 'lvn9'\n"
                   "\toption remote '10.0.0.300'\n")
    res = subprocess.run([micropython, "-m", "lvn.node", "validate", str(bad)],
                         capture_output=True, text=True, env=env, timeout=60)
    assert res.returncode == 1, res
    assert "lvn.x.remote: '10.0.0.300' is not an IPv4 or IPv6 address" in res.stderr, res
    for name in ("ca.pem", "node.pem", "node.key"):
        (tmp_path / name).write_text("-----BEGIN X-----\nAAAA\n-----END X-----\n")
    text = conf.read_text().replace("option enabled '0'\n\t# none", "option enabled '1'\n\t# none")
    text = text.replace("option role 'none'", "option role 'client'").replace("/etc/lvn/",
                                                                              f"{tmp_path}/")
    conf.write_text(text)
    res = subprocess.run([micropython, "-m", "lvn.node", "validate", str(conf)],
                         capture_output=True, text=True, env=env, timeout=60)
    assert res.returncode == 0 and "valid (client of vpn.example.org," in res.stdout, res
    assert not list(tmp_path.rglob("*.py"))


def test_installed_tree_runs(ipk: Path, server_ipk: Path, tmp_path: Path) -> None:
    """lvn and lvn-server installed are a working lvn: the default config validates."""
    install(ipk, tmp_path)
    install(server_ipk, tmp_path)
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from lvn.cli import main; "
            "sys.exit(main(['config', 'validate', '-c', sys.argv[2]]))")
    res = subprocess.run([sys.executable, "-I", "-c", code, str(tmp_path / "usr/lib/lvn"),
                          str(tmp_path / "etc/config")], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "valid" in res.stdout


def test_build_is_reproducible(ipks: dict[str, Path], tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(ROOT / "scripts" / "build-ipk.py"), str(tmp_path)],
                   check=True, capture_output=True)
    for ipk in ipks.values():
        assert (tmp_path / ipk.name).read_bytes() == ipk.read_bytes()


def test_feed_makefile_version_matches() -> None:
    text = (ROOT / "feed" / "lvn" / "Makefile").read_text()
    assert f"PKG_VERSION:={version()}\n" in text
    # sources outside the package directory are declared, so edits rebuild it
    assert "PKG_FILE_DEPENDS:=$(LVN_TOP)/lvn $(LVN_TOP)/files" in text
    assert (ROOT / "LICENSE").read_text().startswith("                    GNU GENERAL PUBLIC")
    kmod = (ROOT / "feed" / "kmod-ipudp" / "Makefile").read_text()
    assert "PKG_LICENSE:=GPL-2.0-only\n" in kmod and "PKG_LICENSE_FILES:=" in kmod
    for src in (ROOT / "feed" / "kmod-ipudp" / "src").glob("*.[ch]"):
        assert "SPDX-License-Identifier: GPL-2.0-only" in src.read_text().splitlines()[0], src


def test_init_script_is_shellcheck_clean() -> None:
    res = subprocess.run(["shellcheck", "-s", "sh", str(INIT)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout


def test_lvn_server_stops_the_cpython_service_before_its_files_go(server_ipk: Path) -> None:
    """prerm-pkg stops a running service while lvn-server's files exist (the
    CPython service removes its devices on SIGTERM); postinst and postrm
    restart it, so the other agent takes over."""
    ctrl = members(members(server_ipk.read_bytes())["./control.tar.gz"][1])
    assert set(ctrl) == {"./control", "./postinst", "./prerm", "./postinst-pkg",
                         "./prerm-pkg", "./postrm"}
    assert b"/etc/init.d/lvn stop" in ctrl["./prerm-pkg"][1]
    for script in ("./postinst-pkg", "./postrm"):
        assert b"/etc/init.d/lvn restart" in ctrl[script][1]
    for script in ("./prerm-pkg", "./postinst-pkg", "./postrm"):
        res = subprocess.run(["shellcheck", "-s", "sh", "-"], input=ctrl[script][1],
                             capture_output=True)
        assert res.returncode == 0, res.stdout.decode()
