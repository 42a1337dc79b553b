"""The inpainter's `turbo` painter on a CPU (edit/inpaint.py, edit/painters/sd.py; issue 32): bf16
where the CPU has bf16 instructions unless a dtype is named, an int8 text encoder, and one TAESD
encode per edit."""

import numpy as np
import pytest
import torch

from lasso_edit.core import loading
from lasso_edit.edit.painters import PaintRequest


def _int8_layers(module) -> int:
    return sum(isinstance(m, torch.ao.nn.quantized.dynamic.Linear) for m in module.modules())


def _request(seed: int = 3) -> PaintRequest:
    return PaintRequest("a green bowl, photo", "", "replace the cup with a green bowl", "replace", 1, 0.0, seed=seed)


def _scene() -> tuple[np.ndarray, np.ndarray]:
    image = np.asarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3)), dtype=np.uint8)
    mask = np.zeros((64, 64), dtype=bool)
    mask[16:48, 20:44] = True
    return image, mask


@pytest.mark.parametrize("supported", [True, False])
def test_the_turbo_painter_runs_in_bf16_on_a_cpu_exactly_where_it_has_bf16_instructions(
    turbo_dir, lama_dir, monkeypatch, supported
):
    """dtype unset on a CPU: the UNet and TAESD in bf16 where loading.cpu_bf16 says the CPU has the
    instructions, fp32 where not; the text encoder int8 (with fp32 around it) either way. Through the
    lite preset's Editor too, whose CPU default is fp32."""
    from lasso_edit.core.config import EditorConfig
    from lasso_edit.edit.inpaint import Inpainter
    from lasso_edit.pipeline.editor import Editor

    monkeypatch.setattr(loading, "cpu_bf16", lambda: supported)
    want = torch.bfloat16 if supported else torch.float32
    pipe = Inpainter.from_pretrained(f"turbo:{turbo_dir}", device="cpu").pipe
    assert pipe.unet.dtype == want and pipe.vae.dtype == want
    assert _int8_layers(pipe.text_encoder) > 0 and pipe.text_encoder.dtype == torch.float32
    lite = Editor.from_config(EditorConfig.of(preset="lite", detector="tiny:owlvit", segmenter="tiny:edgetam",
                                              inpainter=f"turbo:{turbo_dir}", remover=f"lama:{lama_dir}",
                                              device="cpu"))
    assert lite.stage("inpainter").pipe.unet.dtype == want
    asked = Inpainter.from_pretrained(f"turbo:{turbo_dir}", device="cpu", dtype=torch.float32).pipe
    assert asked.unet.dtype == torch.float32  # a dtype named is kept
    named = Editor.from_config(EditorConfig.of(preset="lite", detector="tiny:owlvit", segmenter="tiny:edgetam",
                                               inpainter=f"turbo:{turbo_dir}", remover=f"lama:{lama_dir}",
                                               device="cpu", dtype="fp32"))
    assert named.stage("inpainter").pipe.unet.dtype == torch.float32  # `lasso --preset lite --dtype fp32`


def test_a_turbo_edit_in_bf16_is_deterministic_and_keeps_what_is_outside_the_mask(turbo_dir, monkeypatch):
    from lasso_edit.edit.inpaint import Inpainter

    monkeypatch.setattr(loading, "cpu_bf16", lambda: True)
    painter = Inpainter.from_pretrained(f"turbo:{turbo_dir}", device="cpu").painter
    assert painter.pipe.unet.dtype == torch.bfloat16
    image, mask = _scene()
    first, second = painter.paint(image, mask, _request()), painter.paint(image, mask, _request())
    assert first.dtype == np.uint8 and first.shape == image.shape
    assert first.tobytes() == second.tobytes()
    assert first.tobytes() != painter.paint(image, mask, _request(seed=4)).tobytes()  # the seed is used


def test_a_4_channel_unet_encodes_the_image_once_and_paints_the_same_pixels(turbo_dir, monkeypatch):
    """The masked image's latents, which only a 9-channel UNet reads, are not encoded: one TAESD
    encode per paint instead of two, and the same bytes as with the second encode."""
    from lasso_edit.edit.inpaint import Inpainter
    painter = Inpainter.from_pretrained(f"turbo:{turbo_dir}", device="cpu", dtype=torch.float32).painter
    encode, calls = painter.pipe.vae.encode, []
    monkeypatch.setattr(painter.pipe.vae, "encode", lambda x, *a, **k: (calls.append(x.shape), encode(x, *a, **k))[1])
    image, mask = _scene()
    once = painter.paint(image, mask, _request())
    assert len(calls) == 1
    monkeypatch.setattr(type(painter), "known_inputs", lambda self, h, w: {})  # diffusers' own way
    twice = painter.paint(image, mask, _request())
    assert len(calls) == 3 and once.tobytes() == twice.tobytes()


def test_int8_linears_makes_the_layers_quantize_dynamic_makes_with_no_fp32_linear_left(turbo_dir):
    """loading.int8_linears converts the layers on several threads: the same int8 weights, scales
    and answers as torch's quantize_dynamic, byte for byte, and no nn.Linear left."""
    import copy
    import warnings

    from transformers import CLIPTextModel

    text = CLIPTextModel.from_pretrained(turbo_dir / "text_encoder").eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = torch.ao.quantization.quantize_dynamic(copy.deepcopy(text), {torch.nn.Linear}, dtype=torch.qint8)
    ours = loading.int8_linears(copy.deepcopy(text))
    assert not any(type(m) is torch.nn.Linear for m in ours.modules()) and _int8_layers(ours) == _int8_layers(reference)
    for (name, a), (_, b) in zip(reference.named_modules(), ours.named_modules(), strict=True):
        if isinstance(a, torch.ao.nn.quantized.dynamic.Linear):
            wa, wb = a.weight(), b.weight()
            assert wa.q_scale() == wb.q_scale() and torch.equal(wa.int_repr(), wb.int_repr()), name
            assert torch.equal(a.bias(), b.bias()), name
    ids = torch.tensor([[0, 5, 9, 3, 1]])
    with torch.inference_mode():
        assert torch.equal(reference(ids).last_hidden_state, ours(ids).last_hidden_state)
