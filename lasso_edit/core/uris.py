"""What counts as a URI (an fsspec object-store address, a data URL) rather than a local path. No
dependencies: batch, scale/storage, the CLI and `lasso mcp` all ask it, so it lives below them."""

from __future__ import annotations

import re

_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_uri(text: str) -> bool:
    """An fsspec URI (s3://bucket/key, gs://..., file:///...), not a local path."""
    return bool(_URI.match(str(text)))


def is_data_url(text: object) -> bool:
    """A data URL (RFC 2397): `data:` in any case (`DATA:`, `Data:`), as a URL's scheme is (RFC 3986,
    3.1). Everywhere Lasso takes a data URL asks this, never `startswith("data:")`."""
    return isinstance(text, str) and text[:5].lower() == "data:"
