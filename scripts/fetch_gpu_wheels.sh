#!/usr/bin/env bash
# On a connected machine: fetch into .whl/ the wheels scripts/gpu_check.sh installs on an
# offline GPU machine whose python3 lacks them (Python 3.12, manylinux x86_64 by default);
# pysdtw (pure Python, its CUDA kernels in numba) is the soft-DTW peer that benchmarks/gpu.py times.
set -euo pipefail
cd "$(dirname "$0")/.."
PYV=${PYV:-3.12}
mkdir -p .whl
for pkg in open_clip_torch av ftfy wcwidth pysdtw; do
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$PYV" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform any -d .whl "$pkg" || echo "could not fetch $pkg (the check reports it)"
done
ls -la .whl
