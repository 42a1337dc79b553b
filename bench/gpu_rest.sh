#!/usr/bin/env bash
# bench/compare.py's sections after the matrix, in a second call of under 8 minutes: the SAM
# re-prompt, the ablation (>= 10 measured runs per row, with spread), memory per arm, the batch
# runner and --compile. Results: $OUT_DIR/rest/compare.{json,md} (bench/gpu.sh writes the matrix).
set -euo pipefail
source "$(dirname "$0")/gpu_env.sh"
exec python3 bench/compare.py --out "$OUT_DIR/rest" --only reprompt,ablation,memory,batch,compile \
  --budget "${BUDGET:-430}" "$@"
