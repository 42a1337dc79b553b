"""Model loading the standard way (ids, the HF cache, `from_pretrained`, local paths), with
clear errors, and device / dtype choice. torch is imported inside functions only.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .errors import InvalidInputError, ModelUnavailableError

if TYPE_CHECKING:
    import torch

T = TypeVar("T")
_MARKER_FILES = (
    "config.json",
    "model_index.json",
    "preprocessor_config.json",
    "processor_config.json",
    "pytorch_lora_weights.safetensors",
)


def is_local(model: str) -> bool:
    return Path(model).expanduser().is_dir()


def is_local_file(model: str) -> bool:
    """A weights file on disk (a LoRA may be one .safetensors file)."""
    return Path(model).expanduser().is_file()


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
    unset = " (or unset HF_HUB_OFFLINE)" if offline() else ""
    return f"fetch it once with `hf download {model}` on a machine with internet{unset}, or pass a local folder"


TRY_OFFLINE = "`--preset tiny` runs the whole pipeline offline on tiny random models"


def ensure_available(models: dict[str, str], probe: bool = True) -> None:
    """Fail fast, before any loading, naming every model that cannot be had, in one message:
    a missing local folder; a Hub id not cached while HF_HUB_OFFLINE is set; or, online, a Hub id
    not cached when the Hub cannot be reached (one short probe, not a download library's retries)
    or does not know it. `models` maps stage -> id or path; "tiny:" ids are built locally."""
    problems: list[str] = []
    uncached: list[tuple[str, str]] = []
    for stage, model in models.items():
        if model.startswith(("tiny:", "openai:")):  # built locally; a server, checked when it is built
            continue
        p = Path(model).expanduser()
        if model.startswith((".", "/", "~")) or p.exists():
            if stage == "adapter" and not p.exists():
                problems.append(f"--lora {model} not found (a folder or a .safetensors file)")
            elif not p.is_dir() and stage != "adapter":
                problems.append(f"{stage} model folder not found: {model}")
        elif not is_cached(model):
            uncached.append((stage, model))
    if uncached and offline():
        names = ", ".join(m for _, m in uncached)
        problems.append(f"not in the local Hugging Face cache while HF_HUB_OFFLINE is set: {names}")
    elif uncached and probe:
        problems += _probe_hub(uncached)
    if not problems:
        return
    if not uncached:  # only local paths are wrong: nothing to download
        raise ModelUnavailableError("; ".join(problems) + "; check the path")
    fix = (
        "fetch each once with `hf download ID` on a machine with internet"
        + (" (or unset HF_HUB_OFFLINE)" if offline() else "")
        + ", or pass local folders"
    )
    raise ModelUnavailableError("; ".join(problems) + f". {fix[0].upper()}{fix[1:]}; {TRY_OFFLINE}")


def _probe_hub(uncached: list[tuple[str, str]], timeout: float = 5.0) -> list[str]:
    """Ask the Hub about each uncached id (HEAD /api/models/ID, HF_ENDPOINT respected). Returns the
    problems: the Hub unreachable (every id named), or ids it does not know. Any HTTP answer other
    than 404 (401 for a gated or private model: the loader then says what is needed) counts as found."""
    import urllib.error
    import urllib.request

    from huggingface_hub import constants

    endpoint = constants.ENDPOINT.rstrip("/")
    unknown = []
    for _stage, model in uncached:
        request = urllib.request.Request(f"{endpoint}/api/models/{model}", method="HEAD")
        try:
            urllib.request.urlopen(request, timeout=timeout).close()
        except urllib.error.HTTPError as e:
            if e.code == 404:
                unknown.append(model)
        except (urllib.error.URLError, OSError, ValueError) as e:
            reason = getattr(e, "reason", e)
            names = ", ".join(m for _, m in uncached)
            return [
                f"cannot reach the Hugging Face Hub at {endpoint} ({reason}) to download models not in the "
                f"local cache: {names}"
            ]
    return [f"no such model on the Hub (or it is private: `hf auth login`): {', '.join(unknown)}"] if unknown else []


def load(what: str, model: str, loader: Callable[..., T], **kwargs: Any) -> T:
    """Call `loader(model, **kwargs)` (a `from_pretrained`), turning failures into ModelUnavailableError."""
    try:
        return loader(str(Path(model).expanduser()) if is_local(model) else model, **kwargs)
    except (OSError, EnvironmentError) as e:
        if _gated(e):
            from .licences import gated_help

            raise ModelUnavailableError(f"cannot load {what} model: {gated_help(model)}") from e
        raise ModelUnavailableError(f"cannot load {what} model {model!r}: {_first_line(e)}; {fetch_hint(model)}") from e
    except (ValueError, KeyError, TypeError) as e:
        raise ModelUnavailableError(f"{what} model {model!r} could not be loaded as a {what}: {_first_line(e)}") from e


def model_class(what: str, model_id: str, classes: dict[str, str], reads: str) -> tuple[str, Any]:
    """The checkpoint's config `model_type` and the transformers class `classes` maps it to, for the
    stages that read several families (LLaVA variants, SAM and SAM 2, OWLv2 and Grounding DINO).
    Raises ModelUnavailableError naming what Lasso reads, or the transformers it would need."""
    import transformers

    config = load(what, model_id, transformers.AutoConfig.from_pretrained)
    kind = getattr(config, "model_type", "")
    name = classes.get(kind)
    if name is None:
        raise ModelUnavailableError(f"{what} {model_id!r} is a {kind!r} model; Lasso reads {reads}")
    if not hasattr(transformers, name):
        raise ModelUnavailableError(f"{what} {model_id!r} needs a newer transformers (with {name}); upgrade it")
    return kind, getattr(transformers, name)


def _gated(e: BaseException) -> bool:
    """A refusal to download a gated model (huggingface_hub's GatedRepoError, which transformers and
    diffusers wrap in an OSError that names it)."""
    seen: BaseException | None = e
    while seen is not None:
        if type(seen).__name__ == "GatedRepoError" or "gated repo" in str(seen).lower():
            return True
        seen = seen.__cause__ or seen.__context__
    return False


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


_DTYPES = {
    "fp32": "float32",
    "float32": "float32",
    "fp16": "float16",
    "float16": "float16",
    "half": "float16",
    "bf16": "bfloat16",
    "bfloat16": "bfloat16",
}


def dtype_named(dtype: str | None) -> bool:
    """Whether the user named a dtype (`--dtype fp32`), rather than leaving it to Lasso ("auto")."""
    return dtype not in (None, "", "auto")


def resolve_dtype(dtype: str | None, device: str) -> torch.dtype:
    """fp16 on CUDA and MPS (bf16 on request), fp32 on the CPU, unless asked otherwise."""
    import torch

    if not dtype_named(dtype):
        return torch.float16 if device.startswith(("cuda", "mps")) else torch.float32
    name = _DTYPES.get(str(dtype).lower())
    if name is None:
        raise InvalidInputError(f"unknown dtype {dtype!r}; use fp32, fp16 or bf16")
    return getattr(torch, name)


def cpu_bf16() -> bool:
    """True where this CPU has bf16 instructions (AVX512_BF16, or AMX's tiles, which come with
    them): there oneDNN runs bf16 convolutions and matmuls natively, SD-Turbo's UNet step 1.9x
    faster than fp32 (bench/lite.py). torch.cpu._is_avx512_bf16_supported reads cpuinfo's flag
    (torch/cpu/__init__.py, torch 2.14); torch.ops.mkldnn._is_mkldnn_bf16_supported is not the
    test: it is true on any AVX-512 CPU, where oneDNN emulates bf16 (no faster than fp32)."""
    import torch

    cpu = getattr(torch, "cpu", None)
    checks = [getattr(cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return any(bool(check()) for check in checks if check is not None)


def int8_linears(model: Any, kept: dict[str, torch.Tensor] | None = None) -> Any:
    """The model, its linear layers made dynamic int8 in place (weights int8, activations quantized
    per call; each fp32 layer dropped as its int8 one goes in, so no second copy of the model): on a
    CPU, 2.5x faster for OWL-ViT B/32 and 4x for a CLIP text encoder (bench/lite.py), the same
    answer for the same input. torch.ao's eager API (torch 2.14 points to torchao for its
    successor; this one is still the one that needs no extra package): what
    `quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8, inplace=True)` does (default_dynamic_qconfig
    on every module of exactly nn.Linear's type, each swapped for `nnqd.Linear.from_float` of it:
    torch/ao/quantization/quantize.py), but the layers converted on torch's threads at once: each
    one's min/max, quantize and prepack run on one core (tests/edit/test_turbo.py checks the bytes).
    `kept`: given, each layer's int8 weight (a quantized tensor) and bias go in it (NAME.weight,
    NAME.bias), for the converted-weights cache (int8_cached), which would otherwise unpack them."""
    import gc
    import warnings
    from concurrent.futures import ThreadPoolExecutor, as_completed

    import torch

    model = _off_the_file(model).eval()
    found = [
        (p, n, c, f"{q}.{n}" if q else n)
        for q, p in model.named_modules()
        for n, c in p.named_children()
        if type(c) is torch.nn.Linear
    ]
    with warnings.catch_warnings(), ThreadPoolExecutor(max(1, torch.get_num_threads())) as pool:
        warnings.simplefilter("ignore")  # its deprecation notices, said on every call
        jobs = {pool.submit(_int8_linear, child): (parent, name, at) for parent, name, child, at in found}
        del found  # each fp32 layer is then held only until its int8 one replaces it
        for job in as_completed(jobs):
            parent, name, at = jobs.pop(job)  # the future holds the int8 weight: let it go with it
            layer, weight = job.result()
            if kept is not None:
                kept[f"{at}.weight"] = weight
                if getattr(parent, name).bias is not None:
                    kept[f"{at}.bias"] = getattr(parent, name).bias.detach()
            setattr(parent, name, layer)
    gc.collect()  # the replaced fp32 layers sit in reference cycles until a collection
    release_freed_memory()
    return model


def _int8_linear(layer: Any) -> tuple[Any, torch.Tensor]:
    """One linear layer in dynamic int8 as quantize_dynamic converts it, and its int8 weight: what
    `nnqd.Linear.from_float` does with default_dynamic_qconfig (its weight observer's min/max, the
    weight quantized per tensor and set with the bias: torch/ao/nn/quantized/dynamic/modules/
    linear.py, torch 2.14), but the layer made as _int8_layer makes it (from_float's constructor
    first prepacks an empty weight of the full size)."""
    import torch
    from torch.ao.nn.quantized.modules.utils import _quantize_weight

    observer = torch.ao.quantization.default_dynamic_qconfig.weight()
    observer(layer.weight)
    weight = _quantize_weight(layer.weight.float(), observer)
    return _int8_layer(weight, layer.bias, layer.in_features, layer.out_features), weight


def _int8_layer(weight: torch.Tensor, bias: torch.Tensor | None, in_features: int, out_features: int) -> Any:
    """A dynamic int8 linear layer of `weight` (quantized) and `bias`, built 1x1 and then given
    them: nnqd.Linear's constructor prepacks an empty weight of the size it is given, which
    set_weight_bias then replaces (a third of the conversion's time for nothing)."""
    import torch

    layer = torch.ao.nn.quantized.dynamic.Linear(1, 1, dtype=torch.qint8)
    layer.in_features, layer.out_features = in_features, out_features
    layer.set_weight_bias(weight, bias)
    return layer


def _off_the_file(model: Any) -> Any:
    """The model with every tensor but its linear layers' weights copied into its own memory.
    transformers maps a checkpoint's .safetensors file and gives views of it; while any view is
    alive (a layer norm, an embedding, a bias the int8 layer keeps) the whole mapping stays, and
    every page of it read while quantizing counts in the process's memory (OWL-ViT B/32: 0.4 GB
    more once in int8). The weights to be quantized are freed with their fp32 layers instead."""
    import torch

    for module in model.modules():
        for name, param in list(module.named_parameters(recurse=False)):
            if not (isinstance(module, torch.nn.Linear) and name == "weight"):
                param.data = param.data.clone()
        for name, buffer in list(module.named_buffers(recurse=False)):
            if buffer is not None:
                setattr(module, name, buffer.clone())
    return model


# safetensors' dtype names (its format's header) -> torch's
_SAFETENSORS_DTYPES = {
    "F64": "float64",
    "F32": "float32",
    "F16": "float16",
    "BF16": "bfloat16",
    "I64": "int64",
    "I32": "int32",
    "I16": "int16",
    "I8": "int8",
    "U8": "uint8",
    "BOOL": "bool",
}


def read_safetensors(path: str | Path, dtype: torch.dtype | None) -> dict[str, torch.Tensor]:
    """A .safetensors file's tensors, floating ones cast to `dtype` (None: as stored), each read on its own with one
    file read (the format: an 8-byte little-endian header length, a JSON header of name -> dtype,
    shape, data_offsets, then the data). The peak is the cast tensors plus one: safetensors'
    load_file maps the whole file, whose pages count in the process's memory until it closes (a
    1.7 GB fp16 UNet read into bf16 would peak at 3.4 GB)."""
    import json
    import struct

    import torch

    out: dict[str, torch.Tensor] = {}
    with open(path, "rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(size))
        for name, info in header.items():
            if name == "__metadata__":
                continue
            begin, end = info["data_offsets"]
            f.seek(8 + size + begin)
            stored = getattr(torch, _SAFETENSORS_DTYPES[info["dtype"]])
            raw = bytearray(end - begin)  # read into it: f.read's bytes would be one copy more
            if f.readinto(raw) != len(raw):
                raise ValueError(f"{path} ends before its tensor {name!r} does")
            t = torch.frombuffer(raw, dtype=stored) if raw else torch.empty(0, dtype=stored)
            t = t.reshape(info["shape"])
            out[name] = t.to(dtype) if dtype is not None and t.is_floating_point() else t
    return out


def release_freed_memory() -> None:
    """Hand memory freed inside the heap back to the system (glibc's malloc_trim(0)): after a model
    is converted layer by layer (int8 linears) its fp32 weights are freed, but tensors under
    glibc's mmap threshold (raised up to 32 MB as large blocks are freed: mallopt(3)) come from
    the heap, whose free pages stay counted in the process's memory. No-op without glibc."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        if libc is not None and hasattr(libc, "malloc_trim"):
            libc.malloc_trim(0)
    except OSError:
        pass


# --------------------------------------------------------------------------- converted weights, kept on disk
# What a load converts (the UNet's fp16 file cast to bf16; OWL-ViT's and the text encoder's linears
# made int8) is kept under the cache folder, so that the next process reads it instead of converting
# again: 3.7 s of the lite preset's first edit on a 2-core CPU (bench/lite.py). Bump on a format change.
CONVERTED_VERSION = 1
_OFF = ("0", "off", "no", "false")


def converted_dir() -> Path | None:
    """Where converted weights are kept: $LASSO_CACHE/converted, else the cache folder the tiny
    models use ($XDG_CACHE_HOME, else ~/.cache, then lasso/converted); None when
    LASSO_CONVERTED_CACHE is 0/off (every load converts, nothing is written)."""
    if os.environ.get("LASSO_CONVERTED_CACHE", "").lower() in _OFF:
        return None
    env = os.environ.get("LASSO_CACHE")
    if env:
        return Path(env).expanduser() / "converted"
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "lasso" / "converted"


@dataclass(frozen=True)
class CacheKey:
    """A converted-weights cache entry's name (KIND-HASH) and the identity of the files it was
    converted from (resolved path, size, mtime_ns), kept in the entry's header."""

    name: str
    sources: tuple[tuple[str, int, int], ...]

    @property
    def kind(self) -> str:
        return self.name.rsplit("-", 1)[0]


def converted_key(
    kind: str, sources: list[Path] | None, dtype: torch.dtype | None = None, *extra: str
) -> CacheKey | None:
    """The cache entry for `kind` converted from `sources`, named by a hash of each source file's
    resolved path, size and mtime_ns (a replaced file is converted again), torch's version (its
    int8 and bf16 kernels), the dtype and `extra` (the library whose module names the entry holds).
    None where there is no cache folder or a source cannot be read: the load then converts."""
    import hashlib
    import json

    import torch

    if not sources or converted_dir() is None:
        return None
    try:
        files = [(str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for p in sources]
    except OSError:
        return None
    identity = [CONVERTED_VERSION, kind, files, torch.__version__, str(dtype), *extra]
    digest = hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:32]
    return CacheKey(f"{kind}-{digest}", tuple(files))


def cached_tensors(key: CacheKey | None, mapped: bool = False) -> dict[str, torch.Tensor] | None:
    """The tensors kept under `key`, or None (no entry; or one that cannot be read, which is then
    deleted so that the load converts and writes it afresh). `mapped`: safetensors' load_file,
    the tensors views of the file's pages (no read, no copy; for weights every one of which the
    model keeps); else each read into its own memory (read_safetensors), so that no mapping keeps
    the bytes of the ones the model lets go (int8 weights, copied by their prepack) counted."""
    folder = converted_dir()
    if key is None or folder is None:
        return None
    path = folder / f"{key.name}.safetensors"
    if not path.is_file():
        return None
    try:
        if mapped:
            from safetensors.torch import load_file

            return load_file(str(path))
        return read_safetensors(path, None)
    except Exception:  # noqa: BLE001 - a torn or corrupt entry: convert again
        path.unlink(missing_ok=True)
        return None


def keep_tensors(key: CacheKey | None, tensors: dict[str, torch.Tensor]) -> None:
    """Write `tensors` under `key` (write_safetensors into a temporary file, then os.replace: a
    reader sees the whole entry or none), then remove the entries of its kind whose source files
    are gone or changed (a checkpoint replaced, a temporary folder deleted): none of them can be
    read again. A failure (a read-only or full disk) leaves no entry and is not an error: the
    next load converts again."""
    import json
    import tempfile
    import time

    folder = converted_dir()
    if key is None or folder is None:
        return
    tmp = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{key.name}-", suffix=".tmp", dir=folder)
        with os.fdopen(fd, "wb") as f:
            write_safetensors(f, tensors, {"sources": json.dumps(key.sources)})
        os.replace(tmp, folder / f"{key.name}.safetensors")
        tmp = None
        for entry in folder.glob(f"{key.kind}-*.safetensors"):
            if entry.name != f"{key.name}.safetensors" and _stale(entry):
                entry.unlink(missing_ok=True)
        # a write a killed process left half done (up to the UNet's 1.7 GB): gone after an hour,
        # which no write of another process still running takes
        for part in folder.glob(".*.tmp"):
            if time.time() - part.stat().st_mtime > 3600:
                part.unlink(missing_ok=True)
    except (OSError, ValueError, RuntimeError):
        pass
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def _stale(entry: Path) -> bool:
    """Whether a cache entry's source files (its header's metadata) are gone or changed. An entry
    that says nothing of them, or cannot be read, is left alone."""
    import json
    import struct

    try:
        with open(entry, "rb") as f:
            (size,) = struct.unpack("<Q", f.read(8))
            if size > 100 << 20:  # no header is this large: a corrupt length, not one to read
                return False
            sources = json.loads(json.loads(f.read(size))["__metadata__"]["sources"])
    except (OSError, ValueError, KeyError, TypeError, struct.error):
        return False
    for path, size, mtime in sources:
        try:
            stat = os.stat(path)
        except OSError:
            return True
        if (stat.st_size, stat.st_mtime_ns) != (size, mtime):
            return True
    return False


def write_safetensors(f: Any, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    """`tensors` (and `metadata`, the format's string to string `__metadata__`) in the .safetensors
    format (read_safetensors' counterpart), each written from its own memory: safetensors'
    save_file first copies every tensor into a bytes object (1.7 GB more for SD-Turbo's UNet).
    Tensors that share memory are written apart."""
    import json
    import struct

    import torch

    names = {getattr(torch, v): k for k, v in _SAFETENSORS_DTYPES.items()}
    header: dict[str, Any] = {"__metadata__": metadata} if metadata else {}
    parts = []
    offset = 0
    for name, t in tensors.items():
        t = t.detach().contiguous()
        size = t.numel() * t.element_size()
        header[name] = {"dtype": names[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + size]}
        parts.append(t)
        offset += size
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # the format aligns the data to 8 bytes
    f.write(struct.pack("<Q", len(raw)) + raw)
    for t in parts:
        if t.numel():
            f.write(t.reshape(-1).view(torch.uint8).numpy().data)


def source_files(model_id: str, subfolder: str = "") -> list[Path] | None:
    """The files a model's load reads (its config and weights: *.json, *.safetensors, *.bin), in a
    local folder or the Hub's cache; None where they are not on disk here."""
    root = Path(model_id).expanduser()
    if not is_local(model_id):
        try:
            from huggingface_hub import try_to_load_from_cache

            hit = try_to_load_from_cache(model_id, f"{subfolder}/config.json" if subfolder else "config.json")
        except Exception:  # noqa: BLE001 - an id the hub library rejects: nothing to key on
            return None
        if not isinstance(hit, str):
            return None
        root = Path(hit).parent
    elif subfolder:
        root = root / subfolder
    found = sorted(p for p in root.glob("*") if p.suffix in (".json", ".safetensors", ".bin") and p.is_file())
    return found or None


def int8_cached(
    key: CacheKey | None, skeleton: Callable[[], Any], convert: Callable[[dict[str, torch.Tensor] | None], Any]
) -> Any:
    """A model with int8 linears: from the entry under `key` (its tensors put into `skeleton()`, the
    model built on the meta device, its nn.Linear layers made int8 from the kept int8 weights:
    the same bytes as int8_linears makes), else `convert(kept)` (the read and int8_linears, its int8 weights put in `kept`), kept under
    `key` for the next process. A kept entry that does not fit the skeleton is converted again."""
    state = cached_tensors(key)
    if state is not None:
        try:
            return _int8_from_tensors(skeleton(), state)  # which empties `state`: no int8 weight held twice
        except Exception:  # noqa: BLE001 - an entry that does not fit (another checkpoint layout): convert
            pass
    if key is None:
        return convert(None)
    weights: dict[str, torch.Tensor] = {}  # the int8 weights as convert() quantizes them (int8_linears' `kept`)
    model = convert(weights)
    keep_tensors(key, _int8_tensors(model, weights))
    weights.clear()
    release_freed_memory()  # the int8 weights written (the model holds them prepacked)
    return model


def _int8_tensors(model: Any, weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Every tensor of a model with int8 linears: each int8 layer's weight as its int8 values,
    scale and zero point (per tensor, as default_dynamic_qconfig quantizes), its bias, and every
    other parameter and buffer (the non-persistent ones too: the meta skeleton has none)."""
    import torch

    dynamic = torch.ao.nn.quantized.dynamic.Linear
    out: dict[str, torch.Tensor] = {}
    for prefix, module in model.named_modules():
        at = f"{prefix}." if prefix else ""
        if isinstance(module, dynamic):
            if f"{prefix}.weight" in weights:
                weight, bias = weights[f"{prefix}.weight"], weights.get(f"{prefix}.bias")
            else:
                weight, bias = module._weight_bias()
            if weight.qscheme() != torch.per_tensor_affine:
                raise ValueError(f"{prefix}: a {weight.qscheme()} weight; the cache keeps per-tensor ones")
            out[f"{at}int8.weight"] = weight.int_repr()
            out[f"{at}int8.scale"] = torch.tensor([weight.q_scale()], dtype=torch.float64)
            out[f"{at}int8.zero_point"] = torch.tensor([weight.q_zero_point()], dtype=torch.int64)
            if bias is not None:
                out[f"{at}int8.bias"] = bias
            continue
        for name, t in [*module.named_parameters(recurse=False), *module.named_buffers(recurse=False)]:
            if t is not None:
                out[at + name] = t
    return out


def _int8_from_tensors(model: Any, state: dict[str, torch.Tensor]) -> Any:
    """`model` (built on the meta device) with `state`'s tensors put in and each nn.Linear that has
    kept int8 weights made a dynamic int8 one; prepacked on torch's threads at once, as in
    int8_linears. Raises where a tensor is missing or left over, or one stays on the meta device."""
    from concurrent.futures import ThreadPoolExecutor

    import torch

    model = model.eval()  # `state` is emptied as its tensors go in: each int8 weight freed once prepacked
    found = [
        (p, n, c, q) for q, p in model.named_modules() for n, c in p.named_children() if type(c) is torch.nn.Linear
    ]
    for prefix, module in model.named_modules():
        at = f"{prefix}." if prefix else ""
        if type(module) is torch.nn.Linear and f"{at}int8.weight" in state:
            continue
        for table in (module._parameters, module._buffers):
            for name, t in list(table.items()):
                if t is None:
                    continue
                value = state.pop(at + name)
                if value.shape != t.shape:
                    raise ValueError(f"{at}{name}: kept {tuple(value.shape)}, the model has {tuple(t.shape)}")
                table[name] = torch.nn.Parameter(value, t.requires_grad) if name in module._parameters else value

    def int8(child: Any, at: str) -> Any:
        weight = torch._make_per_tensor_quantized_tensor(
            state.pop(f"{at}int8.weight"), float(state.pop(f"{at}int8.scale")), int(state.pop(f"{at}int8.zero_point"))
        )
        return _int8_layer(weight, state.pop(f"{at}int8.bias", None), child.in_features, child.out_features)

    named = [(p, n, c, f"{q}.{n}." if q else f"{n}.") for p, n, c, q in found]
    layers = [(p, n, c, at) for p, n, c, at in named if f"{at}int8.weight" in state]
    with ThreadPoolExecutor(max(1, torch.get_num_threads())) as pool:
        made = list(pool.map(lambda job: int8(job[2], job[3]), layers))
    for (parent, name, _child, _at), layer in zip(layers, made, strict=True):
        setattr(parent, name, layer)
    if state:
        raise ValueError(f"kept tensors the model does not have: {', '.join(sorted(state)[:3])}")
    if any(t.is_meta for t in [*model.parameters(), *model.buffers()]):
        raise ValueError("a tensor of the model was not kept")
    release_freed_memory()  # the int8 weights read, each copied by its prepack
    return model
