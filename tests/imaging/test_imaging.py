
import numpy as np
import pytest
from PIL import Image, ImageCms

from lasso_edit.core.errors import InvalidImageError, InvalidInputError
from lasso_edit.imaging import check_output_path, load_image, restore, save_image
from lasso_edit.imaging.arrays import composite, crop_window, feather, mask_to_image, model_size

from ..helpers import noise_image, save


def _half_mask(h, w):
    m = np.zeros((h, w), bool)
    m[:, : w // 2] = True
    return m


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "LA", "CMYK", "I;16", "P", "1"])
def test_every_mode_loads_and_unchanged_pixels_stay_bit_identical(tmp_path, mode):
    rgb = noise_image(40, 30, seed=1)
    if mode == "I;16":
        src = Image.fromarray(noise_image(40, 30, 1, seed=2)[:, :, 0].astype(np.uint16) * 251)
    elif mode == "RGBA":
        src = Image.fromarray(noise_image(40, 30, 4, seed=3), "RGBA")
    else:
        src = Image.fromarray(rgb).convert(mode)
    ext = ".tif" if mode == "CMYK" else ".png"
    path = tmp_path / f"in{ext}"
    src.save(path)
    loaded = load_image(path)
    assert loaded.rgb.dtype == np.uint8 and loaded.rgb.shape == (40, 30, 3)
    assert (loaded.alpha is not None) == (mode in ("RGBA", "LA"))
    changed = _half_mask(40, 30)
    edited = loaded.rgb.copy()
    edited[changed] = (255, 0, 0)
    out = restore(loaded, edited, changed)
    assert out.size == (30, 40)
    if mode in ("RGB", "RGBA", "L", "LA", "CMYK", "I;16"):
        assert out.mode == mode
        a, b = np.asarray(out), np.asarray(Image.open(path))
        assert (a[~changed] == b[~changed]).all()
    else:  # palette and 1-bit cannot hold new colours losslessly
        assert out.mode in ("RGB", "L")


def test_sixteen_bit_scaled_not_clipped(tmp_path):
    a = np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)
    Image.fromarray(a).save(tmp_path / "g16.png")
    loaded = load_image(tmp_path / "g16.png")
    assert loaded.rgb.max() == 255 and loaded.rgb.min() == 0
    assert len(np.unique(loaded.rgb)) > 200  # a ramp, not everything clipped to 255


def test_exif_orientation_is_honoured(tmp_path):
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:, :20] = 255  # white on the left
    img = Image.fromarray(arr)
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 CW to display
    img.save(tmp_path / "r.jpg", exif=exif.tobytes(), quality=100)
    loaded = load_image(tmp_path / "r.jpg")
    assert loaded.rgb.shape[:2] == (40, 20)  # displayed portrait
    assert loaded.rgb[:20].mean() > 200 and loaded.rgb[20:].mean() < 50  # white is now on top


def test_bad_inputs_name_the_problem(tmp_path, monkeypatch):
    with pytest.raises(InvalidImageError, match="not found"):
        load_image(tmp_path / "missing.png")
    (tmp_path / "junk.png").write_bytes(b"not an image at all")
    with pytest.raises(InvalidImageError, match="a corrupt file, or not a picture"):
        load_image(tmp_path / "junk.png")
    good = tmp_path / "t.png"
    Image.fromarray(noise_image(64, 64)).save(good)
    (tmp_path / "trunc.png").write_bytes(good.read_bytes()[:200])
    with pytest.raises(InvalidImageError):
        load_image(tmp_path / "trunc.png")
    monkeypatch.setenv("LASSO_MAX_PIXELS", "1000")
    with pytest.raises(InvalidImageError, match="decompression-bomb"):
        load_image(good)
    with pytest.raises(InvalidImageError, match="folder"):
        load_image(tmp_path)


def test_output_path_checks(tmp_path):
    inp = tmp_path / "in.png"
    Image.fromarray(noise_image(16, 16)).save(inp)
    with pytest.raises(InvalidInputError, match="never overwrites"):
        check_output_path(tmp_path / "." / "in.png", inp)
    with pytest.raises(InvalidInputError, match="format"):
        check_output_path(tmp_path / "out.xyz", inp)
    with pytest.raises(InvalidInputError, match="does not exist"):
        check_output_path(tmp_path / "nope" / "out.png", inp)
    assert check_output_path(tmp_path / "out.png", inp).name == "out.png"


def test_save_is_atomic_and_jpeg_alpha_is_flattened_with_a_warning(tmp_path):
    img = Image.fromarray(noise_image(16, 16, 4), "RGBA")
    warnings = save_image(img, tmp_path / "o.jpg")
    assert warnings and "alpha" in warnings[0]
    assert Image.open(tmp_path / "o.jpg").mode == "RGB"
    assert save_image(img, tmp_path / "o.png") == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.jpg", "o.png"]  # no temporary files left


@pytest.mark.parametrize("w,h", [(333, 517), (1024, 96), (96, 1024), (6000, 4000), (64, 64)])
def test_model_size_keeps_aspect_and_multiples_of_8(w, h):
    tw, th = model_size(w, h, 512)
    assert tw % 8 == 0 and th % 8 == 0
    assert max(tw, th) <= 1024 and min(tw, th) >= 128
    if max(w, h) / min(w, h) < 4:  # inside the clamp, the aspect ratio is kept within rounding
        assert abs(tw / th - w / h) / (w / h) < 0.1


def test_crop_window_contains_region_with_context():
    m = np.zeros((400, 600), bool)
    m[100:150, 200:260] = True
    x0, y0, x1, y1 = crop_window(m, margin=0.25, min_side=64)
    assert x0 <= 200 and y0 <= 100 and x1 >= 260 and y1 >= 150
    assert x1 - x0 >= 60 + 2 * 15 - 1 and 0 <= x0 and x1 <= 600 and y1 <= 400


def test_composite_outside_alpha_is_bit_identical():
    orig, edit = noise_image(50, 70, seed=1), noise_image(50, 70, seed=2)
    region = np.zeros((50, 70), bool)
    region[10:30, 20:40] = True
    alpha = feather(region, 4)
    out = composite(orig, edit, alpha)
    assert (out[alpha == 0] == orig[alpha == 0]).all()
    assert (out[region] == edit[region]).all()  # fully repainted core
    ring = (alpha > 0) & (alpha < 1)
    assert ring.any() and not (ring & region).any()  # the feather ramps outside the core


def test_inward_feather_never_touches_outside():
    region = np.zeros((50, 50), bool)
    region[:, 25:] = True
    a = feather(region, 5, inward=True)
    assert (a[~region] == 0).all() and a[:, -1].min() == 1.0 and 0 < a[:, 26].max() < 1


def test_mask_png_zero_means_untouched():
    a = np.array([[0.0, 0.001, 0.5, 1.0]], np.float32)
    assert np.asarray(mask_to_image(a)).tolist() == [[0, 1, 128, 255]]


def test_outputs_get_the_usual_file_mode(tmp_path):
    import os
    import stat

    from lasso_edit.imaging import write_atomic

    umask = os.umask(0o022)
    try:
        write_atomic(tmp_path / "a.png", lambda f: f.write(b"x"))
        assert stat.S_IMODE((tmp_path / "a.png").stat().st_mode) == 0o644  # not mkstemp's 0600
        os.chmod(tmp_path / "a.png", 0o640)
        write_atomic(tmp_path / "a.png", lambda f: f.write(b"y"))  # a replaced file keeps its mode
        assert stat.S_IMODE((tmp_path / "a.png").stat().st_mode) == 0o640
    finally:
        os.umask(umask)


@pytest.mark.parametrize("source", [None, ["a.png"], b"\x89PNG", 3.5])
def test_an_image_of_the_wrong_type_is_a_typed_error(source):
    from lasso_edit.core.errors import InvalidImageError
    from lasso_edit.imaging import load_image

    with pytest.raises(InvalidImageError, match="expected an image path"):
        load_image(source)


def test_a_closed_pil_image_is_named(tmp_path):
    from lasso_edit.core.errors import InvalidImageError
    from lasso_edit.imaging import load_image

    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(tmp_path / "a.png")
    with Image.open(tmp_path / "a.png") as im:
        pass
    with pytest.raises(InvalidImageError, match="closed"):
        load_image(im)


def test_a_multi_frame_input_is_said(tmp_path):
    from lasso_edit.imaging import load_image

    frames = [Image.fromarray(np.full((20, 20, 3), v, np.uint8)) for v in (0, 255)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    assert "2 frames" in load_image(tmp_path / "anim.gif").warnings[0]
    assert load_image(np.zeros((20, 20, 3), np.uint8)).warnings == []


def test_webp_keeps_the_colour_under_transparent_pixels(tmp_path):
    from lasso_edit.imaging import save_image

    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[..., :3] = 200
    rgba[:8, :, 3] = 255  # the bottom half is transparent, its colour still there
    save_image(Image.fromarray(rgba, "RGBA"), tmp_path / "o.webp")
    back = np.asarray(Image.open(tmp_path / "o.webp").convert("RGBA"))
    assert (back == rgba).all()


def test_a_png_whose_text_chunk_inflates_too_far_is_named(tmp_path):
    from PIL import PngImagePlugin

    from lasso_edit.imaging import load_image

    info = PngImagePlugin.PngInfo()
    info.add_text("bomb", "x" * (3 * 1024 * 1024), zip=True)
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(tmp_path / "z.png", pnginfo=info)
    with pytest.raises(InvalidImageError, match="cannot read image"):
        load_image(tmp_path / "z.png")


def test_a_jpeg_with_garbage_exif_opens_without_it(tmp_path, recwarn):
    from lasso_edit.imaging import load_image

    exif = b"Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08\xff\xff" + b"\x00" * 20
    Image.fromarray(np.full((20, 20, 3), 90, np.uint8)).save(tmp_path / "e.jpg", exif=exif)
    loaded = load_image(tmp_path / "e.jpg")
    assert "EXIF" in loaded.warnings[0] and "exif" not in loaded.info
    assert not [w for w in recwarn if "EXIF" in str(w.message)]  # no Python warning leaks


def test_an_image_past_pillows_own_bomb_guard_gets_lassos_message(tmp_path, monkeypatch):
    from lasso_edit.imaging import load_image

    Image.new("L", (300, 300)).save(tmp_path / "big.png")
    monkeypatch.setenv("LASSO_MAX_PIXELS", "20000")  # Pillow's guard fires at twice the limit: 40,000 px
    with pytest.raises(InvalidImageError, match="MP limit"):
        load_image(tmp_path / "big.png")


def test_rgba_to_bmp_keeps_alpha_for_pillow_and_opencv(tmp_path):
    import cv2

    a = noise_image(9, 7, 4, seed=5)
    assert save_image(Image.fromarray(a, "RGBA"), tmp_path / "x.bmp") == []
    back = Image.open(tmp_path / "x.bmp")
    assert back.mode == "RGBA" and (np.asarray(back) == a).all()
    assert (cv2.imread(str(tmp_path / "x.bmp"), cv2.IMREAD_UNCHANGED)[:, :, [2, 1, 0, 3]] == a).all()


def test_ico_keeps_the_size_or_refuses_before_any_work(tmp_path):
    from lasso_edit.imaging import check_outputs

    a = noise_image(40, 70, 4, seed=6)
    save_image(Image.fromarray(a, "RGBA"), tmp_path / "x.ico")
    back = Image.open(tmp_path / "x.ico")
    assert back.size == (70, 40) and (np.asarray(back) == a).all()  # one entry, the image's own size
    with pytest.raises(InvalidInputError, match="ICO holds at most 256x256"):
        check_outputs(tmp_path / "big.ico", None, None, mode="RGBA", size=(300, 200))
    with pytest.raises(InvalidInputError, match="ICO holds at most 256x256"):
        save_image(Image.new("RGB", (257, 10)), tmp_path / "big.ico")


def test_a_truncated_multi_page_tiff_is_unreadable_not_an_internal_error(tmp_path):
    """Issue 16 #5: counting the pages of a cut-short TIFF raised TypeError outside the decode's try."""
    import io

    from lasso_edit.core.errors import UnreadableImageError
    from lasso_edit.imaging import load_image

    frames = [Image.fromarray(np.random.default_rng(i).integers(0, 256, (64, 64, 3), dtype=np.uint8))
              for i in range(3)]
    buf = io.BytesIO()
    frames[0].save(buf, format="TIFF", save_all=True, append_images=frames[1:])
    data = buf.getvalue()
    for cut in range(200, len(data), 700):
        (tmp_path / "t.tif").write_bytes(data[:cut])
        try:
            load_image(tmp_path / "t.tif")
        except UnreadableImageError:
            pass  # said in words; anything else is a failure of this test


def test_a_fifo_or_device_as_the_input_is_refused_without_reading_it(tmp_path):
    """Issue 16 #5: a FIFO blocked forever in open()."""
    import os

    from lasso_edit.core.errors import InvalidImageError
    from lasso_edit.imaging import load_image

    os.mkfifo(tmp_path / "pipe.png")
    with pytest.raises(InvalidImageError, match="pipe, socket or device"):
        load_image(tmp_path / "pipe.png")
    with pytest.raises(InvalidImageError, match="pipe, socket or device"):
        load_image("/dev/zero")


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "I;16"])
def test_restore_copies_the_input_wherever_nothing_changed(tmp_path, mode):
    arr = noise_image(40, 60, 4 if mode == "RGBA" else 3)
    from PIL import Image

    img = Image.fromarray(arr[..., :3] if mode != "RGBA" else arr, "RGBA" if mode == "RGBA" else "RGB")
    if mode in ("L", "I;16"):
        img = img.convert("L") if mode == "L" else Image.fromarray(np.asarray(img.convert("L"), np.uint16) * 257)
    loaded = load_image(save(np.asarray(img), tmp_path / "in.png") if mode != "I;16" else img)
    yy, xx = np.mgrid[:40, :60]
    changed = (yy - 20) ** 2 + (xx - 30) ** 2 < 12 ** 2  # not a rectangle: its box holds unchanged pixels
    out = np.asarray(restore(loaded, 255 - loaded.rgb, changed))  # differs everywhere, inside and out
    orig = np.asarray(loaded.original)
    assert (out[~changed] == orig[~changed]).all()
    assert not (out[changed] == orig[changed]).all()


@pytest.mark.parametrize("suffix", [".png", ".tif", ".webp", ".jpg"])
def test_icc_exif_and_dpi_are_carried_to_the_output(tmp_path, suffix):
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x010F] = "LassoCam"  # Make
    src = tmp_path / "in.png"
    Image.fromarray(noise_image(20, 30)).save(src, icc_profile=icc, exif=exif.tobytes(), dpi=(240, 240))
    loaded = load_image(src)
    out = tmp_path / f"out{suffix}"
    save_image(Image.fromarray(loaded.rgb), out, like=loaded)
    back = Image.open(out)
    assert back.info.get("icc_profile") == icc
    assert back.getexif().get(0x010F) == "LassoCam"
    if suffix != ".webp":  # WebP has no resolution field
        assert [round(float(d)) for d in back.info["dpi"]] == [240, 240]


def test_an_upright_file_is_not_copied_but_a_callers_image_is(tmp_path):
    """Issue 34: a file Lasso opened itself is kept as decoded when it is upright (exif_transpose
    would copy 72 MB at 24 MP); a PIL image the caller passed is still copied, so that nothing
    done to the loaded original reaches the caller's object; a turned file is still turned."""
    from lasso_edit.imaging import load_image

    pixels = np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    path = tmp_path / "upright.png"
    Image.fromarray(pixels).save(path)
    loaded = load_image(path)
    assert (loaded.rgb == pixels).all() and not loaded.transposed
    theirs = Image.fromarray(pixels)
    mine = load_image(theirs).original
    assert mine is not theirs
    mine.putpixel((0, 0), (1, 2, 3))
    assert theirs.getpixel((0, 0)) == tuple(pixels[0, 0])
    exif = Image.Exif()
    exif[0x0112] = 6  # turned: the pixels are rotated 90 degrees clockwise to be upright
    Image.fromarray(pixels).save(tmp_path / "turned.jpg", exif=exif.tobytes(), quality=95)
    turned = load_image(tmp_path / "turned.jpg")
    assert turned.transposed and turned.rgb.shape == (40, 30, 3)


def test_an_rgb_input_keeps_one_copy_of_its_pixels_and_other_modes_their_own(tmp_path):
    """Issue 34 (memory): an 8-bit RGB input is held once, as `rgb` (Pillow's copy, 4 bytes a
    pixel, is let go: 400 MB at 100 MP); `original` is made from it on demand, the same pixels.
    An input in another mode keeps its own image, which `rgb` cannot hold."""
    from lasso_edit.imaging import load_image

    pixels = np.random.default_rng(1).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "rgb.png")
    rgb = load_image(tmp_path / "rgb.png")
    assert rgb.stored is None and rgb.original.mode == "RGB" and (np.asarray(rgb.original) == pixels).all()
    Image.fromarray(pixels).convert("RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(pixels).convert("P").save(tmp_path / "p.png")
    for name, mode in (("rgba.png", "RGBA"), ("p.png", "P")):
        other = load_image(tmp_path / name)
        assert other.stored is not None and other.original is other.stored and other.original.mode == mode
