"""POST /v1/images/edits through the official `openai` Python client, against `lasso serve`'s app on
loopback (uvicorn, as `lasso serve` runs it): no mask, a mask (every opaque pixel bit-identical), n=2,
and each error in OpenAI's shape."""

import base64
import io

import numpy as np
import pytest
from PIL import Image

from ..helpers import png_bytes as _png
from ..helpers import scene


@pytest.fixture()
def client(live_server):
    from openai import OpenAI

    return OpenAI(base_url=live_server(api_key="s3cret") + "/v1", api_key="s3cret", max_retries=0)


def _decode(item) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(item.b64_json))))


def test_without_a_mask_lasso_plans_and_answers_its_mask_and_plan_beside_the_image(client):
    img = scene()
    r = client.images.edit(image=("in.png", _png(img), "image/png"), prompt="remove the red disc")
    (item,) = r.data
    out = _decode(item)
    assert out.shape == img.shape and r.size == f"{img.shape[1]}x{img.shape[0]}" and r.output_format == "png"
    extra = item.model_extra
    mask = np.asarray(Image.open(io.BytesIO(base64.b64decode(extra["lasso_mask_b64"])))) > 0
    assert (out[~mask] == img[~mask]).all() and extra["lasso_plan"]["edits"][0]["action"] == "remove"
    assert extra["lasso_preservation"]["identical_outside"] is True


def test_with_a_mask_only_its_transparent_pixels_change_and_n_gives_n_seeds(client):
    img = scene()
    rgba = np.dstack([img, np.full(img.shape[:2], 255, np.uint8)])
    rgba[30:70, 40:90, 3] = 0  # the hole: what may change
    r = client.images.edit(
        image=("in.png", _png(img), "image/png"), mask=("mask.png", _png(rgba), "image/png"), prompt="a cat", n=2
    )
    assert len(r.data) == 2
    seeds = {item.model_extra["lasso_seed"] for item in r.data}
    assert len(seeds) == 2
    opaque = rgba[..., 3] > 0
    for item in r.data:
        out = _decode(item)
        assert (out[opaque] == img[opaque]).all()  # the promise OpenAI does not make
        assert (out[~opaque] != img[~opaque]).any()


def test_models_lists_the_presets_as_model_ids(client):
    assert [m.id for m in client.models.list()] == ["tiny"]


@pytest.mark.parametrize(
    "kwargs,param,words",
    [
        ({"size": "256x256"}, "size", "Lasso never resizes"),
        ({"n": 11}, "n", "from 1 to 10"),
        ({"model": "dall-e-2"}, "model", "this server's presets: tiny"),
        ({"response_format": "url"}, "response_format", "b64_json only"),
    ],
)
def test_bad_fields_are_400s_in_openais_shape_naming_the_field(client, kwargs, param, words):
    import openai

    with pytest.raises(openai.BadRequestError) as e:
        client.images.edit(image=("in.png", _png(scene()), "image/png"), prompt="remove the red disc", **kwargs)
    err = e.value.body
    assert e.value.status_code == 400 and err["param"] == param and words in err["message"]
    assert err["type"] == "invalid_request_error"


def test_a_mask_of_another_size_and_a_wrong_key_are_answered_in_openais_shape(client, live_server):
    import openai

    small = np.zeros((10, 10, 4), np.uint8)
    with pytest.raises(openai.BadRequestError) as e:
        client.images.edit(
            image=("in.png", _png(scene()), "image/png"), mask=("m.png", _png(small), "image/png"), prompt="a cat"
        )
    assert e.value.body["param"] == "mask" and "mask is 10x10; the image is 160x120" in e.value.body["message"]
    from openai import OpenAI

    wrong = OpenAI(base_url=client.base_url, api_key="nope", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as e:
        wrong.images.edit(image=("in.png", _png(scene()), "image/png"), prompt="a cat")
    assert e.value.body["type"] == "authentication_error"
    with pytest.raises(openai.APIStatusError) as e:
        client.images.edit(image=("in.txt", b"not an image", "text/plain"), prompt="a cat")
    assert e.value.status_code == 415 and "error" in e.value.response.json()
