"""Errors as the HTTP API answers them (server/errors.py): the server's paths scrubbed, the sentence intact."""

import errno
import json

import pytest

from lasso_edit.core.errors import storage_error
from lasso_edit.server.errors import Scrubber, answer, error


@pytest.mark.parametrize("where", ["sessions/3f2a/step-1.png", "uploads", ""])
def test_a_full_disk_under_the_data_folder_reads_as_the_servers_disk(tmp_path, where):
    data = tmp_path / "data"
    full = storage_error(OSError(errno.ENOSPC, "No space left on device"), data / where if where else data)
    status, detail, code, _ = answer(full)
    body = json.loads(error(Scrubber(data), status, detail, exit_code=code).body)
    assert status == 507 and body["exit_code"] == 3
    assert body["detail"] == (
        "no space left on the server's disk: free some space (or choose another folder) and run it again; "
        "nothing that was there before was changed"
    )
    openai = json.loads(error(Scrubber(data), status, detail, path="/v1/images/edits").body)
    assert openai["error"]["message"] == body["detail"] and openai["error"]["type"] == "server_error"


def test_an_uploaded_image_is_still_named_so(tmp_path):
    scrub = Scrubber(tmp_path)
    assert scrub(f"image {tmp_path}/uploads/upload-x is over the limit") == "the uploaded image is over the limit"


def test_a_job_that_failed_on_a_full_disk_says_the_servers_disk_too(tmp_path):
    """A job's record is scrubbed by the service's own Scrubber (not error()): the sentence of a full
    disk is the scrubber's to keep, so a job, the MCP server and an HTTP answer read the same."""
    data = tmp_path / "data"
    full = storage_error(OSError(errno.ENOSPC, "No space left on device"), data / "jobs")
    _, detail, _, _ = answer(full)
    assert Scrubber(data)(detail).startswith("no space left on the server's disk:")
