#!/usr/bin/env bash
# One prepared GPU check (issues #19, #40): a venv with the project installed, `pytest -m cuda`,
# and the GPU benchmark (soft-DTW at B = 32 and L = 128 ... 4096 against the row scan and pysdtw,
# with peak memory; all-pairs DTW; the row scan's cost per row; extraction; NVDEC; S3D), with the
# log and a JSON of the figures under $OUT.
#
#   bash scripts/gpu_check.sh             # on a GPU machine (about 5 minutes)
#   bash scripts/gpu_check.sh --dry-run   # anywhere: the same steps on the CPU, tests skipped,
#                                         # a small benchmark (tests/test_gpu_check.py runs this)
#
# The venv sees the packages of the python3 it is made from (a GPU image's torch and CUDA
# stack; that python3 may itself be a venv, so a .pth file points at its site-packages, not
# --system-site-packages). What that python3 lacks is installed from wheels in .whl/ when the
# machine is offline (scripts/fetch_gpu_wheels.sh fetches them on a connected machine), else
# from the package index. Then the project installs as README says, without touching torch.
set -euo pipefail
cd "$(dirname "$0")/.."
dry=0
[ "${1:-}" = "--dry-run" ] && dry=1
OUT=${OUT:-$PWD/gpu-check-out}
VENV=${VENV:-${TMPDIR:-/tmp}/tempclr-gpu-venv}
PYTHON=${PYTHON:-python3}
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu_check.log") 2>&1
start=$(date +%s)
echo "== gpu_check $( [ $dry = 1 ] && echo '(dry run)' ) $(date -u +%FT%TZ), python $($PYTHON --version 2>&1)"

# 1. venv + install
parent=$($PYTHON -c 'import site; print(site.getsitepackages()[0])')
rm -rf "$VENV"
$PYTHON -m venv --without-pip "$VENV" 2>/dev/null || $PYTHON -m venv "$VENV"
site=$("$VENV/bin/python" -c 'import site; print(site.getsitepackages()[0])')
echo "$parent" > "$site/_tempclr_parent_site.pth"
. "$VENV/bin/activate"
pip_() { python -m pip "$@"; }
missing=$(python - <<'PY'
import importlib.util
need = {"open_clip": "open_clip_torch", "av": "av", "typer": "typer", "rich": "rich", "yaml": "pyyaml",
        "numba": "numba", "ftfy": "ftfy", "pytest": "pytest", "pysdtw": "pysdtw"}
print(" ".join(pkg for mod, pkg in need.items() if importlib.util.find_spec(mod) is None))
PY
)
if [ -n "$missing" ]; then
  echo "== installing what $PYTHON lacks: $missing"
  if [ -d .whl ]; then pip_ install -q --no-index --find-links .whl $missing
  else pip_ install -q $missing; fi
fi
echo "== installing the project (pip install ., dependencies from the environment above)"
pip_ install -q --no-deps --no-build-isolation .
python -c "import tempclr_cli, torch; print('tempclr', tempclr_cli.__version__, '| torch', torch.__version__, '| cuda', torch.cuda.is_available())"

# 2. the CUDA tier (skipped, with the reason, without a GPU)
echo "== pytest -m cuda"
set +e
OMP_NUM_THREADS=1 python -m pytest -q -m cuda -rs -p no:cacheprovider tests/ 2>&1 | tee "$OUT/pytest_cuda.log"
tests=${PIPESTATUS[0]}
set -e
[ $tests = 5 ] && tests=0  # "no tests ran" is not a failure of the check (a marker-only selection)

# 3. the benchmark
echo "== benchmark"
if [ $dry = 1 ]; then python benchmarks/gpu.py --device cpu --small --json "$OUT/gpu_figures.json"
else python benchmarks/gpu.py --device cuda --json "$OUT/gpu_figures.json"; fi
echo "== done in $(( $(date +%s) - start )) s; pytest exit $tests; figures in $OUT/gpu_figures.json"
exit $tests
