"""Issue 28 #15 over HTTP: a part Lasso cannot do refuses the edit and the plan (422, naming it), unless the
form's `skip_unknown` asks for the rest."""

import io

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from lasso_edit.server.app import ServerSettings, create_app

from ..helpers import png_bytes as _png
from ..helpers import scene

INSTRUCTION = "rotate the photo 90 degrees and make it 4K"


@pytest.fixture(scope="module")
def client(tiny_editor, tmp_path_factory):
    settings = ServerSettings(preset="tiny", data_dir=str(tmp_path_factory.mktemp("serve")), queue=2)
    with TestClient(create_app(settings, editor=tiny_editor), base_url="http://127.0.0.1") as c:
        yield c


@pytest.mark.parametrize("route", ["/v1/edit", "/v1/plan"])
def test_a_part_lasso_cannot_do_is_refused_naming_it(client, route):
    r = client.post(route, files={"image": ("in.png", _png(scene()), "image/png")}, data={"instruction": INSTRUCTION})
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert "'rotate' is not an edit Lasso makes" in detail and "'make it 4K' is not an edit" in detail
    assert r.json()["exit_code"] == 2


def test_skip_unknown_makes_the_rest_and_says_what_was_left_out(client):
    files = {"image": ("in.png", _png(scene()), "image/png")}
    r = client.post("/v1/edit", files=files, data={"instruction": INSTRUCTION, "skip_unknown": "true"})
    assert r.status_code == 200, r.text
    assert (np.asarray(Image.open(io.BytesIO(r.content)).convert("RGB")) == scene()).all()  # no 4K restyle
    r = client.post(
        "/v1/plan", files=files, data={"instruction": "make the disc green and upscale it", "skip_unknown": "true"}
    )
    assert r.status_code == 200, r.text
    d = r.json()
    assert [(e["action"], e["target"]) for e in d["edits"]] == [("recolor", "disc")]
    assert any("'upscale it' was left out" in w for w in d["warnings"]), d["warnings"]
