"""SAM as Lasso drives it: the window upsampling, candidates computed when read, several boxes."""

import pytest
import torch

from lasso_edit.core.plan import Grounding

from ..helpers import scene


@pytest.mark.parametrize("h,w", [(37, 910), (512, 512), (899, 61), (1000, 1500)])
def test_sam_window_upsampling_equals_post_process_masks(h, w):
    import torch.nn.functional as F
    from transformers import SamImageProcessor

    from lasso_edit.segment.sam import upsample_window

    ip = SamImageProcessor()
    low = F.avg_pool2d(torch.randn(1, 1, 256, 256, generator=torch.Generator().manual_seed(h)), 9, 1, 4) * 5 - 0.3
    scale = 1024 / max(h, w)
    rh, rw = int(h * scale + 0.5), int(w * scale + 0.5)
    ref = ip.post_process_masks(low[None].clone(), [[h, w]], [[rh, rw]])[0][0, 0].numpy()
    framed = F.interpolate(low, (1024, 1024), mode="bilinear", align_corners=False)[0, 0]
    got = upsample_window(framed[:rh, :rw], (h, w))
    assert ref.any() and not ref.all()
    assert (got == ref).all()
    # SAM 2's single resize
    ref2 = F.interpolate(low, (h, w), mode="bilinear", align_corners=False)[0, 0] > 0
    assert (upsample_window(low[0, 0], (h, w)) == ref2.numpy()).all()


def test_sam_candidates_are_computed_when_read(tiny_dir):
    from lasso_edit.core.plan import Grounding
    from lasso_edit.segment.sam import SamSegmenter

    seg = SamSegmenter.from_pretrained(str(tiny_dir / "segmenter"))
    calls = []
    full = seg._full_size
    seg._full_size = lambda *a: calls.append(1) or full(*a)
    s = seg.segment(scene(), Grounding([(10, 10, 80, 100)], [1.0], "test"))
    assert len(calls) == 1  # only the chosen candidate
    assert len(s.candidates) == 3 and s.candidates[2].shape == (120, 160) and len(calls) == 2
    assert s.candidates[2] is s.candidates[-1] and len(calls) == 2  # computed once


@pytest.fixture(scope="module")
def segmenter(tiny_dir):
    from lasso_edit.segment.sam import SamSegmenter

    return SamSegmenter.from_pretrained(str(tiny_dir / "segmenter"))


def test_several_boxes_give_the_union_of_their_masks(segmenter):
    img = scene()
    a, b = (0, 0, 60, 60), (90, 50, 160, 120)
    one = segmenter.segment(img, Grounding([a], [1.0], "t")).mask
    two = segmenter.segment(img, Grounding([b], [1.0], "t")).mask
    both = segmenter.segment(img, Grounding([a, b], [1.0, 1.0], "t")).mask
    assert not (one == two).all()
    assert (both == (one | two)).all()


@pytest.fixture(scope="module")
def edgetam_dir(tmp_path_factory):
    from lasso_edit.testing.tiny import build_tiny_edgetam

    return build_tiny_edgetam(tmp_path_factory.mktemp("edgetam"))


def test_edgetam_is_read_as_a_sam2_with_the_prompts_its_processor_scales(edgetam_dir):
    """EdgeTAM (the remote preset's segmenter) through the same stage: built from the checkpoint's
    model_type, one encode per photo, the union of its boxes, prompts scaled to its square frame
    exactly as Sam2Processor scales them."""
    from lasso_edit.core.plan import Correction
    from lasso_edit.core.stages import LoadOptions
    from lasso_edit.segment.sam import SamSegmenter

    seg = SamSegmenter.build(str(edgetam_dir), LoadOptions(device="cpu"))
    assert type(seg.model).__name__ == "EdgeTamModel" and seg.is_sam2
    img = scene()
    a, b = (0, 0, 60, 60), (90, 50, 160, 120)
    one = seg.segment(img, Grounding([a], [1.0], "t"))
    two = seg.segment(img, Grounding([b], [1.0], "t")).mask
    both = seg.segment(img, Grounding([a, b], [1.0, 1.0], "t")).mask
    assert one.mask.shape == (120, 160) and len(one.candidates) == 3
    assert (both == (one.mask | two)).all() and seg.encodes == 1
    seen, forward = [], seg.model.forward
    seg.model.forward = lambda *args, **k: seen.append(k) or forward(*args, **k)
    seg.segment(img, Grounding([a], [1.0], "t"), Correction(points=[(30, 20), (70, 50)], labels=[1, 0]))
    ref = seg.processor(images=None, input_points=[[[[30, 20], [70, 50]]]], input_labels=[[[1, 0]]],
                        input_boxes=[[list(a)]], original_sizes=[[120, 160]], return_tensors="pt")
    for key in ("input_points", "input_boxes"):
        torch.testing.assert_close(seen[-1][key].float(), ref[key].float(), rtol=1e-4, atol=1e-4)


def test_edgetam_without_timm_names_what_to_install(edgetam_dir, monkeypatch):
    import sys

    from lasso_edit.core.errors import ModelUnavailableError
    from lasso_edit.segment.sam import SamSegmenter

    monkeypatch.setitem(sys.modules, "timm", None)  # `import timm` now raises ImportError
    with pytest.raises(ModelUnavailableError, match="pip install timm"):
        SamSegmenter.from_pretrained(str(edgetam_dir))
