"""Content Credentials on every edit (pipeline/credentials.py, issue 33): write_and_prove signs a
C2PA manifest into the file it writes (the input opened as the parentOf ingredient, one action per
edit with its sentence, models and regions), read back here with c2pa.Reader under a CA made here;
a signed file decodes to the pixels of an unsigned one; `lasso verify` reads it, and a file changed
after signing reads as not valid."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lasso_edit.core.config import Credentials
from lasso_edit.imaging import credentials as c2
from lasso_edit.pipeline.credentials import GENERATED
from lasso_edit.pipeline.outputs import write_and_prove

from ..helpers import run_cli, scene
from ..imaging.test_credentials import MANIFEST, make_identity


@pytest.fixture(scope="module")
def org(tmp_path_factory) -> tuple[Path, Credentials]:
    ca, chain, key = make_identity(tmp_path_factory.mktemp("org"))
    return ca, Credentials(cert=str(chain), key=str(key))


def _input(folder: Path, fmt: str = "PNG") -> Path:
    path = folder / f"in.{fmt.lower()}"
    Image.fromarray(scene(96, 128)).save(path, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return path


def _read(path: Path, ca: Path) -> dict:
    data = path.read_bytes()
    found = c2.read(data, c2.mime_of_bytes(data), [ca.read_bytes()])
    assert found is not None, f"{path.name} has no Content Credentials"
    return found


def _actions(found: dict) -> list[dict]:
    return [a for s in found["manifest"]["assertions"] if s["label"] == "c2pa.actions.v2" for a in s["data"]["actions"]]


def test_an_edit_is_signed_with_its_actions_regions_and_input(tiny_editor, org, tmp_path):
    ca, creds = org
    src = _input(tmp_path)
    result = tiny_editor(str(src), "replace the red disc with a boat", seed=3, steps=2)
    warnings = write_and_prove(result, tmp_path / "out.png", credentials=creds)
    assert not [w for w in warnings if "Content Credentials" in w]
    found = _read(tmp_path / "out.png", ca)
    assert found["state"] == "Trusted" and "Test signer" in found["signer"]
    opened, *edits = _actions(found)
    assert opened["action"] == "c2pa.opened" and len(edits) == len(result.steps) == 1
    edit = edits[0]
    assert edit["action"] == "c2pa.edited" and edit["digitalSourceType"] == GENERATED
    assert edit["description"] == result.steps[0].edit.describe()
    assert "Lasso" in edit["softwareAgent"]["name"] and result.models["inpainter"] in edit["softwareAgent"]["name"]
    assert edit["changes"] and all(r["region"][0]["shape"]["unit"] == "pixel" for r in edit["changes"])
    ingredient = found["manifest"]["ingredients"][0]
    assert ingredient["relationship"] == "parentOf" and ingredient["title"] == "in.png"
    assert result.credentials == {"signer": result.credentials["signer"], "local": False, "signed": True}
    report = json.loads(run_cli("verify", str(src), str(tmp_path / "out.png"), "--json", "--trust", str(ca)).stdout)
    creds = report["credentials"]
    assert creds["present"] and creds["state"] == "Trusted" and creds["changes_inside_regions"] is True
    assert creds["actions"][1]["regions"] and creds["actions"][1]["digitalSourceType"] == GENERATED


def test_a_deterministic_edit_is_not_marked_as_generated(tiny_editor, org, tmp_path):
    ca, creds = org
    result = tiny_editor(str(_input(tmp_path)), "make the red disc blue", seed=3, steps=2)
    write_and_prove(result, tmp_path / "out.png", credentials=creds)
    edit = _actions(_read(tmp_path / "out.png", ca))[1]
    assert edit["action"] == "c2pa.color_adjustments" and "digitalSourceType" not in edit


def test_a_recolour_a_model_repainted_is_marked_as_generated(tiny_dir, org, tmp_path):
    from lasso_edit.core.config import EditorConfig
    from lasso_edit.pipeline.editor import Editor

    ca, creds = org
    editor = Editor.from_config(EditorConfig.of(preset="tiny", device="cpu", recolor="inpaint"))
    result = editor(str(_input(tmp_path)), "make the red disc blue", seed=3, steps=2)
    write_and_prove(result, tmp_path / "out.png", credentials=creds)
    edit = _actions(_read(tmp_path / "out.png", ca))[1]
    assert edit["action"] == "c2pa.edited" and edit["digitalSourceType"] == GENERATED


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_a_signed_output_decodes_to_the_pixels_of_an_unsigned_one(tiny_editor, org, tmp_path, fmt):
    ca, creds = org
    src = _input(tmp_path, fmt)
    result = tiny_editor(str(src), "replace the red disc with a boat", seed=5, steps=2)
    suffix = fmt.lower()
    write_and_prove(result, tmp_path / f"signed.{suffix}", credentials=creds)
    write_and_prove(result, tmp_path / f"plain.{suffix}", credentials=False)
    signed, plain = (np.asarray(Image.open(tmp_path / f"{n}.{suffix}")) for n in ("signed", "plain"))
    assert np.array_equal(signed, plain)
    assert c2.read((tmp_path / f"plain.{suffix}").read_bytes(), c2.MIME[fmt]) is None
    assert _read(tmp_path / f"signed.{suffix}", ca)["state"] == "Trusted"
    assert result.preservation["identical_outside"]  # the proof read the signed file
    report = json.loads(run_cli("verify", str(src), str(tmp_path / f"signed.{suffix}"), "--json").stdout)
    assert report["credentials"]["state"] == "Valid" and report["credentials"]["changes_inside_regions"] is True


def test_a_signed_input_is_carried_as_the_ingredient_with_its_manifest(tiny_editor, org, tmp_path):
    ca, creds = org
    plain = _input(tmp_path).read_bytes()
    signed_in = tmp_path / "signed-in.png"
    with open(signed_in, "wb") as f:
        c2.sign(plain, "image/png", MANIFEST, c2.load_identity(creds.cert, creds.key), f)
    result = tiny_editor(str(signed_in), "replace the red disc with a boat", seed=3, steps=2)
    write_and_prove(result, tmp_path / "out.png", credentials=creds)
    data = (tmp_path / "out.png").read_bytes()
    import c2pa

    reader = c2pa.Reader("image/png", io.BytesIO(data))
    store = json.loads(reader.json())
    reader.close()
    ingredient = store["manifests"][store["active_manifest"]]["ingredients"][0]
    assert ingredient["relationship"] == "parentOf" and ingredient.get("active_manifest") in store["manifests"]
    parent = store["manifests"][ingredient["active_manifest"]]
    assert parent["claim_generator_info"][0]["name"] == "test"


def _tampered(data: bytes, fmt: str) -> bytes:
    """`data` changed after signing, still decodable: a JPEG's scan byte flipped near its end (its
    pixels change), a PNG given one more text chunk before IEND."""
    import struct
    import zlib

    if fmt == "JPEG":
        out = bytearray(data)
        out[len(out) - 200] ^= 0x10
        return bytes(out)
    body = b"tEXt" + b"Comment\x00changed after signing"
    chunk = struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body))
    at = data.rindex(b"IEND") - 4
    return data[:at] + chunk + data[at:]


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_a_file_changed_after_signing_is_not_valid_to_lasso_verify(tiny_editor, org, tmp_path, fmt):
    ca, creds = org
    src = _input(tmp_path, fmt)
    result = tiny_editor(str(src), "replace the red disc with a boat", seed=3, steps=2)
    out = tmp_path / f"out.{fmt.lower()}"
    write_and_prove(result, out, credentials=creds)
    tampered = tmp_path / f"tampered.{fmt.lower()}"
    tampered.write_bytes(_tampered(out.read_bytes(), fmt))
    Image.open(tampered).load()  # still a picture
    r = run_cli("verify", str(src), str(tampered), "--json", "--trust", str(ca))
    read = json.loads(r.stdout)["credentials"]
    assert read["present"] and read["state"] == "Invalid", read
    assert "assertion.dataHash.mismatch" in read["failures"]
    r = run_cli("verify", str(src), str(tampered), "--trust", str(ca))
    assert "Content Credentials: Invalid" in r.stdout


def test_no_credentials_and_formats_c2pa_cannot_sign(tiny_editor, org, tmp_path):
    _, creds = org
    result = tiny_editor(str(_input(tmp_path)), "replace the red disc with a boat", seed=3, steps=2)
    assert not [w for w in write_and_prove(result, tmp_path / "off.png", credentials=False) if "Credentials" in w]
    assert c2.read((tmp_path / "off.png").read_bytes(), "image/png") is None and result.credentials is None
    warnings = write_and_prove(result, tmp_path / "out.bmp", credentials=creds)
    assert any("BMP files cannot carry Content Credentials" in w and "out.bmp" in w for w in warnings)


def test_without_a_certificate_the_local_identity_signs(tiny_editor, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    result = tiny_editor(str(_input(tmp_path)), "replace the red disc with a boat", seed=3, steps=2)
    write_and_prove(result, tmp_path / "a.png")
    write_and_prove(result, tmp_path / "b.png")
    assert capsys.readouterr().err.count("local signing identity") == 1
    ca = tmp_path / "config" / "lasso" / "credentials" / "ca.pem"
    assert _read(tmp_path / "b.png", ca)["state"] == "Trusted" and result.credentials["local"]


def test_contain_credits_the_other_editors_picture_as_a_component(org, tmp_path):
    from lasso_edit.pipeline.contain import contain

    ca, creds = org
    src = _input(tmp_path)
    theirs = scene(96, 128)
    theirs[10:30, 90:120] = (250, 250, 0)  # another editor's paint
    Image.fromarray(theirs).save(tmp_path / "theirs.png")
    result, _ = contain(str(src), str(tmp_path / "theirs.png"))
    write_and_prove(result, tmp_path / "out.png", credentials=creds)
    found = _read(tmp_path / "out.png", ca)
    opened, placed = _actions(found)
    assert opened["action"] == "c2pa.opened" and placed["action"] == "c2pa.placed"
    relations = {i["title"]: i["relationship"] for i in found["manifest"]["ingredients"]}
    assert relations == {"in.png": "parentOf", "theirs.png": "componentOf"}
    box = placed["changes"][0]["region"][0]["shape"]
    assert box["origin"]["x"] <= 90 and box["origin"]["x"] + box["width"] >= 120


def test_an_input_whose_credentials_are_invalid_is_edited_and_said(tiny_editor, org, tmp_path):
    ca, creds = org
    plain = _input(tmp_path).read_bytes()
    signed = io.BytesIO()
    c2.sign(plain, "image/png", MANIFEST, c2.load_identity(creds.cert, creds.key), signed)
    broken = tmp_path / "broken-in.png"
    broken.write_bytes(_tampered(signed.getvalue(), "PNG"))
    result = tiny_editor(str(broken), "replace the red disc with a boat", seed=3, steps=2)
    warnings = write_and_prove(result, tmp_path / "out.png", credentials=creds)
    assert any("broken-in.png's own Content Credentials are not valid" in w and "dataHash" in w for w in warnings)
    found = _read(tmp_path / "out.png", ca)
    assert found["state"] == "Trusted" and found["manifest"]["ingredients"][0]["relationship"] == "parentOf"
    assert found["manifest"]["ingredients"][0]["validation_results"]["activeManifest"]["failure"]


def test_lasso_edit_signs_with_the_given_certificate_or_none(tiny_dir, org, tmp_path):
    ca, creds = org
    src = _input(tmp_path)
    out, off = tmp_path / "out.png", tmp_path / "off.png"
    args = ("edit", str(src), "replace the red disc with a boat", "--preset", "tiny", "--seed", "3")
    r = run_cli(*args, "-o", str(out), "--sign-cert", creds.cert, "--sign-key", creds.key)
    assert r.returncode == 0, r.stderr
    assert _read(out, ca)["state"] == "Trusted"
    r = run_cli(*args, "-o", str(off), "--no-credentials")
    assert r.returncode == 0, r.stderr
    assert c2.read(off.read_bytes(), "image/png") is None
    assert np.array_equal(np.asarray(Image.open(out)), np.asarray(Image.open(off)))


def test_a_bad_certificate_is_exit_2_naming_it_before_any_model_loads(tmp_path):
    _, old_chain, old_key = make_identity(tmp_path / "old", days=-1)
    src = _input(tmp_path)
    # the balanced preset's models are not cached here: loading them would be exit 3
    r = run_cli(
        "edit",
        str(src),
        "make the red disc blue",
        "--preset",
        "balanced",
        "-o",
        str(tmp_path / "o.png"),
        "--sign-cert",
        str(old_chain),
        "--sign-key",
        str(old_key),
    )
    assert r.returncode == 2 and str(old_chain) in r.stderr and "expired" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "o.png").exists()
    r = run_cli(
        "batch",
        str(tmp_path),
        "--instruction",
        "make the red disc blue",
        "--preset",
        "balanced",
        "-o",
        str(tmp_path / "b"),
        "--sign-cert",
        str(old_chain),
        "--sign-key",
        str(old_key),
    )
    assert r.returncode == 2 and "expired" in r.stderr, r.stderr


@pytest.mark.parametrize("enabled", [False, True])
def test_a_server_signs_its_answers_as_its_settings_say(tiny_editor, org, tmp_path, enabled):
    from fastapi.testclient import TestClient

    from lasso_edit.pipeline.credentials import use_by_default
    from lasso_edit.server.app import ServerSettings, create_app

    ca, creds = org
    chosen = creds if enabled else Credentials(enabled=False)  # `lasso serve --sign-cert ...` / `--no-credentials`
    settings = ServerSettings(preset="tiny", data_dir=str(tmp_path / "serve"), credentials=chosen)
    try:
        with TestClient(create_app(settings, editor=tiny_editor), base_url="http://127.0.0.1") as client:
            png = _input(tmp_path).read_bytes()
            r = client.post(
                "/v1/edit",
                files={"image": ("in.png", png, "image/png")},
                data={"instruction": "replace the red disc with a boat", "seed": "3"},
            )
        assert r.status_code == 200, r.text
        found = c2.read(r.content, "image/png", [ca.read_bytes()])
        assert (found is not None and found["state"] == "Trusted") if enabled else found is None
    finally:
        use_by_default(None)


def test_verify_says_when_a_change_lies_outside_the_signed_regions(org, tmp_path):
    ca, creds = org
    src = _input(tmp_path)
    pixels = scene(96, 128)
    pixels[5:10, 5:10] = 0  # changed here ...
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    box = {"type": "rectangle", "unit": "pixel", "origin": {"x": 50, "y": 50}, "width": 20, "height": 20}
    manifest = {  # ... but the manifest says only around (50, 50)
        "claim_generator_info": [{"name": "test", "version": "1"}],
        "assertions": [
            {
                "label": "c2pa.actions.v2",
                "data": {
                    "actions": [
                        {"action": "c2pa.created", "digitalSourceType": GENERATED},
                        {"action": "c2pa.edited", "changes": [{"region": [{"type": "spatial", "shape": box}]}]},
                    ]
                },
            }
        ],
    }
    with open(tmp_path / "out.png", "wb") as f:
        c2.sign(buf.getvalue(), "image/png", manifest, c2.load_identity(creds.cert, creds.key), f)
    r = run_cli("verify", str(src), str(tmp_path / "out.png"), "--json", "--trust", str(ca))
    read = json.loads(r.stdout)["credentials"]
    assert read["state"] == "Trusted" and read["actions"][1]["regions"] == [[50, 50, 70, 70]]
    assert read["changes_inside_regions"] is False
    assert "changes OUTSIDE the signed regions" in run_cli("verify", str(src), str(tmp_path / "out.png")).stdout


def test_the_signed_boxes_are_the_regions_parts_in_the_frames_pixels_each_given_to_its_edit():
    """_assign labels only the region's bounding box (issue 34: a full-frame labelling cost 0.17
    CPU-s at 24 MP): the boxes it signs are still in the frame's pixels, each part given to the
    edit whose own region touches it, a part no edit touches to the last edit."""
    from types import SimpleNamespace

    from lasso_edit.pipeline.credentials import _assign

    region = np.zeros((120, 200), bool)
    region[30:40, 50:60] = True  # the first edit's
    region[70:90, 150:180] = True  # the second's
    region[100:110, 20:25] = True  # nobody's own: the last edit's
    first, second = np.zeros_like(region), np.zeros_like(region)
    first[32:35, 52:55] = True
    second[75:80, 160:170] = True
    steps = [SimpleNamespace(region=first), SimpleNamespace(region=second)]
    assert _assign(region, steps) == [[(50, 30, 60, 40)], [(20, 100, 25, 110), (150, 70, 180, 90)]]
    assert _assign(np.zeros_like(region), steps) == [[], []]
