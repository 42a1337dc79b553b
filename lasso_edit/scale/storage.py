"""Where a Ray batch reads its images and writes its outputs: a local (or shared) folder, or any
fsspec URI (s3://bucket/prefix, gs://..., file:///...). Local paths never touch fsspec; URIs need
fsspec and the store's own package (s3fs, gcsfs), as fsspec says when one is missing.

    if is_uri(where): ...
    copy = fetch("s3://b/photos/cat.jpg", scratch)      # a local copy, suffix kept
    put(local_png, "s3://b/out/cat.png")                 # one object, whole or not at all
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from ..core.errors import InvalidInputError
from ..core.uris import is_uri
from ..imaging import write_atomic


def _fs(uri: str) -> tuple[Any, str]:  # (an fsspec filesystem, the path in it)
    try:
        import fsspec
    except ImportError:
        raise InvalidInputError(
            f"{uri} is a URI: reading and writing URIs needs fsspec (pip install 'lasso-edit[ray]')"
        ) from None
    try:
        return fsspec.core.url_to_fs(uri)
    except (ImportError, ValueError) as e:  # no s3fs / gcsfs, or a scheme fsspec does not know
        raise InvalidInputError(f"cannot open {uri}: {e}") from None


def join(base: str, *parts: str) -> str:
    """`base`/`parts`, for a URI or a local path alike."""
    if is_uri(base):
        return "/".join([base.rstrip("/"), *parts])
    return str(Path(base).joinpath(*parts))


def exists(where: str) -> bool:
    if not is_uri(where):
        return Path(where).exists()
    fs, path = _fs(where)
    return fs.exists(path)


def read_text(where: str) -> str | None:
    """The text at `where`, or None when there is nothing there."""
    if not is_uri(where):
        p = Path(where)
        return p.read_text(encoding="utf-8") if p.exists() else None
    fs, path = _fs(where)
    if not fs.exists(path):
        return None
    with fs.open(path, "rb") as f:
        return f.read().decode("utf-8")


def write_bytes(where: str, data: bytes) -> None:
    """`data` at `where`, atomically (a local rename; one object put for a store)."""
    if not is_uri(where):
        Path(where).parent.mkdir(parents=True, exist_ok=True)
        write_atomic(Path(where), lambda f: f.write(data))
        return
    fs, path = _fs(where)
    fs.makedirs(fs._parent(path), exist_ok=True)
    fs.pipe_file(path, data)


def make_folder(where: str) -> None:
    if is_uri(where):
        fs, path = _fs(where)
        fs.makedirs(path, exist_ok=True)
    else:
        Path(where).mkdir(parents=True, exist_ok=True)


def fetch(where: str, folder: Path) -> Path:
    """A local file with the bytes at `where` (the path itself when local; a copy in `folder`,
    keeping the suffix, for a URI). Raises InvalidInputError when there is nothing there."""
    if not is_uri(where):
        return Path(where)
    fs, path = _fs(where)
    if not fs.exists(path):
        raise InvalidInputError(f"image not found: {where}")
    local = Path(folder) / ("in" + Path(path).suffix.lower())
    with fs.open(path, "rb") as src, open(local, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    return local


def put(local: Path, where: str) -> None:
    """Upload a finished local file to the URI `where`."""
    fs, path = _fs(where)
    fs.makedirs(fs._parent(path), exist_ok=True)
    fs.put_file(str(local), path)
