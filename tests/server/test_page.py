"""The page at `/`, driven in a real browser (Playwright for Python with Debian's Chromium) as a person
uses it: upload, instruction, plan and mask, a correction, apply with progress, undo, redo, download.

Each step leaves a screenshot in test-artifacts/page/ (git-ignored) to look at. Without a Chromium
these tests skip, unless LASSO_REQUIRE_BROWSER=1 (CI sets it): then a missing browser fails.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ..helpers import save, scene

pytestmark = pytest.mark.e2e  # a real browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "page"


@pytest.fixture()
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 820}, accept_downloads=True)
    pg = context.new_page()
    pg.set_default_timeout(0)  # wait on the page's events, not on a clock: a busy machine only takes longer
    errors = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    context.close()
    assert not errors, f"the page's script failed: {errors}"


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_function("() => !document.body.style.cursor")  # idle: nothing in flight
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def photo(tmp_path, h=240, w=320) -> Path:
    big = np.asarray(Image.fromarray(scene()).resize((w, h), Image.BICUBIC))
    return save(big, tmp_path / "street.png")


def mask_pixels(page) -> int:
    return int(page.get_attribute("#mask-info", "data-pixels") or -1)


def wait_mask_change(page, before: int) -> int:
    page.wait_for_function(f"() => (document.querySelector('#mask-info').dataset.pixels || '') !== '{before}'"
                           " && !document.body.style.cursor")
    return mask_pixels(page)


def test_a_person_edits_a_photo_end_to_end(page, live_server, tmp_path):
    url = live_server()
    src = photo(tmp_path)
    page.goto(url)
    assert page.title().startswith("Lasso")
    shot(page, "0-empty")

    # 1. Upload a photo and type an instruction.
    page.set_input_files("#file", str(src))
    page.wait_for_selector("#canvas", state="visible")
    page.fill("#instruction", "remove the disc")
    shot(page, "1-uploaded")

    # 2. See the plan and the mask preview.
    page.click("#preview")
    page.wait_for_selector("#plan li")
    assert page.inner_text("#plan li") == "remove the disc"
    page.wait_for_function("() => document.querySelector('#mask-info').dataset.pixels !== undefined")
    first = mask_pixels(page)
    assert first > 0
    assert page.locator("#candidates button").count() == 3
    shot(page, "2-plan-and-mask")

    # 3. Click a correction point and see the mask change; then pick another SAM candidate.
    page.click("#tool-remove")
    box = page.locator("#canvas").bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
    corrected = wait_mask_change(page, first)
    assert corrected != first
    shot(page, "3-corrected")
    chosen = page.get_attribute("#candidates button.chosen", "data-candidate")
    other = next(str(k) for k in range(3) if str(k) != chosen)
    before_pick = mask_pixels(page)
    page.click(f"#candidates button[data-candidate='{other}']")
    page.wait_for_selector(f"#candidates button.chosen[data-candidate='{other}']")
    picked = mask_pixels(page)
    shot(page, "3b-candidate")

    # 4. Apply, with progress; then undo and redo.
    page.click("summary")
    page.fill("#steps", "40")
    page.evaluate("""() => { window.seen = [];
        new MutationObserver(() => window.seen.push(document.querySelector('#progress-text').textContent))
          .observe(document.querySelector('#progress-text'), {childList: true, characterData: true, subtree: true}); }""")
    page.click("#apply")
    page.wait_for_selector("#history li[data-step='1'].current")
    seen = page.evaluate("window.seen")
    assert any("step" in s for s in seen), seen  # the denoising steps were shown while it painted
    shot(page, "4-applied")
    assert page.locator("#history li").count() == 2
    assert "(you fixed the mask)" in page.inner_text("#history li[data-step='1']")
    page.click("#undo")
    page.wait_for_selector("#history li[data-step='0'].current")
    shot(page, "4b-undone")
    page.click("#redo")
    page.wait_for_selector("#history li[data-step='1'].current")
    page.fill("#compare", "50")
    page.dispatch_event("#compare", "input")
    shot(page, "4c-redone-compare")

    # 5. Download, and check the downloaded image against the upload.
    with page.expect_download() as dl:
        page.click("#download")
    out = tmp_path / dl.value.suggested_filename
    dl.value.save_as(out)
    assert out.name == "street-lasso-1.png"
    got, up = Image.open(out), Image.open(src)
    assert got.size == up.size and got.mode == up.mode
    a, b = np.asarray(got), np.asarray(up)
    assert (a != b).any()
    assert before_pick != picked or picked > 0  # the pick answered a mask (sizes may coincide)


def test_errors_are_plain_sentences(page, live_server, tmp_path):
    page.goto(live_server())
    bad = tmp_path / "notes.png"
    bad.write_text("this is not a picture")
    page.set_input_files("#file", str(bad))
    page.wait_for_selector("#error", state="visible")
    text = page.inner_text("#error")
    assert "not a picture Lasso can read" in text and "Traceback" not in text
    shot(page, "5-error")
    assert page.is_visible("#drop")  # still ready for another photo


def test_the_page_asks_for_the_api_key(page, live_server, tmp_path):
    url = live_server(api_key="s3cret")
    page.goto(url)  # the page itself is served without the key
    page.wait_for_selector("#key-dialog[open]")
    shot(page, "6-key")
    page.fill("#key", "s3cret")
    page.click("#key-ok")
    page.wait_for_function("() => document.querySelector('#server').textContent.includes('preset tiny')")
    page.set_input_files("#file", str(photo(tmp_path, 60, 80)))
    page.wait_for_selector("#canvas", state="visible")
    assert page.locator("#history li").count() == 1


def canvas_pixels(page) -> np.ndarray:
    data = page.evaluate("() => Array.from($('canvas').getContext('2d').getImageData(0, 0, "
                         "$('canvas').width, $('canvas').height).data)".replace("$(", "document.getElementById("))
    return np.asarray(data, dtype=np.int16)


def test_the_page_shows_where_the_vlm_looked(page, live_server, tmp_path):
    page.goto(live_server())
    page.set_input_files("#file", str(photo(tmp_path)))
    page.wait_for_selector("#canvas", state="visible")
    page.fill("#instruction", "make the disc red")
    page.click("#ask summary")
    page.select_option("#grounder", "attention")
    page.click("#preview")
    page.wait_for_selector("#heat-row", state="visible")
    shot(page, "heat-on")
    with_heat = canvas_pixels(page)
    page.uncheck("#show-heat")
    without = canvas_pixels(page)
    assert np.abs(with_heat - without).mean() > 3  # the heatmap is drawn, and the box hides it
    page.check("#show-heat")
    # the preset's own grounder reads no attention: no heatmap, no switch
    page.select_option("#grounder", "")
    page.click("#preview")
    page.wait_for_selector("#heat-row", state="hidden")


def _apply(page, instruction):
    page.fill("#instruction", instruction)
    page.click("#preview")
    page.wait_for_selector("#plan li")
    n = page.locator("#history li").count()
    page.click("#apply")
    page.wait_for_function(f"() => document.querySelectorAll('#history li').length > {n}")
    page.wait_for_function("() => !document.body.style.cursor")


def test_a_reload_reopens_the_session_and_recent_photos_are_listed(page, live_server, tmp_path):
    """Issue 16 #13: reloading the page lost everything on screen."""
    page.goto(live_server())
    page.set_input_files("#file", str(photo(tmp_path)))
    page.wait_for_selector("#canvas", state="visible")
    _apply(page, "make it black and white")
    assert "#session=" in page.url
    page.reload()
    page.wait_for_selector("#history li[data-step='1'].current")  # where the person was
    assert page.is_visible("#canvas") and page.is_hidden("#drop")
    shot(page, "7-reloaded")
    page.click("#new-photo")
    page.wait_for_selector("#recent button")
    assert "street" in page.inner_text("#recent") and "#session=" not in page.url
    shot(page, "7b-recent")
    page.click("#recent button")
    page.wait_for_selector("#history li[data-step='1'].current")
    page.goto(page.url.split("#")[0] + "#session=" + "A" * 22)  # a session that is gone
    page.reload()
    page.wait_for_selector("#error", state="visible")
    assert "gone" in page.inner_text("#error") and page.is_visible("#drop")


def test_the_compare_slider_shows_before_at_before_and_after_at_after(page, live_server, tmp_path):
    """Issue 16 #14: at "After" the slider showed the original."""
    page.goto(live_server())
    page.set_input_files("#file", str(photo(tmp_path)))
    page.wait_for_selector("#canvas", state="visible")
    original = canvas_pixels(page)
    _apply(page, "make it black and white")
    assert page.input_value("#compare") == "100"  # the slider starts at "After"
    after = canvas_pixels(page)
    page.fill("#compare", "0")
    page.dispatch_event("#compare", "input")
    before = canvas_pixels(page)
    assert np.abs(after - original).mean() > 3  # the edit shows at "After"
    assert np.abs(before - original).max() <= 1  # and the original at "Before"
    page.fill("#compare", "100")
    page.dispatch_event("#compare", "input")
    assert np.abs(canvas_pixels(page) - after).max() == 0


def test_the_mask_tools_wait_for_a_mask(page, live_server, tmp_path):
    """Issue 16 #16: a box drawn before any mask was silently used by the next Apply."""
    page.goto(live_server())
    page.set_input_files("#file", str(photo(tmp_path)))
    page.wait_for_selector("#canvas", state="visible")
    assert page.is_disabled("#tool-box") and page.is_disabled("#tool-keep") and page.is_disabled("#clear-fixes")
    box = page.locator("#canvas").bounding_box()
    page.mouse.move(box["x"] + 20, box["y"] + 20)
    page.mouse.down()
    page.mouse.move(box["x"] + 120, box["y"] + 90)
    page.mouse.up()
    page.wait_for_selector("#error", state="visible")
    assert "Show the mask" in page.inner_text("#error")
    _apply(page, "remove the disc")
    assert "(you fixed the mask)" not in page.inner_text("#history")  # nothing hidden was sent
    assert page.is_disabled("#tool-box")  # the applied step has no mask shown: the tools wait again


def test_branches_show_as_branches_and_history_is_reachable_by_keyboard(page, live_server, tmp_path):
    """Issue 16 #17: branches looked linear; history entries could not be reached by keyboard."""
    page.goto(live_server())
    page.set_input_files("#file", str(photo(tmp_path)))
    page.wait_for_selector("#canvas", state="visible")
    _apply(page, "make it black and white")
    page.click("#undo")
    page.wait_for_selector("#history li[data-step='0'].current")
    _apply(page, "remove the disc")
    original = page.locator("#history > li[data-step='0']")
    assert original.locator(":scope > ol > li").count() == 2  # two branches from the original
    assert "2 branches" in original.inner_text()
    assert "off-path" in page.get_attribute("#history li[data-step='1']", "class")
    shot(page, "8-branches")
    page.focus("#history li[data-step='1'] > button")
    page.keyboard.press("Enter")
    page.wait_for_selector("#history li[data-step='1'].current")


def test_a_wrong_api_key_is_said_and_the_placeholder_fits(page, live_server, tmp_path):
    page.goto(live_server(api_key="s3cret"))
    page.wait_for_selector("#key-dialog[open]")
    assert page.is_hidden("#key-refused")
    page.fill("#key", "wrong")
    page.click("#key-ok")
    page.wait_for_selector("#key-refused", state="visible")  # asked again, saying why
    shot(page, "9-key-refused")
    page.fill("#key", "s3cret")
    page.click("#key-ok")
    page.wait_for_function("() => document.querySelector('#server').textContent.includes('preset tiny')")
    fits = page.evaluate("() => { const t = document.getElementById('instruction'); "
                         "return t.scrollHeight <= t.clientHeight + 1 && t.scrollWidth <= t.clientWidth + 1; }")
    assert fits  # the placeholder is not cut off


def test_on_a_phone_the_plan_is_in_view_with_the_photo(browser, live_server, tmp_path):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.set_default_timeout(0)
    try:
        page.goto(live_server())
        page.set_input_files("#file", str(photo(tmp_path)))
        page.wait_for_selector("#canvas", state="visible")
        page.fill("#instruction", "remove the disc")
        page.click("#preview")
        page.wait_for_selector("#plan li")
        page.wait_for_function("() => !document.body.style.cursor")
        plan = page.locator("#plan-box").bounding_box()
        assert plan["y"] + plan["height"] <= 844, plan  # above the fold
        page.screenshot(path=str(ARTIFACTS / "10-phone.png"), full_page=True)
    finally:
        context.close()


def test_the_settings_list_the_servers_models_with_their_licences(page, live_server, monkeypatch):
    from lasso_edit.core.licences import LICENCES, Licence

    monkeypatch.setitem(LICENCES, "tiny:segmenter", Licence("Test Licence", gated=True))  # as a gated Hub model
    page.goto(live_server())
    page.click("#side summary")
    page.wait_for_selector("#models dt")
    listed = page.inner_text("#models")
    for stage in ("vlm", "segmenter", "inpainter"):
        assert stage in listed
    assert "tiny:segmenter Test Licence (gated: accepted on its Hub page)" in listed.replace("\n", " ")
    shot(page, "8-models")


def test_the_model_picker_offers_the_servers_presets_and_previews_with_the_one_chosen(page, live_server, tmp_path,
                                                                                   klein_preset):
    page.goto(live_server(offer=(klein_preset,)))
    page.click("#side summary")
    page.wait_for_selector("#preset-row:not([hidden])")
    assert page.eval_on_selector_all("#preset option", "os => os.map(o => o.value)") == ["tiny", "tiny-klein"]
    assert "tiny:inpainter" in page.inner_text("#models")
    page.select_option("#preset", klein_preset)
    assert "tiny:flux2-klein" in page.inner_text("#models")
    page.set_input_files("#file", str(photo(tmp_path)))
    page.wait_for_selector("#canvas", state="visible")
    page.fill("#instruction", "remove the disc")
    page.click("#preview")
    page.wait_for_selector("#plan li")
    shot(page, "9-model-picker")


def test_after_an_edit_the_page_shows_the_proof_and_where_it_changed(page, live_server, tmp_path):
    page.goto(live_server())
    page.set_input_files("#file", str(photo(tmp_path)))
    page.wait_for_selector("#canvas", state="visible")
    page.fill("#instruction", "remove the disc")
    page.click("#apply")
    page.wait_for_selector("#proof-row:not([hidden])")
    badge = page.inner_text("#proof")
    # the tiny preset's models are random: no tick for a picture that is noise, the count all the same
    assert badge.startswith("nothing else changed: 0 of ") and "pixels outside the mask" in badge
    assert "the test models are random" in badge
    assert {"bad", "warn"}.isdisjoint((page.get_attribute("#proof", "class") or "").split())
    said = page.inner_text("#credentials")  # beside the proof: who signed the file's Content Credentials
    assert said.startswith("Content Credentials signed by ") and "this machine's own identity" in said
    page.check("#show-diff")
    page.wait_for_function("() => document.querySelector('#canvas').dataset.diffOutside !== undefined")
    assert page.get_attribute("#canvas", "data-diff-outside") == "0"  # no magenta outside the mask
    changed_inside = page.evaluate("""() => { const c = document.querySelector('#canvas');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let k = 0;
        for (let i = 0; i < d.length; i += 4) if (d[i] === 255 && d[i + 1] === 210 && d[i + 2] === 0) k++;
        return k; }""")
    assert changed_inside > 0  # the edit itself shows, in yellow
    shot(page, "10-proof-and-difference")


def test_a_conversation_leans_on_the_last_edit_asks_when_it_cannot_and_reads_as_said(page, live_server, tmp_path):
    page.goto(live_server())
    page.set_input_files("#file", str(photo(tmp_path)))
    page.wait_for_selector("#canvas", state="visible")

    # 1. A follow-up with nothing before it: Lasso asks back, and nothing changes.
    page.fill("#instruction", "make it darker")
    page.press("#instruction", "Enter")
    page.wait_for_selector("#chat li.question")
    assert "no earlier edit" in page.inner_text("#chat li.question")
    assert page.inner_text("#chat li.you") == "make it darker"
    assert page.locator("#history li").count() == 1 and page.input_value("#instruction") == ""
    shot(page, "conversation-1-question")

    # 2. A first edit, previewed and applied: the question is answered and gone; the step reads as said.
    page.fill("#instruction", "make the square red")
    page.click("#preview")
    page.wait_for_selector("#plan li")
    assert page.locator("#chat li.question").count() == 0
    page.click("#apply")
    page.wait_for_selector("#chat li.lasso[data-step='1'] img[src^='blob:']")
    assert page.locator("#chat li").all_inner_texts()[:1] == ["make the square red"]

    # 3. "make it darker": previewed as read, on the picture before the last step, then applied as the
    # step after it (issue 29: undo goes back to the red square).
    page.fill("#instruction", "make it darker")
    page.click("#preview")
    page.wait_for_selector("#turn-said:not([hidden])")
    said = page.inner_text("#turn-said")
    assert "dark red" in said and "made again from the picture before the last step" in said
    assert page.inner_text("#plan li") == "make the square dark red"
    shot(page, "conversation-2-follow-up-previewed")
    page.click("#apply")
    page.wait_for_selector("#chat li.lasso[data-step='2'] img[src^='blob:']")
    chat = page.locator("#chat li")
    assert chat.count() == 4  # the first step and its answer, the follow-up after it and its answer
    assert page.locator("#chat li.replaced").count() == 0
    assert chat.nth(2).inner_text() == "make it darker" and "the same edit, darker" in chat.nth(3).inner_text()
    assert "nothing outside the mask changed" in chat.nth(3).inner_text()

    # 4. "and the disc too", applied without a preview: the last action on a new target, on top.
    page.fill("#instruction", "and the disc too")
    page.click("#apply")
    page.wait_for_selector("#chat li.lasso[data-step='3']")
    assert "the same for the disc" in page.inner_text("#chat li.lasso[data-step='3']")
    shot(page, "conversation-3-and-the-disc-too")

    # 5. "undo", said in words.
    page.fill("#instruction", "undo")
    page.press("#instruction", "Enter")
    page.wait_for_function("() => !document.querySelector(\"#chat li.lasso[data-step='3']\")"
                           " && !document.body.style.cursor")
    assert page.locator("#history li.current").get_attribute("data-step") == "2"
