"""`lasso verify` and the Verification behind it: exact counts on constructed pairs."""

import json

import numpy as np
import pytest
from PIL import Image

from lasso_edit.core.errors import InvalidInputError
from lasso_edit.imaging.verify import diff_picture, verify

from ..helpers import noise_image, run_cli, save


@pytest.fixture()
def pair():
    before = noise_image(60, 80, seed=1)
    mask = np.zeros((60, 80), np.uint8)
    mask[10:30, 20:50] = 255
    return before, mask


def test_identical_images_are_identical_outside_with_infinite_psnr(pair):
    before, mask = pair
    v = verify(before, before.copy(), mask)
    assert v.identical_outside and v.changed_outside == 0 and v.changed_inside == 0
    assert v.psnr_outside is None and v.mse_outside == 0.0 and v.ssim_outside == 1.0 and v.containment is None
    assert v.outside_pixels == 60 * 80 - 20 * 30 and v.line() == "outside the mask: 0 of 4,200 pixels changed"


def test_changes_inside_the_mask_alone_are_contained(pair):
    before, mask = pair
    after = before.copy()
    after[12:28, 25:45] = 0
    v = verify(before, after, mask)
    assert v.identical_outside and v.changed_outside == 0
    assert v.changed_inside == int((before[12:28, 25:45] != 0).any(axis=2).sum())
    assert v.containment == 1.0 and v.bbox_outside is None


def test_a_one_level_change_in_37_pixels_outside_is_counted_exactly(pair):
    before, mask = pair
    after = before.copy()
    rng = np.random.default_rng(3)
    outside = np.argwhere(mask == 0)
    picked = outside[rng.choice(len(outside), 37, replace=False)]
    for y, x in picked:
        c = int(rng.integers(0, 3))
        after[y, x, c] = before[y, x, c] + 1 if before[y, x, c] < 255 else 254
    after[15, 30] = 255 - before[15, 30]  # and one inside
    v = verify(before, after, mask)
    assert v.changed_outside == 37 and v.changed_inside == 1 and not v.identical_outside
    ys, xs = picked[:, 0], picked[:, 1]
    assert v.bbox_outside == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    mse = 37 * (1 / 255) ** 2 / (60 * 80 * 3)  # PIE-Bench's: the masked images over the whole frame
    assert v.mse_outside == pytest.approx(mse) and v.psnr_outside == pytest.approx(10 * np.log10(1 / mse))
    assert v.containment == pytest.approx(1 / 38) and 0.99 < v.ssim_outside < 1.0


def test_sizes_that_differ_are_bad_input_naming_both():
    with pytest.raises(InvalidInputError, match="before is 80x60, after 81x60"):
        verify(noise_image(60, 80), noise_image(60, 81))
    with pytest.raises(InvalidInputError, match="the mask is 10x10; the images are 80x60"):
        verify(noise_image(60, 80), noise_image(60, 80), np.zeros((10, 10)))


def test_sixteen_bit_samples_are_compared_at_sixteen_bits_and_alpha_counts(tmp_path):
    import cv2

    from lasso_edit.imaging import load_image

    deep = (np.random.default_rng(0).integers(0, 65536, (20, 30, 3))).astype(np.uint16)
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    cv2.imwrite(str(a), deep)
    low = deep.copy()
    low[5, 7, 0] ^= 1  # the low byte alone: invisible at 8 bits
    cv2.imwrite(str(b), low)
    v = verify(load_image(a), load_image(b))
    assert v.bits == 16 and v.changed_outside == 1 and v.bbox_outside == (7, 5, 8, 6)
    rgba = np.dstack([noise_image(10, 10), np.full((10, 10), 255, np.uint8)])
    clear = rgba.copy()
    clear[2, 3, 3] = 0  # only the alpha changed
    assert verify(rgba, clear).changed_outside == 1
    assert verify(rgba[..., :3], rgba).changed_outside == 0  # opaque alpha equals no alpha


def test_a_jpeg_pair_is_compared_decoded_and_says_so(tmp_path):
    from lasso_edit.imaging import load_image

    img = noise_image(32, 32)
    Image.fromarray(img).save(tmp_path / "a.jpg", quality=90)
    Image.fromarray(img).save(tmp_path / "b.png")
    v = verify(load_image(tmp_path / "a.jpg"), load_image(tmp_path / "b.png"))
    assert v.decoded_jpeg and v.changed_outside > 0 and "compared decoded (JPEG)" in v.line()


def test_the_difference_picture_marks_changes_outside_in_magenta_and_inside_in_yellow(pair):
    before, mask = pair
    after = before.copy()
    after[0, 0] = 255 - before[0, 0]  # outside
    after[15, 30] = 255 - before[15, 30]  # inside
    d = diff_picture(before, after, mask)
    assert tuple(d[0, 0]) == (255, 0, 255) and tuple(d[15, 30]) == (255, 210, 0)
    assert (d[1:, 1:][mask[1:, 1:] == 0].max(axis=-1) <= 100).all()  # the rest dimmed grey


def test_the_cli_exits_0_6_or_2_and_writes_json_with_plain_keys(tmp_path, pair):
    before, mask = pair
    a, m = save(before, tmp_path / "a.png"), save(mask, tmp_path / "m.png")
    same = save(before, tmp_path / "same.png")
    r = run_cli("verify", str(a), str(same), "--mask", str(m))
    assert r.returncode == 0 and "outside the mask: 0 of 4,200 pixels changed" in r.stdout
    after = before.copy()
    after[0, :37] = 255 - after[0, :37]
    b = save(after, tmp_path / "b.png")
    r = run_cli("verify", str(a), str(b), "--mask", str(m), "--json", "--diff", str(tmp_path / "d.png"))
    assert r.returncode == 6
    got = json.loads(r.stdout)
    for key in ("changed_outside", "changed_inside", "psnr_outside", "ssim_outside", "mse_outside", "containment",
                "identical_outside"):
        assert key in got
    assert got["changed_outside"] == 37 and got["identical_outside"] is False and got["bbox_outside"] == [0, 0, 37, 1]
    assert tuple(np.asarray(Image.open(tmp_path / "d.png"))[0, 0]) == (255, 0, 255)
    r = run_cli("verify", str(a), str(save(noise_image(10, 10), tmp_path / "small.png")))  # another size: not kept
    assert r.returncode == 6 and "BEFORE is 80x60, AFTER 10x10" in r.stdout and "Traceback" not in r.stderr
    assert "drift: AFTER (10x10) does not look like BEFORE (80x60) at another size" in r.stdout
    r = run_cli("verify", str(a), str(b), "--diff", str(a))
    assert r.returncode == 2 and "never overwrites" in r.stderr


# --------------------------------------------------------------------------- the proof on every edit
def test_lasso_edit_prints_and_records_its_own_proof_and_a_lossy_output_says_so_in_numbers(tiny_dir, tmp_path):
    from ..helpers import scene

    src = save(scene(), tmp_path / "in.png")
    r = run_cli("edit", str(src), "remove the red disc", "--preset", "tiny", "--grounder", "vlm", "-o",
                str(tmp_path / "out.png"), "--plan-out", str(tmp_path / "plan.json"))
    assert r.returncode == 0, r.stderr
    proof = json.loads((tmp_path / "plan.json").read_text())["preservation"]
    assert proof["identical_outside"] and proof["changed_outside"] == 0
    assert f"outside the mask: 0 of {proof['outside_pixels']:,} pixels changed" in r.stdout
    r = run_cli("edit", str(src), "remove the red disc", "--preset", "tiny", "--grounder", "vlm", "-o",
                str(tmp_path / "out.jpg"), "--plan-out", str(tmp_path / "lossy.json"))
    lossy = json.loads((tmp_path / "lossy.json").read_text())["preservation"]
    assert not lossy["identical_outside"] and lossy["changed_outside"] > 0 and lossy["decoded_jpeg"]
    assert "compared decoded (JPEG)" in r.stdout and "PSNR" in r.stdout


def test_batch_results_and_session_steps_carry_the_proof(tiny_editor, tmp_path):
    from lasso_edit.batch import BatchRunner, read_items
    from lasso_edit.sessions.session import SessionStore

    from ..helpers import scene

    src = save(scene(), tmp_path / "a.png")
    (tmp_path / "m.jsonl").write_text(json.dumps({"image": str(src), "instruction": "remove the red disc"}) + "\n")
    BatchRunner(tiny_editor, tmp_path / "out", settings={}).run(read_items(tmp_path / "m.jsonl"))
    rec = json.loads((tmp_path / "out" / "results.jsonl").read_text().splitlines()[-1])
    assert rec["status"] == "ok" and rec["preservation"]["identical_outside"] is True
    session = SessionStore(tmp_path / "sessions").create(src)
    step = session.apply(tiny_editor, "remove the red disc", seed=1)
    assert step.preservation["identical_outside"] and step.preservation["changed_inside"] > 0


def test_the_http_api_answers_the_proof_in_json_and_in_a_header(tiny_editor, tmp_path):
    from fastapi.testclient import TestClient

    from lasso_edit.server.app import ServerSettings, create_app

    from ..helpers import scene

    png = (tmp_path / "a.png")
    save(scene(), png)
    settings = ServerSettings(preset="tiny", data_dir=str(tmp_path / "serve"))
    with TestClient(create_app(settings, editor=tiny_editor), base_url="http://127.0.0.1") as client:
        files = {"image": ("a.png", png.read_bytes(), "image/png")}
        r = client.post("/v1/edit", data={"instruction": "remove the red disc", "seed": "1"}, files=files,
                        headers={"accept": "application/json"})
        assert r.status_code == 200 and r.json()["preservation"]["identical_outside"] is True
        r = client.post("/v1/edit", data={"instruction": "remove the red disc", "seed": "1"}, files=files)
        assert r.status_code == 200 and r.headers["x-lasso-changed-outside"] == "0"


def _torchmetrics_ssim(x, y):
    """StructuralSimilarityIndexMeasure(data_range=1.0) as torchmetrics computes it (its
    functional/image/ssim.py: an 11x11 Gaussian of sigma 1.5, reflect padding, the 5-pixel border
    cropped), written in torch here: the reference PIE-Bench's numbers come from."""
    import torch
    import torch.nn.functional as F

    def t(a):
        return torch.tensor(a, dtype=torch.float64).permute(2, 0, 1)[None]

    x, y = t(x), t(y)
    g = torch.exp(-((torch.arange(11, dtype=torch.float64) - 5) ** 2) / (2 * 1.5**2))
    g = (g / g.sum())
    k = (g[:, None] * g[None, :]).expand(x.shape[1], 1, 11, 11)
    pad = lambda z: F.pad(z, (5, 5, 5, 5), mode="reflect")  # noqa: E731
    conv = lambda z: F.conv2d(pad(z), k, groups=x.shape[1])  # noqa: E731
    mx, my = conv(x), conv(y)
    sxx, syy, sxy = conv(x * x) - mx**2, conv(y * y) - my**2, conv(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    m = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx**2 + my**2 + c1) * (sxx + syy + c2))
    return float(m[..., 5:-5, 5:-5].mean())


def test_psnr_mse_and_ssim_are_pie_benchs_masked_whole_frame_numbers(pair):
    before, mask = pair
    after = before.copy()
    rng = np.random.default_rng(5)
    noise = rng.integers(-20, 21, before.shape)
    after = np.clip(before.astype(int) + noise, 0, 255).astype(np.uint8)
    v = verify(before, after, mask)
    keep = (mask == 0)[..., None]
    x, y = before / 255.0 * keep, after / 255.0 * keep  # PIE-Bench: the edit region zeroed in both
    mse = float(((x - y) ** 2).mean())
    assert v.mse_outside == pytest.approx(mse, rel=1e-9)
    assert v.psnr_outside == pytest.approx(10 * np.log10(1 / mse), rel=1e-9)
    assert v.ssim_outside == pytest.approx(_torchmetrics_ssim(x, y), abs=1e-6)


def test_strips_of_rows_give_the_whole_frames_numbers(pair, monkeypatch):
    import lasso_edit.imaging.verify as v

    before, mask = pair
    after = np.clip(before.astype(int) + np.random.default_rng(9).integers(-9, 10, before.shape), 0, 255)
    after = after.astype(np.uint8)
    whole = verify(before, after, mask)
    monkeypatch.setattr(v, "STRIP", 7)  # 60 rows in strips of 7: every seam inside a window
    strips = verify(before, after, mask)
    assert strips.ssim_outside == pytest.approx(whole.ssim_outside, abs=1e-12)
    assert strips.mse_outside == pytest.approx(whole.mse_outside, rel=1e-12)


# --------------------------------------------------------------------------- every mode at its own depth
def _files(kind: str, folder):
    """(before, after) files of `kind`, 12x16, `after` one least significant bit apart at (3, 5)."""
    import cv2

    from lasso_edit.imaging.png import encode

    rng = np.random.default_rng(11)
    a, b = folder / f"a-{kind}", folder / f"b-{kind}"

    def pillow(arr, mode, suffix, change):
        after = arr.copy()
        change(after)
        for pixels, path in ((arr, a), (after, b)):
            img = Image.fromarray(pixels) if mode == "1" else Image.fromarray(pixels, mode)  # bool: mode "1"
            img.save(path.with_suffix(suffix))
        return a.with_suffix(suffix), b.with_suffix(suffix)

    def flip(arr):
        arr[3, 5, ...] ^= 1 if arr.dtype != bool else True

    if kind in ("grey16.png", "grey16.tif", "rgb48.png", "rgb48.tif", "rgba64.png"):
        shape = {"grey16": (12, 16), "rgb48": (12, 16, 3), "rgba64": (12, 16, 4)}[kind.split(".")[0]]
        deep = rng.integers(0, 65536, shape).astype(np.uint16)
        deep |= 0x0101  # no value a multiple of 257 by chance
        after = deep.copy()
        after[3, 5, ...] ^= 1 if deep.ndim == 2 else np.array([1] + [0] * (shape[-1] - 1), np.uint16)
        suffix = "." + kind.split(".")[1]
        cv2.imwrite(str(a.with_suffix(suffix)), deep)
        cv2.imwrite(str(b.with_suffix(suffix)), after)
        return a.with_suffix(suffix), b.with_suffix(suffix)
    if kind == "grey-alpha16.png":  # 16-bit grey + alpha (PNG colour type 4): Pillow opens it as 8-bit RGBA
        deep = rng.integers(0, 65536, (12, 16, 2)).astype(np.uint16) | 0x0101
        after = deep.copy()
        after[3, 5, 0] ^= 1
        a.with_suffix(".png").write_bytes(encode(deep))
        b.with_suffix(".png").write_bytes(encode(after))
        return a.with_suffix(".png"), b.with_suffix(".png")
    if kind == "int32.tif":
        return pillow(rng.integers(0, 2**24, (12, 16)).astype(np.int32), "I", ".tif", flip)
    if kind == "float.tif":
        f = rng.random((12, 16)).astype(np.float32)

        def nudge(arr):
            arr[3, 5] = np.nextafter(arr[3, 5], np.float32(2))

        return pillow(f, "F", ".tif", nudge)
    if kind == "cmyk.tif":  # C + K past 255: RGB cannot tell a one-level change of K apart
        cmyk = np.full((12, 16, 4), 200, np.uint8)

        def ink(arr):
            arr[3, 5, 3] = 201

        return pillow(cmyk, "CMYK", ".tif", ink)
    if kind == "palette.png":
        idx = rng.integers(0, 2, (12, 16)).astype(np.uint8)
        idx[3, 5] = 0
        before, after = Image.fromarray(idx, "P"), Image.fromarray(np.where(np.arange(idx.size).reshape(idx.shape)
                                                                              == 3 * 16 + 5, 1, idx).astype(np.uint8),
                                                                     "P")
        for img in (before, after):
            img.putpalette([10, 20, 30, 11, 20, 30] + [0] * 762)  # entry 1 is entry 0, one level redder
        before.save(a.with_suffix(".png"))
        after.save(b.with_suffix(".png"))
        return a.with_suffix(".png"), b.with_suffix(".png")
    if kind == "bilevel.png":
        return pillow(rng.integers(0, 2, (12, 16)).astype(bool), "1", ".png", flip)
    mode, channels = {"grey.png": ("L", 1), "grey-alpha.png": ("LA", 2), "rgb.png": ("RGB", 3),
                      "rgba.png": ("RGBA", 4)}[kind]
    arr = rng.integers(0, 256, (12, 16, channels)).astype(np.uint8)
    return pillow(arr[..., 0] if channels == 1 else arr, mode, ".png", flip)


@pytest.mark.parametrize("kind,bits", [
    ("grey16.png", 16), ("grey16.tif", 16), ("grey-alpha16.png", 16), ("rgb48.png", 16), ("rgb48.tif", 16),
    ("rgba64.png", 16), ("int32.tif", 32), ("float.tif", 32), ("grey.png", 8), ("grey-alpha.png", 8),
    ("rgb.png", 8), ("rgba.png", 8), ("palette.png", 8), ("cmyk.tif", 8), ("bilevel.png", 1),
])
def test_lasso_verify_compares_every_mode_lasso_reads_at_the_files_own_depth(tmp_path, kind, bits):
    before, after = _files(kind, tmp_path)
    mask = np.zeros((12, 16), np.uint8)
    mask[6:, 8:] = 255  # the change at (3, 5) is outside it
    m = save(mask, tmp_path / "mask.png")
    r = run_cli("verify", str(before), str(before), "--mask", str(m), "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["bits"] == bits, r.stdout + r.stderr
    r = run_cli("verify", str(before), str(after), "--mask", str(m), "--json")
    got = json.loads(r.stdout)
    assert r.returncode == 6, r.stdout + r.stderr
    assert got["changed_outside"] == 1 and got["bbox_outside"] == [5, 3, 6, 4] and got["bits"] == bits


def test_lasso_verify_reads_a_16_bit_mask_at_its_own_depth(tmp_path):
    import cv2

    before = noise_image(12, 16)
    after = before.copy()
    after[3, 5, 0] ^= 1
    mask = np.zeros((12, 16), np.uint16)
    mask[3, 5], mask[0, 0] = 100, 65535  # 100 of 65535: allowed to change, though it rounds to 0 at 8 bits
    cv2.imwrite(str(tmp_path / "m.png"), mask)
    r = run_cli("verify", str(save(before, tmp_path / "a.png")), str(save(after, tmp_path / "b.png")), "--mask",
                str(tmp_path / "m.png"), "--json")
    got = json.loads(r.stdout)
    assert r.returncode == 0 and got["changed_inside"] == 1 and got["inside_pixels"] == 2, r.stdout + r.stderr


@pytest.mark.parametrize("name", ["a.ppm", "a.pgm"])
def test_verify_catches_a_1_lsb_change_in_a_16_bit_pnm(tmp_path, name):
    rng = np.random.default_rng(9)
    a = rng.integers(0, 65535, (20, 24, 3) if name.endswith(".ppm") else (20, 24), dtype=np.uint16)
    magic = b"P6" if a.ndim == 3 else b"P5"

    def pnm(x, path):
        path.write_bytes(magic + b"\n24 20\n65535\n" + x.astype(">u2").tobytes())
        return path

    b = a.copy()
    b[3, 4] ^= 1  # the lowest bit: Pillow alone reads PPM's high byte (and PGM's whole)
    m = save(np.zeros((20, 24), np.uint8), tmp_path / "m.png")
    r = run_cli("verify", str(pnm(a, tmp_path / name)), str(pnm(b, tmp_path / f"b{name}")), "--mask", str(m))
    assert r.returncode == 6 and "16-bit samples compared" in r.stdout and "1 of 480 pixels changed" in r.stdout


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_the_fast_comparison_finds_exactly_the_changed_pixels(dtype, channels):
    """Issue 34: integer images are compared by strips with OpenCV (ten times faster at 24 MP);
    every pixel with any sample changed is found, in strips with changes and between them."""
    from lasso_edit.imaging import verify as v

    rng = np.random.default_rng(channels)
    a = rng.integers(0, np.iinfo(dtype).max, (700, 90, channels), dtype=dtype)
    b = a.copy()
    for y, x, c in [(0, 0, 0), (300, 45, channels - 1), (699, 89, 0), (520, 7, channels // 2)]:
        b[y, x, c] ^= 1  # one sample, one step: the smallest change
    b[600:610, 20:30] = 0
    want = (a != b).any(axis=2)
    got = v._changed(a, b)
    assert got.dtype == bool and (got == want).all() and got.sum() == want.sum() > 4
    assert not v._changed(a, a.copy()).any()


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "P"])
def test_the_proof_lets_the_decoded_copy_go_and_proves_what_verify_proves(tmp_path, mode, monkeypatch):
    """Issue 34 (memory): prove() reads the written file and lets Pillow's decoded copy go before
    comparing (its samples are in rgb and alpha for these modes: 400 MB at 100 MP); what it
    proves is what verify() says of the two files."""
    from lasso_edit.imaging import load_image
    from lasso_edit.imaging import verify as v

    rgb = noise_image(40, 60)
    before = Image.fromarray(rgb).convert(mode)
    after_pixels = rgb.copy()
    after_pixels[10:20, 10:30] = 0
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    before.save(a)
    Image.fromarray(after_pixels).convert(mode).save(b)
    mask = np.zeros((40, 60), bool)
    mask[12:18, 12:28] = True
    seen = []
    real = v.verify
    monkeypatch.setattr(v, "verify", lambda x, y, m: seen.append(y) or real(x, y, m))
    got = v.prove(load_image(a), b, mask)
    assert seen[0].stored is None
    assert got == real(load_image(a), load_image(b), mask) and got.changed_outside > 0
