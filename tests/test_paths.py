"""Code paths the end-to-end runs on tiny random models never reach: a random VLM never answers
usably, a random detector never scores a relation's object, a random SAM rarely returns nothing.
Each is driven here with the real class and a stand-in only for what the model would have said."""

import numpy as np
import pytest
from PIL import Image, ImageCms

from lasso_edit.errors import InvalidInputError
from lasso_edit.ground.strategies import AutoGrounder, DetectorGrounder
from lasso_edit.imaging import load_image, save_image
from lasso_edit.parse.auto import AutoParser
from lasso_edit.plan import Action, Edit, Grounding

from .helpers import noise_image, run_cli, save


class Detections:
    """What a detector said, per phrase: ([XYXY boxes], [scores]), best first."""

    def __init__(self, answers: dict):
        self.answers = answers

    def detect(self, image, phrase):
        return self.answers.get(phrase, ([], []))


# --------------------------------------------------------------------------- AutoParser's merge
@pytest.fixture(scope="module")
def vlm(tiny_dir):
    from lasso_edit.parse.llava import LlavaParser

    return LlavaParser.from_pretrained(str(tiny_dir / "vlm"))


def _answering(vlm, monkeypatch, answer: str):
    """The real LlavaParser (prompting, answer parsing, frame mapping), the model's text replaced."""
    monkeypatch.setattr(vlm, "ask", lambda image, text: answer)
    monkeypatch.setattr(vlm, "constrained", False)
    return AutoParser(vlm)


def test_auto_parser_adds_the_rules_details_the_vlm_left_out(vlm, monkeypatch):
    parser = _answering(vlm, monkeypatch, '{"edits": [{"action": "recolor", "target": "car", "value": "red"}, '
                                          '{"action": "remove", "target": "cat"}]}')
    plan = parser.parse(noise_image(64, 64), "make the second car from the left red and remove all the cats "
                                             "on the sofa")
    assert plan.source == "vlm"
    car, cat = plan.edits
    assert (car.target, car.value, car.qualifier) == ("car", "red", "second from the left")
    assert cat.select_all and cat.relation == "on the sofa"


def test_auto_parser_keeps_what_the_vlm_said(vlm, monkeypatch):
    parser = _answering(vlm, monkeypatch, '{"edits": [{"action": "recolor", "target": "car", "value": "red", '
                                          '"qualifier": "rightmost"}]}')
    plan = parser.parse(noise_image(64, 64), "make the left car red")
    assert plan.edits[0].qualifier == "rightmost"


def test_auto_parser_merges_nothing_when_the_plans_disagree(vlm, monkeypatch):
    parser = _answering(vlm, monkeypatch, '{"edits": [{"action": "remove", "target": "car"}]}')
    plan = parser.parse(noise_image(64, 64), "make the left car red")  # the rules read a recolour
    assert plan.edits[0].action is Action.REMOVE and plan.edits[0].qualifier is None


# --------------------------------------------------------------------------- grounding paths
def test_a_relation_picks_the_candidate_nearest_its_object():
    cats = ([(0, 0, 10, 10), (80, 0, 90, 10)], [0.9, 0.8])
    table = ([(75, 10, 100, 30)], [0.9])
    grounder = DetectorGrounder(Detections({"cat": cats, "table": table}), threshold=0.3)
    g = grounder.ground(noise_image(40, 100), Edit(Action.REMOVE, "cat", relation="on the table"))
    assert g.boxes == [(80, 0, 90, 10)]  # the second-best cat, the one on the table


def test_a_relation_whose_object_is_not_found_keeps_the_best_candidate():
    cats = ([(0, 0, 10, 10), (80, 0, 90, 10)], [0.9, 0.8])
    grounder = DetectorGrounder(Detections({"cat": cats}), threshold=0.3)
    g = grounder.ground(noise_image(40, 100), Edit(Action.REMOVE, "cat", relation="on the table"))
    assert g.boxes == [(0, 0, 10, 10)]


def test_the_auto_grounder_falls_back_to_the_vlm_box_when_nothing_is_detected():
    grounder = AutoGrounder(Detections({"dog": ([(0, 0, 5, 5)], [0.05])}), threshold=0.3)
    g = grounder.ground(noise_image(40, 100), Edit(Action.REMOVE, "dog", box=(10, 5, 30, 25)))
    assert g.source == "vlm" and g.boxes == [(10, 5, 30, 25)]
    assert "used the VLM's box" in g.warnings[0]


# --------------------------------------------------------------------------- SAM returns nothing
def test_an_empty_sam_mask_falls_back_to_the_box_with_a_warning(tiny_dir, monkeypatch):
    from lasso_edit.segment.sam import SamSegmenter

    seg = SamSegmenter.from_pretrained(str(tiny_dir / "segmenter"))
    monkeypatch.setattr(seg, "_full_size", lambda low, orig, resized: np.zeros(orig, dtype=bool))
    out = seg.segment(noise_image(50, 80), Grounding([(10, 10, 30, 40)], [1.0], "test"))
    assert out.mask.sum() == 20 * 30 and out.mask[10:40, 10:30].all()
    assert "empty mask" in out.warnings[0]


# --------------------------------------------------------------------------- progress callback
def test_on_step_reports_each_denoising_step(tiny_editor):
    said = []
    tiny_editor(noise_image(64, 64), "remove the ball", seed=1, steps=3, progress=said.append)
    steps = [m for m in said if "step" in m]
    assert steps == [f"painting 'ball': step {k}/3" for k in (1, 2, 3)]


# --------------------------------------------------------------------------- metadata carried over
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


# --------------------------------------------------------------------------- bad device and dtype
@pytest.mark.parametrize("flag,value,message", [("--device", "tpu", "unknown device"),
                                                ("--dtype", "int8", "unknown dtype")])
def test_a_bad_device_or_dtype_is_exit_2_before_any_model_loads(tiny_dir, tmp_path, flag, value, message):
    src = save(noise_image(32, 32), tmp_path / "in.png")
    r = run_cli("edit", str(src), "remove the ball", "--preset", "tiny", "-o", str(tmp_path / "o.png"), flag, value)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr
    with pytest.raises(InvalidInputError, match=message):
        from lasso_edit import Editor

        Editor.from_preset("tiny", **{flag[2:]: value})
