"""The benchmarks run end to end on the CPU (smoke mode): every section, no timing asserted."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e  # benchmark scripts run as a user runs them

ROOT = Path(__file__).resolve().parents[1]
# The smoke runs get no time budget (a benchmark's sections past it are skipped, and a skipped one
# fails the test on a slow, busy machine); pytest-timeout is the net for a hang.
NO_BUDGET = "100000"


def _run(*args):
    r = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    return r


def test_compare_smoke_runs_every_section_and_all_three_arms(tmp_path, tiny_dir):
    # no time budget: a section skipped on a busy machine would fail the test, not the code
    _run("bench/compare.py", "--smoke", "--budget", NO_BUDGET, "--out", str(tmp_path))
    rep = json.loads((tmp_path / "compare.json").read_text())
    s = rep["sections"]
    for name in ("build", "matrix", "fast", "reprompt", "ablation", "memory", "batch"):
        assert name in s and "error" not in s[name], (name, s.get(name))
    cases = [c for c in s["matrix"]["cases"] if "arms" in c]
    assert cases
    for c in cases:
        lasso, base, same = c["arms"]["lasso"], c["arms"]["baseline"], c["arms"]["same-settings"]
        assert lasso["checks"]["outside_mask_bit_identical"] is True
        assert lasso["e2e"]["n"] == base["e2e"]["n"] == same["e2e"]["n"] == rep["settings"]["runs"]
        assert {"parse", "segment"} <= set(lasso["stages"]) and c["ratio"]["median"] > 0
        # issue 17: the chain at Lasso's settings, a ratio of its own; on the CPU its diffusion
        # (25 DPM++ steps, guidance cut) costs what Lasso's does, unlike the 50-step baseline's
        assert c["ratio_same-settings"]["what"] == "same-settings / lasso"
        assert same["stages"]["edit"]["median"] < base["stages"]["edit"]["median"]
    assert s["fast"]["arms"]["lasso-fast"]["checks"]["outside_mask_bit_identical"] is True
    assert s["batch"]["done"] == s["batch"]["items"] == 4 and s["batch"]["loop_over_batch"] > 0
    assert {r["stage"] for r in s["ablation"]["rows"]} >= {"vlm", "editor", "detector", "segmenter", "diffusion", "cpu"}
    assert all("within_noise" in r for r in s["ablation"]["rows"] if "speedup" in r)
    assert s["ablation"]["vlm_decode_ms_per_token"]["n"] == rep["settings"]["runs"]
    for arm in ("lasso", "baseline"):
        assert s["memory"][arm]["cold_start_s"] > 0 and s["memory"][arm]["first_call_s"] > 0
    assert all(t["status"].startswith("not measured") for t in rep["targets"])  # no GPU: no claims
    md = (tmp_path / "compare.md").read_text()
    assert "smoke run" in md and "| 64x64 remove 5% |" in md


def test_matrix_smoke_runs_every_arm_and_action_and_resumes(tmp_path, tiny_dir):
    """bench/matrix.py: the speed matrix of issue 17 (the compile arm is left to the GPU: minutes
    of compilation on a CPU)."""
    arms_ = "balanced,balanced+deepcache,balanced+vlm-compile,fast,quality"
    _run("bench/matrix.py", "--smoke", "--arms", arms_, "--sizes", "512x512", "--budget", NO_BUDGET,
         "--out", str(tmp_path), "--label", "_a")
    rep = json.loads((tmp_path / "matrix_a.json").read_text())
    assert set(rep["arms"]) == set(arms_.split(",")) and all("error" not in a for a in rep["arms"].values())
    assert {c["action"] for c in rep["cases"]} == {"remove", "replace", "background", "recolor", "blur"}
    for c in rep["cases"]:
        assert set(c["arms"]) == set(arms_.split(","))
        for name, a in c["arms"].items():
            assert a["outside_mask_bit_identical"] and a["e2e"]["n"] == rep["runs"]
            assert "host refine" in a["stages"]
            # the fast preset plans rules-first: these regular instructions never reach its VLM
            assert (a["plan_source"] == ["rules (rules-first)"]) == (name == "fast")
            assert ("gpu parse" in a["stages"]) == (name != "fast")
    # a second call resumes: what the first measured is skipped, nothing is run again
    _run("bench/matrix.py", "--smoke", "--arms", "fast", "--sizes", "512x512", "--out", str(tmp_path), "--label", "_b",
         "--resume", str(tmp_path / "matrix_a.json"))
    assert json.loads((tmp_path / "matrix_b.json").read_text())["cases"] == []


def test_cpu_benchmark_reports_every_action_its_ratio_and_memory(tmp_path, tiny_dir):
    import shutil

    _run("bench/cpu.py", "--size", "640x480", "--runs", "1", "--masks", "0.05,0.6", "--out", str(tmp_path))
    res = json.loads((tmp_path / "cpu.json").read_text())
    md = (tmp_path / "cpu.md").read_text()
    assert md.startswith("# CPU") and "load average" in md
    # issue 34: against the floor (Lasso's decode + Lasso's writer) in CPU-seconds, at each given
    # mask size, every action in its own process with its own peak memory; Pillow as a reference
    assert res["png_level"] == 1 and res["masks"] == [0.05, 0.6] and res["distinct_colours"] > 1000
    assert set(res["actions"]) == {"remove", "recolor", "blur", "pixelate", "brightness", "black_and_white"}
    for r in res["actions"].values():
        floor = r["floor"]["cpu_s"]
        assert floor["min"] <= floor["median"] and floor["spread"] >= 0 and r["pillow"]["cpu_s"]["median"] > 0
        assert len(r["load_avg_1min"]) == 2
        assert r["max_rss_mb"] >= r["baseline_rss_mb"] > 0
        for f, m in r["masks"].items():
            assert abs(m["mask_fraction"] - float(f)) < 0.01  # the masks are given, not segmented
            assert m["cpu_over_floor"] == m["cpu_s"]["median"] / floor["median"]
            assert m["stages_median_s"]["segment"] < m["wall_s"]["median"]
            if shutil.which("jpegtran"):
                j = m["jpeg"]
                assert j["cpu_over_jpegtran"] == j["write_cpu_s"]["median"] / r["jpegtran"]["cpu_s"]["median"]
                assert j["save_cpu_over_jpegtran"] == j["save_cpu_s"]["median"] / r["jpegtran"]["cpu_s"]["median"]
            else:
                assert "jpeg" not in m and "not installed" in md


def test_design_benchmark_smoke_times_the_attention_pass_and_training_steps(tmp_path, tiny_dir):
    _run("bench/design.py", "--smoke", "--runs", "1", "--steps", "2", "--out", str(tmp_path))
    res = json.loads((tmp_path / "design.json").read_text())
    a, t = res["sections"]["attention"], res["sections"]["train"]
    assert a["attention_over_plan"] == a["attention_pass_s"] / a["plan_ask_s"] and a["tokens_decoded"] == 40
    assert t["checkpointing_time_ratio"] == t["checkpointing_step_s"] / t["plain_step_s"]
    assert "no timing claims" in (tmp_path / "design.md").read_text()


def test_capacity_simulation_matches_queueing_theory_and_writes_the_scale_table(tmp_path):
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import capacity
    finally:
        sys.path.remove(str(ROOT / "bench"))
    # One GPU at 50% load with 1 s edits (M/D/1): edits wait (Pollaczek-Khinchine: 0.5 s on average),
    # but less than with exponential edit times (M/M/1: a p95 of ln(20) / (mu - lambda) = 6 s).
    alone = capacity.simulate(0.01, 1, 1.0, 1.0000001)
    assert 0.99 < alone < 1.01  # nobody waits at a trickle
    busy = capacity.simulate(0.5, 1, 1.0, 1.0000001)
    assert 2.0 < busy < 6.0
    assert capacity.simulate(0.5, 2, 1.0, 1.0000001) < busy  # a second GPU only helps
    gpus = [capacity.gpus_for(rate, 2.0, 2.4)[0] for rate in (0.5, 2, 10)]
    assert gpus == sorted(gpus) and gpus[-1] >= 10 * 2.0  # at least the load itself: 10/s x 2 s
    _run("bench/capacity.py", "--out", str(tmp_path / "cap.md"))
    text = (tmp_path / "cap.md").read_text()
    assert "| 10 |" in text and "NVIDIA H200" in text
    assert text == (ROOT / "bench/results/capacity_h200.md").read_text()  # the committed table is current
    assert text.split("| edits/s |")[1].split("\n\n")[0].strip() in (ROOT / "docs/scale.md").read_text()


def test_remote_benchmark_smoke_times_the_segmenters_and_a_remote_edit_against_fakes(tmp_path):
    """bench/remote.py: EdgeTAM, SAM 2.1 tiny and SlimSAM side by side, then one edit through the
    remote preset with its planner and painter served by a child process (stopped at the end)."""
    _run("bench/remote.py", "--smoke", "--runs", "1", "--out", str(tmp_path))
    rep = json.loads((tmp_path / "remote.json").read_text())
    assert set(rep["segmenters"]) == {"EdgeTAM", "SAM 2.1 hiera-tiny", "SlimSAM-77"}
    assert all(r["enc_cpu"] > 0 and r["dec_cpu"] > 0 for r in rep["segmenters"].values())
    edit = rep["edit"]
    assert edit["identical_outside"] is True and 0 < edit["mask_share"] < 0.5  # kept inside the planner's box
    assert {"parse", "segment", "edit"} <= set(edit["timings"])
    assert "smoke run" in (tmp_path / "remote.md").read_text()


def test_lite_benchmark_smoke_times_every_stage_runtime_edit_and_the_first_edit(tmp_path):
    """bench/lite.py: the lite preset's stages under each runtime, three whole edits (the remove by
    LaMa's exported graph), and a first edit in a fresh process from the models saved to disk."""
    _run("bench/lite.py", "--smoke", "--runs", "1", "--out", str(tmp_path))
    rep = json.loads((tmp_path / "lite.json").read_text())
    assert {"OWL-ViT B/32 detect (int8)", "UNet step 512 (bf16)", "UNet step 512 (bf16 autocast)",
            "TAESD encode 512 (bf16)", "TAESD decode 512 (fp32)"} <= set(rep["stages"])
    assert set(rep["edits"]) == {"recolour", "remove", "replace"}
    assert [rep["edits"][k]["action"] for k in ("recolour", "remove", "replace")] == ["recolor", "remove", "replace"]
    assert rep["remover"] == "LamaPainter"  # the remove row is LaMa's, the preset's remover
    assert rep["first"]["process"] > rep["first"]["first_edit"] > rep["first"]["load"] > 0 and rep["first"]["peak_gb"] > 0
    assert rep["first"]["second_edit"] > 0 and "edit" in rep["first"]["first_timings"]
    assert "smoke run" in (tmp_path / "lite.md").read_text()


def test_lama_benchmark_smoke_exports_a_tiny_big_lama_times_it_and_removes_through_the_lite_preset(tmp_path):
    """bench/lama.py: Big LaMa's architecture (tiny) exported to ONNX at opset 17, timed in ONNX
    Runtime and torch, and a whole remove edit with the graph loaded by the lama painter; no
    timing asserted."""
    _run("bench/lama.py", "--smoke", "--runs", "1", "--out", str(tmp_path))
    rep = json.loads((tmp_path / "lama.json").read_text())
    assert len(rep["network"]) == 4 and rep["export"]["onnx_mb"] > 0
    assert rep["check"]["ort_vs_torch_max_abs"] < 1e-3
    assert 0.0 <= rep["check"]["out_min"] <= rep["check"]["out_max"] <= 1.0
    assert rep["remove_edit"]["painter"] == "LamaPainter" and "edit" in rep["remove_edit"]["timings"]
    assert "smoke run" in (tmp_path / "lama.md").read_text()


def test_runtimes_benchmark_smoke_times_each_runtime_and_compares_its_output(tmp_path):
    """bench/runtimes.py: SD-Turbo's UNet step and TAESD's decode (tiny) in torch fp32 and bf16 and
    in OpenVINO at f32 and bf16, each output compared with torch fp32's; no timing asserted. The
    f32 conversion computes the same function (OpenVINO's own kernels: to float rounding)."""
    _run("bench/runtimes.py", "--smoke", "--runs", "1", "--out", str(tmp_path))
    rep = json.loads((tmp_path / "runtimes.json").read_text())
    arms = {f"{part}, {rt}" for part in ("UNet step", "TAESD decode")
            for rt in ("torch fp32", "torch bf16", "OpenVINO f32", "OpenVINO bf16")}
    assert set(rep["stats"]) == arms and set(rep["diffs"]) == arms
    assert rep["diffs"]["UNet step, torch fp32"]["max_abs"] == 0
    assert rep["diffs"]["UNet step, OpenVINO f32"]["rel_rms"] < 1e-4
    assert rep["diffs"]["TAESD decode, OpenVINO f32"]["rel_rms"] < 1e-4
    assert all(s["wall"] > 0 and s["cpu"] > 0 for s in rep["stats"].values())
    assert "smoke: tiny models" in (tmp_path / "runtimes.md").read_text()
