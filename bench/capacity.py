"""How many GPUs hold N edits per second, and at what p95: a simulation from measured edit times.

    python bench/capacity.py                       # reads bench/results/compare_h200.json and compile_h200.json
    python bench/capacity.py --out bench/results/capacity_h200.md

Each replica of `lasso serve --ray` paints one edit at a time on its own GPU, so a deployment of
c GPUs is an M/G/c queue: requests arrive at random (Poisson, rate N per second), wait in one
queue and go to the first free replica (Ray Serve's router sends each request to the less busy of
two replicas, close to that). An edit's time is drawn from a log-normal fitted to the measured
median and p90 of the benchmark on that card. For each rate the table gives the fewest GPUs whose
simulated p95 latency (waiting + editing) stays within 1.5x the p95 of a lone edit, and that p95.

What it leaves out, and docs/scale.md says: the cold start of a new replica (measured at ~21 s to
load plus ~7 s for the first call on an H200), network and proxy time (milliseconds), and images
larger than the benchmark's 512x512. The times are from full-size models with random weights;
compute does not depend on the weights.
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"
RATES = [0.5, 1, 2, 5, 10, 20, 50]
HEADROOM = 1.5  # p95 allowed, as a multiple of a lone edit's p95
Z90 = 1.2815515655446004  # the standard normal's 90th percentile


def measured(results: Path) -> tuple[str, dict[str, dict]]:
    """(card, {preset: {"median", "p90", "source"}}) from the benchmark results on one card."""
    compare = json.loads((results / "compare_h200.json").read_text())
    card = compare["card"]
    out = {}
    case = compare["sections"]["matrix"]["cases"][0]
    out["balanced"] = {**case["arms"]["lasso"]["e2e"], "source": f"compare_h200.json, {case['case']}, balanced"}
    fast = compare["sections"].get("fast", {}).get("arms", {}).get("lasso-fast")
    if fast:
        out["fast"] = {**fast["e2e"], "source": "compare_h200.json, fast preset"}
    compiled = results / "compile_h200.json"
    if compiled.exists():
        warm = json.loads(compiled.read_text())["sections"]["compile"].get("warm")
        if warm:
            out["balanced --compile"] = {**warm, "source": "compile_h200.json, balanced with --compile, warm"}
    return card, out


def simulate(rate: float, gpus: int, median: float, p90: float, n: int = 40_000, seed: int = 0) -> float:
    """p95 latency (s) of an M/G/c queue: Poisson arrivals at `rate`, log-normal service times."""
    rng = np.random.default_rng(seed)
    sigma = max(math.log(p90 / median) / Z90, 1e-6)
    service = median * np.exp(sigma * rng.standard_normal(n))
    arrivals = np.cumsum(rng.exponential(1.0 / rate, n))
    free = [0.0] * gpus  # when each GPU is next free
    heapq.heapify(free)
    latency = np.empty(n)
    for i in range(n):
        start = max(arrivals[i], heapq.heappop(free))
        done = start + service[i]
        heapq.heappush(free, done)
        latency[i] = done - arrivals[i]
    warm = n // 10  # leave out the start, when the queue is still empty
    return float(np.percentile(latency[warm:], 95))


def gpus_for(rate: float, median: float, p90: float) -> tuple[int, float]:
    """The fewest GPUs whose p95 is within HEADROOM of a lone edit's, and that p95."""
    sigma = math.log(p90 / median) / Z90
    mean = median * math.exp(sigma**2 / 2)
    alone = median * math.exp(1.6448536269514722 * sigma)
    c = max(1, math.ceil(rate * mean / 0.9))  # below 90% busy, or the queue grows without end
    while True:
        p95 = simulate(rate, c, median, p90)
        if p95 <= HEADROOM * alone:
            return c, p95
        c += 1


def table(card: str, presets: dict[str, dict]) -> str:
    lines = [f"# Capacity: GPUs for N edits per second ({card}, simulated)", "",
             "From `python bench/capacity.py`: an M/G/c queue (Poisson arrivals, one edit at a time per GPU, "
             "one shared queue) with each edit's time drawn from a log-normal fitted to the measured median and p90. "
             f"GPUs: the fewest whose p95 latency stays within {HEADROOM}x the p95 of a lone edit. "
             "Not counted: cold starts of new replicas, proxy and network time, images above 512x512.", ""]
    for name, m in presets.items():
        lines += [f"- {name}: median {m['median']:.2f} s, p90 {m['p90']:.2f} s per edit "
                  f"({m['source']}); one GPU edits {3600 / m['median']:,.0f} images an hour in a batch"]
    lines += ["", "| edits/s | " + " | ".join(f"{n}: GPUs | p95 (s)" for n in presets) + " |",
              "|---|" + "---|---|" * len(presets)]
    for rate in RATES:
        cells = []
        for m in presets.values():
            c, p95 = gpus_for(rate, m["median"], m["p90"])
            cells += [str(c), f"{p95:.2f}"]
        lines.append(f"| {rate:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--results", type=Path, default=RESULTS)
    ap.add_argument("--out", type=Path, help="Write the table here (Markdown) as well as printing it.")
    args = ap.parse_args()
    text = table(*measured(args.results))
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
