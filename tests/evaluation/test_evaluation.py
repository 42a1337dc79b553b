"""`lasso eval` on a small dataset in MagicBrush's exact parquet schema, with the tiny models; the
metrics checked against independent reimplementations of the published formulas."""

import json

import numpy as np
import pytest
from PIL import Image

from ..helpers import held_lasso, magicbrush_parquet, noise_image, run_cli, scene, until


@pytest.mark.parametrize("turns,n", [("single", 5), ("multi", 3)])
def test_eval_on_magicbrush_parquet_writes_a_report(tmp_path, tiny_dir, turns, n):
    data = magicbrush_parquet(tmp_path / "MagicBrush" / "data")
    out = tmp_path / "report"
    r = run_cli("eval", str(data), "-o", str(out), "--preset", "tiny", "--turns", turns, "--steps", "2", "-q")
    assert r.returncode == 0, r.stderr
    assert f"{n} samples ({turns}-turn)" in r.stdout and "index.html" in r.stdout
    recs = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    summary = json.loads((out / "summary.json").read_text())["summary"]
    assert len(recs) == n == summary["samples"]
    for rec in recs:
        for key in ("l1", "l2", "clip_i", "dino", "mask_iou"):
            assert rec[key] is not None, (key, rec)
        assert rec["clip_t"] is None  # MagicBrush's parquet carries no captions
        assert rec["l1_outside"] in (0.0, None)  # every pixel outside Lasso's mask is the input's (None: no outside)
        for pic in rec["pictures"].values():
            assert (out / "images" / pic).exists()
    assert any(rec["l1_outside"] == 0.0 for rec in recs)
    if turns == "multi":
        assert [r["turns"] for r in recs] == [2, 2, 1]
    assert summary["l1"] == pytest.approx(np.mean([r["l1"] for r in recs]), abs=1e-6)
    assert "| l1 |" in (out / "summary.md").read_text()
    assert (out / "plots" / "metrics.png").exists() and (out / "plots" / "worst.png").exists()
    page = (out / "index.html").read_text()
    assert page.count("class='sample'") == n and "Worst 20 by L1" in page


def test_eval_manifest_with_captions_scores_clip_t_and_limit(tmp_path, tiny_dir):
    Image.fromarray(scene()).save(tmp_path / "a.png")
    Image.fromarray(scene()[::-1].copy()).save(tmp_path / "a-gt.png")
    rows = [{"image": "a.png", "instruction": "make the disc green", "target": "a-gt.png", "caption": "a green disc"},
            {"image": "a.png", "instruction": "remove the square", "id": "b"}]
    (tmp_path / "m.jsonl").write_text("\n".join(json.dumps(x) for x in rows))
    r = run_cli("eval", str(tmp_path / "m.jsonl"), "-o", str(tmp_path / "rep"), "--preset", "tiny", "--steps", "2",
                "-q", "--limit", "1")
    assert r.returncode == 0, r.stderr
    recs = [json.loads(line) for line in (tmp_path / "rep" / "samples.jsonl").read_text().splitlines()]
    assert len(recs) == 1 and recs[0]["clip_t"] is not None and -1 <= recs[0]["clip_t"] <= 1


def test_eval_bad_data_is_named(tmp_path):
    r = run_cli("eval", str(tmp_path / "x.txt"), "-o", str(tmp_path / "o"), "--preset", "tiny")
    assert r.returncode == 2 and "expected a folder of MagicBrush parquet" in r.stderr
    (tmp_path / "empty").mkdir()
    r = run_cli("eval", str(tmp_path / "empty"), "-o", str(tmp_path / "o"), "--preset", "tiny")
    assert r.returncode == 2 and "no .parquet files" in r.stderr


# ---------------------------------------------------------------------- the formulas, cross-checked
def test_l1_l2_match_magicbrush_torch_formula():
    import torch
    from torchvision.transforms import functional as TF

    from lasso_edit.evaluation.metrics import distances

    out, gt = Image.fromarray(noise_image(90, 120, seed=1)), Image.fromarray(noise_image(64, 80, seed=2))
    l1, l2 = distances(out, gt)
    # MagicBrush: gen.resize(gt.size) (Pillow's default, bicubic), ToTensor, nn.L1Loss / nn.MSELoss.
    a, b = TF.to_tensor(out.resize(gt.size)), TF.to_tensor(gt)
    assert l1 == pytest.approx(torch.nn.L1Loss()(a, b).item(), abs=1e-6)
    assert l2 == pytest.approx(torch.nn.MSELoss()(a, b).item(), abs=1e-6)


def test_clip_and_dino_match_torchvision_pipelines(tiny_dir):
    import torch
    from torchvision import transforms

    from lasso_edit.evaluation.metrics import Scorers, cosine
    from lasso_edit.testing.tiny import ensure_tiny_eval_models

    paths = ensure_tiny_eval_models()
    s = Scorers(paths["clip"], paths["dino"])
    a, b = Image.fromarray(noise_image(200, 300, seed=3)), Image.fromarray(noise_image(260, 180, seed=4))
    # MagicBrush's DINO transform, verbatim in torchvision, and the CLS token.
    dino_t = transforms.Compose([transforms.Resize(256, interpolation=3), transforms.CenterCrop(224),
                                 transforms.ToTensor(), transforms.Normalize((0.485, 0.456, 0.406),
                                                                             (0.229, 0.224, 0.225))])

    def dino_ref(img):
        with torch.no_grad():
            return s.dino(pixel_values=dino_t(img)[None]).last_hidden_state[0, 0].numpy()

    # clip.load("ViT-B/32")'s transform: Resize(224, bicubic), CenterCrop(224), CLIP's mean/std.
    clip_t = transforms.Compose([transforms.Resize(224, interpolation=3), transforms.CenterCrop(224),
                                 transforms.ToTensor(), transforms.Normalize((0.48145466, 0.4578275, 0.40821073),
                                                                             (0.26862954, 0.26130258, 0.27577711))])

    def clip_ref(img):
        with torch.no_grad():
            f = s.clip.get_image_features(pixel_values=clip_t(img)[None])
        return getattr(f, "pooler_output", f)[0].numpy()

    got = s.score(a, b, None)
    assert got["dino"] == pytest.approx(cosine(dino_ref(a), dino_ref(b)), abs=1e-5)
    assert got["clip_i"] == pytest.approx(cosine(clip_ref(a), clip_ref(b)), abs=2e-3)


def test_dino_resizes_before_cropping_and_normalises_after(tiny_dir):
    """On a wide image whose sides differ, cropping first (or normalising with the wrong statistics)
    scores differently; the right order matches the reference."""
    from lasso_edit.evaluation.metrics import IMAGENET_MEAN, IMAGENET_STD, Scorers, resize_short_crop
    from lasso_edit.testing.tiny import ensure_tiny_eval_models

    paths = ensure_tiny_eval_models()
    s = Scorers(paths["clip"], paths["dino"])
    wide = np.concatenate([noise_image(400, 300, seed=5), np.full((400, 300, 3), 200, np.uint8)], axis=1)
    img = Image.fromarray(wide)
    right = resize_short_crop(img, 256, 224)
    w, h = img.size
    wrong = img.crop(((w - 224) // 2, (h - 224) // 2, (w + 224) // 2, (h + 224) // 2))  # crop, no resize
    assert np.abs(np.asarray(right, float) - np.asarray(wrong, float)).mean() > 5
    import torch

    def feats(pic, mean=IMAGENET_MEAN, std=IMAGENET_STD):
        x = (np.asarray(pic, dtype=np.float64) / 255.0 - mean) / std
        with torch.no_grad():
            return s.dino(pixel_values=torch.from_numpy(x.transpose(2, 0, 1)[None].astype(np.float32))
                          ).last_hidden_state[0, 0].numpy()

    ours = s.dino_image(img)
    np.testing.assert_allclose(ours, feats(right), atol=1e-5)
    assert np.abs(ours - feats(wrong)).max() > 1e-3
    assert np.abs(ours - feats(right, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))).max() > 1e-3


def test_lasso_metrics_outside_inside_iou_and_dataset_masks():
    from lasso_edit.evaluation.metrics import dataset_mask, l1_in_out, mask_iou

    src = noise_image(40, 50, seed=6)
    out = src.copy()
    mask = np.zeros((40, 50), bool)
    mask[10:20, 10:30] = True
    out[mask] = 255 - out[mask]
    outside, inside = l1_in_out(out, src, mask)
    assert outside == 0.0 and inside == pytest.approx(np.abs(out[mask] / 255.0 - src[mask] / 255.0).mean())
    assert mask_iou(mask, mask) == 1.0 and mask_iou(mask, ~mask) == 0.0
    half = np.zeros_like(mask)
    half[10:20, 10:20] = True
    assert mask_iou(half, mask) == pytest.approx(0.5)
    rgba = np.full((40, 50, 4), 255, np.uint8)
    rgba[10:20, 10:30, 3] = 0
    assert (dataset_mask(Image.fromarray(rgba, "RGBA")) == mask).all()
    assert (dataset_mask(Image.fromarray(mask.astype(np.uint8) * 255)) == mask).all()


def test_the_html_report_renders_in_a_browser(tmp_path, tiny_dir, browser):
    from pathlib import Path

    for name, arr in (("a", scene()), ("b", noise_image(80, 100, seed=9))):
        Image.fromarray(arr).save(tmp_path / f"{name}.png")
        Image.fromarray(arr[:, ::-1].copy()).save(tmp_path / f"{name}-gt.png")
    rows = [{"image": f"{n}.png", "instruction": i, "target": f"{n}-gt.png"}
            for n, i in (("a", "make the disc green"), ("b", "remove the ball"))]
    (tmp_path / "m.jsonl").write_text("\n".join(json.dumps(x) for x in rows))
    out = tmp_path / "rep"
    assert run_cli("eval", str(tmp_path / "m.jsonl"), "-o", str(out), "--preset", "tiny", "--steps", "2",
                   "-q").returncode == 0
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.goto((out / "index.html").as_uri())
    assert page.locator("section.sample").count() == 2 and page.locator("h1").inner_text() == "Lasso eval"
    broken = page.evaluate("() => [...document.images].filter(i => !i.complete || i.naturalWidth === 0)"
                           ".map(i => i.src)")
    assert not broken and page.locator("img").count() >= 2 + 2 * 4  # two plots, four pictures a sample
    artifacts = Path(__file__).resolve().parents[2] / "test-artifacts" / "eval"
    artifacts.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(artifacts / "report.png"), full_page=True)
    page.close()


# --------------------------------------------------------------------------- PIE-Bench
def _pnp_mask_decode(encoded, image_shape=(512, 512)):
    """PIE-Bench's own decoder, as cure-lab/PnPInversion's evaluation/evaluate.py writes it (a loop
    over every pixel of every run), for checking ours against."""
    length = image_shape[0] * image_shape[1]
    mask_array = np.zeros((length,))
    for i in range(0, len(encoded), 2):
        splice_len = min(encoded[i + 1], length - encoded[i])
        for j in range(splice_len):
            mask_array[encoded[i] + j] = 1
    mask_array = mask_array.reshape(image_shape[0], image_shape[1])
    mask_array[0, :] = 1
    mask_array[-1, :] = 1
    mask_array[:, 0] = 1
    mask_array[:, -1] = 1
    return mask_array


def _rle(rows, cols, side=512):
    """Runs (start, length) of a rectangle, row by row, as PIE-Bench stores its masks."""
    out = []
    for r in range(*rows):
        out += [r * side + cols[0], cols[1] - cols[0]]
    return out


def test_pie_bench_masks_decode_exactly_as_its_own_code_does():
    from lasso_edit.core.errors import InvalidInputError
    from lasso_edit.evaluation.data import pie_mask

    encoded = _rle((100, 180), (200, 330)) + [512 * 512 - 30, 500]  # a rectangle, and a run past the end
    got = pie_mask(encoded)
    assert got.dtype == bool and (got == (_pnp_mask_decode(encoded) == 1)).all()
    assert got[0].all() and got[:, -1].all() and got[150, 250] and not got[50, 50]
    with pytest.raises(InvalidInputError, match="odd count"):
        pie_mask([1, 2, 3])


def _pie_folder(tmp_path):
    from PIL import Image

    from ..helpers import scene

    root = tmp_path / "PIE-Bench_v1"
    (root / "annotation_images" / "0_random_140").mkdir(parents=True)
    (root / "annotation_images" / "1_change_object_80").mkdir(parents=True)
    mapping = {}
    for key, kind, folder, words in (("000000000000", "0", "0_random_140", "a red [disc] on grey"),
                                     ("111000000000", "1", "1_change_object_80", "a [cat] on grey")):
        path = f"{folder}/{key}.jpg"
        Image.fromarray(scene(512, 512)).save(root / "annotation_images" / path, quality=95)
        mapping[key] = {"image_path": path, "original_prompt": "a red disc on grey", "editing_prompt": words,
                        "editing_instruction": "remove the red disc" if kind == "0" else "replace the disc with a cat",
                        "editing_type_id": kind, "blended_word": "disc", "mask": _rle((100, 400), (60, 300))}
    (root / "mapping_file.json").write_text(json.dumps(mapping))
    return root


def test_eval_reads_a_pie_bench_folder_and_reports_its_numbers_per_edit_type(tmp_path, tiny_dir):
    root = _pie_folder(tmp_path)
    out = tmp_path / "report"
    r = run_cli("eval", str(root), "-o", str(out), "--preset", "tiny", "--steps", "2", "--grounder", "vlm", "-q")
    assert r.returncode == 0, r.stderr
    summary = json.loads((out / "summary.json").read_text())["summary"]
    for key in ("psnr_outside", "lpips_outside", "mse_outside", "ssim_outside", "clip_whole", "clip_edited"):
        assert summary[f"{key}_n"] == 2, key
    meta = json.loads((out / "summary.json").read_text())["meta"]
    assert meta["lpips"] == "tiny random stand-in (not comparable)"  # the tiny preset's, said so
    assert set(summary["by_kind"]) == {"0", "1"} and summary["by_kind"]["1"]["samples"] == 1
    assert 0 <= summary["identical_outside_rate"] <= 1
    records = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert {rec["kind"] for rec in records} == {"0", "1"}
    assert all(0 <= rec["clip_whole"] <= 100 and rec["ssim_outside"] <= 1 for rec in records)
    assert "Per PIE-Bench edit type" in (out / "summary.md").read_text()
    assert "Direct Inversion + Prompt-to-Prompt: psnr_outside 27.22" in (out / "summary.md").read_text()
    assert "Per PIE-Bench edit type" in (out / "index.html").read_text()


def test_eval_scores_another_editors_outputs_on_the_same_table(tmp_path, tiny_dir):
    root = _pie_folder(tmp_path)
    theirs = tmp_path / "qwen-image-edit"
    mapping = json.loads((root / "mapping_file.json").read_text())
    for item in mapping.values():  # saved at each input's path, as PIE-Bench's methods do
        src = np.asarray(Image.open(root / "annotation_images" / item["image_path"]).convert("RGB"))
        out = src.copy()
        if item["editing_type_id"] == "0":
            out[0:20, 0:20] = 0  # this one changed pixels outside the mask too
        (theirs / item["image_path"]).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(out).save((theirs / item["image_path"]).with_suffix(".png"))
    report = tmp_path / "report"
    r = run_cli("eval", str(root), "-o", str(report), "--preset", "tiny", "--outputs", str(theirs), "-q")
    assert r.returncode == 0, r.stderr
    records = {rec["kind"]: rec for rec in map(json.loads, (report / "samples.jsonl").read_text().splitlines())}
    assert records["0"]["changed_outside"] > 0 and records["0"]["psnr_outside"] is not None
    assert records["1"]["changed_outside"] == 0 and records["1"]["psnr_outside"] is None  # identical outside
    assert records["1"]["mask_iou"] is None  # another editor's mask is not known
    summary = json.loads((report / "summary.json").read_text())
    assert summary["summary"]["identical_outside_rate"] == 0.5
    assert "the outputs in" in (report / "summary.md").read_text()
    r = run_cli("eval", str(root), "-o", str(tmp_path / "r2"), "--preset", "tiny", "--outputs", str(tmp_path / "none"))
    assert r.returncode == 2 and "no such folder" in r.stderr


def test_lpips_is_zero_for_identical_outside_and_grows_with_a_change_there_and_the_real_one_says_what_it_needs():
    from lasso_edit.core.errors import ModelUnavailableError
    from lasso_edit.evaluation.metrics import Lpips

    tiny = Lpips("tiny")
    a = scene(64, 64)
    keep = np.ones((64, 64), bool)
    keep[20:40, 20:40] = False
    inside = a.copy()
    inside[25:35, 25:35] = 0  # inside the mask: zeroed in both, as PIE-Bench does
    assert tiny.outside(a, inside, keep) == pytest.approx(0.0, abs=1e-7)
    outside = a.copy()
    outside[0:10, 0:10] = 255 - outside[0:10, 0:10]
    assert tiny.outside(a, outside, keep) > 1e-4
    with pytest.raises(ModelUnavailableError, match="SqueezeNet is not in torch's cache .* or use --lpips tiny"):
        Lpips("squeeze")  # HF_HUB_OFFLINE: no download is tried, the message says what to fetch


def test_another_editors_outputs_are_looked_for_inside_their_folder_only(tmp_path):
    from lasso_edit.evaluation.data import Sample, StoredOutputs, Turn

    (tmp_path / "outs").mkdir()
    Image.fromarray(scene()).save(tmp_path / "secret.png")  # beside the folder, not in it
    Image.fromarray(scene()).save(tmp_path / "outs" / "a.png")
    stored = StoredOutputs(tmp_path / "outs")
    turn = Turn(Image.fromarray(scene()), "x")
    assert stored.find(Sample("a", [turn])) == tmp_path / "outs" / "a.png"
    assert stored.find(Sample("../secret", [turn])) is None


def test_an_interrupted_eval_says_what_it_left_and_no_false_word(tmp_path, tiny_dir, processes):
    """Ctrl-C after a sample: its output is written, the report is not; the one line says so (it
    said "no output was written")."""
    import os
    import signal
    import subprocess

    Image.fromarray(scene()).save(tmp_path / "a.png")
    rows = [{"image": "a.png", "instruction": "make the disc green", "id": f"s{i}"} for i in range(3)]
    (tmp_path / "m.jsonl").write_text("\n".join(json.dumps(x) for x in rows))
    out = tmp_path / "rep"
    lasso, marker = held_lasso(tmp_path, before_edit=2)
    env = {**os.environ, "LASSO_TINY_DIR": str(tiny_dir), "HF_HUB_OFFLINE": "1"}
    proc = processes.start([*lasso, "eval", str(tmp_path / "m.jsonl"), "-o", str(out), "--preset", "tiny",
                            "--steps", "2", "-q"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    until(marker.exists, still=lambda: proc.poll() is None)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate()
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert "no output was written" not in err and f"the samples done so far are in {out}" in err, err
    assert (out / "outputs" / "s0.png").exists() and not (out / "summary.md").exists()
