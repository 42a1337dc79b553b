"""What every timed section shares: the CUDA sync around a timed call and the summary of its times.

compare.py, ablation.py and matrix.py all time with these, so their numbers are summarised alike
and none of them imports another for it (compare.py runs ablation.py's sections; ablation.py used
to import compare.py back for `stats`).
"""

from __future__ import annotations

import numpy as np


def sync() -> None:
    """Wait for the GPU's queued work (nothing on the CPU), so a host clock reads the work's time."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def stats(xs: list[float]) -> dict:
    """Median, p10, p90 and count of `xs`: the shape report.py reads."""
    a = np.asarray(xs, dtype=float)
    return {"median": float(np.median(a)), "p10": float(np.percentile(a, 10)), "p90": float(np.percentile(a, 90)),
            "n": int(a.size)}
