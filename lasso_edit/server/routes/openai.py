"""POST /v1/images/edits, shaped like OpenAI's Images edit API (the `openai` SDKs and the apps that
speak it work unchanged; fields and response as the official client's image_edit_params.py and
images_response.py describe them), with Lasso's promise where OpenAI's is "masks are guidance":

- with `mask` (a PNG of the image's size; its fully transparent pixels, alpha 0 at the mask's own
  depth, mark what may change): the editor paints the prompt there alone, the mask as a person's
  (`Correction(mask=...)`: never grown, a feather only inward), and every other pixel comes back
  bit-identical, at 16 bits for a 16-bit input, as a local edit's;
- the mask's frame: it is read in the image file's own pixel grid, as stored (the size
  `PIL.Image.open(f).size` says), and Lasso turns it by the image's EXIF orientation exactly as it
  turns the image; the answer comes back oriented (orientation 1), its proof measured in that
  frame. A mask's own EXIF orientation, if it has one, is ignored: its pixels are read as stored. A
  mask that matches only the image's displayed size (a non-square image whose orientation swaps
  width and height, 5 to 8) can only be meant as drawn on screen: it is taken as already oriented;
- without: the prompt is read as an instruction, planned, grounded and masked as /v1/edit does; the
  mask and plan go in extra fields of each data item (`lasso_mask_b64`, `lasso_plan`).

Text fields must be text and `image` and `mask` files (a 400 naming the field otherwise). The
prompt has the limit of every instruction (parse/limits.py). `n` (ASCII digits, 1 to 10) edits use
seeds seed .. seed + n - 1; `size` may only be `auto` or the input's own; the answer is `b64_json`
(no hosted URLs), in `output_format` png (the input's kind of PNG, 16 bits kept), webp (lossless,
alpha kept, 8 bits) or jpeg (lossy: `lasso_warnings` says so). Each data item carries
`lasso_preservation`, the proof of the file as answered (verify.py), measured against the client's
mask where one was sent, and `lasso_warnings`, what `lasso edit` would warn of. A mask over the
pixel limit is a 413 naming `mask`. Errors are OpenAI's shape (server/errors.py
answers every /v1/images/ path so).
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from fastapi import APIRouter, Depends, Request
from starlette.datastructures import FormData, UploadFile

from ...core.errors import ImageTooLargeError, InvalidInputError, LassoError
from ...imaging.deep import _ORIENT
from ...parse.limits import check_instruction
from ..answers import b64, encoded, mask_png
from ..service import Progress, Service, service

if TYPE_CHECKING:
    from ...imaging import LoadedImage
    from ...pipeline.result import EditResult

router = APIRouter()

FORMATS = {"png": ".png", "jpeg": ".jpg", "webp": ".webp"}  # output_format -> what the CLI's -o would end in


class OpenAIFieldError(InvalidInputError):
    """A field OpenAI's API would refuse: its `param` goes in the error body."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


class MaskTooLargeError(ImageTooLargeError):
    """A mask over the pixel limit: 413, as for an image, its `param` the mask."""

    param = "mask"


@router.post("/v1/images/edits", response_model=None)
async def images_edits(request: Request, srv: Service = Depends(service)) -> dict[str, Any]:
    form = await request.form()
    uploads = [f for f in [*form.getlist("image"), *form.getlist("image[]")] if isinstance(f, UploadFile)]
    if not uploads:
        raise OpenAIFieldError("image", "image is required: a file in the `image` field")
    if isinstance(form.get("mask"), str):  # a text field: an unmasked edit is not what was asked
        raise OpenAIFieldError("mask", "mask must be a file (a PNG upload), not a text field")
    prompt = _text(form, "prompt").strip()
    if not prompt:
        raise OpenAIFieldError("prompt", "prompt is required")
    try:
        check_instruction(prompt)  # the limit of every instruction, before anything is read
    except InvalidInputError as e:
        raise OpenAIFieldError("prompt", str(e)) from None
    n = _whole(_text(form, "n", "1"), "n", 1, 10)
    if (_text(form, "response_format") or "b64_json") != "b64_json":
        raise OpenAIFieldError("response_format", "Lasso answers b64_json only (it hosts no image URLs)")
    fmt = (_text(form, "output_format") or "png").lower()
    if fmt not in FORMATS:
        raise OpenAIFieldError("output_format", f"output_format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    model = _model(srv, _text(form, "model") or None)
    seed = secrets.randbelow(2**31)
    image_path = await srv.receive(uploads[0])  # the first image is edited
    mask_upload = form.get("mask")
    mask_path = await srv.receive(mask_upload) if isinstance(mask_upload, UploadFile) else None
    try:
        from ...core.plan import Action, Correction, Edit, EditPlan
        from ...imaging import load_image

        loaded = load_image(image_path)
        size = _text(form, "size") or "auto"
        own = f"{loaded.rgb.shape[1]}x{loaded.rgb.shape[0]}"
        if size not in ("auto", own):
            raise OpenAIFieldError("size", f"size must be auto or the image's own {own}: Lasso never resizes a photo")
        region = _editable(mask_path, loaded, image_path) if mask_path is not None else None
        how: dict[str, Any] = {}
        if region is not None:  # the prompt painted in the region the client drew, as the editor paints any
            edit = Edit(Action.REPLACE, "region", prompt, prompt=prompt)
            plan = EditPlan(edits=[edit], instruction=prompt, source="mask")
            how = {"plan": plan, "corrections": Correction(mask=region)}
        items = []
        for k in range(n):
            result = await srv.run(_painting(srv, model, loaded, "" if how else prompt, (seed + k) % 2**31, how))
            items.append(_item(result, fmt, srv, region))
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


def _painting(
    srv: Service, model: str | None, loaded: LoadedImage, instruction: str, seed: int, how: dict[str, Any]
) -> Callable[[Progress], EditResult]:
    """One of the `n` edits, as work for the queue: `model`'s editor, with its own seed."""
    return lambda say: srv.editor_for(model)(loaded, instruction, seed=seed, progress=say, **how)


def _text(form: FormData, name: str, default: str = "") -> str:
    """A text field's value (`default` when absent); a file sent in its place is a 400 naming it."""
    value = form.get(name)
    if value is None:
        return default
    if not isinstance(value, str):
        raise OpenAIFieldError(name, f"{name} must be a text field, not a file")
    return value


def _whole(value: str, param: str, lo: int, hi: int) -> int:
    """ASCII digits only: not "1_0", " 2 " or "\u0662", which int() would read."""
    try:
        if not re.fullmatch("[0-9]+", value):
            raise ValueError(value)
        v = int(value)
    except ValueError:
        raise OpenAIFieldError(param, f"{param} must be a whole number from {lo} to {hi}") from None
    if not lo <= v <= hi:
        raise OpenAIFieldError(param, f"{param} must be from {lo} to {hi}, got {v}")
    return v


def _editable(mask_path: Path, loaded: LoadedImage, image_path: Path) -> np.ndarray:
    """Where OpenAI's mask lets the edit paint: its fully transparent pixels (bool HxW, in the frame
    of `loaded`, the oriented image), alpha 0 at the mask's own depth (a 16-bit mask's 100 of 65535
    is not transparent: imaging reads 16-bit RGBA and grey + alpha PNGs whole, deep.py, where Pillow
    alone keeps their high byte). The mask is read in the image file's stored grid and turned by the
    image's EXIF orientation, or, matching only the displayed size, taken as already oriented."""
    from ...imaging import load_image
    from ...imaging.decode import max_pixels

    try:
        mask = load_image(mask_path)
    except ImageTooLargeError:
        w, h = loaded.size
        raise MaskTooLargeError(
            f"mask is too large: over the {max_pixels() / 1e6:.0f} MP limit of every image (a "
            f"decompression-bomb guard; raise it with LASSO_MAX_PIXELS); a mask is the image's size, {w}x{h}"
        ) from None
    except LassoError:  # any undecodable upload is the same bad input
        raise OpenAIFieldError("mask", "mask must be a PNG with an alpha channel") from None
    if mask.deep is not None and mask.deep.shape[2] == 4:
        alpha = mask.deep[..., 3]
    elif mask.alpha is not None:
        alpha = mask.alpha
    else:
        raise OpenAIFieldError("mask", "mask must have an alpha channel: its fully transparent pixels are edited")
    if mask.transposed:  # the mask's own orientation undone: its pixels as stored
        alpha = _orient(alpha, _UNDO.get(_orientation_of(mask_path), 1))
    turn = _orientation_of(image_path) if loaded.transposed else 1
    (h, w), (mh, mw) = loaded.rgb.shape[:2], alpha.shape
    swaps = turn in (5, 6, 7, 8)
    stored = (w, h) if swaps else (h, w)  # the image file's own grid, (rows, columns)
    if (mh, mw) == stored:
        alpha = _orient(alpha, turn)
    elif (mh, mw) != (h, w):  # the displayed size of a non-square image is taken as already oriented
        shown = f" in its file's pixel grid ({w}x{h} as shown, after its EXIF orientation)" if swaps and w != h else ""
        raise OpenAIFieldError("mask", f"mask is {mw}x{mh}; the image is {stored[1]}x{stored[0]}{shown}")
    region = alpha == 0
    if not region.any():
        raise OpenAIFieldError("mask", "the mask has no fully transparent pixel: nothing may change")
    return region


_UNDO = {6: 8, 8: 6}  # each other's inverse; every other orientation is its own


def _orient(a: np.ndarray, orientation: int) -> np.ndarray:
    """`a` (HxW) turned by EXIF `orientation` as load_image turns an image (deep.py's table)."""
    turn = _ORIENT.get(orientation)
    return np.ascontiguousarray(turn(a)) if turn is not None else a


def _orientation_of(path: Path) -> int:
    """The EXIF orientation load_image applied to the file at `path` (it read it: it opens)."""
    from ...imaging.decode import _open, _orientation

    with _open(path, []) as img:
        return _orientation(img)


def _item(result: EditResult, fmt: str, srv: Service, region: np.ndarray | None) -> dict[str, Any]:
    """One data item: the image in `fmt`, proved as written against the client's mask (`region`:
    its transparent pixels) or, without one, against the mask Lasso made."""
    data, said = encoded(result, srv.uploads, FORMATS[fmt], allowed=region)
    item: dict[str, Any] = {"b64_json": b64(data), "revised_prompt": result.plan.instruction, "lasso_seed": result.seed}
    if region is None:
        item["lasso_mask_b64"] = b64(mask_png(result.alpha))
        item["lasso_plan"] = result.plan.to_dict()
    if result.preservation is not None:
        item["lasso_preservation"] = result.preservation
    item["lasso_warnings"] = [str(w) for w in (*result.warnings, *said)]
    return item


def _model(srv: Service, model: str | None) -> str | None:
    """The preset a request's `model` names (None: the server's own). A server in front of a hosted
    editor (`lasso serve --inpainter openai:MODEL@URL`) also takes that editor's MODEL, so an app
    written for the provider works unchanged against Lasso: it is the server's own preset."""
    offered = srv.settings.offered()
    if model is None or model in offered:
        return model
    hosted = srv.settings.hosted_model()
    if hosted is not None and model == hosted:
        return None
    also = f", or the hosted editor's {hosted}" if hosted else ""
    raise OpenAIFieldError("model", f"model must be one of this server's presets: {', '.join(offered)}{also}")
