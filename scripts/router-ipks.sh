#!/usr/bin/env bash
# The ipks the VM's router tests install (tests/kernel/site.py): lvn and
# lvn-server (releases 1 and 2, for the upgrade test), luci-app-lvn and
# kmod-ipudp for one kernel. scripts/test-vm.sh builds them on the host
# before the boot (a second under the host's CPU, a minute under TCG).
# Usage: scripts/router-ipks.sh OUTDIR KERNEL-RELEASE
set -euo pipefail
out=$1 rel=$2
cd "$(dirname "$0")/.."
py=${PYTHON:-.venv/bin/python}
ko=build/kmod/$rel/ipudp.ko
[ -e "$ko" ] || { echo "router-ipks: $ko is not built (vm/build-module.sh $rel)" >&2; exit 1; }
mkdir -p "$out"
"$py" scripts/build-ipk.py "$out" >/dev/null
"$py" scripts/build-ipk.py "$out" --release 2 >/dev/null
"$py" scripts/build-ipk.py "$out" --luci >/dev/null
"$py" scripts/build-ipk.py "$out" --kmod "$ko" --kernel "$rel" >/dev/null
