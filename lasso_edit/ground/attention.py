"""Attention-guided grounding: where the VLM itself looked when it read the target's name.

1. One prefill pass (no decoding) of "Where is the {target} in this image?", the language model's
   attention switched to the eager kernel for that pass only (SDPA returns no weights; generation
   keeps SDPA). Forward hooks on the chosen decoder layers keep the attention from the target
   phrase's tokens to the image tokens, averaged over the chosen heads, then over the layers.
2. The same for a generic prompt, "Write a general description of the image.", from its own
   tokens. The ratio target / generic is the "relative attention" of Zhang et al., "MLLMs Know
   Where to Look" (ICLR 2025; their code, zenjieli/mllms_know `rel_attention_llava`, divides the
   two maps at layer 14 of LLaVA-1.5's 32): it cancels attention sinks and the model's global
   biases, which are the same for both prompts.
3. Each image token is placed in the original photo through the processor's geometry
   (geometry.VisionFrame): llava-1.5's pad / resize / centre crop; LLaVA-NeXT's and OneVision's
   anyres overview (the photo squashed to one tile) and tiles (the photo resized into the best
   grid resolution, centred with padding, cut into tiles, then unpadded and, for OneVision,
   pooled by the model). The tiles' token order is read by running the model's own
   `pack_image_features` on features that hold each token's coordinates, so unpadding, newline
   tokens and pooling are the library's, not a copy of them.
4. `prompts`: positive points at the peaks of the hot region (non-maximum suppression), negative
   points in the coldest places outside it, and the hot region's box: SAM gets all three.
Layer and head choice, and why: docs/decisions.md, "Attention grounding".
"""

from __future__ import annotations

import inspect
import re
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InvalidInputError, LassoError
from ..geometry import VisionFrame, size_field
from ..plan import Box

TARGET_PROMPT = "Where is the {phrase} in this image?"
GENERIC_PROMPT = "Write a general description of the image."
_LOCK = threading.Lock()  # the eager switch is the model's global state: one attention pass at a time


@dataclass(frozen=True)
class AttentionSettings:
    """Which attention is read, and how the heatmap becomes SAM prompts."""

    layers: tuple[int, ...] | None = None  # decoder layers (negative: from the end); None: the `band`
    band: tuple[float, float] = (0.35, 0.6)  # fractions of the depth averaged when `layers` is None
    heads: tuple[int, ...] | None = None  # None: every head, averaged
    generic_prompt: str = GENERIC_PROMPT
    points: int = 3  # positive points, at most
    negatives: int = 2  # negative points, at most
    threshold: float = 0.5  # the hot region: heat >= threshold x its peak

    def layer_indices(self, n: int) -> list[int]:
        """The decoder layers read, of `n`; InvalidInputError for one the model does not have."""
        if self.layers is not None:
            bad = [i for i in self.layers if not -n <= i < n]
            if bad:
                raise InvalidInputError(
                    f"attention layer {bad[0]} does not exist: this VLM has {n} layers (0 to {n - 1})"
                )
            return sorted({i % n for i in self.layers})
        lo, hi = int(self.band[0] * n), int(self.band[1] * n)
        return list(range(min(lo, n - 1), max(hi, lo + 1)))

    @staticmethod
    def parse_layers(text: str) -> tuple[int, ...]:
        """ "14", "12-18" or "12,14,16" (negative numbers count from the last layer) -> layer indices."""
        out: list[int] = []
        for part in text.replace(" ", "").split(","):
            m = re.fullmatch(r"(-?\d+)(?:-(-?\d+))?", part)
            if not m:
                raise InvalidInputError(f"attention layers must look like 14, 12-18 or 12,14,16; got {text!r}")
            a = int(m.group(1))
            b = int(m.group(2)) if m.group(2) is not None else a
            if b < a:
                raise InvalidInputError(
                    f"attention layers {part!r} run backwards; a range goes from low to high: {b}-{a}"
                )
            out += list(range(a, b + 1))
        return tuple(out)


@dataclass
class Heatmap:
    """Relative attention over the image: one value per image token, placed in original pixels."""

    width: int
    height: int
    centers: np.ndarray  # (N, 2) float32: each token's XY centre in pixels of the original image
    cells: np.ndarray  # (N, 2) float32: each token's cell size in pixels
    values: np.ndarray  # (N,) float32: relative attention (target / generic)
    groups: np.ndarray  # (N,) int8: 1 the overview (or llava-1.5's only view), 0 anyres tiles
    layers: tuple[int, ...] = ()
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def render(self, max_side: int = 192) -> np.ndarray:
        """float32 (h, w) in [0, 1], the image's aspect at most `max_side` on its long side.

        Each view (overview, tiles) is a Gaussian-weighted average of its tokens (sigma half a
        cell; a lone hot token peaks at its centre), scaled to [0, 1] over what that view saw; the
        views are averaged. Pixels no token covers (cut away by a centre crop) are 0."""
        key = int(max_side)
        if key in self._cache:
            return self._cache[key]
        scale = min(1.0, max_side / max(self.width, self.height))
        w, h = max(1, round(self.width * scale)), max(1, round(self.height * scale))
        xs = (np.arange(w, dtype=np.float32) + 0.5) * (self.width / w)
        ys = (np.arange(h, dtype=np.float32) + 0.5) * (self.height / h)
        out = np.zeros((h, w), dtype=np.float32)
        seen_any = np.zeros((h, w), dtype=bool)
        views = 0
        for g in np.unique(self.groups):
            sel = self.groups == g
            c, s, v = self.centers[sel], np.maximum(self.cells[sel] * 0.5, 1e-3), self.values[sel]
            kx = np.exp(-0.5 * ((xs[None, :] - c[:, :1]) / s[:, :1]) ** 2)  # (N, w)
            ky = np.exp(-0.5 * ((ys[None, :] - c[:, 1:]) / s[:, 1:]) ** 2)  # (N, h)
            den = ky.T @ kx
            num = (ky * v[:, None]).T @ kx
            seen = np.zeros((h, w), dtype=bool)  # the union of the tokens' cells: what this view saw
            for (cx, cy), (cw, ch) in zip(c, self.cells[sel]):
                seen[
                    max(0, int((cy - ch / 2) * h / self.height + 0.5)) : max(
                        0, int((cy + ch / 2) * h / self.height + 0.5)
                    ),
                    max(0, int((cx - cw / 2) * w / self.width + 0.5)) : max(
                        0, int((cx + cw / 2) * w / self.width + 0.5)
                    ),
                ] = True
            # Kernel regression, its weight held at least at the typical inside value: at the
            # edges of the view the map then falls off instead of pulling a peak to the border.
            floor = float(np.median(den[seen])) if seen.any() else 1.0
            m = np.where(seen, num / np.maximum(den, floor), 0.0)
            if float(v.max() - v.min()) <= 1e-6 * max(abs(float(v.max())), 1e-30):
                m = np.zeros_like(m)  # a flat view says nothing about where to look
            elif seen.any():
                lo, hi = m[seen].min(), m[seen].max()
                m = np.where(seen, (m - lo) / (hi - lo) if hi > lo else 0.0, 0.0)
            out += m.astype(np.float32)
            seen_any |= seen
            views += 1
        out /= max(views, 1)
        self._cache[key] = out
        self._cache[("seen", key)] = seen_any
        return out

    def seen(self, max_side: int = 192) -> np.ndarray:
        """bool (h, w) as `render`: where some image token looked (False where a crop cut the photo)."""
        self.render(max_side)
        return self._cache[("seen", int(max_side))]

    def full(self) -> np.ndarray:
        """float32 HxW in [0, 1] at the original image's size (for drawing)."""
        import cv2

        return cv2.resize(self.render(), (self.width, self.height), interpolation=cv2.INTER_LINEAR)

    def mass(self, box: Box) -> float:
        """The share of the heat inside an XYXY box of the original image (0..1)."""
        m = self.render()
        h, w = m.shape
        sx, sy = w / self.width, h / self.height
        x0, y0 = int(np.floor(box[0] * sx)), int(np.floor(box[1] * sy))
        x1, y1 = int(np.ceil(box[2] * sx)), int(np.ceil(box[3] * sy))
        total = float(m.sum())
        return float(m[max(0, y0) : max(0, y1), max(0, x0) : max(0, x1)].sum()) / total if total > 0 else 0.0

    def peak(self) -> tuple[float, float]:
        """The XY pixel of the hottest place."""
        m = self.render()
        y, x = np.unravel_index(int(np.argmax(m)), m.shape)
        return (x + 0.5) * self.width / m.shape[1], (y + 0.5) * self.height / m.shape[0]


# --------------------------------------------------------------------------- heatmap -> SAM prompts
def prompts(
    heat: Heatmap, settings: AttentionSettings = AttentionSettings()
) -> tuple[list[tuple[float, float]], list[int], Box | None]:
    """(points, labels, box) for SAM: up to `settings.points` positive points at separate peaks of
    the hot region around the hottest place, up to `settings.negatives` negative points at the
    coldest places outside that region's box (cold: under a quarter of the peak, and seen by the
    model), and the box. No box when the map is flat."""
    import cv2

    m = heat.render()
    h, w = m.shape
    peak = float(m.max())
    if peak <= 0 or float(m.min()) >= peak:
        return [], [], None
    py, px = np.unravel_index(int(np.argmax(m)), m.shape)
    _, comp = cv2.connectedComponents((m >= settings.threshold * peak).astype(np.uint8), connectivity=8)
    region = comp == comp[py, px]
    rows, cols = np.nonzero(region.any(axis=1))[0], np.nonzero(region.any(axis=0))[0]
    bx0, by0, bx1, by1 = int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1
    sx, sy = heat.width / w, heat.height / h
    radius = max(2.0, 0.12 * max(h, w))
    yy, xx = np.mgrid[0:h, 0:w]

    def pick(score: np.ndarray, k: int) -> list[tuple[float, float]]:
        score = score.copy()
        out = []
        for _ in range(k):
            i = int(np.argmax(score))
            if not np.isfinite(score.flat[i]):
                break
            y, x = divmod(i, w)
            out.append(((x + 0.5) * sx, (y + 0.5) * sy))
            score[(yy - y) ** 2 + (xx - x) ** 2 <= radius * radius] = -np.inf
        return out

    pos = pick(np.where(region, m, -np.inf), settings.points)
    outside = np.ones((h, w), dtype=bool)
    margin = int(np.ceil(radius / 2))
    outside[max(0, by0 - margin) : by1 + margin, max(0, bx0 - margin) : bx1 + margin] = False
    cold = outside & heat.seen() & (m < 0.25 * peak)  # never where the model did not look (a crop's edges)
    neg = pick(np.where(cold, -m, -np.inf), settings.negatives) if settings.negatives else []
    box = (bx0 * sx, by0 * sy, bx1 * sx, by1 * sy)
    return pos + neg, [1] * len(pos) + [0] * len(neg), box


# --------------------------------------------------------------------------- the attention pass
def heatmap(vlm, image: np.ndarray, phrase: str, settings: AttentionSettings = AttentionSettings()) -> Heatmap:
    """Relative attention of `vlm` (a LlavaParser) to the image when it reads `phrase`."""
    text = TARGET_PROMPT.format(phrase=phrase.strip())
    target, inputs, small_hw, layers = _image_attention(vlm, image, text, phrase.strip(), settings)
    generic, _, _, _ = _image_attention(vlm, image, settings.generic_prompt, settings.generic_prompt, settings)
    rel = target / np.maximum(generic, 1e-8 * max(float(generic.max()), 1e-30))
    centers, cells, groups = token_places(vlm, inputs, small_hw, image.shape[:2])
    if len(centers) != len(rel):
        raise LassoError(f"the VLM has {len(rel)} image tokens but its processor's layout places {len(centers)}")
    ok = np.isfinite(centers).all(axis=1)
    return Heatmap(
        image.shape[1], image.shape[0], centers[ok], cells[ok], rel[ok].astype(np.float32), groups[ok], tuple(layers)
    )


def _language_model(model):
    lm = getattr(getattr(model, "model", model), "language_model", None)
    if lm is None or not hasattr(lm, "layers"):
        raise LassoError(
            f"attention grounding reads a LLaVA-family model's decoder layers; "
            f"{type(model).__name__} has none where expected"
        )
    return lm


@contextmanager
def eager_attention(lm):
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


def _image_attention(vlm, image: np.ndarray, text: str, query: str, settings: AttentionSettings):
    """Attention from the tokens of `query` (a part of `text`) to the image tokens: (N,) float32,
    averaged over the chosen heads and layers; with the inputs, the processed size and the layers."""
    import torch

    model = vlm.model
    lm = _language_model(model)
    layers = settings.layer_indices(len(lm.layers))
    inputs, prompt, small_hw = vlm.inputs(image, text)
    ids = inputs["input_ids"][0]
    image_pos = (ids == model.config.image_token_id).nonzero().flatten()
    query_pos = torch.tensor(
        query_positions(vlm.processor.tokenizer, prompt, query, ids.tolist(), model.config.image_token_id),
        device=ids.device,
    )
    heads = list(settings.heads) if settings.heads is not None else None
    rows: list = []

    def keep(module, args, out):
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
    return torch.stack(rows).mean(dim=0).numpy(), inputs, small_hw, layers


def query_positions(tokenizer, prompt: str, query: str, ids: list[int], image_token_id: int) -> list[int]:
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
def token_places(vlm, inputs: dict, small_hw: tuple[int, int], orig_hw: tuple[int, int]):
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


def _anyres_places(model, ip, inputs: dict, hw: tuple[int, int], side: int, grid: int):
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
