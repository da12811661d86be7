"""The feed as OpenWrt's own rules build it (scripts/owrt-feed.sh, run by
make test before this file): the packages of 24.10 and main, their
metadata and maintainer scripts, the node's byte code loaded by the
MicroPython of the same release, and `make ipk` (scripts/build-ipk.py)
equal to the real build file for file."""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import upy

ROOT = Path(__file__).resolve().parents[2]

OUT = ROOT / "build" / "owrt-feed"
RELEASES = sorted(upy.OPENWRT)
NODE_BUDGET = 100 * 1024  # bytes installed (docs/openwrt.md)


def ipk_of(release: str, name: str) -> Path:
    found = sorted((OUT / release / "ipk").glob(f"{name}_*_all.ipk"))
    if not found:
        pytest.fail(f"no {name} ipk in {OUT / release}/ipk: scripts/owrt-feed.sh {release} "
                    "has not run (make test runs it)")
    return found[-1]


def parts(ipk: Path) -> dict[str, dict[str, tuple[tarfile.TarInfo, bytes]]]:
    """The members of an ipk's control.tar.gz and data.tar.gz."""
    out: dict[str, dict[str, tuple[tarfile.TarInfo, bytes]]] = {}
    with tarfile.open(ipk, "r:gz") as outer:
        for part in ("control", "data"):
            blob = outer.extractfile(f"./{part}.tar.gz").read()  # type: ignore[union-attr]
            with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
                out[part] = {}
                for m in tar.getmembers():
                    f = tar.extractfile(m)
                    out[part][m.name] = (m, f.read() if f else b"")
    return out


def control(ipk: Path) -> dict[str, str]:
    text = parts(ipk)["control"]["./control"][1].decode()
    return dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)


@pytest.mark.parametrize("release", RELEASES)
def test_packages_and_metadata(release: str) -> None:
    node = control(ipk_of(release, "lvn"))
    depends = node["Depends"].split(", ")
    # micropython-nossl would also satisfy "micropython": the node imports ssl
    assert "micropython-mbedtls" in depends and "micropython" not in depends, depends
    assert int(node["Installed-Size"]) <= NODE_BUDGET, node["Installed-Size"]
    for name in ("lvn", "lvn-server", "luci-app-lvn"):
        fields = control(ipk_of(release, name))
        assert "example.org" not in fields.get("Maintainer", "") and \
            "OpenWrt LuCI community" not in fields.get("Maintainer", ""), (name, fields)
        assert "github.com/openwrt/luci" not in fields.get("URL", ""), (name, fields)
    print(f"OpenWrt {release}: lvn installs {node['Installed-Size']} bytes")


@pytest.mark.parametrize("release", RELEASES)
def test_maintainer_scripts(release: str) -> None:
    server = parts(ipk_of(release, "lvn-server"))["control"]
    postrm = server["./postrm"][1].decode()
    # an upgrade restarts the service once (postinst), not again from postrm
    assert 'case " $* " in *" upgrade "*) exit 0 ;; esac' in postrm, postrm
    assert '[ "${PKG_UPGRADE}" = 1 ] && exit 0' in postrm, postrm
    node = parts(ipk_of(release, "lvn"))["control"]
    postinst = node["./postinst-pkg"][1].decode()
    # apk runs no pre-deinstall on an upgrade: the running agent is restarted here
    assert 'if [ "${PKG_UPGRADE}" = 1 ] && /etc/init.d/lvn running; then ' \
           '/etc/init.d/lvn restart; fi' in postinst, postinst
    for pkg in (server, node):  # ours (OpenWrt's default_* wrappers are its own)
        for name, (_, body) in pkg.items():
            if name in ("./postinst-pkg", "./prerm-pkg", "./postrm"):
                res = subprocess.run(["shellcheck", "-s", "sh", "-"], input=body,
                                     capture_output=True)
                assert res.returncode == 0, (name, res.stdout.decode())


@pytest.mark.parametrize("release", RELEASES)
def test_node_byte_code_runs_on_the_release_micropython(release: str, tmp_path: Path) -> None:
    """The .mpy files that mpy-cross of the release made load on that
    release's micropython, and the node checks a config with them."""
    data = parts(ipk_of(release, "lvn"))["data"]
    for name, (info, body) in data.items():
        target = tmp_path / name
        if info.isdir():
            target.mkdir(parents=True, exist_ok=True)
        elif info.isfile():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(body)
    mpy = tmp_path / "usr" / "lib" / "lvn" / "mpy"
    modules = sorted(p.stem for p in (mpy / "lvn").glob("*.mpy"))
    assert "node" in modules and not list((mpy / "lvn").glob("*.py"))
    micropython = upy.openwrt(upy.OPENWRT[release])
    code = "import " + ", ".join(f"lvn.{m}" for m in modules if m != "__init__")
    res = subprocess.run([str(micropython), "-c", code], capture_output=True, text=True,
                         env={"MICROPYPATH": f".frozen:{mpy}"}, timeout=60)
    assert res.returncode == 0, res.stderr
    conf = tmp_path / "etc" / "config" / "lvn"
    res = subprocess.run([str(micropython), "-m", "lvn.node", "validate", str(conf)],
                         capture_output=True, text=True, env={"MICROPYPATH": f".frozen:{mpy}"},
                         timeout=60)
    assert res.returncode == 0, res.stderr + res.stdout


@pytest.mark.parametrize("name", ["lvn", "lvn-server", "luci-app-lvn"])
def test_make_ipk_matches_the_real_build(name: str, tmp_path: Path) -> None:
    """scripts/build-ipk.py (make ipk, the router tests' packages) makes the
    files OpenWrt 24.10's rules make: names, modes and contents equal."""
    flag = ["--luci"] if name == "luci-app-lvn" else ["--package", name]
    res = subprocess.run([sys.executable, str(ROOT / "scripts" / "build-ipk.py"),
                          str(tmp_path), *flag], capture_output=True, text=True, check=True)
    ours = parts(Path(res.stdout.split()[0]))["data"]
    real = parts(ipk_of("24.10", name))["data"]

    def files(members: dict[str, tuple[tarfile.TarInfo, bytes]]) -> dict[str, tuple[int, bytes]]:
        return {n: (m.mode, body) for n, (m, body) in members.items() if m.isfile()
                and not n.endswith(".pyc")}

    assert files(ours) == files(real)
    if name == "lvn-server":  # byte code of the same sources, compiled by another run
        pyc = sorted(n for n, (m, _) in real.items() if n.endswith(".pyc"))
        assert pyc and pyc == sorted(n for n in ours if n.endswith(".pyc"))
