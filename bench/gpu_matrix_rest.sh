#!/usr/bin/env bash
# bench/matrix.py, part 2: what part 1 (bench/gpu_matrix.sh) left, plus the quality preset, the
# VLM compile and --compile (minutes of compilation per new shape: warm-up runs absorb it). Every
# (arm, case) already in a matrix_part*.json is skipped. Results: $OUT_DIR/matrix_part2_TIME.{json,md}.
# Run it as often as the budget needs: each call skips what every earlier call measured.
set -euo pipefail
source "$(dirname "$0")/gpu_env.sh"
python3 - "$OUT_DIR" <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
cases = []
for p in sorted(out.glob("matrix_part*.json")):
    cases += [c for c in json.loads(p.read_text()).get("cases", []) if "arms" in c]
(out / "matrix_done.json").write_text(json.dumps({"cases": cases}))
PY
exec python3 bench/matrix.py --out "$OUT_DIR" --label "_part2_$(date -u +%Y%m%dT%H%M%S)" \
  --resume "$OUT_DIR/matrix_done.json" \
  --arms "${ARMS:-balanced,balanced+deepcache,fast,quality,balanced+vlm-compile,balanced+compile}" \
  --budget "${BUDGET:-400}" "$@"
