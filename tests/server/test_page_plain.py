"""The page as a non-expert meets it (issue 29), in Chromium: warnings that stay with the result, a
badge that never reassures falsely, undo that goes back one step, plain words, a keyboard path with
announcements (checked by axe-core), and no stale state.

The server runs the tiny models as a real preset would (the random-weights flag off), so the
warnings a real model raises are there to show. `LASSO_DOC_IMAGES=1` writes the screenshots of the
main steps, at 1280x800 and on a 390x844 phone, into docs/images/ (else test-artifacts/page/).
"""

from __future__ import annotations

import os
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ..conftest import serve_app
from ..helpers import save, scene

pytestmark = pytest.mark.e2e  # a real browser

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / ("docs/images" if os.environ.get("LASSO_DOC_IMAGES") == "1" else "test-artifacts/page")
JARGON = re.compile(r"\bVLM\b|\bSAM\b|rules parser|predicted quality|mask corrected|the uploaded image|segmenter",
                    re.IGNORECASE)
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def real_editor(tiny_dir):
    """The tiny models as a real preset runs them (their warnings said), the detector offered."""
    from lasso_edit import Editor
    from lasso_edit.core.presets import PRESETS

    return Editor.from_preset(replace(PRESETS["tiny"], random_weights=False), device="cpu", optional=("detector",))


@pytest.fixture()
def server(real_editor, tmp_path):
    from lasso_edit.server.app import ServerSettings, create_app

    url, stop = serve_app(create_app(ServerSettings(preset="tiny", data_dir=str(tmp_path / "serve")),
                                     editor=real_editor))
    yield url
    stop()


def _page(browser, viewport, **kwargs):
    context = browser.new_context(viewport=viewport, accept_downloads=True, **kwargs)
    pg = context.new_page()
    pg.set_default_timeout(0)  # wait on the page's events, not on a clock
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    return context, pg, errors


@pytest.fixture()
def page(browser):
    context, pg, errors = _page(browser, DESKTOP)
    yield pg
    context.close()
    assert not errors, f"the page's script failed: {errors}"


@pytest.fixture()
def phone(browser):
    context, pg, errors = _page(browser, PHONE, is_mobile=True, has_touch=True)
    yield pg
    context.close()
    assert not errors, f"the page's script failed: {errors}"


def shot(page, name: str) -> None:
    """What is on the screen (the viewport, not the whole page: what a person sees without scrolling)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    idle(page)
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def idle(page) -> None:
    page.wait_for_function("() => !document.body.style.cursor")  # nothing in flight


def worked(page, act) -> None:
    """Do `act` and wait until the work it starts (the busy cursor on, then off) has ended: an
    event, whatever the work answers (a correction may leave the pixel count as it was)."""
    page.evaluate("""() => { window.workSeen = false;
        window.workWatch = new MutationObserver(() => { if (document.body.style.cursor) window.workSeen = true; });
        window.workWatch.observe(document.body, {attributes: true, attributeFilter: ['style']}); }""")
    act()
    page.wait_for_function("() => window.workSeen && !document.body.style.cursor")


def street(tmp_path, h=240, w=320) -> Path:
    return save(np.asarray(Image.fromarray(scene()).resize((w, h), Image.BICUBIC)), tmp_path / "street.png")


def upload(page, url, tmp_path) -> None:
    page.goto(url)
    page.set_input_files("#file", str(street(tmp_path)))
    page.wait_for_selector("#canvas", state="visible")
    idle(page)


def preview(page, words: str) -> None:
    page.fill("#instruction", words)
    page.click("#preview")
    page.wait_for_selector("#plan-box:not([hidden])")
    page.wait_for_function("() => document.querySelector('#mask-info').dataset.pixels !== undefined")
    idle(page)


def apply(page, words: str | None = None) -> int:
    """Apply (`words` typed first, with no preview, when given); returns the new step's id."""
    if words is not None:
        page.fill("#instruction", words)
    n = page.locator("#history li").count()
    page.click("#apply")
    page.wait_for_function(f"() => document.querySelectorAll('#history li').length > {n}")
    idle(page)
    return int(page.get_attribute("#history li.current", "data-step"))


def read(page) -> str:
    """What a person reads: the visible text, closed details toggles and the Settings panel left out."""
    return page.evaluate("""() => {
        const clone = document.body.cloneNode(true);
        clone.querySelectorAll('details:not([open]) > :not(summary), #ask details, [hidden], script, option')
             .forEach((n) => n.remove());
        return clone.innerText; }""")


def no_jargon(page) -> None:
    said = read(page)
    assert not JARGON.search(said), JARGON.search(said).group(0) + " in: " + said


def canvas_png(page) -> str:
    return page.evaluate("() => document.getElementById('canvas').toDataURL()")


def in_view(page, selector: str, height: int = 800) -> bool:
    box = page.locator(selector).bounding_box()
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= height


def axe_serious(page) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    found = Axe().run(page).response["violations"]
    return [f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
            for v in found if v["impact"] in ("serious", "critical")]


# ---------------------------------------------------------------------- 1 and 2: warnings and the badge
def test_warnings_stay_with_the_result_and_the_badge_tells_the_whole_truth(page, server, tmp_path):
    upload(page, server, tmp_path)
    shot(page, "page-1-uploaded")

    # The preview: the warnings in plain words, with a caution, the technical line behind "details".
    preview(page, "make the elephant green")
    codes = page.eval_on_selector_all("#warnings li", "ls => ls.map(l => l.dataset.code)")
    assert codes[:1] == ["plan_from_words"] and "not_found" not in codes, codes  # that one is the caution's
    assert "Lasso could not tell what to change from the picture, so it read your sentence on its own" in \
        page.inner_text("#warnings")
    caution = page.inner_text("#preview-caution")
    assert "could not find \u2018elephant\u2019" in caution and page.is_visible("#preview-caution")
    assert "SAM was prompted" not in read(page)  # behind its toggle ...
    shot(page, "page-2-preview-warns")
    page.click("#preview-caution summary")  # the caution says it; its technical line goes with it
    assert "SAM was prompted with the whole image" in page.inner_text("#preview-caution")  # ... for who wants it

    # Applied: the warnings stay, beside a badge that is no green tick, which offers to correct the mask.
    step = apply(page)
    badge = page.locator("#proof")
    assert "warn" in badge.get_attribute("class").split() and not badge.inner_text().startswith("\u2713")
    assert "could not find \u2018elephant\u2019" in badge.inner_text()
    covers = re.search(r"The mask covers (\d+)% of the picture", badge.inner_text())
    if covers:  # the share is the step's own: its mask's pixels against the picture's
        assert int(covers.group(1)) > 50
    assert "read your sentence on its own" in page.inner_text("#step-warnings")
    assert page.is_visible("#fix-step")
    chat = page.inner_text(f"#chat li.lasso[data-step='{step}']")
    assert "could not find 'elephant'" in chat and "nothing outside the mask changed" in chat
    no_jargon(page)
    shot(page, "page-3-applied-badge-warns")

    # Applied with no preview at all: the same warnings, with the step.
    apply(page, "make the zebra purple")
    assert "could not find \u2018zebra\u2019" in page.inner_text("#proof")
    assert "warn" in page.get_attribute("#proof", "class").split()

    # "Correct the mask": back one step, the same words previewed, the mask tools ready.
    page.click("#fix-step")
    page.wait_for_selector("#plan-box:not([hidden])")
    idle(page)
    assert page.input_value("#instruction") == "make the zebra purple"
    assert page.get_attribute("#history li.current", "data-step") == str(step)
    assert page.is_enabled("#tool-keep") and page.is_hidden("#proof-row")


def test_where_the_preset_refuses_the_page_shows_the_refusal(page, server, tmp_path):
    """The detector finds nothing above the tiny preset's threshold: the CLI's exit 4, on the page."""
    upload(page, server, tmp_path)
    page.click("#ask summary")
    page.select_option("#grounder", "detector")
    page.click("#ask summary")
    page.fill("#instruction", "make the elephant green")
    page.click("#preview")
    page.wait_for_selector("#error:not([hidden])")
    idle(page)
    said = page.inner_text("#error")
    assert said.startswith("Lasso could not find \u2018elephant\u2019 in the picture, so it changed nothing"), said
    assert page.is_hidden("#plan-box") and page.is_hidden("#proof-row")
    no_jargon(page)
    shot(page, "page-4-refusal")
    page.click("#error summary")
    assert "could not find 'elephant' in the image" in page.inner_text("#error")


# ---------------------------------------------------------------------- 3: undo follows what the person did
def test_undo_after_a_refinement_goes_back_one_step(page, server, tmp_path):
    upload(page, server, tmp_path)
    original = canvas_png(page)
    blue = apply(page, "make the square blue")
    blue_picture = canvas_png(page)
    darker = apply(page, "make it a bit darker")
    assert darker == blue + 1
    # the follow-up is the next step after the one it refines: not a greyed sibling on another branch
    steps = page.eval_on_selector_all("#history > li", "ls => ls.map(l => l.dataset.step)")
    assert steps == ["0", str(blue), str(darker)], steps
    assert page.locator("#history li.off-path").count() == 0 and "branches" not in page.inner_text("#history")
    chat = page.locator("#chat li").all_inner_texts()
    assert [c.split("\n")[0] for c in chat[::2]] == ["make the square blue", "make it a bit darker"]
    assert in_view(page, "#undo") and in_view(page, "#redo") and in_view(page, "#history")  # at 1280x800
    shot(page, "page-5-follow-up")
    page.click("#undo")
    page.wait_for_selector(f"#history li[data-step='{blue}'].current")
    idle(page)
    assert canvas_png(page) == blue_picture  # blue, not red
    page.click("#undo")
    page.wait_for_selector("#history li[data-step='0'].current")
    idle(page)
    assert canvas_png(page) == original
    page.click("#redo")
    page.wait_for_selector(f"#history li[data-step='{blue}'].current")
    page.click("#redo")
    page.wait_for_selector(f"#history li[data-step='{darker}'].current")


# ---------------------------------------------------------------------- 4: plain words
def test_the_page_says_what_happened_in_plain_words(page, server, tmp_path):
    page.goto(server)
    bad = tmp_path / "notes.png"
    bad.write_text("this is not a picture")
    page.set_input_files("#file", str(bad))
    page.wait_for_selector("#error:not([hidden])")
    said = page.inner_text("#error")
    assert said.startswith("This file is not a picture Lasso can read") and "uploaded image" not in said
    no_jargon(page)
    page.set_input_files("#file", str(street(tmp_path)))
    page.wait_for_selector("#canvas", state="visible")
    preview(page, "remove the disc")
    assert page.locator("#candidates button").count() == 3
    assert "Other outlines Lasso found" in page.inner_text("#candidates-row")
    titles = page.eval_on_selector_all("#candidates button", "bs => bs.map(b => b.title)")
    assert not any("quality" in t for t in titles), titles
    grounders = page.eval_on_selector_all("#grounder option", "os => os.map(o => o.textContent)")
    assert not any(JARGON.search(g) for g in grounders), grounders
    no_jargon(page)
    page.click("#tool-remove")
    box = page.locator("#canvas").bounding_box()
    worked(page, lambda: page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2))  # a fix
    apply(page)
    assert "(you fixed the mask)" in page.inner_text("#history") and "mask corrected" not in page.inner_text("#history")
    no_jargon(page)


# ---------------------------------------------------------------------- 5: the keyboard, announced
def test_a_keyboard_path_through_the_page_with_announcements_and_no_serious_axe_finding(page, server, tmp_path):
    page.goto(server)
    page.wait_for_function("() => document.querySelector('#server').textContent.includes('preset')")
    assert axe_serious(page) == []
    page.keyboard.press("Tab")  # the first Tab lands on the drop area, with a ring that shows
    assert page.evaluate("document.activeElement.id") == "drop"
    ring = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert ring not in ("none", "") and page.evaluate("getComputedStyle(document.activeElement).outlineWidth") != "0px"
    shot(page, "page-0-keyboard-drop-focused")
    picture = str(street(tmp_path))
    page.on("filechooser", lambda chooser: chooser.set_files(picture))  # the chooser Enter opens: this photo
    page.evaluate("""() => { const input = document.getElementById('file'), click = input.click.bind(input);
        input.click = () => { window.chooserAsked = true; click(); }; }""")
    page.keyboard.press("Enter")
    assert page.evaluate("window.chooserAsked === true")  # Enter on the drop area opens the file chooser ...
    page.wait_for_selector("#canvas", state="visible")  # ... and the photo chosen there is uploaded
    idle(page)
    assert page.evaluate("document.activeElement.id") == "instruction"
    page.keyboard.type("remove the disc")
    page.keyboard.press("Enter")  # Enter in the instruction shows the mask
    page.wait_for_selector("#plan-box:not([hidden])")
    page.wait_for_function("() => document.querySelector('#mask-info').dataset.pixels !== undefined")
    idle(page)
    assert axe_serious(page) == []
    # the photo: Tab reaches it; arrows move the cross, Enter marks a point (the mask changes)
    page.focus("#canvas")
    assert page.is_visible("#keys-hint")
    page.click("#tool-remove")
    page.focus("#canvas")
    still = canvas_png(page)
    for _ in range(3):
        page.keyboard.press("ArrowLeft")
    assert canvas_png(page) != still  # the cross moved
    worked(page, lambda: page.keyboard.press("Enter"))  # a point, previewed again
    assert page.evaluate("document.activeElement.id") == "canvas"
    shot(page, "page-6-keyboard-point")
    # the box tool from the keyboard: two corners
    page.focus("#tool-box")
    page.keyboard.press("Enter")
    assert page.get_attribute("#tool-box", "aria-pressed") == "true"
    page.focus("#canvas")
    page.keyboard.press("Shift+ArrowUp")
    page.keyboard.press("Shift+ArrowLeft")
    page.keyboard.press("Enter")
    for _ in range(3):
        page.keyboard.press("Shift+ArrowDown")
        page.keyboard.press("Shift+ArrowRight")
    worked(page, lambda: page.keyboard.press("Enter"))  # the second corner: the box, previewed again
    # an outline by its number
    chosen = page.get_attribute("#candidates button.chosen", "data-candidate")
    other = next(k for k in range(3) if str(k) != chosen)
    page.keyboard.press(str(other + 1))
    page.wait_for_selector(f"#candidates button.chosen[data-candidate='{other}']")
    idle(page)
    # the progress bar has a name and is announced
    assert page.get_attribute("#progress-box", "aria-live") == "polite"
    assert page.get_attribute("#progress-box", "role") == "status"
    page.evaluate("""() => { window.named = [];
        new MutationObserver(() => { const p = document.getElementById('progress-box');
            if (!p.hidden) window.named.push(document.getElementById('progress').getAttribute('aria-valuetext')); })
          .observe(document.getElementById('progress-box'), {attributes: true, childList: true, subtree: true}); }""")
    page.focus("#apply")
    page.keyboard.press("Enter")
    page.wait_for_selector("#proof-row:not([hidden])")
    idle(page)
    assert "(you fixed the mask)" in page.inner_text("#history li.current")  # the keyboard's fixes were sent
    assert any(page.evaluate("window.named")), "the progress bar was never named"
    label = page.evaluate("""() => { const ids = document.getElementById('progress').getAttribute('aria-labelledby');
        return ids.split(' ').map((i) => document.getElementById(i)).every(Boolean); }""")
    assert label
    assert axe_serious(page) == []
    # Undo from the keyboard too
    page.focus("#undo")
    page.keyboard.press("Enter")
    page.wait_for_selector("#history li[data-step='0'].current")


# ---------------------------------------------------------------------- 6: no stale state
def test_no_stale_state(page, server, tmp_path):
    upload(page, server, tmp_path)
    # Download waits for an edit; an empty or spaces-only instruction says why nothing can run
    assert page.is_disabled("#download")
    assert page.is_disabled("#preview") and page.inner_text("#why-not") == \
        "Write what should change to see the mask or apply it."
    page.fill("#instruction", "   ")
    assert page.is_disabled("#apply") and "Only spaces" in page.inner_text("#why-not")
    assert "make it darker" not in page.get_attribute("#instruction", "placeholder")  # no follow-up yet
    apply(page, "make it black and white")
    assert page.is_enabled("#download") and page.is_visible("#proof-row")
    assert page.inner_text("#proof").startswith("\u2713 nothing else changed")  # no doubt here: the tick stays
    assert page.inner_text("#why-not") == "" and page.is_hidden("#why-not") or page.is_disabled("#preview")
    assert "make it darker" in page.get_attribute("#instruction", "placeholder")  # now a follow-up fits
    # a new preview hides the last step's badge: it speaks of that step, not of this mask
    page.fill("#instruction", "remove the disc")
    page.evaluate("""() => { window.badgeDuring = [];
        new MutationObserver(() => { if (document.body.style.cursor)
            window.badgeDuring.push(!document.getElementById('proof-row').hidden); })
          .observe(document.body, {attributes: true, attributeFilter: ['style']}); }""")
    page.click("#preview")
    page.wait_for_selector("#plan-box:not([hidden])")
    idle(page)
    assert page.is_hidden("#proof-row") and page.evaluate("window.badgeDuring") == [False]
    shot(page, "page-7-new-preview-hides-badge")
    page.fill("#instruction", "")  # the preview dropped: the current step's badge is back
    assert page.is_visible("#proof-row")
    # after "New photo", the hint is the first edit's again and Download waits
    page.click("#new-photo")
    page.wait_for_selector("#drop:not([hidden])")
    assert "make it darker" not in page.get_attribute("#instruction", "placeholder")
    assert page.inner_text("#why-not") == "Choose a photo first."
    assert page.evaluate("document.activeElement.id") == "drop"


# ---------------------------------------------------------------------- the phone
def test_on_a_phone_the_warning_the_badge_and_undo_read_the_same(phone, server, tmp_path):
    upload(phone, server, tmp_path)
    shot(phone, "page-phone-1-uploaded")
    preview(phone, "make the elephant green")
    assert in_view(phone, "#preview-caution", PHONE["height"])
    shot(phone, "page-phone-2-preview-warns")
    apply(phone)
    phone.locator("#proof").scroll_into_view_if_needed()
    assert "could not find \u2018elephant\u2019" in phone.inner_text("#proof")
    shot(phone, "page-phone-3-applied-badge-warns")
    phone.locator("#history-box").scroll_into_view_if_needed()
    shot(phone, "page-phone-4-steps")
    no_jargon(phone)
    wide = phone.evaluate("() => document.documentElement.scrollWidth")
    assert wide <= PHONE["width"], wide  # nothing runs off the side
