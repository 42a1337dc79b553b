"""The converted-weights cache (core/loading.py; issue 32, the first edit after start): what a CPU
load converts (the turbo painter's UNet cast to its dtype, the int8 linears of its text encoder and
of the lite preset's OWL-ViT) is kept on disk and read back by the next load, which then paints and
detects the same bytes. Every test keeps the cache in its own temporary folder ($LASSO_CACHE)."""

from pathlib import Path

import numpy as np
import pytest
import torch

from lasso_edit.core import loading
from lasso_edit.edit.painters import PaintRequest


@pytest.fixture()
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("LASSO_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("LASSO_CONVERTED_CACHE", raising=False)
    return tmp_path / "cache" / "converted"


@pytest.fixture(scope="module")
def owlvit_dir(tmp_path_factory) -> Path:
    from lasso_edit.testing.tiny import build_tiny_owlvit

    return build_tiny_owlvit(tmp_path_factory.mktemp("owlvit"))


def _entries(cache: Path) -> dict[str, int]:
    """{kind: how many entries} in the cache folder (an entry is KIND-HASH.safetensors)."""
    kinds: dict[str, int] = {}
    for p in cache.glob("*.safetensors") if cache.is_dir() else []:
        kind = p.name.rsplit("-", 1)[0]
        kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


def _scene() -> tuple[np.ndarray, np.ndarray]:
    image = np.asarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3)), dtype=np.uint8)
    mask = np.zeros((64, 64), dtype=bool)
    mask[16:48, 20:44] = True
    return image, mask


def _paint(turbo_dir: Path) -> tuple[bytes, object]:
    """A freshly loaded turbo painter's picture of the scene (bf16, as on a CPU with bf16 instructions)."""
    from lasso_edit.edit.inpaint import Inpainter

    inpainter = Inpainter.from_pretrained(f"turbo:{turbo_dir}", device="cpu", dtype=torch.bfloat16)
    request = PaintRequest("a green bowl, photo", "", "replace the cup", "replace", 1, 0.0, seed=3)
    image, mask = _scene()
    return inpainter.painter.paint(image, mask, request).tobytes(), inpainter.pipe


def test_the_turbo_painter_paints_the_same_bytes_from_the_cache_as_converting(turbo_dir, cache, monkeypatch):
    """The first load converts and keeps the UNet (bf16) and the int8 text encoder; the next load
    reads them back (a kept UNet weight changed on disk shows in the loaded UNet: the entry is what
    was read) and paints the bytes the load without a cache paints."""
    monkeypatch.setenv("LASSO_CONVERTED_CACHE", "0")
    plain, _ = _paint(turbo_dir)
    assert _entries(cache) == {}  # turned off: nothing written

    monkeypatch.delenv("LASSO_CONVERTED_CACHE")
    first, _ = _paint(turbo_dir)
    assert _entries(cache) == {"unet": 1, "clip-text-int8": 1}
    again, pipe = _paint(turbo_dir)
    assert first == plain and again == plain
    assert pipe.unet.dtype == torch.bfloat16
    assert not any(type(m) is torch.nn.Linear for m in pipe.text_encoder.modules())

    # the next load reads the entry, not the checkpoint: a weight changed in the entry is loaded
    (unet_entry,) = cache.glob("unet-*.safetensors")
    kept = loading.read_safetensors(unet_entry, None)
    name = next(k for k, v in kept.items() if v.is_floating_point() and v.numel() > 1)
    kept[name] = kept[name] + 1
    with open(unet_entry, "wb") as f:
        loading.write_safetensors(f, kept)
    _, pipe = _paint(turbo_dir)
    assert torch.equal(pipe.unet.state_dict()[name], kept[name])


def test_a_corrupt_entry_is_converted_again_and_rewritten(turbo_dir, cache):
    """A torn entry (cut short) or one that is not a safetensors file: the load converts, paints
    the same bytes and writes the entry afresh."""
    want, _ = _paint(turbo_dir)
    (unet_entry,) = cache.glob("unet-*.safetensors")
    (text_entry,) = cache.glob("clip-text-int8-*.safetensors")
    size = unet_entry.stat().st_size
    with open(unet_entry, "r+b") as f:
        f.truncate(size // 2)
    text_entry.write_bytes(b"not a safetensors file")
    got, _ = _paint(turbo_dir)
    assert got == want
    assert unet_entry.stat().st_size == size and loading.read_safetensors(text_entry, None)
    assert _entries(cache) == {"unet": 1, "clip-text-int8": 1}


def test_a_changed_checkpoint_is_converted_again_and_its_old_entry_removed(turbo_dir, cache, tmp_path):
    """The key is the source file's identity: the same UNet file with a new mtime is converted
    again; writing its entry removes the old one (its source changed), and the entries of a
    checkpoint folder since deleted go when another of their kind is written."""
    import os
    import shutil

    copy = Path(shutil.copytree(turbo_dir, tmp_path / "turbo"))
    _paint(copy)
    (old,) = cache.glob("unet-*.safetensors")
    weights = next((copy / "unet").glob("*.safetensors"))
    stat = weights.stat()
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    _paint(copy)
    (new,) = cache.glob("unet-*.safetensors")
    assert new != old and _entries(cache) == {"unet": 1, "clip-text-int8": 1}

    shutil.rmtree(copy)
    _paint(turbo_dir)
    (kept,) = cache.glob("unet-*.safetensors")
    assert kept not in (old, new) and _entries(cache) == {"unet": 1, "clip-text-int8": 1}


def test_an_unwritable_cache_folder_only_means_converting(turbo_dir, tmp_path, monkeypatch):
    """A cache folder that cannot be made (a file is in its way): the load converts, as without one."""
    (tmp_path / "blocked").write_text("a file where the cache folder would go")
    monkeypatch.setenv("LASSO_CACHE", str(tmp_path / "blocked"))
    monkeypatch.setenv("LASSO_CONVERTED_CACHE", "0")
    want, _ = _paint(turbo_dir)
    monkeypatch.delenv("LASSO_CONVERTED_CACHE")
    got, _ = _paint(turbo_dir)
    assert got == want


def test_the_lite_detector_detects_the_same_from_its_kept_int8_model(owlvit_dir, cache):
    """The lite preset's OWL-ViT on a CPU (int8 linears): built from the kept entry, the same int8
    weights and scales, the same scores and boxes, no nn.Linear left, nothing on the meta device."""
    from lasso_edit.core.presets import PRESETS
    from lasso_edit.core.stages import LoadOptions
    from lasso_edit.ground.detector import Detector

    options = LoadOptions(device="cpu", preset=PRESETS["lite"])
    image = np.asarray(np.random.default_rng(1).integers(0, 256, (96, 128, 3)), dtype=np.uint8)
    converted = Detector.build(str(owlvit_dir), options)
    assert list(_entries(cache)) == ["OwlViTForObjectDetection-int8"]
    kept = Detector.build(str(owlvit_dir), options)
    assert not any(type(m) is torch.nn.Linear for m in kept.model.modules())
    assert not any(t.is_meta for t in [*kept.model.parameters(), *kept.model.buffers()])
    ours, theirs = dict(kept.model.named_modules()), dict(converted.model.named_modules())
    assert ours.keys() == theirs.keys()
    for name, a in theirs.items():
        if isinstance(a, torch.ao.nn.quantized.dynamic.Linear):
            wa, wb = a.weight(), ours[name].weight()
            assert wa.q_scale() == wb.q_scale() and torch.equal(wa.int_repr(), wb.int_repr()), name
    for name, t in converted.model.state_dict().items():
        if isinstance(t, torch.Tensor):
            assert torch.equal(t, kept.model.state_dict()[name]), name
    assert kept.detect(image, "cat") == converted.detect(image, "cat")


def test_the_cache_folder_follows_lasso_cache_then_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv("LASSO_CONVERTED_CACHE", raising=False)
    monkeypatch.setenv("LASSO_CACHE", str(tmp_path / "mine"))
    assert loading.converted_dir() == tmp_path / "mine" / "converted"
    monkeypatch.delenv("LASSO_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert loading.converted_dir() == tmp_path / "xdg" / "lasso" / "converted"
    monkeypatch.setenv("LASSO_CONVERTED_CACHE", "off")
    assert loading.converted_dir() is None and loading.converted_key("unet", [tmp_path], None) is None


def test_the_suite_keeps_converted_weights_out_of_the_home_cache(cache_home):
    """Every test, and every Lasso a test starts, keeps what it converts in the session's temporary
    folder (tests/conftest.py): a test run leaves nothing in ~/.cache."""
    assert loading.converted_dir() == cache_home / "converted"
    assert not loading.converted_dir().is_relative_to(Path.home() / ".cache")


def test_an_fp32_unet_is_read_again_not_kept(turbo_dir, cache):
    """On a CPU without bf16 instructions the UNet's fp16 file is cast to fp32 on each load: a kept
    fp32 copy would be twice the file on disk to save a cheap cast. The int8 text encoder is kept."""
    from lasso_edit.edit.inpaint import Inpainter

    inpainter = Inpainter.from_pretrained(f"turbo:{turbo_dir}", device="cpu", dtype=torch.float32)
    assert inpainter.pipe.unet.dtype == torch.float32
    assert _entries(cache) == {"clip-text-int8": 1}


def test_a_write_left_half_done_by_a_killed_process_goes_after_an_hour(turbo_dir, cache):
    """A temporary file a killed writer left (up to the UNet's 1.7 GB) is removed by the next
    write once it is an hour old; a younger one (another process may be writing it) stays."""
    import os
    import time

    cache.mkdir(parents=True)
    old, young = cache / ".unet-abc-1.tmp", cache / ".unet-def-2.tmp"
    for p in (old, young):
        p.write_bytes(b"torn")
    hour_ago = time.time() - 3700
    os.utime(old, (hour_ago, hour_ago))
    _paint(turbo_dir)  # converts and writes its entries
    assert not old.exists() and young.exists()
