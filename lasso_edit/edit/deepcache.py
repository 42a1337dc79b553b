"""DeepCache for diffusers UNets: reuse the deep features of the last full step for a few steps.

DeepCache (Ma, Fang and Wang, CVPR 2024; the reference helper is the `DeepCache` package's
`DeepCacheSDHelper`) observes that a UNet's deep, low-resolution features change slowly across
denoising steps. Every `interval`-th step runs the whole UNet and caches every block's output; the
steps between run only the shallow branch at the chosen depth (`branch`: 0 = the outermost
down/up layer) and reuse the cached outputs of everything deeper. This is an approximation: it
changes the picture, so it is opt-in (`--deepcache N`), never a default.

Lasso's version follows the reference helper's choice of what to skip, and adds one guard:
a cached output is reused only when its batch matches the step's, so it stays correct when
classifier-free guidance stops part-way (the batch halves) and on the first step of every run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# Where a wrapped module sits: ("down" | "mid" | "up", its kind, block index, layer index).
_Key = tuple[str, str, int, int]


class DeepCache:
    def __init__(self, unet: Any, interval: int = 3, branch: int = 0) -> None:
        if interval < 1:
            raise ValueError(f"DeepCache interval must be at least 1, got {interval}")
        self.unet = unet
        self.interval = interval
        self.block, self.layer = branch // 3, branch % 3
        self._orig: dict[_Key | str, tuple[Any, Callable[..., Any]]] = {}  # a diffusers module, its own forward
        self._cache: dict[_Key, tuple[int, Any]] = {}  # (batch size, the module's output)
        self.step = 0
        self.skipped = 0  # module calls answered from the cache, for tests and timings

    # -------------------------------------------------------------- which modules a cached step skips
    def _skip(self, block_i: int, layer_i: int, kind: str) -> bool:
        if self.step % self.interval == 0:
            return False
        if kind == "mid" or block_i > self.block:
            return True
        if block_i < self.block:
            return False
        return layer_i >= self.layer if kind == "down" else layer_i > self.layer

    def _wrap(self, module: Any, key: _Key) -> None:
        forward = module.forward
        self._orig[key] = (module, forward)

        def cached_forward(*args: Any, **kwargs: Any) -> Any:
            x = args[0] if args else next(iter(kwargs.values()))
            hit = self._cache.get(key)
            if self._skip(key[2], key[3], key[0]) and hit is not None and hit[0] == x.shape[0]:
                self.skipped += 1
                return hit[1]
            out = forward(*args, **kwargs)
            self._cache[key] = (x.shape[0], out)
            return out

        module.forward = cached_forward

    def enable(self) -> DeepCache:
        unet = self.unet
        forward = unet.forward
        self._orig["unet"] = (unet, forward)

        def counted_forward(*args: Any, **kwargs: Any) -> Any:
            out = forward(*args, **kwargs)
            self.step += 1
            return out

        unet.forward = counted_forward
        for b, block in enumerate(unet.down_blocks):
            for i, m in enumerate(getattr(block, "attentions", None) or []):
                self._wrap(m, ("down", "attention", b, i))
            resnets = getattr(block, "resnets", None) or []
            for i, m in enumerate(resnets):
                self._wrap(m, ("down", "resnet", b, i))
            for m in getattr(block, "downsamplers", None) or []:
                self._wrap(m, ("down", "downsampler", b, len(resnets)))
            self._wrap(block, ("down", "block", b, 0))
        self._wrap(unet.mid_block, ("mid", "block", 0, 0))
        n = len(unet.up_blocks)
        for b, block in enumerate(unet.up_blocks):
            resnets = getattr(block, "resnets", None) or []
            for i, m in enumerate(getattr(block, "attentions", None) or []):
                self._wrap(m, ("up", "attention", n - b - 1, len(resnets) - i - 1))
            for i, m in enumerate(resnets):
                self._wrap(m, ("up", "resnet", n - b - 1, len(resnets) - i - 1))
            for m in getattr(block, "upsamplers", None) or []:
                self._wrap(m, ("up", "upsampler", n - b - 1, 0))
            self._wrap(block, ("up", "block", n - b - 1, 0))
        return self

    def reset(self) -> None:
        """Forget the cache; the next UNet call is a full step (call before each pipeline run)."""
        self._cache.clear()
        self.step = 0

    def disable(self) -> None:
        for module, forward in self._orig.values():
            module.forward = forward
        self._orig.clear()
        self.reset()
