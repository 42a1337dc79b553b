"""SAM 3: every instance of a phrase with its mask, the `sam3` grounder choosing among them (spatial
words, and the VLM's check of compositional phrases on planted candidates), boxes as exemplars,
and the gated licence's error naming the fallback."""

import numpy as np
import pytest

from lasso_edit.core.errors import ModelUnavailableError, TargetNotFoundError
from lasso_edit.core.loading import load
from lasso_edit.core.plan import Action, Edit, Grounding
from lasso_edit.ground.concept import CHECK_PROMPT, Sam3Grounder, compositional
from lasso_edit.segment.sam3 import Instance, Sam3Segmenter
from lasso_edit.testing import resolve_tiny

from ..helpers import scene


@pytest.fixture(scope="module")
def sam3(tiny_dir):
    return Sam3Segmenter.from_pretrained(resolve_tiny({"segmenter": "tiny:sam3"})["segmenter"])


def test_sam3_finds_instances_with_boxes_scores_and_masks_of_the_photo(sam3):
    img = scene(90, 150)
    found = sam3.find(img, "red disc")
    assert found and [f.score for f in found] == sorted((f.score for f in found), reverse=True)
    for f in found:
        x0, y0, x1, y1 = f.box
        assert 0 <= x0 <= x1 <= 150 and 0 <= y0 <= y1 <= 90
        assert f.mask.dtype == bool and f.mask.shape == (90, 150)
    sam3.find(img, "blue square")
    assert sam3.encodes == 1  # the photo encoded once for both phrases


def test_the_grounders_own_masks_are_the_segmentation_and_a_box_is_an_exemplar(sam3):
    img = scene(90, 150)
    planted = np.zeros((90, 150), bool)
    planted[20:40, 30:70] = True
    seg = sam3.segment(img, Grounding([(30, 20, 70, 40)], [0.9], "sam3", masks=[planted]))
    assert (seg.mask == planted).all()
    seg = sam3.segment(img, Grounding([(30, 20, 70, 40)], [0.9], "detector"))  # another grounder's box
    assert seg.mask.shape == (90, 150) and seg.mask.any()


class Planted:
    """A SAM 3 whose answer is planted: the candidates the check must choose among."""

    def __init__(self, instances):
        self.instances = instances

    def find(self, image, phrase, threshold=0.0):
        return [i for i in self.instances if i.score >= threshold]


def _instances(h=100, w=200):
    out = []
    for k, (box, score) in enumerate([((10, 20, 60, 90), 0.8), ((120, 20, 170, 90), 0.6)]):
        m = np.zeros((h, w), bool)
        m[box[1]:box[3], box[0]:box[2]] = True
        out.append(Instance(tuple(map(float, box)), score, m))
    return out


def test_the_vlm_check_changes_which_instance_a_compositional_phrase_takes(tiny_dir, monkeypatch):
    from lasso_edit.parse.llava import LlavaParser

    vlm = LlavaParser.from_pretrained(str(tiny_dir / "vlm"))
    img = scene(100, 200)
    asked = []

    def ask(image, text, constrained=None):  # the model's words replaced; the crops are real
        asked.append((image.shape, text))
        return "Yes." if len(asked) == 2 else "No"  # yes to the second candidate only

    monkeypatch.setattr(vlm, "ask", ask)
    edit = Edit(Action.REMOVE, "person in white")
    unchecked = Sam3Grounder(Planted(_instances()), threshold=0.1).ground(img, edit)
    assert unchecked.boxes == [(10.0, 20.0, 60.0, 90.0)] and unchecked.source == "sam3"  # SAM 3's best score
    assert "no VLM was loaded to check it" in unchecked.warnings[0]
    checked = Sam3Grounder(Planted(_instances()), threshold=0.1, vlm=vlm).ground(img, edit)
    assert checked.boxes == [(120.0, 20.0, 170.0, 90.0)] and checked.source == "sam3+vlm-check"  # the VLM's yes
    assert [t for _, t in asked] == [CHECK_PROMPT.format(phrase="person in white")] * 2
    assert asked[0][0][:2] != img.shape[:2]  # each candidate's crop, not the photo
    assert (checked.masks[0] == _instances()[1].mask).all()


def test_no_check_for_a_plain_noun_or_a_spatial_word_and_a_relation_is_part_of_the_question(tiny_dir):
    calls = []

    class Counting:
        def ask(self, image, text, constrained=None):
            calls.append(text)
            return "no"

    img = scene(100, 200)
    g = Sam3Grounder(Planted(_instances()), threshold=0.1, vlm=Counting())
    assert g.ground(img, Edit(Action.REMOVE, "person")).boxes == [(10.0, 20.0, 60.0, 90.0)] and not calls
    right = g.ground(img, Edit(Action.REMOVE, "person in white", qualifier="right"))
    assert right.boxes == [(120.0, 20.0, 170.0, 90.0)] and not calls  # "the right one" is spatial: select.py
    said = g.ground(img, Edit(Action.REMOVE, "cup", relation="on the table"))
    assert calls == [CHECK_PROMPT.format(phrase="cup on the table")] * 2 and said.source == "sam3"
    assert "said no to every candidate" in said.warnings[0]
    assert compositional(Edit(Action.REMOVE, "car"), "red car") and not compositional(Edit(Action.REMOVE, "car"), "car")


def test_the_sam3_grounder_needs_a_sam3_segmenter_and_says_so(tiny_editor):
    with pytest.raises(ModelUnavailableError, match="--grounder sam3 needs a SAM 3 segmenter: --segmenter facebook/sam3"):
        Sam3Grounder.create(tiny_editor.stage)


def test_a_gated_model_refused_names_its_licence_how_to_accept_it_and_the_fallback():
    import httpx
    from huggingface_hub.errors import GatedRepoError

    url = "https://huggingface.co/facebook/sam3/resolve/main/config.json"
    hub = GatedRepoError("401 Client Error", response=httpx.Response(401, request=httpx.Request("GET", url)))

    def refused(model_id, **kwargs):  # what the Hub library raises, as transformers wraps it
        try:
            raise hub
        except GatedRepoError as e:
            raise OSError(f"You are trying to access a gated repo. Make sure to have access to it at {model_id}") from e

    def raw(model_id, **kwargs):  # and unwrapped, as diffusers may let it through
        raise hub

    with pytest.raises(ModelUnavailableError) as e:
        load("segmenter", "facebook/sam3", refused)
    msg = str(e.value)
    assert "facebook/sam3 is gated under the SAM License" in msg
    assert "https://huggingface.co/facebook/sam3" in msg and "hf auth login" in msg
    assert "--segmenter facebook/sam2.1-hiera-large --detector openmmlab-community/mm_grounding_dino_large_o365v2" in msg
    with pytest.raises(ModelUnavailableError, match="FLUX.1-Fill-dev is gated under the FLUX.1 .dev. non-commercial"):
        load("inpainting", "black-forest-labs/FLUX.1-Fill-dev", raw)
    with pytest.raises(ModelUnavailableError, match="cannot load inpainting model 'some/model': disk"):
        load("inpainting", "some/model", lambda m, **k: (_ for _ in ()).throw(OSError("disk on fire")))


def test_the_best_preset_is_qwen3_vl_sam3_and_flux2_klein():
    from lasso_edit.core.licences import licence
    from lasso_edit.core.presets import PRESETS

    best = PRESETS["best"]
    assert (best.vlm, best.segmenter, best.inpainter, best.grounder) == (
        "Qwen/Qwen3-VL-8B-Instruct", "facebook/sam3", "black-forest-labs/FLUX.2-klein-4B", "sam3")
    assert licence(best.segmenter).gated and not licence(best.inpainter).gated
    for p in PRESETS.values():  # every model a preset names carries its licence
        for stage, model in p.models().items():
            assert model.startswith("tiny:") or licence(model) is not None, (p.name, stage, model)


def test_sam3_grounds_and_segments_an_edit_through_the_cli(tiny_dir, tmp_path):
    from PIL import Image

    from ..helpers import run_cli, save

    img = scene()
    src = save(img, tmp_path / "in.png")
    out, mask = tmp_path / "out.png", tmp_path / "mask.png"
    r = run_cli("edit", str(src), "remove the red disc", "--preset", "tiny", "--segmenter", "tiny:sam3",
                "--grounder", "sam3", "--box-threshold", "0", "-o", str(out), "--mask-out", str(mask), "--seed", "1")
    assert r.returncode == 0, r.stderr
    assert "via sam3" in r.stdout + r.stderr
    edited, m = np.asarray(Image.open(out)), np.asarray(Image.open(mask))
    assert (m > 0).any() and (edited[m == 0] == img[m == 0]).all()


def test_the_other_one_takes_the_instance_not_edited_before(tiny_dir):
    img = scene(100, 200)
    g = Sam3Grounder(Planted(_instances()), threshold=0.1)
    assert g.ground(img, Edit(Action.REMOVE, "person")).boxes == [(10.0, 20.0, 60.0, 90.0)]
    other = g.ground(img, Edit(Action.REMOVE, "person", avoid=(10.0, 20.0, 60.0, 90.0)))
    assert other.boxes == [(120.0, 20.0, 170.0, 90.0)] and (other.masks[0] == _instances()[1].mask).all()
    with pytest.raises(TargetNotFoundError, match="no other instance"):
        Sam3Grounder(Planted(_instances()[:1]), threshold=0.1).ground(
            img, Edit(Action.REMOVE, "person", avoid=(10.0, 20.0, 60.0, 90.0))
        )
