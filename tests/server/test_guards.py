"""What keeps the server's answers and storage from being turned against its users (issue 16 #2, #7,
#12): uploads stored and served by what they decode as, nosniff and the page's CSP, changes only
from the server's own origin on a keyless server, and request bodies counted as they arrive."""

import io
import select
import socket

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from lasso_edit.server.app import ServerSettings, create_app

from ..helpers import scene


def _png_with_script_tail() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(scene()).save(buf, format="PNG")
    return buf.getvalue() + b"<html><script>alert(document.domain)</script></html>"


@pytest.fixture()
def client(tiny_editor, tmp_path):
    settings = ServerSettings(preset="tiny", data_dir=str(tmp_path / "serve"), max_upload_mb=1)
    with TestClient(create_app(settings, editor=tiny_editor), base_url="http://127.0.0.1") as c:
        yield c


@pytest.mark.parametrize("name", ["photo.html", "photo.htm", "photo.xhtml", "photo.svg", "photo.js", "photo.xml",
                                  "photo.shtml"])
def test_an_upload_named_as_a_page_is_stored_and_served_as_the_image_it_is(client, tmp_path, name):
    r = client.post("/v1/sessions", files={"image": (name, _png_with_script_tail(), "text/html")})
    assert r.status_code == 201, r.text
    session = r.json()
    assert session["original"] == "original.png"  # from the decoded format, never the client's name
    got = client.get(f"/v1/sessions/{session['id']}/image")
    assert got.status_code == 200 and got.headers["content-type"] == "image/png"
    assert got.headers["x-content-type-options"] == "nosniff"
    assert got.headers["content-disposition"].startswith("inline; filename=") and ".png" in got.headers[
        "content-disposition"]
    assert got.content == _png_with_script_tail()  # the upload byte for byte, served as what it is
    assert not list((tmp_path / "serve").rglob("*.htm*")) and not list((tmp_path / "serve").rglob("*.svg"))


def test_a_stored_file_that_is_no_longer_an_image_is_a_download_not_a_page(client, tmp_path):
    sid = client.post("/v1/sessions", files={"image": ("a.png", _png_with_script_tail(), "image/png")}).json()["id"]
    (tmp_path / "serve" / "sessions" / sid / "original.png").write_bytes(b"<html><script>alert(1)</script>")
    got = client.get(f"/v1/sessions/{sid}/image")
    assert got.headers["content-type"] == "application/octet-stream"
    assert got.headers["content-disposition"].startswith("attachment")


def test_the_page_has_a_content_security_policy_and_is_never_framed(client):
    r = client.get("/")
    csp = r.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and r.headers["x-frame-options"] == "DENY"
    assert client.get("/v1/models").headers["x-content-type-options"] == "nosniff"


def test_a_keyless_server_takes_changes_only_from_its_own_origin(client):
    files = {"image": ("a.png", _png_with_script_tail(), "image/png")}
    # DNS rebinding: a page of evil.example rebinds its name to 127.0.0.1 and posts from script
    r = client.post("/v1/sessions", files=files, headers={"Host": "evil.example:7860"})
    assert r.status_code == 403 and "host name 'evil.example'" in r.json()["detail"]
    # another site's form posted to the server (cross-site request forgery)
    r = client.post("/v1/sessions", files=files, headers={"Origin": "http://evil.example"})
    assert r.status_code == 403 and "another origin" in r.json()["detail"]
    r = client.post("/v1/sessions", files=files, headers={"Origin": "null"})
    assert r.status_code == 403
    # the page itself, an IP address, localhost, [::1]: fine; reads are not changes
    for headers in ({"Origin": "http://127.0.0.1"}, {"Host": "localhost:7860"}, {"Host": "[::1]:7860"},
                    {"Host": "10.1.2.3"}):
        assert client.post("/v1/sessions", files=files, headers=headers).status_code == 201, headers
    assert client.get("/v1/models", headers={"Host": "evil.example"}).status_code == 200


def test_allow_host_and_an_api_key_let_other_names_in(tiny_editor, tmp_path):
    files = {"image": ("a.png", _png_with_script_tail(), "image/png")}
    settings = ServerSettings(preset="tiny", data_dir=str(tmp_path / "a"), allowed_hosts=("lasso.example",))
    with TestClient(create_app(settings, editor=tiny_editor), base_url="http://lasso.example") as c:
        assert c.post("/v1/sessions", files=files).status_code == 201
        assert c.post("/v1/sessions", files=files, headers={"Host": "other.example"}).status_code == 403
    settings = ServerSettings(preset="tiny", data_dir=str(tmp_path / "b"), api_key="k")
    with TestClient(create_app(settings, editor=tiny_editor), base_url="http://lasso.example") as c:
        r = c.post("/v1/sessions", files=files, headers={"Authorization": "Bearer k", "Origin": "http://x.example"})
        assert r.status_code == 201  # the key is the guard


def test_request_headers_over_64_kb_get_431(client):
    r = client.get("/v1/models", headers={"X-Big": "a" * (1 << 20)})
    assert r.status_code == 431 and "headers" in r.json()["detail"]


def test_a_chunked_upload_with_no_length_is_stopped_at_the_limit_not_spooled_whole(live_server, tmp_path):
    """1 GB against a 50 MB limit grew the temporary folder by 1,071 MB: bytes are now counted as
    they arrive, and the 413 comes once the limit (1 MB here) is passed."""
    url = live_server(max_upload_mb=1)
    port = int(url.rsplit(":", 1)[1])
    s = socket.create_connection(("127.0.0.1", port))  # blocking: the test waits on the server's answer
    try:
        s.sendall(f"POST /v1/edit HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: multipart/form-data; "
                  "boundary=XyZ\r\nTransfer-Encoding: chunked\r\n\r\n".encode())
        head = b'--XyZ\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n'
        s.sendall(f"{len(head):x}\r\n".encode() + head + b"\r\n")
        chunk, sent, total = b"\0" * (256 << 10), 0, 400 << 20
        while sent < total:
            if select.select([s], [], [], 0)[0]:
                break  # the server has answered
            try:
                s.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            except OSError:  # it answered and closed the connection
                break
            sent += len(chunk)
        answer = b""
        while b"\r\n\r\n" not in answer:
            more = s.recv(65536)
            if not more:
                break
            answer += more
    finally:
        s.close()
    assert answer.split(b"\r\n")[0].split(b" ")[1] == b"413", answer[:200]
    assert sent < 64 << 20, f"{sent >> 20} MB were taken before the 413"
    assert not list((tmp_path / "serve" / "uploads").iterdir())


_DEEP = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize("plan,words", [
    ({"edits": [{"target": "disc"}]}, "edit 1: action is missing"),
    ({"edits": [{"action": "remove"}]}, "a remove edit needs a target"),
    ({"edits": [{"action": "recolor", "target": "disc", "value": {"colour": "red"}}]}, "value must be text"),
    ({"edits": [{"action": "style", "value": "winter", "strength": "abc"}]}, "strength must be a number in (0, 1]"),
    ({"edits": [{"action": "style", "value": "winter", "strength": 99}]}, "strength must be a number in (0, 1]"),
    ({"edits": [{"action": "remove", "target": "disc", "box": [0, 0, 1e308, 1e308]}]}, "box must be pixels within"),
    ({"edits": [{"action": "remove", "target": "disc", "avoid": [0, 0, 5]}]}, "avoid must be four numbers"),
    ({"edits": [{"action": "adjust", "value": "sharpen"}]}, "unknown adjustment 'sharpen'"),
    ({"edits": []}, "edits is empty"),
    (_DEEP, "nested too deeply"),
])
@pytest.mark.parametrize("route", ["/v1/plan", "/v1/edit"])
def test_a_malformed_plan_is_422_with_a_sentence_and_the_connection_lives_on(live_server, route, plan, words):
    """Issue 16 #4: each of these was a 500 and a dropped keep-alive."""
    import json

    import httpx

    url = live_server()
    with httpx.Client(base_url=url) as c:
        body = plan if isinstance(plan, str) else json.dumps(plan)
        r = c.post(route, files={"image": ("a.png", _png_with_script_tail(), "image/png")},
                   data={"instruction": "", "plan": body})
        assert r.status_code == 422 and words in r.json()["detail"], r.text
        assert r.headers.get("connection") != "close"
        assert c.get("/healthz").status_code == 200  # the same client, the connection kept
