"""POST /v1/images/edits, shaped like OpenAI's Images edit API (the `openai` SDKs and the apps that
speak it work unchanged; fields and response as the official client's image_edit_params.py and
images_response.py describe them), with Lasso's promise where OpenAI's is "masks are guidance":

- with `mask` (a PNG of the image's size; its fully transparent pixels mark what may change): the
  prompt is painted there alone, and every opaque pixel comes back bit-identical;
- without: the prompt is read as an instruction, planned, grounded and masked as /v1/edit does; the
  mask and plan go in extra fields of each data item (`lasso_mask_b64`, `lasso_plan`).

`n` edits use seeds seed .. seed + n - 1; `size` may only be `auto` or the input's own; the answer
is `b64_json` (no hosted URLs). Errors are OpenAI's shape (server/errors.py answers every
/v1/images/ path so).
"""

from __future__ import annotations

import io
import secrets
import time
from typing import Any

import numpy as np
from fastapi import APIRouter, Depends, Request

from ...errors import InvalidInputError
from ..answers import b64, mask_png, png
from ..service import Service, service

router = APIRouter()

FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}


class OpenAIFieldError(InvalidInputError):
    """A field OpenAI's API would refuse: its `param` goes in the error body."""

    def __init__(self, param: str, message: str):
        super().__init__(message)
        self.param = param


@router.post("/v1/images/edits")
async def images_edits(request: Request, srv: Service = Depends(service)):
    form = await request.form()
    uploads = [f for f in [*form.getlist("image"), *form.getlist("image[]")] if hasattr(f, "read")]
    if not uploads:
        raise OpenAIFieldError("image", "image is required: a file in the `image` field")
    prompt = str(form.get("prompt") or "").strip()
    if not prompt:
        raise OpenAIFieldError("prompt", "prompt is required")
    n = _whole(form.get("n", "1"), "n", 1, 10)
    if str(form.get("response_format") or "b64_json") != "b64_json":
        raise OpenAIFieldError("response_format", "Lasso answers b64_json only (it hosts no image URLs)")
    fmt = str(form.get("output_format") or "png").lower()
    if fmt not in FORMATS:
        raise OpenAIFieldError("output_format", f"output_format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    model = str(form.get("model") or "") or None
    if model is not None and model not in srv.settings.offered():
        raise OpenAIFieldError(
            "model", f"model must be one of this server's presets: {', '.join(srv.settings.offered())}"
        )
    seed = secrets.randbelow(2**31)
    image_path = await srv.receive(uploads[0])  # the first image is edited
    mask_upload = form.get("mask")
    mask_path = await srv.receive(mask_upload) if hasattr(mask_upload, "read") else None
    try:
        from ...imaging import load_image

        loaded = load_image(image_path)
        size = str(form.get("size") or "auto")
        own = f"{loaded.rgb.shape[1]}x{loaded.rgb.shape[0]}"
        if size not in ("auto", own):
            raise OpenAIFieldError("size", f"size must be auto or the image's own {own}: Lasso never resizes a photo")
        keep = _editable(mask_path, loaded) if mask_path is not None else None
        items = []
        for k in range(n):
            s = (seed + k) % 2**31
            if keep is None:
                result = await srv.run(
                    lambda say, s=s: srv.editor_for(model)(str(image_path), prompt, seed=s, progress=say)
                )
            else:
                result = await srv.run(lambda say, s=s: _paint_region(srv.editor_for(model), loaded, keep, prompt, s))
            items.append(_item(result, fmt, srv, with_plan=keep is None))
    finally:
        image_path.unlink(missing_ok=True)
        if mask_path is not None:
            mask_path.unlink(missing_ok=True)
    return {
        "created": int(time.time()),
        "data": items,
        "output_format": fmt,
        "size": own,
        "usage": {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0},
    }


def _whole(value: Any, param: str, lo: int, hi: int) -> int:
    try:
        v = int(str(value))
    except ValueError:
        raise OpenAIFieldError(param, f"{param} must be a whole number from {lo} to {hi}") from None
    if not lo <= v <= hi:
        raise OpenAIFieldError(param, f"{param} must be from {lo} to {hi}, got {v}")
    return v


def _editable(mask_path, loaded) -> np.ndarray:
    """Where OpenAI's mask lets the edit paint: its fully transparent pixels (bool HxW)."""
    from PIL import Image

    try:
        with Image.open(mask_path) as m:
            m.load()
            mask = m
    except Exception:  # noqa: BLE001 - any undecodable upload is the same bad input
        raise OpenAIFieldError("mask", "mask must be a PNG with an alpha channel") from None
    if "A" not in mask.getbands():
        raise OpenAIFieldError("mask", "mask must have an alpha channel: its fully transparent pixels are edited")
    w, h = loaded.rgb.shape[1], loaded.rgb.shape[0]
    if mask.size != (w, h):
        raise OpenAIFieldError("mask", f"mask is {mask.size[0]}x{mask.size[1]}; the image is {w}x{h}")
    region = np.asarray(mask.getchannel("A")) == 0
    if not region.any():
        raise OpenAIFieldError("mask", "the mask has no fully transparent pixel: nothing may change")
    return region


def _paint_region(editor, loaded, region: np.ndarray, prompt: str, seed: int):
    """The prompt painted in `region` alone (the mask a person drew), composited hard: every pixel
    outside it is the input's own. The result is an EditResult, as the editor's."""
    from ...arrays import composite, mask_bbox
    from ...edit.base import ExecSettings
    from ...imaging import restore
    from ...plan import Action, Edit, EditPlan, EditResult

    edit = Edit(Action.REPLACE, "region", prompt, prompt=prompt)
    executor = editor.stage("inpainter")
    t = time.perf_counter()
    painted = executor.execute(loaded.rgb, region, edit, ExecSettings(seed=seed, instruction=prompt))
    alpha = region.astype(np.float32)
    rgb = composite(loaded.rgb, painted, alpha, mask_bbox(region))
    return EditResult(
        image=restore(loaded, rgb, region),
        rgb=rgb,
        mask=region,
        alpha=alpha,
        plan=EditPlan(edits=[edit], instruction=prompt, source="mask"),
        steps=[],
        seed=seed,
        timings={"edit": time.perf_counter() - t},
        models=dict(editor.models),
        source=loaded,
    )


def _item(result, fmt: str, srv: Service, with_plan: bool) -> dict[str, Any]:
    if fmt == "png":
        data = png(result, srv.uploads)  # proves itself: result.preservation
    else:
        buf = io.BytesIO()
        result.image.convert("RGB").save(buf, format=FORMATS[fmt], quality=95)
        data = buf.getvalue()
    item: dict[str, Any] = {"b64_json": b64(data), "revised_prompt": result.plan.instruction, "lasso_seed": result.seed}
    if with_plan:
        item["lasso_mask_b64"] = b64(mask_png(result.alpha))
        item["lasso_plan"] = result.plan.to_dict()
    if result.preservation is not None:
        item["lasso_preservation"] = result.preservation
    return item
