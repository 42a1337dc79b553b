"""A VLM on an OpenAI-compatible server (vLLM, SGLang, TGI, llama.cpp's server) as the planner.

`--vlm openai:MODEL@BASE_URL`, e.g. `openai:llava-hf/llava-1.5-7b-hf@http://gpu-box:8000/v1`; the key
from `--vlm-api-key` or OPENAI_API_KEY (a local server takes any). The official `openai` client
sends the chat completion with the photo as a base64 data URL (docs/models.md: vLLM serves the
llava-hf checkpoints behind /v1/chat/completions, images as image_url parts). The answer goes
through the same loop as the local VLM (llava.PlanLoop): tolerant parsing, one re-ask, the rules
parser as the fallback. Boxes are fractions of the photo the server was sent, which has the
original's aspect ratio, so there is no processor geometry to undo (an identity frame).

Decoding is held to the plan's JSON schema with `response_format` where the server supports it
(vLLM and SGLang do); a server that refuses it is asked again without, once, and remembered.
The client retries 429 and 5xx answers with backoff; an unreachable server is a
ModelUnavailableError (exit 3) within seconds. No local VLM is loaded.
"""

from __future__ import annotations

import base64
import io
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast

import numpy as np

from ..core.errors import InvalidInputError, ModelUnavailableError
from ..imaging.arrays import shrink, to_pil
from ..imaging.geometry import VisionFrame
from .loop import ANSWER_SCHEMA, ImageAttention, PlanLoop

if TYPE_CHECKING:
    import httpx

_T = TypeVar("_T")

PREFIX = "openai:"
MAX_SIDE = 1024  # the photo is sent at most this long on its long side (servers resize to a few hundred)


def is_remote(model: str) -> bool:
    return isinstance(model, str) and model.startswith(PREFIX)


def parse_spec(spec: str) -> tuple[str, str]:
    """`openai:MODEL@BASE_URL` -> (model, base URL); InvalidInputError for anything else."""
    m = re.fullmatch(r"openai:(?P<model>[^@\s]+)@(?P<url>https?://\S+)", spec)
    if not m:
        raise InvalidInputError(
            f"--vlm {spec!r}: a remote VLM is written openai:MODEL@BASE_URL, e.g. "
            "openai:llava-hf/llava-1.5-7b-hf@http://gpu-box:8000/v1"
        )
    return m.group("model"), m.group("url").rstrip("/")


class RemotePlanner(PlanLoop):
    """The planning loop with `ask` on a server. Each ask has one total deadline (`timeout`, 60 s by
    default): connecting, waiting, retrying 429 / 5xx / dropped connections with backoff, and reading
    the answer, however slowly it trickles in, all fit in it; past it, ModelUnavailableError (exit 3).
    An answer that is not a chat completion (an HTML page, `{}`, no choices) is ModelUnavailableError
    too: the server is broken, not the plan."""

    CHECK_S = 5.0  # the model-list check at start: a wrong address fails in this long at most

    def __init__(
        self,
        client: Any,  # an openai.OpenAI, whose annotations name its vendored httpx, not the one it runs with
        model: str,
        base_url: str,
        max_tokens: int = 96,
        timeout: float = 60.0,
        max_retries: int = 3,
        transport: _DeadlineTransport | None = None,
    ) -> None:
        self.client = client
        self.model_id = f"{PREFIX}{model}@{base_url}"
        self.served = model
        self.base_url = base_url
        self.max_tokens = max_tokens
        self.timeout, self.max_retries = float(timeout), int(max_retries)
        self.transport = transport or _DeadlineTransport()
        self.constrained = True  # until the server refuses a schema
        self.last_new_tokens = 0

    @classmethod
    def from_spec(
        cls, spec: str, api_key: str | None = None, timeout: float = 60.0, max_retries: int = 3, check: bool = True
    ) -> RemotePlanner:
        """A planner for `openai:MODEL@BASE_URL`; with `check`, the server is asked for its models
        first (CHECK_S at most), so a wrong address fails before any photo is sent."""
        model, url = parse_spec(spec)
        client, transport = open_client(url, api_key, "a remote VLM")
        planner = cls(client, model, url, timeout=timeout, max_retries=max_retries, transport=transport)
        if check:
            planner.check()
        return planner

    def _call(self, what: str, request: Callable[[Any], _T], deadline_s: float, retries: int) -> _T:
        """`request(client)` within one total deadline, retries included (call_within)."""
        return call_within(
            self.client, self.transport, f"the VLM server at {self.base_url}", what, request, deadline_s, retries
        )

    def check(self) -> None:
        """Reach the server (one short request, no retries) and see that it serves the model."""
        import openai

        def served(client: Any) -> list[str]:
            ids = [m.id for m in client.models.list()]
            if not all(isinstance(i, str) for i in ids):
                raise TypeError("a model without an id")
            return ids

        try:
            names = self._call("to the model list", served, self.CHECK_S, retries=0)
        except openai.AuthenticationError as e:
            raise ModelUnavailableError(
                f"the VLM server at {self.base_url} refused the API key (--vlm-api-key or OPENAI_API_KEY)"
            ) from e
        except openai.APIStatusError as e:
            if e.status_code == 404:  # some servers have no /models: the first question will tell
                return
            raise ModelUnavailableError(
                f"the VLM server at {self.base_url} answered {e.status_code}: {reason(e)}"
            ) from e
        if names and self.served not in names:
            raise ModelUnavailableError(
                f"the VLM server at {self.base_url} does not serve {self.served!r}; it serves: {', '.join(names)[:300]}"
            )

    def frame(self, image: np.ndarray) -> VisionFrame:
        return VisionFrame.identity(image.shape[1], image.shape[0])

    def attention(
        self,
        image: np.ndarray,
        text: str,
        query: str,
        layers_of: Callable[[int], list[int]],
        heads: Sequence[int] | None,
    ) -> ImageAttention:
        """A server answers text, not its attention: the attention grounder needs a local VLM."""
        raise ModelUnavailableError(
            "the attention grounder reads a local VLM's attention; a remote VLM's server does not send it: "
            "use --grounder detector or vlm"
        )

    def ask(self, image: np.ndarray, text: str, constrained: bool | None = None) -> str:
        """One question about an RGB uint8 HxWx3 image; the server's answer text."""
        import openai

        constrained = self.constrained if constrained is None else constrained
        buf = io.BytesIO()
        to_pil(shrink(image, max_long=MAX_SIDE)).save(buf, format="PNG")
        url = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
        messages = [
            {
                "role": "user",
                "content": [{"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": text}],
            }
        ]
        kwargs = {}
        if constrained:
            kwargs["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "edit_plan", "schema": ANSWER_SCHEMA},
            }

        def question(client: Any) -> tuple[str, int]:
            out = client.chat.completions.create(
                model=self.served, messages=messages, temperature=0.0, max_tokens=self.max_tokens, **kwargs
            )
            content = out.choices[0].message.content
            if content is not None and not isinstance(content, str):
                raise TypeError("the message content is not text")
            usage = getattr(out, "usage", None)
            return (content or "").strip(), int(getattr(usage, "completion_tokens", 0) or 0)

        try:
            answer, self.last_new_tokens = self._call("to the question", question, self.timeout, self.max_retries)
        except openai.BadRequestError as e:
            if not constrained:
                raise ModelUnavailableError(
                    f"the VLM server at {self.base_url} refused the question: {reason(e)}"
                ) from e
            self.constrained = False  # no schema support here: ask freely, and parse tolerantly
            return self.ask(image, text, constrained=False)
        except openai.APIStatusError as e:
            raise ModelUnavailableError(
                f"the VLM server at {self.base_url} answered {e.status_code}: {reason(e)}"
            ) from e
        return answer


def open_client(url: str, api_key: str | None, needs: str) -> tuple[Any, _DeadlineTransport]:
    """An `openai.OpenAI` client for the server at `url` (its key `api_key`, else OPENAI_API_KEY, else
    "none": local servers take any), with no retries of its own, and the transport that holds each
    request to a deadline (call_within sets it). `needs`: what needs it, for the error when the
    openai client is not installed ("a remote VLM")."""
    try:
        import httpx
        import openai
    except ImportError:
        raise ModelUnavailableError(f"{needs} needs the openai client: pip install 'lasso-edit[remote]'") from None
    key = api_key or os.environ.get("OPENAI_API_KEY") or "none"
    transport = _DeadlineTransport()
    # (openai's annotations name its own vendored httpx; the public httpx client is what it runs with)
    client = openai.OpenAI(
        base_url=url,
        api_key=key,
        max_retries=0,  # retries are ours, inside the deadline
        http_client=httpx.Client(transport=transport),  # type: ignore[arg-type]
    )
    return client, transport


def call_within(
    client: Any,
    transport: _DeadlineTransport,
    server: str,
    what: str,
    request: Callable[[Any], _T],
    deadline_s: float,
    retries: int,
) -> _T:
    """`request(client)` with one total deadline, retrying 429, 5xx and dropped connections with
    backoff while time is left. Errors are ModelUnavailableError naming `server` ("the VLM server
    at URL"); 400, 401, 403 and the other statuses are raised as the client raises them, for the
    caller to say what they mean. Anything else `request` raises (an answer that is not the kind
    asked for: HTML, {}, garbage) is ModelUnavailableError, `what` saying which request it was."""
    import openai

    end = time.monotonic() + deadline_s
    for attempt in range(retries + 1):
        left = end - time.monotonic()
        if left <= 0:
            break
        transport.deadline = end
        bound = client.with_options(timeout=_timeout(left), max_retries=0)
        try:
            return request(bound)
        except openai.APITimeoutError:
            break
        except openai.APIConnectionError as e:
            if attempt == retries:
                raise ModelUnavailableError(f"{server} cannot be reached ({reason(e)})") from e
        except (openai.RateLimitError, openai.InternalServerError) as e:
            if attempt == retries:
                raise ModelUnavailableError(f"{server} answered {e.status_code} after retries: {reason(e)}") from e
        except (openai.BadRequestError, openai.AuthenticationError, openai.APIStatusError):
            raise  # the caller says what these mean
        except ModelUnavailableError:
            raise  # the request's own verdict on the answer
        except Exception as e:  # noqa: BLE001 - not the answer asked for: HTML, {}, deep nesting, garbage
            raise ModelUnavailableError(
                f"{server} answered {what} with something that is not an OpenAI-compatible answer ({type(e).__name__})"
            ) from e
        finally:
            transport.deadline = None
        time.sleep(min(0.5 * 2**attempt, max(0.0, end - time.monotonic())))
    raise ModelUnavailableError(f"{server} gave no complete answer {what} within {deadline_s:g} s (retries included)")


def _timeout(left: float) -> httpx.Timeout:
    import httpx

    return httpx.Timeout(left, connect=min(left, 5.0))


class _DeadlineTransport:
    """httpx's transport with a total deadline per request: the answer's bytes are read until
    `deadline` (time.monotonic()) at most, so a server trickling one byte every few seconds cannot
    hold an ask forever (httpx's own timeouts are per read, and each byte starts a new one)."""

    def __init__(self) -> None:
        import httpx

        self.inner = httpx.HTTPTransport()
        self.deadline: float | None = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        import httpx

        deadline = self.deadline
        if deadline is not None and time.monotonic() >= deadline:
            raise httpx.ReadTimeout("the deadline passed before the request was sent", request=request)
        response = self.inner.handle_request(request)
        if deadline is None:
            return response
        end: float = deadline
        stream = cast(httpx.SyncByteStream, response.stream)  # a sync transport's answer streams synchronously

        class Bounded(httpx.SyncByteStream):
            def __iter__(self) -> Iterator[bytes]:
                for chunk in stream:
                    if time.monotonic() > end:
                        raise httpx.ReadTimeout("the answer was still arriving at the deadline", request=request)
                    yield chunk

            def close(self) -> None:
                stream.close()

        response.stream = Bounded()
        return response

    def close(self) -> None:
        self.inner.close()

    # httpx.Client calls these through BaseTransport's interface
    def __enter__(self) -> _DeadlineTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def reason(e: Exception) -> str:
    """An error's first line, at most 200 characters (its type when it has no message)."""
    return str(e).splitlines()[0][:200] if str(e) else type(e).__name__
