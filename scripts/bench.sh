#!/usr/bin/env bash
# `make bench`: the peers' packages, the module, one VM boot running
# scripts/bench.py (about 20 min), then docs/benchmarks.md and its plots.
# Usage: scripts/bench.sh [--quick]   (LVN_BENCH_KERNEL: series, default 6.12)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-deps.sh
.venv/bin/python -c 'import matplotlib' 2>/dev/null || .venv/bin/pip install -q matplotlib
rel=$(vm/kernels.sh "${LVN_BENCH_KERNEL:-6.12}")
vm/build-module.sh "$rel" >/dev/null
out=bench/results/$(date -u +%Y-%m-%d).json
mkdir -p bench/results
LVN_VM_TIMEOUT=3000 vm/run.sh "$rel" ".venv/bin/python scripts/bench.py $out $*"
.venv/bin/python scripts/bench_report.py "$out"
