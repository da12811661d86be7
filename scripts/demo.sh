#!/usr/bin/env bash
# The main job: boot a VM with kmod-ipudp, build an overlay between two
# network namespaces with the lvn CLI, push traffic through it, show status;
# then a server and two clients (one behind NAT) join by themselves through
# the agents, with lvn status on each.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-deps.sh
rel=$(vm/kernels.sh 6.1)
vm/build-module.sh "$rel" >/dev/null
vm/run.sh "$rel" "sh scripts/demo-guest.sh"
