"""The hosted painter (`--inpainter openai:MODEL@BASE_URL`, edit/painters/openai.py) against a fake
OpenAI images server (tests/fake_openai_images.py) on loopback: the `openai` client and the HTTP
layer are real. The fake does what hosted editors do: it refuses sizes OpenAI refuses for the
model, answers at its own size, and shifts, zooms and recolours the WHOLE picture while painting
the masked part a flat colour. Lasso must keep every pixel outside the mask bit-identical and put
the paint inside."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from PIL import Image

from lasso_edit.core.errors import InvalidInputError, ModelUnavailableError
from lasso_edit.core.plan import Action, Correction, Edit, EditPlan
from lasso_edit.edit.painters import PaintRequest, checkpoint_of, painter_spec
from lasso_edit.edit.painters.openai import OpenAIPainter, request_size

from ..fake_openai_images import FLAT, Fake, fake, hosted, openai_accepts, running  # noqa: F401 - fixtures

COFFEE = "examples/coffee.png"
KEY = "sk-test"

e2e = pytest.mark.e2e  # a server on loopback




def painter(base: str, model: str = "gpt-image-1.5", **kw) -> OpenAIPainter:
    return OpenAIPainter.from_pretrained(f"{model}@{base}", api_key=KEY, **kw)


def request(instruction: str = "replace the cup with a green bowl") -> PaintRequest:
    return PaintRequest("a green bowl, photo", "", instruction, "replace", steps=30, guidance=7.5)


def coffee_crop(w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    """The coffee photo resized to w x h, with an elliptic mask in its middle."""
    rgb = cv2.resize(np.asarray(Image.open(COFFEE).convert("RGB")), (w, h), interpolation=cv2.INTER_AREA)
    mask = np.zeros((h, w), np.uint8)
    cv2.ellipse(mask, (w // 2, h // 2), (w // 5, h // 5), 0, 0, 360, 1, -1)
    return rgb, mask > 0


def inside(mask: np.ndarray, px: int) -> np.ndarray:
    """The mask shrunk by `px` pixels: away from its rim."""
    return cv2.erode(mask.astype(np.uint8), np.ones((2 * px + 1, 2 * px + 1), np.uint8)) > 0


# --------------------------------------------------------------------------- no server
def test_the_spec_names_the_painter_and_no_checkpoint_to_find():
    assert painter_spec("openai:gpt-image-1.5@https://host/v1") == ("openai", "gpt-image-1.5@https://host/v1")
    assert checkpoint_of("openai:gpt-image-1.5@https://host/v1") is None  # nothing on disk or in the cache
    for bad in ("openai", "openai:gpt-image-1.5", "openai:gpt-image-1.5@host"):
        with pytest.raises(InvalidInputError, match="openai:MODEL@BASE_URL"):
            checkpoint_of(bad)


@pytest.mark.parametrize("shape", [(1024, 1024), (1000, 560), (560, 1000), (2000, 400), (333, 1024), (4096, 512)])
@pytest.mark.parametrize("model", ["gpt-image-1.5", "gpt-image-1-mini", "gpt-image-2", "gpt-image-2.5"])
def test_every_size_asked_for_is_one_the_model_takes(shape, model):
    w, h = request_size(*shape, model)
    assert openai_accepts(model, w, h), (model, shape, (w, h))
    if model.startswith("gpt-image-1"):  # the nearest aspect of the three
        best = min(
            [(1024, 1024), (1536, 1024), (1024, 1536)], key=lambda s: abs(math.log(shape[0] / shape[1] * s[1] / s[0]))
        )
        assert (w, h) == best
    elif 1 / 3 <= shape[0] / shape[1] <= 3:  # the crop's own aspect, within a multiple of 16
        assert abs(w / h - shape[0] / shape[1]) < 0.05 * shape[0] / shape[1]


# --------------------------------------------------------------------------- through the server
@e2e
def test_the_request_is_openais_and_the_drifted_answer_is_laid_back(fake):
    base, how = fake
    crop, mask = coffee_crop(1024, 1024)
    out = painter(base).paint(crop, mask, request())
    (seen,) = how.requests
    assert seen["model"] == "gpt-image-1.5" and seen["size"] == "1024x1024" and seen["n"] == "1"
    assert seen["prompt"] == "replace the cup with a green bowl"  # the edit's own sentence
    assert seen["auth"] == f"Bearer {KEY}"
    assert seen["mask_mode"] == "RGBA" and seen["mask"].shape[:2] == seen["image"].shape[:2]
    assert np.array_equal(seen["mask"][..., 3] == 0, mask)  # alpha 0 exactly where the change is allowed
    assert np.array_equal(seen["image"], crop)
    assert out.shape == crop.shape and out.dtype == np.uint8
    # the zoom, the shift and the colour drift undone: the kept pixels are the crop's again
    keep = inside(~mask, 12)
    keep[:24], keep[-24:], keep[:, :24], keep[:, -24:] = False, False, False, False  # the fake's reflected border
    assert np.median(np.abs(out.astype(int) - crop.astype(int))[keep]) <= 2
    painted = out[inside(mask, 8)].astype(int)
    assert np.percentile(np.abs(painted - FLAT).max(axis=1), 95) <= 6


@e2e
def test_a_crop_of_another_aspect_is_padded_never_stretched(fake):
    base, how = fake
    crop, mask = coffee_crop(1000, 560)  # 1.79: nearest 1536x1024, padded above and below
    out = painter(base).paint(crop, mask, request())
    (seen,) = how.requests
    assert seen["size"] == "1536x1024" and seen["image"].shape == (1024, 1536, 3)
    allowed = seen["mask"][..., 3] == 0
    assert seen["mask"].shape[:2] == (1024, 1536)
    # the padding (rows outside the crop's band) never allows a change; the band maps back onto the mask
    top = round((1000 / 1.5 - 560) / 2 * 1536 / 1000)
    assert not allowed[: top - 2].any() and not allowed[1024 - top + 2 :].any()
    band = cv2.resize(allowed[top : 1024 - top].astype(np.uint8), (1000, 560), interpolation=cv2.INTER_NEAREST) > 0
    assert (band & mask).sum() / (band | mask).sum() > 0.95
    assert np.percentile(np.abs(out[inside(mask, 8)].astype(int) - FLAT).max(axis=1), 95) <= 6


@e2e
def test_gpt_image_2_is_sent_a_size_of_its_own_rule(fake):
    base, how = fake
    crop, mask = coffee_crop(1000, 560)
    out = painter(base, "gpt-image-2").paint(crop, mask, request())
    (seen,) = how.requests  # the fake refuses a size OpenAI would refuse: it answered
    w, h = (int(v) for v in seen["size"].split("x"))
    assert openai_accepts("gpt-image-2", w, h) and abs(w / h - 1000 / 560) < 0.05
    assert np.percentile(np.abs(out[inside(mask, 8)].astype(int) - FLAT).max(axis=1), 95) <= 6


@e2e
def test_a_refused_key_says_so_and_never_shows_it(fake):
    base, how = fake
    how.status = (401, f"Incorrect API key provided: {KEY}.")  # a server that echoes the key
    crop, mask = coffee_crop(512, 512)
    with pytest.raises(ModelUnavailableError, match="refused the API key") as e:
        painter(base).paint(crop, mask, request())
    assert KEY not in str(e.value) and base in str(e.value) and "\n" not in str(e.value)
    how.status = (400, f"your key {KEY} may not use this model")  # another refusal echoing it
    with pytest.raises(ModelUnavailableError, match="refused the edit") as e:
        painter(base).paint(crop, mask, request())
    assert KEY not in str(e.value)


@e2e
def test_a_server_error_is_retried_within_the_deadline(fake):
    base, how = fake
    how.fail_500 = 1
    crop, mask = coffee_crop(512, 512)
    out = painter(base).paint(crop, mask, request())
    assert len(how.requests) == 2
    assert np.percentile(np.abs(out[inside(mask, 8)].astype(int) - FLAT).max(axis=1), 95) <= 6
    how.reset()
    how.fail_500 = 10
    with pytest.raises(ModelUnavailableError, match="answered 500 after retries") as e:
        painter(base, max_retries=1).paint(crop, mask, request())
    assert len(how.requests) == 2 and "\n" not in str(e.value) and KEY not in str(e.value)


@e2e
@pytest.mark.parametrize(
    "raw",
    [
        (200, "text/html", "<html><body>Bad gateway</body></html>"),
        (200, "application/json", '{"created": 0, "data": []}'),
        (200, "application/json", '{"created": 0, "data": [{"url": "https://x/y.png"}]}'),
        (200, "application/json", '{"created": 0, "data": [{"b64_json": "bm90IGFuIGltYWdl"}]}'),
        (200, "application/json", '{"created": 0, "data": [{"b64_json": "%%%"}]}'),
        (200, "application/json", "{not json"),
    ],
)
def test_an_answer_that_is_not_an_image_is_one_line(fake, raw):
    base, how = fake
    how.raw = raw
    crop, mask = coffee_crop(512, 512)
    with pytest.raises(ModelUnavailableError) as e:
        painter(base).paint(crop, mask, request())
    message = str(e.value)
    assert base in message and "\n" not in message and KEY not in message
    assert e.value.exit_code == 3


# --------------------------------------------------------------------------- the editor
def untouched(result, original: np.ndarray) -> int:
    """Pixels outside the edit (alpha 0) that differ from the original: must be 0."""
    outside = result.alpha == 0
    return int((result.rgb != original).any(axis=2)[outside].sum())


@e2e
def test_the_editor_keeps_every_pixel_outside_the_mask(fake, tiny_dir):
    from lasso_edit import Editor

    base, how = fake
    spec = f"openai:gpt-image-1.5@{base}"
    editor = Editor.from_preset("tiny", device="cpu", inpainter=spec, inpainter_api_key=KEY)
    original = np.asarray(Image.open(COFFEE).convert("RGB"))
    mask = np.zeros(original.shape[:2], np.uint8)
    cv2.ellipse(mask, (300, 220), (90, 70), 0, 0, 360, 1, -1)
    mask = mask > 0
    plan = EditPlan([Edit(Action.REPLACE, "the cup", "a green bowl")], instruction="replace the cup with a green bowl")
    result = editor(COFFEE, plan=plan, corrections=Correction(mask=mask), seed=0)
    assert result.models["inpainter"] == spec
    assert len(how.requests) == 1 and how.requests[0]["prompt"] == "replace the cup with a green bowl"
    assert openai_accepts("gpt-image-1.5", *(int(v) for v in how.requests[0]["size"].split("x")))
    changed = (result.rgb != original).any(axis=2)
    assert int(changed[~mask].sum()) == 0 and untouched(result, original) == 0
    assert np.percentile(np.abs(result.rgb[inside(mask, 10)].astype(int) - FLAT).max(axis=1), 95) <= 8


@e2e
def test_the_editor_with_an_instruction_keeps_every_pixel_outside_its_mask(fake, tiny_dir):
    from lasso_edit import Editor

    base, how = fake
    editor = Editor.from_preset("tiny", device="cpu", inpainter=f"openai:gpt-image-1.5@{base}", inpainter_api_key=KEY)
    original = np.asarray(Image.open(COFFEE).convert("RGB"))
    result = editor(COFFEE, "replace the cup with a green bowl", seed=0)
    assert untouched(result, original) == 0
    if result.mask.any():  # whatever the tiny random models found, the server painted it
        assert len(how.requests) == 1
        assert KEY not in repr(editor.config)


@e2e
def test_lasso_edit_paints_through_the_server_and_keeps_the_rest(fake, tiny_dir, tmp_path, monkeypatch):
    """`lasso edit --inpainter openai:...` as a user types it: the key from OPENAI_API_KEY, then from
    --inpainter-api-key; the same seed both times, so the second run paints where the first did."""
    from ..helpers import run_cli

    base, how = fake
    args = ["edit", COFFEE, "replace the cup with a green bowl", "--preset", "tiny", "--device", "cpu",
            "--seed", "7", "--inpainter", f"openai:gpt-image-1.5@{base}"]
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    out, mask_out = tmp_path / "o.png", tmp_path / "m.png"
    r = run_cli(*args, "-o", str(out), "--mask-out", str(mask_out))
    assert r.returncode == 0, r.stderr[-2000:]
    assert KEY not in r.stdout + r.stderr
    original = np.asarray(Image.open(COFFEE).convert("RGB"))
    edited = np.asarray(Image.open(out).convert("RGB"))
    untouched_px = np.asarray(Image.open(mask_out).convert("L")) == 0
    assert int((edited != original).any(axis=2)[untouched_px].sum()) == 0
    assert len(how.requests) == (1 if not untouched_px.all() else 0)
    painted = bool(how.requests)
    how.reset()
    how.status = (401, f"Incorrect API key provided: {KEY}.")
    monkeypatch.delenv("OPENAI_API_KEY")
    r = run_cli(*args, "--inpainter-api-key", KEY, "-o", str(tmp_path / "o2.png"))
    assert bool(how.requests) == painted
    if how.requests:  # the tiny models found something to paint: the refusal is exit 3, the key unshown
        assert r.returncode == 3 and "refused the API key" in r.stderr and KEY not in r.stdout + r.stderr
