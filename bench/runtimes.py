"""Runtimes for the lite painter's heavy parts on this CPU, side by side on the same model (issue 32,
item 2): SD-Turbo's UNet step at 512x512 (a 64x64 latent, no guidance: one batch) and TAESD's
decode at 512x512, at their real size with random weights (compute does not depend on weight
values).

    python bench/runtimes.py                       # bench/results/runtimes.{md,json} (about ten minutes)
    python bench/runtimes.py --compile             # also torch.compile (inductor): minutes more
    python bench/runtimes.py --smoke --out /tmp/r  # tiny models: every line, no claim

Arms, each a median of `--runs` after a warm-up, interleaved, wall and CPU seconds (the process,
all threads):
- torch fp32 (the baseline) and torch bf16 (`model.to(torch.bfloat16)`: what the lite preset loads
  where the CPU has bf16 instructions, loading.cpu_bf16);
- OpenVINO: the torch module converted by `openvino.convert_model` (its PyTorch frontend), compiled
  for the CPU at `INFERENCE_PRECISION_HINT` f32 and bf16 (docs.openvino.ai, "CPU device":
  bf16 is the default precision on CPUs with AVX512_BF16 or AMX; f32 asked here for the fp32 arm);
- torch.compile of the bf16 module (inductor's default mode), with `--compile`.

Each arm's output is compared with torch fp32's on the same input (largest absolute difference and
the relative RMS), so a faster arm is seen to compute the same function. A runtime is worth
taking where it wins by 1.5x or more over what the preset runs today (torch bf16 on this CPU).
The load average (1 min) is stated with the results.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def _call(inner: Any, call: Callable[..., Any]) -> Any:
    """`inner` as a module whose forward takes positional tensors and returns one tensor, `call(inner,
    *tensors)` (what a converter traces: diffusers' modules take keywords and return dataclasses)."""
    import torch

    class Call(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *tensors: Any) -> Any:
            return call(self.inner, *tensors)

    return Call().eval()


def _step(unet: Any) -> Any:
    return _call(unet, lambda m, sample, t, emb: m(sample, t, encoder_hidden_states=emb, return_dict=False)[0])


def _decode(vae: Any) -> Any:
    return _call(vae, lambda m, z: m.decode(z, return_dict=False)[0])


def _openvino(module: Any, example: tuple[Any, ...], precision: str) -> Callable[..., Any]:
    """`module` converted by OpenVINO's PyTorch frontend and compiled for the CPU at `precision`."""
    import openvino as ov

    model = ov.convert_model(module, example_input=example)
    compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": precision,
                                                      "PERFORMANCE_HINT": "LATENCY"})
    request = compiled.create_infer_request()

    def run(*inputs: Any) -> Any:
        import torch

        request.infer([x.numpy() for x in inputs])
        return torch.from_numpy(request.get_output_tensor(0).data.copy())

    return run


def arms(smoke: bool, compile_too: bool) -> tuple[dict[str, Callable[[], Any]], dict[str, str], dict[str, float]]:
    """name -> one call; name -> the reference arm its output is compared with; name -> seconds to
    prepare it (conversion and compilation)."""
    import copy

    import lite  # bench/lite.py: SD-Turbo at its real size
    import torch

    pipe = lite.sd_turbo(smoke)
    latent = 32 if smoke else 64
    g = torch.Generator().manual_seed(0)
    lat = torch.randn(1, 4, latent, latent, generator=g)
    emb = torch.randn(1, 77, pipe.unet.config.cross_attention_dim, generator=g)
    t = torch.tensor([999])
    z = torch.randn(1, 4, latent, latent, generator=g)
    bf = torch.bfloat16
    unet32, dec32 = _step(pipe.unet), _decode(pipe.vae)
    unet16, dec16 = _step(copy.deepcopy(pipe.unet).to(bf)), _decode(copy.deepcopy(pipe.vae).to(bf))
    out: dict[str, Callable[[], Any]] = {
        "UNet step, torch fp32": lambda: unet32(lat, t, emb),
        "UNet step, torch bf16": lambda: unet16(lat.to(bf), t, emb.to(bf)),
        "TAESD decode, torch fp32": lambda: dec32(z),
        "TAESD decode, torch bf16": lambda: dec16(z.to(bf)),
    }
    ref = {k: ("UNet step, torch fp32" if k.startswith("UNet") else "TAESD decode, torch fp32") for k in out}
    prep: dict[str, float] = {}
    for precision in ("f32", "bf16"):
        s = time.perf_counter()
        with torch.inference_mode():
            u = _openvino(unet32, (lat, t, emb), precision)
            d = _openvino(dec32, (z,), precision)
        prep[f"OpenVINO {precision}"] = time.perf_counter() - s
        out[f"UNet step, OpenVINO {precision}"] = lambda u=u: u(lat, t, emb)
        out[f"TAESD decode, OpenVINO {precision}"] = lambda d=d: d(z)
        ref[f"UNet step, OpenVINO {precision}"] = "UNet step, torch fp32"
        ref[f"TAESD decode, OpenVINO {precision}"] = "TAESD decode, torch fp32"
    if compile_too:
        cu, cd = torch.compile(unet16), torch.compile(dec16)
        s = time.perf_counter()
        with torch.inference_mode():
            cu(lat.to(bf), t, emb.to(bf))
            cd(z.to(bf))
        prep["torch.compile bf16"] = time.perf_counter() - s
        out["UNet step, torch.compile bf16"] = lambda: cu(lat.to(bf), t, emb.to(bf))
        out["TAESD decode, torch.compile bf16"] = lambda: cd(z.to(bf))
        ref["UNet step, torch.compile bf16"] = "UNet step, torch fp32"
        ref["TAESD decode, torch.compile bf16"] = "TAESD decode, torch fp32"
    return out, ref, prep


def measure(fns: dict[str, Callable[[], Any]], runs: int) -> tuple[dict[str, dict[str, float]], dict[str, Any]]:
    """bench/lite.py's interleaved medians, and each arm's warm-up answer (in fp32) for the comparison."""
    import lite

    outputs: dict[str, Any] = {}
    stats = lite.measure(fns, runs, outputs)
    return stats, {k: v.float() for k, v in outputs.items()}


def compare(outputs: dict[str, Any], ref: dict[str, str]) -> dict[str, dict[str, float]]:
    out = {}
    for k, r in ref.items():
        a, b = outputs[k], outputs[r]
        diff = (a - b).abs()
        out[k] = {"max_abs": float(diff.max()), "rel_rms": float(((a - b) ** 2).mean().sqrt() / (b**2).mean().sqrt())}
    return out


def report(stats: dict, diffs: dict, prep: dict, runs: int, smoke: bool, loads: list[float]) -> str:
    import openvino
    import torch

    from lasso_edit.core.loading import cpu_bf16

    lines = [
        "# runtimes: the lite painter's UNet step and TAESD decode on this CPU" + (" (smoke: tiny models)" if smoke else ""),
        "",
        f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC; {platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), OpenVINO {openvino.__version__}; "
        f"bf16 instructions: {'yes' if cpu_bf16() else 'no'}; Python {platform.python_version()}; random weights at "
        f"{'tiny' if smoke else 'real'} size; median of {runs} interleaved runs after a warm-up; load average "
        f"(1 min) {min(loads):.1f} to {max(loads):.1f}.",
        "",
        "| arm | wall (s) | min wall (s) | CPU (s) | vs torch bf16 (wall) | max abs diff vs fp32 | relative RMS vs fp32 |",
        "|---|---|---|---|---|---|---|",
    ]
    for k, s in stats.items():
        base = stats["UNet step, torch bf16" if k.startswith("UNet") else "TAESD decode, torch bf16"]["wall"]
        d = diffs[k]
        lines.append(f"| {k} | {s['wall']:.3f} | {s['wall_min']:.3f} | {s['cpu']:.3f} | {base / s['wall']:.2f}x "
                     f"| {d['max_abs']:.3g} | {d['rel_rms']:.3g} |")
    lines += ["", "Preparation (conversion and compilation, both models): "
              + ", ".join(f"{k} {v:.1f} s" for k, v in prep.items()) + "."]
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--smoke", action="store_true", help="tiny models: checks every line, claims nothing")
    p.add_argument("--compile", action="store_true", help="also torch.compile (inductor): minutes of compiling")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    loads = [os.getloadavg()[0]]
    fns, ref, prep = arms(args.smoke, args.compile)
    stats, outputs = measure(fns, args.runs)
    loads.append(os.getloadavg()[0])
    text = report(stats, compare(outputs, ref), prep, args.runs, args.smoke, loads)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "runtimes.md").write_text(text)
    (args.out / "runtimes.json").write_text(json.dumps({"stats": stats, "diffs": compare(outputs, ref), "prep": prep,
                                                        "loads": loads, "smoke": args.smoke}, indent=1))
    print(text)


if __name__ == "__main__":
    main()
