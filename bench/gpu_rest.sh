#!/usr/bin/env bash
# bench/compare.py's sections after the matrix, in a second call of under 8 minutes: the SAM
# re-prompt, the ablation (>= 10 measured runs per row, with spread), memory per arm, the batch
# runner and --compile. Results: $OUT_DIR/rest/compare.{json,md} (bench/gpu.sh writes the matrix).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT_DIR="${OUT_DIR:-bench/results}"
if compgen -G ".whl/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site:${PYTHONPATH:-}"
fi
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
nvidia-smi --query-gpu=name,memory.total --format=csv || true
exec python3 bench/compare.py --out "$OUT_DIR/rest" --only reprompt,ablation,memory,batch,compile \
  --budget "${BUDGET:-430}" "$@"
