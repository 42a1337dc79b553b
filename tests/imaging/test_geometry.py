"""The VLM's box frame, checked against what the real transformers processors do to the pixels."""

import numpy as np
import pytest

from lasso_edit.imaging.geometry import VisionFrame


def _frame_box_of_white(pixel_values, mean, std):
    """Where the white square landed in the processed image: XYXY in frame pixels."""
    img = pixel_values[0].numpy().transpose(1, 2, 0) * np.array(std) + np.array(mean)
    ys, xs = np.nonzero(img.mean(axis=2) > 0.75)
    return xs.min(), ys.min(), xs.max() + 1, ys.max() + 1


def _image_with_square(w, h, box):
    img = np.zeros((h, w, 3), np.uint8)
    x0, y0, x1, y1 = box
    img[y0:y1, x0:x1] = 255
    return img


def _processor(kind):
    from transformers import CLIPImageProcessor, LlavaImageProcessor

    if kind == "crop":  # llava-1.5-hf: shortest edge, centre crop
        return CLIPImageProcessor(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224})
    if kind == "pad":  # original LLaVA: pad to square with the mean colour, then resize
        return LlavaImageProcessor(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224},
                                   do_pad=True, do_center_crop=False)
    return CLIPImageProcessor(size={"height": 224, "width": 224}, do_center_crop=False)  # plain resize (squash)


@pytest.mark.parametrize("kind", ["crop", "pad", "resize"])
@pytest.mark.parametrize("w,h,box", [(448, 300, (200, 100, 260, 180)), (300, 448, (100, 200, 180, 260)),
                                     (640, 200, (300, 50, 360, 150)), (224, 224, (20, 30, 80, 90))])
def test_frame_matches_processor(kind, w, h, box):
    from PIL import Image

    proc = _processor(kind)
    pv = proc(images=Image.fromarray(_image_with_square(w, h, box)), return_tensors="pt")["pixel_values"]
    fh, fw = pv.shape[-2:]
    found = _frame_box_of_white(pv, proc.image_mean, proc.image_std)
    frame = VisionFrame.from_image_processor(proc, w, h)
    predicted = [v * s for v, s in zip(frame.to_frame(box), (fw, fh, fw, fh))]
    assert np.allclose(found, predicted, atol=2.5), (found, predicted)
    # and back: the fractions the VLM would say map to the original pixels
    fr = tuple(v / s for v, s in zip(found, (fw, fh, fw, fh)))
    back = frame.to_pixels(fr)
    scale = max(w / fw, h / fh)
    assert np.allclose(back, box, atol=2.5 * scale + 1), (back, box)


def test_crop_frame_clips_boxes_outside_the_crop():
    from transformers import CLIPImageProcessor

    proc = CLIPImageProcessor(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224})
    frame = VisionFrame.from_image_processor(proc, 800, 400)  # the crop shows x in [200, 600]
    x0, y0, x1, y1 = frame.to_pixels((0.0, 0.0, 1.0, 1.0))
    assert abs(x0 - 200) < 2 and abs(x1 - 600) < 2 and y0 == 0 and abs(y1 - 400) < 2


def test_anyres_processors_use_the_whole_image():
    class LlavaNextImageProcessor:  # stands for the class of that name; only its name is read
        size = {"shortest_edge": 336}

    frame = VisionFrame.from_image_processor(LlavaNextImageProcessor(), 1000, 500)
    assert frame.to_pixels((0.1, 0.2, 0.5, 1.0)) == (100.0, 100.0, 500.0, 500.0)
