"""`lasso train`: the edit loss on constructed tensors, and the training loop on the tiny SD inpainting
model with synthetic pairs (MagicBrush's parquet schema and the JSONL manifest)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from lasso_edit.train.loss import (
    LossWeights,
    clip_direction_loss,
    edit_loss,
    fidelity_loss,
    predicted_x0,
    preservation_loss,
)

from ..helpers import magicbrush_parquet, noise_image, run_cli, save, scene


# --------------------------------------------------------------------------- the loss itself
def _latents(seed=0, b=2, c=4, h=8, w=8):
    g = torch.Generator().manual_seed(seed)
    mask = torch.zeros(b, 1, h, w)
    mask[:, :, 2:5, 3:7] = 1
    return torch.randn(b, c, h, w, generator=g), mask


def test_preservation_is_zero_when_x0_matches_the_source_outside_the_mask_and_grows_with_drift():
    source, mask = _latents()
    alpha = torch.full((2, 1, 1, 1), 0.7)
    x0 = source + 5 * mask * torch.randn_like(source)  # anything inside the mask
    assert float(preservation_loss(x0, source, mask, alpha)) == 0.0
    drift = torch.randn_like(source) * (1 - mask)
    losses = [float(preservation_loss(x0 + k * drift, source, mask, alpha)) for k in (0.1, 0.5, 1.0, 2.0)]
    assert all(a < b for a, b in zip(losses, losses[1:])) and losses[0] > 0
    assert losses[3] == pytest.approx(4 * losses[2], rel=1e-5)  # squared error
    # the weight of a sample is its alpha_bar: an x0 guessed at high noise counts less
    low = float(preservation_loss(x0 + drift, source, mask, torch.full((2, 1, 1, 1), 0.1)))
    assert low == pytest.approx(losses[2] * 0.1 / 0.7, rel=1e-5)


def test_fidelity_ignores_the_outside_when_its_weight_is_zero_and_weights_the_inside():
    target, mask = _latents(1)
    out = target.clone()
    out_changed_outside = out + 3 * (1 - mask) * torch.randn_like(out)
    assert float(fidelity_loss(out_changed_outside, target, mask, inside=4.0, outside=0.0)) == 0.0
    assert float(fidelity_loss(out_changed_outside, target, mask, inside=4.0, outside=1.0)) > 0.0
    inside_err = out + mask * 1.0
    plain = float(fidelity_loss(inside_err, target, mask, inside=1.0, outside=1.0))
    heavy = float(fidelity_loss(inside_err, target, mask, inside=4.0, outside=1.0))
    frac = float(mask.mean())
    assert plain == pytest.approx(frac, rel=1e-5)  # an error of 1 on the masked share
    assert heavy == pytest.approx(4 * frac / (4 * frac + (1 - frac)), rel=1e-5)


@pytest.mark.parametrize("prediction", ["epsilon", "v_prediction"])
def test_x0_hat_inverts_the_forward_noising(prediction):
    from diffusers import DDPMScheduler

    sched = DDPMScheduler(prediction_type=prediction)
    x0, _ = _latents(2)
    noise = torch.randn_like(x0)
    t = torch.tensor([10, 900])
    noisy = sched.add_noise(x0, noise, t)
    out = noise if prediction == "epsilon" else sched.get_velocity(x0, noise, t)
    a = sched.alphas_cumprod[t].view(-1, 1, 1, 1)
    assert torch.allclose(predicted_x0(out, noisy, a, prediction), x0, atol=1e-3)


def test_the_total_is_the_weighted_sum_and_clip_is_only_added_when_computed():
    target, mask = _latents(3)
    source = target + 0.3 * torch.randn_like(target)
    out, noisy = torch.randn_like(target), torch.randn_like(target)
    a = torch.full((2, 1, 1, 1), 0.5)
    w = LossWeights(fidelity=2.0, inside=3.0, outside=0.5, preservation=0.7, clip=0.4)
    t = edit_loss(out, target, noisy, a, source, mask, w)
    assert t["clip"] is None
    assert float(t["loss"]) == pytest.approx(2.0 * float(t["fidelity"]) + 0.7 * float(t["preservation"]), rel=1e-6)
    with_clip = edit_loss(out, target, noisy, a, source, mask, w, clip_term=lambda x0: torch.tensor(0.5))
    assert float(with_clip["loss"]) == pytest.approx(float(t["loss"]) + 0.4 * 0.5, rel=1e-6)


def test_clip_direction_is_zero_along_the_text_change_and_two_against_it():
    src, neutral = torch.tensor([[1.0, 0.0, 0.0]]), torch.tensor([[0.0, 1.0, 0.0]])
    text = torch.tensor([[0.0, 0.0, 1.0]])
    along = torch.nn.functional.normalize(src + (text - neutral), dim=-1)
    assert float(clip_direction_loss(along, src, text, neutral)) == pytest.approx(0.0, abs=0.2)
    against = torch.nn.functional.normalize(src - (text - neutral), dim=-1)
    assert float(clip_direction_loss(against, src, text, neutral)) > 1.5


# --------------------------------------------------------------------------- data
def manifest(folder, n=4, size=(64, 96)):
    """JSONL pairs whose targets repaint a box green and equal the source everywhere else."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        src = noise_image(*size, seed=i)
        mask = np.zeros(size, bool)
        mask[10 + i:40 + i, 20:60] = True
        target = src.copy()
        target[mask] = (40, 200, 60)
        names = {k: f"{k}-{i}.png" for k in ("image", "mask", "target")}
        save(src, folder / names["image"])
        save(mask.astype(np.uint8) * 255, folder / names["mask"])
        save(target, folder / names["target"])
        rows.append({**names, "instruction": "make the box green", "id": f"p{i}"})
    path = folder / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_pairs_come_from_magicbrush_and_manifests_with_the_inference_prompt(tmp_path):
    from lasso_edit.core.errors import InvalidInputError
    from lasso_edit.train.data import prompt_for, read_pairs

    pairs = read_pairs(magicbrush_parquet(tmp_path / "mb"))
    assert len(pairs) == 5 and pairs[0].mask.sum() == 40 * 60 and pairs[0].source.shape == (120, 160, 3)
    assert pairs[0].prompt.startswith("a green disc")  # "make the disc green", as the inpainter is told
    assert prompt_for("replace the background with a beach")[1] and not prompt_for("make the disc green")[1]
    assert prompt_for("zorp the blick") == ("zorp the blick", False)  # what the rules cannot read, as it is
    pairs = read_pairs(manifest(tmp_path / "jsonl"))
    assert len(pairs) == 4 and pairs[1].id == "p1" and pairs[1].mask[11, 20]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"image": str(tmp_path / "jsonl" / "image-0.png"), "instruction": "x"}) + "\n")
    with pytest.raises(InvalidInputError, match="has no mask and no target"):
        read_pairs(bad)


# --------------------------------------------------------------------------- training
def config(data, out, **kw):
    from lasso_edit.train.trainer import TrainConfig

    base = {"preset": "tiny", "steps": 6, "validation": 1, "checkpoint_every": 0, "lr": 1e-3}
    return TrainConfig(data=data, output=out, **{**base, **kw})


def test_overfitting_one_pair_cuts_the_loss_at_least_in_half(tiny_dir, tmp_path):
    from lasso_edit.train.trainer import Trainer

    data = manifest(tmp_path / "one", n=1)
    t = Trainer(config(data, tmp_path / "lora", steps=40, validation=0, lr=1e-2, targets="all"))
    t.setup()

    def held_loss():  # the same noise and timesteps before and after
        with torch.no_grad():
            return np.mean([float(t.loss_for([0], 10**6 + k)["loss"]) for k in range(8)])

    before = held_loss()
    t.train()
    after = held_loss()
    assert after <= 0.5 * before, (before, after)
    assert (tmp_path / "lora" / "pytorch_lora_weights.safetensors").exists()


def _lora_weights(folder):
    from safetensors.torch import load_file

    return load_file(str(folder / "pytorch_lora_weights.safetensors"))


def test_resume_continues_at_the_right_step_with_the_same_optimizer_state(tiny_dir, tmp_path):
    from lasso_edit.train.trainer import Trainer

    data = manifest(tmp_path / "pairs", n=3)
    straight = Trainer(config(data, tmp_path / "straight", checkpoint_every=2))
    straight.setup()
    straight.train()

    def stop_at_5(entry, total):
        if entry.step == 5:
            raise KeyboardInterrupt

    first = Trainer(config(data, tmp_path / "resumed", checkpoint_every=2), on_step=stop_at_5)
    first.setup()
    with pytest.raises(KeyboardInterrupt):
        first.train()
    saved = torch.load(tmp_path / "resumed" / "checkpoints" / "step-000005" / "state.pt", weights_only=False)
    assert saved["step"] == 5 and len(saved["losses"]) == 5
    assert sorted(p.name for p in (tmp_path / "resumed" / "checkpoints").iterdir()) == ["step-000004", "step-000005"]
    second = Trainer(config(data, tmp_path / "resumed", checkpoint_every=2, resume=True))
    second.setup()
    assert second.step == 5
    state = second.optimizer.state_dict()["state"]
    assert state and all(torch.equal(state[k]["exp_avg"], saved["optimizer"]["state"][k]["exp_avg"]) for k in state)
    second.train()
    a, b = _lora_weights(tmp_path / "straight"), _lora_weights(tmp_path / "resumed")
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    assert [x.step for x in second.losses] == [1, 2, 3, 4, 5, 6]
    assert [x.loss for x in second.losses] == pytest.approx([x.loss for x in straight.losses], rel=1e-5)


def test_a_saved_lora_reloads_and_changes_the_unets_output(tiny_dir, tmp_path):
    import diffusers

    from lasso_edit.edit.painters.sd import load_lora
    from lasso_edit.train.trainer import Trainer

    out = tmp_path / "lora"
    t = Trainer(config(manifest(tmp_path / "pairs2", n=2), out, steps=5, lr=1e-2, targets="all"))
    t.setup()
    t.train()
    trained = {n for n, m in t.accelerator.unwrap_model(t.unet).named_modules() if getattr(m, "lora_A", None)}
    meta = json.loads((out / "lasso_lora.json").read_text())
    assert meta["steps"] == 5 and meta["settings"]["weights"]["inside"] == 4.0
    assert (out / "loss.png").exists() and len((out / "losses.jsonl").read_text().splitlines()) == 5
    assert (out / "validation" / "step-000005.png").exists()

    def unet_out(pipe):
        g = torch.Generator().manual_seed(0)
        x = torch.randn(1, 9, 8, 8, generator=g)
        emb = torch.randn(1, 77, pipe.unet.config.cross_attention_dim, generator=g)
        with torch.no_grad():
            return pipe.unet(x, 10, encoder_hidden_states=emb).sample

    path = str(tiny_dir / "inpainter")
    adapted = diffusers.StableDiffusionInpaintPipeline.from_pretrained(path)
    adapted.load_lora_weights(str(out))  # every trained layer comes back, convolutions and attention
    assert {n for n, m in adapted.unet.named_modules() if getattr(m, "lora_A", None)} == trained
    base = diffusers.StableDiffusionInpaintPipeline.from_pretrained(path)
    reference = unet_out(base)
    load_lora(base, str(out))
    assert not torch.allclose(unet_out(base), reference, atol=1e-6)
    file_only = diffusers.StableDiffusionInpaintPipeline.from_pretrained(path)
    load_lora(file_only, str(out / "pytorch_lora_weights.safetensors"), scale=0.5)
    half = unet_out(file_only)
    assert not torch.allclose(half, reference, atol=1e-6) and not torch.allclose(half, unet_out(base), atol=1e-6)


def test_an_edit_with_the_lora_keeps_every_pixel_outside_the_mask(tiny_dir, tmp_path):
    from lasso_edit import Editor
    from lasso_edit.train.trainer import Trainer

    out = tmp_path / "lora"
    t = Trainer(config(manifest(tmp_path / "pairs", n=2), out, steps=4, lr=1e-2, targets="all"))
    t.setup()
    t.train()
    image = scene()
    plain = Editor.from_preset("tiny", parser="rules")(image, "replace the disc with a flower", seed=1)
    tuned = Editor.from_preset("tiny", parser="rules", lora=str(out))(image, "replace the disc with a flower", seed=1)
    assert tuned.models["adapter"] == str(out)
    outside = tuned.alpha == 0
    assert outside.any() and (np.asarray(tuned.image)[outside] == image[outside]).all()
    assert np.abs(np.asarray(tuned.image).astype(int) - np.asarray(plain.image)).sum() > 0  # the LoRA painted


def test_the_clip_term_trains_through_the_decoded_image(tiny_dir, tmp_path):
    from lasso_edit.testing.tiny import ensure_tiny_eval_models
    from lasso_edit.train.trainer import Trainer

    clip = ensure_tiny_eval_models(tmp_path / "eval")["clip"]
    t = Trainer(config(manifest(tmp_path / "pairs", n=2), tmp_path / "lora", steps=2, clip_model=clip, clip_every=1.0))
    t.setup()
    terms = t.loss_for(t.batch_for(0), 0)
    assert terms["clip"] is not None and torch.isfinite(terms["clip"])
    terms["clip"].backward()
    grads = [p.grad for p in t.unet.parameters() if p.requires_grad and p.grad is not None]
    assert grads and any(float(g.abs().sum()) > 0 for g in grads)


def test_sdxl_inpainting_trains_too(tmp_path):
    from lasso_edit.testing.tiny import build_tiny_sdxl_inpaint
    from lasso_edit.train.trainer import Trainer

    xl = build_tiny_sdxl_inpaint(tmp_path / "sdxl")
    t = Trainer(config(manifest(tmp_path / "pairs", n=2), tmp_path / "lora", steps=2, inpainter=str(xl)))
    t.setup()
    assert t.kind == "sdxl"
    t.train()
    assert all(np.isfinite(x.loss) for x in t.losses)
    import diffusers

    pipe = diffusers.StableDiffusionXLInpaintPipeline.from_pretrained(str(xl))
    pipe.load_lora_weights(str(tmp_path / "lora"))


def test_lasso_train_then_lasso_edit_with_the_lora(tiny_dir, tmp_path):
    data = manifest(tmp_path / "pairs", n=3)
    out = tmp_path / "my-lora"
    r = run_cli("train", str(data), "-o", str(out), "--preset", "tiny", "--steps", "3", "--validation", "1", "-q")
    assert r.returncode == 0, r.stderr
    assert "trained 3 steps" in r.stdout and f"--lora {out}" in r.stdout
    assert (out / "logs").is_dir() and (out / "loss.png").exists()  # TensorBoard (the test extra has it), the curve
    again = run_cli("train", str(data), "-o", str(out), "--preset", "tiny", "--steps", "3")
    assert again.returncode == 2 and "already holds a LoRA; pass --resume" in again.stderr
    nothing = run_cli("train", str(data), "-o", str(tmp_path / "new"), "--preset", "tiny", "--resume")
    assert nothing.returncode == 2 and "holds no checkpoint" in nothing.stderr
    # issue 16 #12: the README's example (--validation left at 2) failed on two pairs; the LoRA was 0600
    two = manifest(tmp_path / "two", n=2)
    few = run_cli("train", str(two), "-o", str(tmp_path / "few"), "--preset", "tiny", "--steps", "2", "-q")
    assert few.returncode == 0 and "2 pairs: 1 held out for validation, not 2" in few.stderr, few.stderr
    from lasso_edit.imaging import default_file_mode

    assert (tmp_path / "few" / "pytorch_lora_weights.safetensors").stat().st_mode & 0o777 == default_file_mode()
    src = save(scene(), tmp_path / "in.png")
    edited = run_cli("edit", str(src), "replace the disc with a flower", "--preset", "tiny", "--parser", "rules",
                     "--lora", str(out), "--lora-scale", "0.7", "-o", str(tmp_path / "out.png"), "--mask-out",
                     str(tmp_path / "mask.png"))
    assert edited.returncode == 0, edited.stderr
    mask = np.asarray(Image.open(tmp_path / "mask.png")) == 0
    assert (np.asarray(Image.open(tmp_path / "out.png").convert("RGB"))[mask] == scene()[mask]).all()
    missing = run_cli("edit", str(src), "replace the disc with a flower", "--preset", "tiny", "--lora",
                      str(tmp_path / "nope"), "-o", str(tmp_path / "x.png"))
    assert missing.returncode == 3 and "--lora" in missing.stderr and "not found" in missing.stderr


def test_the_seed_decides_the_initial_lora(tiny_dir, tmp_path):
    from lasso_edit.train.trainer import Trainer

    data = manifest(tmp_path / "pairs", n=2)
    states = []
    for seed in (0, 0, 1):
        t = Trainer(config(data, tmp_path / f"l{len(states)}", seed=seed))
        t.setup()
        states.append(t._lora_state())
    k = next(k for k in states[0] if "lora_A" in k)
    assert torch.equal(states[0][k], states[1][k]) and not torch.equal(states[0][k], states[2][k])


def test_a_presets_adapter_field_loads_the_lora_and_8bit_adam_says_what_it_needs(tiny_dir, tmp_path):
    import importlib.util
    from dataclasses import replace

    from lasso_edit import Editor
    from lasso_edit.core.presets import PRESETS
    from lasso_edit.train.trainer import Trainer

    out = tmp_path / "lora"
    t = Trainer(config(manifest(tmp_path / "pairs", n=2), out, steps=2, lr=1e-2))
    t.setup()
    t.train()
    house = replace(PRESETS["tiny"], name="house", adapter=str(out), adapter_scale=0.5)
    editor = Editor.from_preset(house, parser="rules")
    assert editor.models["adapter"] == str(out)
    plain = Editor.from_preset("tiny", parser="rules").stage("inpainter").pipe.unet
    tuned = editor.stage("inpainter").pipe.unet
    name, w = next((n, p) for n, p in tuned.named_parameters() if "attn1.to_q" in n)
    assert not torch.equal(w, dict(plain.named_parameters())[name])  # fused into the UNet's own weights
    if importlib.util.find_spec("bitsandbytes") is None:
        r = run_cli("train", str(tmp_path / "pairs" / "pairs.jsonl"), "-o", str(tmp_path / "x"), "--preset", "tiny",
                    "--adam-8bit", "--validation", "0")
        assert r.returncode == 3 and "--adam-8bit needs bitsandbytes" in r.stderr


@pytest.mark.parametrize("module", ["matplotlib", "tensorboard"])
def test_lasso_train_without_the_train_extra_says_so_before_any_work(tmp_path, monkeypatch, module):
    """Issue 16 #12: without the extra, loss.png and the logs were skipped silently."""
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == module else real(name, *a))
    r = run_cli("train", str(tmp_path / "pairs.jsonl"), "-o", str(tmp_path / "out"), "--preset", "tiny")
    assert r.returncode == 2 and "pip install 'lasso-edit[train]'" in r.stderr and module in r.stderr
    assert not (tmp_path / "out").exists()


def test_edit_loss_weighs_the_mask_as_the_edit_and_keeps_the_rest():
    """Issue 18's surviving mutation: edit_loss handing the fidelity term 1 - mask."""
    from lasso_edit.train.loss import LossWeights, edit_loss

    target, mask = _latents(1)
    noisy = torch.randn_like(target)
    alpha_bar = torch.full((1, 1, 1, 1), 0.5)
    w = LossWeights(inside=4.0, outside=1.0)
    inside_err = target + mask * 1.0
    outside_err = target + (1 - mask) * 1.0
    fid_in = float(edit_loss(inside_err, target, noisy, alpha_bar, noisy, mask, w)["fidelity"])
    fid_out = float(edit_loss(outside_err, target, noisy, alpha_bar, noisy, mask, w)["fidelity"])
    frac = float(mask.mean())
    assert fid_in == pytest.approx(4 * frac / (4 * frac + (1 - frac)), rel=1e-5)
    assert fid_out == pytest.approx((1 - frac) / (4 * frac + (1 - frac)), rel=1e-5)
