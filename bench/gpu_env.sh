# Sourced by bench/gpu*.sh: the lent benchmark machine's setup. It has no network: the wheels its
# image lacks are carried in .whl/ (docs/benchmarks.md lists them) and installed to /tmp/site.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT_DIR="${OUT_DIR:-bench/results}"
if compgen -G ".whl/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site:${PYTHONPATH:-}"
fi
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv || true
