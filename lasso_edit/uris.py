"""What counts as a URI (an fsspec object-store address) rather than a local path. No dependencies:
batch, scale/storage and the CLI all ask it, so it lives below them."""

from __future__ import annotations

import re

_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_uri(text: str) -> bool:
    """An fsspec URI (s3://bucket/key, gs://..., file:///...), not a local path."""
    return bool(_URI.match(str(text)))
