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
source "$(dirname "$0")/gpu_env.sh"
exec python3 bench/matrix.py --out "$OUT_DIR" --label _part1 --arms balanced,balanced+deepcache,fast \
  --budget "${BUDGET:-400}" "$@"
