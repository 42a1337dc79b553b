#!/usr/bin/env bash
# bench/matrix.py, part 1, on one GPU in under 8 minutes of device time: the balanced,
# balanced+deepcache and fast arms, every action at 512x512 first, then the other sizes while the
# budget lasts (cases past it are listed as skipped). Results: $OUT_DIR/matrix_part1.{json,md}.
# The leftovers (skipped cases, quality, --compile, the VLM compile): bench/gpu_matrix_rest.sh.
#
#   bash bench/gpu_matrix.sh
#
# On the lent machine (no network): put the wheels the image lacks in .whl/ first (docs/benchmarks.md).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT_DIR="${OUT_DIR:-bench/results}"
if compgen -G ".whl/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site:${PYTHONPATH:-}"
fi
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv || true
exec python3 bench/matrix.py --out "$OUT_DIR" --label _part1 --arms balanced,balanced+deepcache,fast \
  --budget "${BUDGET:-400}" "$@"
