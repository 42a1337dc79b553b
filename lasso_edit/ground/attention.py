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

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..core.errors import InvalidInputError, LassoError
from ..core.plan import Box

if TYPE_CHECKING:
    from ..parse.loop import VisionLanguageModel

TARGET_PROMPT = "Where is the {phrase} in this image?"
GENERIC_PROMPT = "Write a general description of the image."


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
def heatmap(
    vlm: VisionLanguageModel, image: np.ndarray, phrase: str, settings: AttentionSettings = AttentionSettings()
) -> Heatmap:
    """Relative attention of `vlm` (a VisionLanguageModel: parse/loop.py) to the image when it reads
    `phrase`. The model-specific part, the attention pass and where each image token lies, is the
    VLM's own `attention()` (LLaVA's: parse/llava_attention.py)."""
    text = TARGET_PROMPT.format(phrase=phrase.strip())
    target = vlm.attention(image, text, phrase.strip(), settings.layer_indices, settings.heads)
    generic = vlm.attention(
        image, settings.generic_prompt, settings.generic_prompt, settings.layer_indices, settings.heads
    )
    rel = target.weights / np.maximum(generic.weights, 1e-8 * max(float(generic.weights.max()), 1e-30))
    centers, cells, groups = target.centers, target.cells, target.groups
    if len(centers) != len(rel):
        raise LassoError(f"the VLM has {len(rel)} image tokens but its processor's layout places {len(centers)}")
    ok = np.isfinite(centers).all(axis=1)
    return Heatmap(
        image.shape[1],
        image.shape[0],
        centers[ok],
        cells[ok],
        rel[ok].astype(np.float32),
        groups[ok],
        tuple(target.layers),
    )
