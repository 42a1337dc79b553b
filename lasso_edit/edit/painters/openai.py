"""A hosted painter: OpenAI's images API (or a server that speaks it) repaints the crop.

    --inpainter openai:gpt-image-1.5@https://api.openai.com/v1    # key: --inpainter-api-key or OPENAI_API_KEY

The crop the `inpaint` executor hands over goes to `POST BASE_URL/images/edits` as OpenAI takes it
(openai-python's `types/image_edit_params.py` and `types/images_response.py`): multipart `image` (PNG),
`mask` (a PNG of the same size whose alpha is 0 where the edit is allowed), `prompt` (the edit's
own sentence: this painter reads instructions), `model`, `size` and `n=1`; the answer is
`data[0].b64_json`. The size is one the model accepts (`request_size`): gpt-image-1, -1.5 and
-1-mini take 1024x1024, 1536x1024 or 1024x1536, the nearest aspect is chosen and the crop padded to
it (its edge pixels repeated), never stretched; gpt-image-2 and later take any sides that are
multiples of 16, aspect 1:3 to 3:1, up to 3840x2160. The answer, at whatever size the server
made it, is mapped back onto the crop's grid exactly (`Frame`), then aligned on the crop and its
colour drift undone (imaging/align.py: the pixels outside the mask anchor the fit), because hosted
editors shift, zoom and recolour the whole picture and change pixels they were told to keep
(vercel/ai #14360). The executor pastes it and the editor composites it through the mask, so no
pixel outside the mask can change whatever the server did.

The HTTP client, the one total deadline and the retries (429, 5xx, dropped connections) are the
remote VLM's (parse/remote.py). Every failure is ModelUnavailableError (exit 3), one line naming
the server; the key is never in a message. No local weights are loaded: the painter's
`checkpoint` is None, so the editor checks no folder or cache for it.
"""

from __future__ import annotations

import base64
import io
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from ...core.errors import InvalidInputError, ModelUnavailableError
from ...imaging.align import align
from ...imaging.arrays import resize_mask, resize_rgb
from .base import Painter, PaintRequest

log = logging.getLogger(__name__)

Size = tuple[int, int]  # (width, height)

FIXED_SIZES: tuple[Size, ...] = ((1024, 1024), (1536, 1024), (1024, 1536))  # gpt-image-1, -1.5, -1-mini
MULTIPLE = 16  # gpt-image-2 and later: each side a multiple of this,
MAX_ASPECT = 3.0  # the long side at most this many times the short,
MAX_SIDES = (3840, 2160)  # the long side and the short side at most these,
PIXELS = (1024 * 1024, 2560 * 1440)  # and the crop sent between these many pixels (above: "experimental")
TARGET = re.compile(r"(?P<model>[^@\s]+)@(?P<url>https?://\S+)")


def parse_target(value: str | None) -> tuple[str, str]:
    """What follows `openai:` in an `--inpainter` value: MODEL@BASE_URL -> (model, base URL)."""
    m = TARGET.fullmatch(value or "")
    if not m:
        raise InvalidInputError(
            f"--inpainter openai:{value or ''}: a hosted painter is written openai:MODEL@BASE_URL, e.g. "
            "openai:gpt-image-1.5@https://api.openai.com/v1"
        )
    return m.group("model"), m.group("url").rstrip("/")


def any_size(model: str) -> bool:
    """Whether `model` takes any size (gpt-image-2 and later) rather than FIXED_SIZES."""
    m = re.match(r"gpt-image-(\d+)", model)
    return m is not None and int(m.group(1)) >= 2


def request_size(width: int, height: int, model: str) -> Size:
    """The size to ask `model` for, for a crop of width x height: for the fixed sizes the one of
    nearest aspect; else about the crop's pixels (within PIXELS), its aspect held to 1:3-3:1,
    within MAX_SIDES, each side a multiple of MULTIPLE."""
    aspect = width / height
    if not any_size(model):
        return min(FIXED_SIZES, key=lambda s: abs(math.log(aspect * s[1] / s[0])))
    a = min(max(aspect, 1 / MAX_ASPECT), MAX_ASPECT)
    pixels = min(max(width * height, PIXELS[0]), PIXELS[1])
    w, h = math.sqrt(pixels * a), math.sqrt(pixels / a)
    long_max, short_max = MAX_SIDES
    k = min(1.0, long_max / max(w, h), short_max / min(w, h))
    sw = max(MULTIPLE, int(w * k) // MULTIPLE * MULTIPLE)
    sh = max(MULTIPLE, int(h * k) // MULTIPLE * MULTIPLE)
    return min(sw, int(MAX_ASPECT * sh)), min(sh, int(MAX_ASPECT * sw))


def accepts(size: Size, model: str) -> bool:
    """Whether `model` takes `size` (what the server would refuse otherwise)."""
    if not any_size(model):
        return size in FIXED_SIZES
    w, h = size
    return (
        w % MULTIPLE == 0
        and h % MULTIPLE == 0
        and max(w, h) <= MAX_SIDES[0]
        and min(w, h) <= MAX_SIDES[1]
        and max(w, h) <= MAX_ASPECT * min(w, h)
    )


@dataclass(frozen=True)
class Frame:
    """The crop (width x height) padded to the aspect of the size sent (`padded`, the crop at
    `offset` in it), then resized to `sent`; `back` undoes it for an answer of any size."""

    crop: Size
    padded: Size
    offset: Size  # (left, top) of the crop in the padded frame
    sent: Size

    @classmethod
    def of(cls, width: int, height: int, sent: Size) -> Frame:
        aspect = sent[0] / sent[1]
        if width / height < aspect:
            pw, ph = max(width, round(height * aspect)), height
        else:
            pw, ph = width, max(height, round(width / aspect))
        return cls((width, height), (pw, ph), ((pw - width) // 2, (ph - height) // 2), sent)

    def send(self, image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The picture and the mask (bool, True: may change) at the size sent; the padding is kept."""
        (w, h), (pw, ph), (left, top) = self.crop, self.padded, self.offset
        border = (top, ph - h - top, left, pw - w - left)
        padded = cv2.copyMakeBorder(image, *border, cv2.BORDER_REPLICATE)
        allowed = cv2.copyMakeBorder(mask.astype(np.uint8), *border, cv2.BORDER_CONSTANT, value=0) > 0
        return resize_rgb(padded, self.sent), resize_mask(allowed, self.sent)

    def back(self, answer: np.ndarray) -> np.ndarray:
        """An answer (RGB uint8, any size: the server's) on the crop's grid."""
        (w, h), (left, top) = self.crop, self.offset
        return resize_rgb(answer, self.padded)[top : top + h, left : left + w]


def laid(crop: np.ndarray, answer: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """`answer` (on the crop's grid) aligned on `crop` and its colour drift undone, fit on the
    pixels outside `mask`; the crop's own pixels where the aligned answer does not reach. An answer
    that cannot be aligned (too little outside the mask, or not alike) is used as it came."""
    h, w = mask.shape
    try:
        a = align(crop, answer, keep=~mask)
    except InvalidInputError as e:
        log.warning("the hosted painter's answer was not aligned (%s); it is pasted as it came", e)
        return answer
    patch, covered = a.paste(answer, (0, 0, w, h))
    out = crop.copy()
    np.copyto(out, patch, where=covered[..., None])
    return out


def png(rgb: np.ndarray, alpha: np.ndarray | None = None) -> bytes:
    """A PNG of an RGB uint8 image, with `alpha` (uint8 HxW) as its alpha channel when given."""
    from PIL import Image

    pixels = rgb if alpha is None else np.dstack([rgb, alpha])
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels), "RGB" if alpha is None else "RGBA").save(
        buf, format="PNG", compress_level=3
    )
    return buf.getvalue()


def decoded(answer: Any, server: str) -> np.ndarray:
    """The picture in an images answer (`data[0].b64_json`), RGB uint8; ModelUnavailableError,
    one line, for anything else."""
    from PIL import Image, UnidentifiedImageError

    data: Sequence[Any] | None = getattr(answer, "data", None)
    b64 = getattr(data[0], "b64_json", None) if data else None
    if not isinstance(b64, str) or not b64:
        raise ModelUnavailableError(f"{server} answered with no image (no data[0].b64_json)")
    try:
        with Image.open(io.BytesIO(base64.b64decode(b64, validate=True))) as im:
            return np.asarray(im.convert("RGB")).copy()
    except (ValueError, OSError, UnidentifiedImageError, Image.DecompressionBombError) as e:
        raise ModelUnavailableError(
            f"{server} answered with an image that cannot be decoded ({type(e).__name__})"
        ) from None


class OpenAIPainter(Painter):
    """OpenAI's `images/edits` (or a server that speaks it) as the painter; no local weights."""

    name = "openai"
    checkpoint = None  # it loads none: what follows `openai:` is a model on a server
    prompting = "instruction"
    guidance = "distilled"  # the server has its own; no scale is sent
    native = 1024  # the crop is about 1024x1024 pixels: the fixed sizes' own

    def __init__(
        self, client: Any, transport: Any, model: str, base_url: str, timeout: float = 180.0, max_retries: int = 3
    ) -> None:
        self.client, self.transport = client, transport
        self.model, self.base_url = model, base_url
        self.server = f"the image server at {base_url}"
        self.timeout, self.max_retries = float(timeout), int(max_retries)
        self.last_size: Size | None = None  # the size the last request asked for

    @classmethod
    def check_target(cls, value: str | None) -> None:
        """An `--inpainter openai:...` value's part after the name, checked before anything loads."""
        parse_target(value)

    @classmethod
    def from_pretrained(
        cls,
        model_id: str | None,
        device: str = "cpu",
        dtype: Any = None,
        *,
        api_key: str | None = None,
        timeout: float = 180.0,
        max_retries: int = 3,
        **options: Any,
    ) -> OpenAIPainter:
        """A painter for MODEL@BASE_URL (`model_id`); the key `api_key`, else OPENAI_API_KEY. The
        device, dtype and the local painters' options do not apply (a preset's few-step LoRA is
        left out; a LoRA of the user's own is refused)."""
        from ...parse.remote import open_client

        model, url = parse_target(model_id)
        if options.get("adapter"):
            raise InvalidInputError("--lora: a LoRA of your own cannot be applied to a hosted painter (openai:...)")
        client, transport = open_client(url, api_key, "a hosted painter (--inpainter openai:...)")
        return cls(client, transport, model, url, timeout=timeout, max_retries=max_retries)

    def max_steps(self) -> int:
        return 1000  # the server runs its own; the preset's count is not sent

    def paint(self, image: np.ndarray, mask: np.ndarray, request: PaintRequest) -> np.ndarray:
        """The crop (RGB uint8 HxWx3) with `mask` (bool HxW) repainted by the server, at the same size."""
        h, w = mask.shape
        frame = Frame.of(w, h, request_size(w, h, self.model))
        sent, allowed = frame.send(image, mask)
        self.last_size = frame.sent
        if request.on_step is not None:
            request.on_step(0, 1)
        answer = self._edit(sent, allowed, request.instruction or request.prompt, frame.sent)
        if request.on_step is not None:
            request.on_step(1, 1)
        return laid(image, frame.back(answer), mask)

    def _edit(self, image: np.ndarray, allowed: np.ndarray, prompt: str, size: Size) -> np.ndarray:
        """One `images/edits` request within the deadline; the picture it answers."""
        import openai

        from ...parse.remote import call_within, reason

        files = {
            "image": ("image.png", png(image), "image/png"),
            "mask": ("mask.png", png(np.zeros_like(image), np.where(allowed, 0, 255).astype(np.uint8)), "image/png"),
        }

        def edit(client: Any) -> np.ndarray:
            out = client.images.edit(**files, prompt=prompt, model=self.model, size=f"{size[0]}x{size[1]}", n=1)
            return decoded(out, self.server)

        try:
            return call_within(
                self.client, self.transport, self.server, "to the edit", edit, self.timeout, self.max_retries
            )
        except (openai.AuthenticationError, openai.PermissionDeniedError) as e:
            raise ModelUnavailableError(
                f"{self.server} refused the API key ({e.status_code}; --inpainter-api-key or OPENAI_API_KEY)"
            ) from None
        except openai.APIStatusError as e:
            raise self._scrubbed(f"{self.server} refused the edit ({e.status_code}): {reason(e)}") from None
        except ModelUnavailableError as e:
            raise self._scrubbed(str(e)) from None

    def _scrubbed(self, message: str) -> ModelUnavailableError:
        """An error whose message cannot hold the key, whatever the server echoed."""
        key = str(getattr(self.client, "api_key", "") or "")
        if len(key) >= 4:
            message = message.replace(key, "[the key]")
        return ModelUnavailableError(message.splitlines()[0] if message else message)
