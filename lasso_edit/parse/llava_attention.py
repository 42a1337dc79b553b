"""LLaVA's side of attention grounding (ground/attention.py): one prefill pass with the language
model's attention on the eager kernel, forward hooks on the chosen decoder layers keeping the
attention from the query's tokens to the image tokens, and where each image token lies in the
photo, through the processor's geometry (llava-1.5's pad / resize / centre crop; LLaVA-NeXT's and
OneVision's anyres overview and tiles, read with the model's own `pack_image_features`).
`LlavaParser.attention()` is this module; the grounder sees only the VisionLanguageModel protocol.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.errors import InvalidInputError, LassoError
from ..imaging.geometry import VisionFrame, size_field
from .loop import ImageAttention

if TYPE_CHECKING:
    import torch

    from .local import LocalVLM

_LOCK = threading.Lock()  # the eager switch is the model's global state: one attention pass at a time


def _language_model(model: Any) -> Any:
    lm = getattr(getattr(model, "model", model), "language_model", None)
    if lm is None or not hasattr(lm, "layers"):
        raise LassoError(
            f"attention grounding reads a LLaVA-family model's decoder layers; "
            f"{type(model).__name__} has none where expected"
        )
    return lm


@contextmanager
def eager_attention(lm: Any) -> Iterator[None]:
    """The language model's attention on the eager kernel inside the block (it returns its
    weights), back on the kernel it had (SDPA for generation) after it."""
    before = lm.config._attn_implementation
    if before == "eager":
        yield
        return
    lm.set_attn_implementation("eager")
    try:
        yield
    finally:
        lm.set_attn_implementation(before)


def image_attention(
    vlm: LocalVLM,
    image: np.ndarray,
    text: str,
    query: str,
    layers_of: Callable[[int], list[int]],
    heads: Sequence[int] | None,
) -> ImageAttention:
    """Attention from the tokens of `query` (a part of `text`) to the image tokens, averaged over
    the chosen heads and layers (`layers_of(number of layers)`), with each token's place."""
    import torch

    model = vlm.model
    lm = _language_model(model)
    layers = layers_of(len(lm.layers))
    inputs, prompt, small_hw = vlm.inputs(image, text)
    ids = inputs["input_ids"][0]
    image_pos = (ids == model.config.image_token_id).nonzero().flatten()
    query_pos = torch.tensor(
        query_positions(vlm.processor.tokenizer, prompt, query, ids.tolist(), model.config.image_token_id),
        device=ids.device,
    )
    heads = list(heads) if heads is not None else None
    rows: list[torch.Tensor] = []

    def keep(module: torch.nn.Module, args: tuple[Any, ...], out: Any) -> None:
        weights = out[1] if isinstance(out, tuple) and len(out) > 1 else None
        if weights is None:
            raise LassoError("the attention layer returned no weights; this model's attention cannot be read")
        w = weights[0][:, query_pos][:, :, image_pos]  # (heads, queries, image tokens)
        if heads is not None:
            if max(heads) >= w.shape[0]:
                raise InvalidInputError(f"attention head {max(heads)} does not exist: this VLM has {w.shape[0]}")
            w = w[heads]
        rows.append(w.float().mean(dim=(0, 1)).cpu())

    with _LOCK:
        handles = [lm.layers[i].self_attn.register_forward_hook(keep) for i in layers]
        try:
            with eager_attention(lm), torch.inference_mode():
                model(**inputs, use_cache=False, logits_to_keep=1)
        finally:
            for hnd in handles:
                hnd.remove()
    centers, cells, groups = vlm.token_places(inputs, small_hw, image.shape[:2])
    return ImageAttention(torch.stack(rows).mean(dim=0).numpy(), centers, cells, groups, list(layers))


def query_positions(tokenizer: Any, prompt: str, query: str, ids: list[int], image_token_id: int) -> list[int]:
    """Positions in `ids` (the processor's tokens, the image token expanded) of the tokens that spell
    the last occurrence of `query` in `prompt`. The prompt's last token when they cannot be found."""
    start = prompt.rfind(query)
    fallback = [len(ids) - 1]
    if start < 0 or not getattr(tokenizer, "is_fast", False):
        return fallback
    end = start + len(query)
    enc = tokenizer(prompt, return_offsets_mapping=True)
    toks, offsets = enc["input_ids"], enc["offset_mapping"]
    n_image = ids.count(image_token_id)
    if toks.count(image_token_id) != 1 or len(toks) - 1 + n_image != len(ids):
        return fallback
    shift = n_image - 1
    after = toks.index(image_token_id)
    out = [i + (shift if i > after else 0) for i, (a, b) in enumerate(offsets) if a < end and b > start and b > a]
    return out or fallback


# --------------------------------------------------------------------------- image tokens -> pixels
def token_places(
    vlm: LocalVLM, inputs: dict, small_hw: tuple[int, int], orig_hw: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(centres (N, 2), cells (N, 2), groups (N,)) of the image tokens, in the order they have in the
    prompt, in pixels of the original image (`small_hw` is the size the processor was given). A
    token with no place (a CLS token, a row's newline token) has NaN for its centre."""
    model, ip = vlm.model, vlm.processor.image_processor
    cfg = model.config
    h, w = small_hw
    n_image = int((inputs["input_ids"][0] == cfg.image_token_id).sum())
    side = int(cfg.vision_config.image_size)
    grid = side // int(cfg.vision_config.patch_size)
    if cfg.model_type == "llava":
        frame = VisionFrame.from_image_processor(ip, w, h)
        r, c = np.divmod(np.arange(grid * grid), grid)
        x, y = frame.points_to_pixels((c + 0.5) / grid, (r + 0.5) / grid)
        centers = np.stack([x, y], axis=1)
        cells = np.tile([frame.frame_w / grid / frame.sx, frame.frame_h / grid / frame.sy], (grid * grid, 1))
        groups = np.ones(grid * grid, dtype=np.int8)
        if n_image == grid * grid + 1:  # the "full" feature strategy keeps the CLS token, which is nowhere
            centers, cells, groups = (np.concatenate([a[:1] * np.nan, a]) for a in (centers, cells, groups))
    else:
        centers, cells, groups = _anyres_places(model, ip, inputs, (h, w), side, grid)
    sx, sy = orig_hw[1] / w, orig_hw[0] / h
    return (centers * [sx, sy]).astype(np.float32), (cells * [sx, sy]).astype(np.float32), groups.astype(np.int8)


def _anyres_places(
    model: Any, ip: Any, inputs: dict, hw: tuple[int, int], side: int, grid: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """LLaVA-NeXT / OneVision: the overview tile's tokens, then the tiles' as the model packs them."""
    import importlib

    import torch

    cfg = model.config
    mod = importlib.import_module(type(model).__module__)
    h, w = hw
    pins = cfg.image_grid_pinpoints
    n_tiles = mod.image_size_to_num_patches(image_size=(h, w), grid_pinpoints=pins, patch_size=side)
    rows, cols = mod.get_anyres_image_grid_shape((h, w), pins, side)
    # The photo in the tiles' canvas: resized into the best resolution, aspect kept, centred
    # (LlavaNextImageProcessor / LlavaOnevisionImageProcessor._get_image_patches).
    from transformers.image_processing_utils import select_best_resolution

    bh, bw = select_best_resolution((h, w), pins)
    if bw / w < bh / h:
        new_w, new_h = bw, min(int(np.ceil(h * bw / w)), bh)
    else:
        new_h, new_w = bh, min(int(np.ceil(w * bh / h)), bw)
    canvas = VisionFrame(
        w,
        h,
        pad_x=((bw - new_w) // 2) * w / new_w,
        pad_y=((bh - new_h) // 2) * h / new_h,
        sx=new_w / w,
        sy=new_h / h,
        frame_w=float(bw),
        frame_h=float(bh),
    )
    # The overview: the photo squashed to the processor's size tuple, then a tile of the tower.
    size = ip.size
    base_h = size_field(size, "height") or size_field(size, "shortest_edge", side)
    base_w = size_field(size, "width") or size_field(size, "shortest_edge", side)
    overview = VisionFrame(w, h, sx=base_w / w, sy=base_h / h, frame_w=float(base_w), frame_h=float(base_h))
    # Features that carry each token's place: [is overview, x, y, is a token] in tile or canvas pixels.
    r, c = np.divmod(np.arange(grid * grid), grid)
    cell = side / grid
    feats = np.zeros((n_tiles, grid * grid, 4), dtype=np.float32)
    feats[0] = np.stack([np.ones(grid * grid), (c + 0.5) * cell, (r + 0.5) * cell, np.ones(grid * grid)], axis=1)
    for k in range(1, n_tiles):  # divide_to_patches cuts the canvas row by row
        ti, tj = divmod(k - 1, cols)
        feats[k] = np.stack(
            [np.zeros(grid * grid), tj * side + (c + 0.5) * cell, ti * side + (r + 0.5) * cell, np.ones(grid * grid)],
            axis=1,
        )
    packer = model.model.pack_image_features
    kwargs: dict[str, Any] = {"image_newline": torch.zeros(4)}
    params = inspect.signature(packer).parameters
    if "vision_aspect_ratio" in params:
        kwargs["vision_aspect_ratio"] = getattr(cfg, "vision_aspect_ratio", "anyres_max_9")
    if "vision_feature_select_strategy" in params:
        kwargs["vision_feature_select_strategy"] = cfg.vision_feature_select_strategy
    packed, _ = packer([torch.from_numpy(feats)], torch.tensor([[h, w]]), **kwargs)
    p = packed[0].numpy()
    newline = p[:, 3] < 0.5
    is_over = (p[:, 0] > 0.5) & ~newline
    tiles = ~is_over & ~newline
    centers = np.full((len(p), 2), np.nan)
    cells = np.ones((len(p), 2))
    ox, oy = overview.points_to_pixels(p[is_over, 1] / side, p[is_over, 2] / side)
    centers[is_over] = np.stack([ox, oy], axis=1)
    cells[is_over] = [w / grid, h / grid]
    tx, ty = canvas.points_to_pixels(p[tiles, 1] / bw, p[tiles, 2] / bh)
    centers[tiles] = np.stack([tx, ty], axis=1)
    cells[tiles] = [_spacing(p[tiles, 1], cell) / canvas.sx, _spacing(p[tiles, 2], cell) / canvas.sy]
    return centers, cells, is_over.astype(np.int8)


def _spacing(coords: np.ndarray, default: float) -> float:
    """The distance between neighbouring token centres along one axis (larger once pooled)."""
    steps = np.diff(np.unique(np.round(coords, 3)))
    return float(np.median(steps)) if len(steps) else default
