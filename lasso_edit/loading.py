"""Model loading the standard way (ids, the HF cache, `from_pretrained`, local paths), with
clear errors, and device / dtype choice. torch is imported inside functions only.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from .errors import InvalidInputError, ModelUnavailableError

T = TypeVar("T")
_MARKER_FILES = ("config.json", "model_index.json", "preprocessor_config.json", "processor_config.json",
                 "pytorch_lora_weights.safetensors")


def is_local(model: str) -> bool:
    return Path(model).expanduser().is_dir()


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def is_cached(model: str) -> bool:
    """True when `model` is a local folder or a Hub id with files in the local HF cache."""
    if is_local(model):
        return True
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover
        return False
    for name in _MARKER_FILES:
        try:
            hit = try_to_load_from_cache(model, name)
        except Exception:  # an id the hub library rejects (bad characters): not cached
            return False
        if isinstance(hit, str):
            return True
    return False


def fetch_hint(model: str) -> str:
    return (f"fetch it once with `hf download {model}` on a machine with internet (or unset HF_HUB_OFFLINE), "
            "or pass a local folder")


def ensure_available(models: dict[str, str]) -> None:
    """Fail fast, before any loading, for a model that cannot be had: a missing local path, or a
    Hub id that is not cached while HF_HUB_OFFLINE is set. `models` maps stage -> id or path."""
    for stage, model in models.items():
        p = Path(model).expanduser()
        looks_like_path = model.startswith((".", "/", "~")) or p.exists()
        if looks_like_path and not p.is_dir():
            raise ModelUnavailableError(f"{stage} model folder not found: {model}")
        if not looks_like_path and offline() and not is_cached(model):
            raise ModelUnavailableError(
                f"{stage} model {model!r} is not in the local Hugging Face cache and HF_HUB_OFFLINE is set; "
                + fetch_hint(model)
            )


def load(what: str, model: str, loader: Callable[..., T], **kwargs: Any) -> T:
    """Call `loader(model, **kwargs)` (a `from_pretrained`), turning failures into ModelUnavailableError."""
    try:
        return loader(str(Path(model).expanduser()) if is_local(model) else model, **kwargs)
    except (OSError, EnvironmentError) as e:
        raise ModelUnavailableError(f"cannot load {what} model {model!r}: {_first_line(e)}; {fetch_hint(model)}") from e
    except (ValueError, KeyError, TypeError) as e:
        raise ModelUnavailableError(f"{what} model {model!r} could not be loaded as a {what}: {_first_line(e)}") from e


def _first_line(e: BaseException) -> str:
    s = str(e).strip().splitlines()
    return s[0] if s else type(e).__name__


# --------------------------------------------------------------------------- device and dtype
def resolve_device(device: str | None = None) -> str:
    """'cuda' when a GPU is usable, else 'mps' on Apple silicon, else 'cpu'; or the device asked for."""
    import torch

    if device in (None, "", "auto"):
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    try:
        kind = torch.device(device).type
    except (RuntimeError, TypeError, ValueError):
        kind = None
    if kind not in ("cpu", "cuda", "mps", "xpu"):
        raise InvalidInputError(f"unknown device {device!r}; use cuda, cuda:N, mps or cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InvalidInputError(f"device {device!r} was asked for, but torch sees no CUDA GPU; use --device cpu")
    if device == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise InvalidInputError("device 'mps' was asked for, but this torch has no MPS support")
    return device


_DTYPES = {"fp32": "float32", "float32": "float32", "fp16": "float16", "float16": "float16", "half": "float16",
           "bf16": "bfloat16", "bfloat16": "bfloat16"}


def resolve_dtype(dtype: str | None, device: str):
    """fp16 on CUDA and MPS (bf16 on request), fp32 on the CPU, unless asked otherwise."""
    import torch

    if dtype in (None, "", "auto"):
        return torch.float16 if device.startswith(("cuda", "mps")) else torch.float32
    name = _DTYPES.get(str(dtype).lower())
    if name is None:
        raise InvalidInputError(f"unknown dtype {dtype!r}; use fp32, fp16 or bf16")
    return getattr(torch, name)
