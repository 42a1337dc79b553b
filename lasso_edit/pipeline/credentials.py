"""The Content Credentials of an edit: the C2PA manifest built from an EditResult (the input opened
as the parentOf ingredient, one action per edit with its sentence, the models and the region the
mask covers, in pixels), and `SigningBatch`, through which write_and_prove signs the bytes it has
just encoded, in memory, straight into the output file (no second write, no re-encode).

Actions (C2PA 2.x, c2pa.actions.v2): a region a model repainted is `c2pa.edited` with the IPTC
digital source type compositeWithTrainedAlgorithmicMedia; a deterministic edit is the action that
fits it, not marked as generated: `c2pa.filtered` (blur, pixelate, sharpen),
`c2pa.color_adjustments` (brightness, contrast, exposure, saturation, a texture-keeping recolour);
another editor's paint put back by `lasso contain` is `c2pa.placed`, its file the componentOf
ingredient. Each action's `changes` are rectangles covering every pixel the edit was allowed to
change (the compositing mask, and for JPEG the re-encoded blocks): `lasso verify` checks that every
changed pixel lies inside them."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Callable, cast

import numpy as np

from ..core.config import Credentials
from ..core.plan import Action
from ..imaging import OutputBatch
from ..imaging.credentials import MIME, SigningIdentity

if TYPE_CHECKING:
    from ..imaging import LoadedImage
    from .result import EditResult, EditStep

GENERATED = "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"
MAX_RECTANGLES = 32  # per action; more (a speckled mask) are one rectangle around them all
_FILTERS = ("blur", "pixelate", "sharpen", "mosaic")
_identities: dict[tuple[str | None, str | None], SigningIdentity] = {}
_process_default: list[Credentials] = []  # a server's own (ServerSettings.credentials), set by its Service


def use_by_default(credentials: Credentials | None) -> None:
    """What a write with no credentials of its own signs with, in this process: a server's settings
    (`lasso serve --no-credentials`, its --sign-cert), which reach every answer, session and MCP
    write through write_and_prove. None: back to LASSO_SIGN_CERT/LASSO_SIGN_KEY or the local identity."""
    _process_default[:] = [credentials] if credentials is not None else []


def chosen(credentials: Credentials | bool | None) -> Credentials:
    """The Credentials a write uses: its own, else the process's default, else the environment's."""
    if credentials is None and _process_default:
        return _process_default[0]
    return Credentials.of(credentials)


def identity(credentials: Credentials) -> SigningIdentity | None:
    """Who signs: `credentials`' certificate and key (checked), or the local identity (made and
    announced once); None when credentials are off. Raises InvalidInputError (exit 2) naming the
    file and the reason: call it before any model loads. Read once per process and paths."""
    from ..imaging.credentials import load_identity, local_identity

    if not credentials.enabled:
        return None
    if (credentials.cert is None) != (credentials.key is None):
        from ..core.errors import InvalidInputError

        raise InvalidInputError("--sign-cert and --sign-key go together (LASSO_SIGN_CERT, LASSO_SIGN_KEY)")
    from ..imaging.credentials import config_dir

    slot = (credentials.cert, credentials.key) if credentials.cert else (None, str(config_dir()))
    if slot not in _identities:
        if credentials.cert and credentials.key:
            _identities[slot] = load_identity(credentials.cert, credentials.key)
        else:
            _identities[slot] = local_identity()
    return _identities[slot]


class SigningBatch(OutputBatch):
    """An OutputBatch that holds the bytes written to `output` in memory until `seal` signs them
    into the output's temporary file; every other file is written as OutputBatch writes it."""

    def __init__(self, output: Path | None) -> None:
        super().__init__()
        self.output = Path(output) if output is not None else None
        self.held: bytes | None = None

    def write(self, path: str | os.PathLike, write: Callable[[io.BufferedWriter], object]) -> None:
        if self.output is not None and self.held is None and Path(path) == self.output:
            buf = io.BytesIO()
            write(cast(io.BufferedWriter, buf))
            self.held = buf.getvalue()
        else:
            super().write(path, write)

    def __enter__(self) -> SigningBatch:
        return self

    def seal(self, sign: Callable[[bytes, BinaryIO], list[str]] | None) -> list[str]:
        """Write the held bytes to the output, through `sign(data, dest)` (None: as they are). A
        signature that fails leaves the file unsigned, and says so (its warnings returned)."""
        if self.held is None or self.output is None:
            return []
        data, self.held, warnings, name = self.held, None, [], self.output.name

        def write(f: io.BufferedWriter) -> None:
            if sign is not None:
                try:
                    warnings.extend(sign(data, f))
                    return
                except Exception as e:  # noqa: BLE001 (c2pa's own errors): the edit is kept, unsigned, and said
                    f.seek(0)
                    f.truncate()
                    warnings.append(f"Content Credentials could not be added to {name}: {e}")
            f.write(data)

        super().write(self.output, write)
        return warnings


def signer_for(
    result: EditResult, output: Path, region: np.ndarray, identity: SigningIdentity, timestamp_url: str | None = None
) -> Callable[[bytes, BinaryIO], list[str]]:
    """What SigningBatch.seal calls: sign `result`'s manifest (its regions from `region`, bool HxW:
    every pixel allowed to change) into the output, with the input (and contain's other picture)
    as ingredients. Returns its warnings (an input whose own credentials are invalid)."""
    from ..imaging.credentials import sign

    def signer(data: bytes, dest: BinaryIO) -> list[str]:
        from ..imaging.credentials import mime_of_bytes

        mime = mime_of_bytes(data) or "image/png"
        ingredients, warnings = ingredients_of(result)
        manifest = manifest_of(result, output.name, region, [i[0]["label"] for i in ingredients])
        sign(data, mime, manifest, identity, dest, ingredients, timestamp_url)
        return warnings

    return signer


def signable(output: Path) -> str | None:
    """The output's format when C2PA cannot sign it (None: it can)."""
    from PIL import Image

    Image.init()
    fmt = Image.registered_extensions().get(output.suffix.lower(), output.suffix.lstrip(".").upper())
    return None if fmt in MIME else fmt


def ingredients_of(result: EditResult) -> tuple[list[tuple[dict[str, Any], str, bytes]], list[str]]:
    """(definition, mime, bytes) for the input (parentOf) and contain's other picture (componentOf),
    and a warning for each whose own Content Credentials are not valid (they are carried, marked)."""
    out, warnings = [], []
    for label, relation, loaded in (
        ("input", "parentOf", result.source),
        ("component", "componentOf", result.component),
    ):
        if loaded is None:
            continue
        data, mime, title = _file_of(loaded)
        out.append(({"title": title, "relationship": relation, "label": label}, mime, data))
        warnings += _input_warning(data, mime, title)
    return out, warnings


def _file_of(loaded: LoadedImage) -> tuple[bytes, str, str]:
    """An ingredient's bytes, mime and title: its file where it has one C2PA reads, else its
    pixels as PNG (an upload decoded in memory, a format C2PA does not read)."""
    from ..imaging.credentials import mime_of_bytes

    if loaded.path is not None and Path(loaded.path).is_file():
        data = Path(loaded.path).read_bytes()
        mime = mime_of_bytes(data)
        if mime is not None:
            return data, mime, Path(loaded.path).name
    buf = io.BytesIO()
    loaded.original.save(buf, format="PNG", compress_level=1)
    name = Path(loaded.path).name if loaded.path is not None else "input"
    return buf.getvalue(), "image/png", name


def _input_warning(data: bytes, mime: str, title: str) -> list[str]:
    from ..imaging.credentials import read

    found = read(data, mime)
    if found is None or found["state"] != "Invalid":
        return []
    codes = ", ".join(c for c in found["failures"] if c != "signingCredential.untrusted") or "no reason given"
    return [f"{title}'s own Content Credentials are not valid ({codes}); they are kept in the output's, marked so"]


def _version() -> str:
    """Lasso's version, as installed (the package itself sits layers above this module)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lasso-edit")
    except PackageNotFoundError:
        return "0+unknown"


def manifest_of(result: EditResult, title: str, region: np.ndarray, labels: list[str]) -> dict[str, Any]:
    """The manifest definition: claim generator Lasso, the input opened, one action per edit."""
    rects = _assign(region, result.steps)
    actions: list[dict[str, Any]] = [{"action": "c2pa.opened", "parameters": {"ingredientIds": ["input"]}}]
    if "input" not in labels:  # no input known: a picture made here, the rest as edits of it
        actions = [{"action": "c2pa.created", "digitalSourceType": GENERATED}]
    for step, boxes in zip(result.steps, rects):
        actions.append(action_of(result, step, boxes, "component" in labels))
    return {
        "claim_generator_info": [{"name": "Lasso", "version": _version()}],
        "title": title,
        "assertions": [{"label": "c2pa.actions.v2", "data": {"actions": actions}}],
    }


def action_of(
    result: EditResult, step: EditStep, boxes: list[tuple[int, int, int, int]], placed: bool
) -> dict[str, Any]:
    """One edit's action: its C2PA name, sentence, software agent (Lasso and the models) and regions."""
    name, generated = _kind(result, step)
    if placed:
        name, generated = "c2pa.placed", False
    models = "; ".join(f"{k}: {v}" for k, v in sorted(result.models.items()) if v)
    action: dict[str, Any] = {
        "action": name,
        "description": step.edit.describe(),
        "softwareAgent": {"name": f"Lasso {_version()}" + (f" ({models})" if models else "")},
        "changes": [{"region": [_rectangle(b)]} for b in boxes],
    }
    if generated:
        action["digitalSourceType"] = GENERATED
    if placed:
        action["parameters"] = {"ingredientIds": ["component"]}
    return action


def _kind(result: EditResult, step: EditStep) -> tuple[str, bool]:
    """(C2PA action, model-painted?) for an edit: see the module's docstring."""
    action = step.edit.action
    if action == Action.ADJUST:
        value = (step.edit.value or "").lower()
        return ("c2pa.filtered" if any(f in value for f in _FILTERS) else "c2pa.color_adjustments"), False
    if action == Action.RECOLOR and result.recolor == "texture":
        return "c2pa.color_adjustments", False
    return "c2pa.edited", True


def _rectangle(box: tuple[int, int, int, int]) -> dict[str, Any]:
    x0, y0, x1, y1 = box
    shape = {"type": "rectangle", "unit": "pixel", "origin": {"x": x0, "y": y0}, "width": x1 - x0, "height": y1 - y0}
    return {"type": "spatial", "shape": shape}


def _assign(region: np.ndarray, steps: list[EditStep]) -> list[list[tuple[int, int, int, int]]]:
    """Per step, the boxes (x0, y0, x1, y1) of the parts of `region` (bool HxW) its own region
    touches; a part no step touches goes to the last step, so the boxes cover all of `region`."""
    import cv2

    from ..imaging.arrays import mask_bbox

    box = mask_bbox(region)
    if box is None:
        return [[] for _ in steps]
    x0, y0, x1, y1 = box  # the parts lie in the region's box: labelled there, not over the frame
    part = region[y0:y1, x0:x1]
    n, labels, stats, _ = cv2.connectedComponentsWithStats(part.astype(np.uint8), connectivity=8)
    boxes = {
        i: (int(s[0]) + x0, int(s[1]) + y0, int(s[0] + s[2]) + x0, int(s[1] + s[3]) + y0)
        for i, s in enumerate(stats)
        if i > 0
    }
    taken: list[set[int]] = [set(np.unique(labels[st.region[y0:y1, x0:x1] & part]).tolist()) - {0} for st in steps]
    orphans = set(boxes) - set().union(*taken) if taken else set(boxes)
    if taken:
        taken[-1] |= orphans
    return [_cap(sorted(boxes[i] for i in t)) for t in taken]


def _cap(boxes: list[tuple[int, int, int, int]]) -> list[tuple[int, int, int, int]]:
    if len(boxes) <= MAX_RECTANGLES:
        return boxes
    return [(min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))]


__all__ = ["GENERATED", "SigningBatch", "chosen", "identity", "manifest_of", "signable", "signer_for", "use_by_default"]
