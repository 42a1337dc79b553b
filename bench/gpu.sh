#!/usr/bin/env bash
# bench/compare.py on one GPU in under 8 minutes: full-size random-weight models, three arms (the
# model-card chain, that chain at Lasso's settings, Lasso), the quick case list and the fast
# preset; the later sections are bench/gpu_rest.sh's. Results: $OUT_DIR/compare.{json,md}.
#
#   bash bench/gpu.sh                      # writes bench/results/compare.{json,md}
#   OUT_DIR=/tmp/r BUDGET=1500 bash bench/gpu.sh --cases all     # the whole matrix, ~25 min
#
# A machine without network (the lent benchmark machine): put the wheels the image lacks in .whl/
# first (docs/benchmarks.md lists them); they are installed to /tmp/site and put on PYTHONPATH.
set -euo pipefail
source "$(dirname "$0")/gpu_env.sh"
exec python3 bench/compare.py --out "$OUT_DIR" --budget "${BUDGET:-430}" --skip reprompt,ablation,memory,batch,compile "$@"
