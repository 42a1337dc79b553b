"""The page's "Bring an edit from another app", driven in Chromium as a person uses it: the photo and
another app's drifted answer chosen, the diagnosis in words, the region over the result, the
download bit-identical to the photo outside the region; a pair that is not an edit said plainly.

The screenshot of the result is left in test-artifacts/page/contain.png (git-ignored) to look at.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from lasso_edit.imaging import load_image
from lasso_edit.pipeline.contain import contain

from ..imaging.test_align import coffee, drift, painted
from .test_page import page  # noqa: F401 - the page fixture: a browser page whose script errors fail the test
from .test_page_plain import axe_serious

pytestmark = pytest.mark.e2e  # a real browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "page"




def idle(page) -> None:
    page.wait_for_function("() => !document.body.style.cursor")  # nothing in flight


def open_panel(page, url: str) -> None:
    page.goto(url)
    page.wait_for_function("() => document.querySelector('#server').textContent.includes('preset')")
    page.focus("#contain-open")
    page.keyboard.press("Enter")  # the keyboard opens it, and lands on the first file
    assert page.get_attribute("#contain-open", "aria-expanded") == "true"
    assert page.evaluate("document.activeElement.id") == "contain-original"


def test_a_person_brings_another_apps_edit_and_downloads_only_its_change(page, live_server, tmp_path):
    orig = coffee()
    truth = painted(orig)
    near = cv2.dilate(np.any(truth != orig, axis=2).astype(np.uint8), np.ones((25, 25), np.uint8)) > 0
    photo = tmp_path / "coffee.png"
    Image.fromarray(orig).save(photo)
    theirs = tmp_path / "their-edit.jpg"
    Image.fromarray(drift(truth, size=(1024, 1024))[0]).save(theirs, quality=92)

    open_panel(page, live_server())
    page.set_input_files("#contain-original", str(photo))
    page.set_input_files("#contain-edited", str(theirs))
    page.click("#contain-go")
    page.wait_for_selector("#contain-result:not([hidden])")
    idle(page)
    said = page.inner_text("#contain-said")
    assert said.startswith(
        "The other app answered at 1024×1024 instead of your photo's 600×400, zoomed in 3.0%, "
        "shifted 2 px right and 2 px up, turned 0.5° anticlockwise and warmed the colours."
    ), said
    assert "Lasso kept its change to a " in said and "put every other pixel back" in said
    assert page.get_attribute("#contain-said", "role") == "status"
    assert page.inner_text("#contain-proof").startswith("✓ nothing else changed: 0 of ")
    assert axe_serious(page) == []
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "contain.png"), full_page=True)
    shutil.copyfile(ARTIFACTS / "contain.png", "/tmp/page_contain.png")

    with page.expect_download() as dl:
        page.click("#contain-download")
    assert dl.value.suggested_filename == "coffee-contained.png"
    out_path = tmp_path / dl.value.suggested_filename
    dl.value.save_as(out_path)
    out = np.asarray(Image.open(out_path))
    assert out.shape == orig.shape
    assert (out[~near] == orig[~near]).all()  # bit-identical wherever the other app did not paint
    expected, report = contain(orig, load_image(theirs))
    region = expected.mask
    assert (out == np.asarray(expected.image)).all() and not region[~near].any()
    assert (out[~region] == orig[~region]).all() and (out[region] != orig[region]).any()
    assert f"({report['region_px']:,} pixels)" in said


def test_a_pair_that_is_not_an_edit_is_said_in_plain_words(page, live_server, tmp_path):
    orig = coffee()
    Image.fromarray(orig[:200]).save(tmp_path / "top.png")
    Image.fromarray(np.ascontiguousarray(orig[200:])).save(tmp_path / "bottom.png")
    open_panel(page, live_server())
    page.set_input_files("#contain-original", str(tmp_path / "top.png"))
    page.set_input_files("#contain-edited", str(tmp_path / "bottom.png"))
    page.click("#contain-go")
    page.wait_for_selector("#error", state="visible")
    text = page.inner_text("#error")
    assert text.startswith("The other app's result does not look like an edit of your original photo"), text
    assert "levels" in text and "EDITED" not in text and "Traceback" not in text
    assert page.is_hidden("#contain-result")


def test_on_a_phone_the_panel_fits_the_screen_its_fields_under_their_labels(browser, live_server, tmp_path):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    phone = context.new_page()
    phone.set_default_timeout(0)
    try:
        open_panel(phone, live_server())
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        phone.screenshot(path=str(ARTIFACTS / "contain-phone.png"), full_page=True)
        wide = phone.evaluate("document.documentElement.scrollWidth")
        assert wide <= 390, f"the page scrolls sideways: {wide} px wide"
        box = phone.locator("#contain-go").bounding_box()
        assert box is not None and box["x"] + box["width"] <= 390
        field = phone.locator("#contain-original").bounding_box()  # under its label, the screen's width
        assert field is not None and field["width"] >= 250, field
    finally:
        context.close()
