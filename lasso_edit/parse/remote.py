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

import numpy as np

from ..arrays import shrink, to_pil
from ..errors import InvalidInputError, ModelUnavailableError
from ..geometry import VisionFrame
from .llava import ANSWER_SCHEMA, PlanLoop

PREFIX = "openai:"
MAX_SIDE = 1024  # the photo is sent at most this long on its long side (servers resize to a few hundred)


def is_remote(model: str) -> bool:
    return isinstance(model, str) and model.startswith(PREFIX)


def parse_spec(spec: str) -> tuple[str, str]:
    """`openai:MODEL@BASE_URL` -> (model, base URL); InvalidInputError for anything else."""
    m = re.fullmatch(r"openai:(?P<model>[^@\s]+)@(?P<url>https?://\S+)", spec)
    if not m:
        raise InvalidInputError(f"--vlm {spec!r}: a remote VLM is written openai:MODEL@BASE_URL, e.g. "
                                "openai:llava-hf/llava-1.5-7b-hf@http://gpu-box:8000/v1")
    return m.group("model"), m.group("url").rstrip("/")


class RemotePlanner(PlanLoop):
    def __init__(self, client, model: str, base_url: str, max_tokens: int = 96):
        self.client = client
        self.model_id = f"{PREFIX}{model}@{base_url}"
        self.served = model
        self.base_url = base_url
        self.max_tokens = max_tokens
        self.constrained = True  # until the server refuses a schema
        self.last_new_tokens = 0

    @classmethod
    def from_spec(cls, spec: str, api_key: str | None = None, timeout: float = 60.0, max_retries: int = 3,
                  check: bool = True) -> RemotePlanner:
        """A planner for `openai:MODEL@BASE_URL`; with `check`, the server is asked for its models
        first (a few seconds at most), so a wrong address fails before any photo is sent."""
        try:
            import openai
        except ImportError:
            raise ModelUnavailableError("a remote VLM needs the openai client: pip install 'lasso-edit[remote]'") from None
        model, url = parse_spec(spec)
        key = api_key or os.environ.get("OPENAI_API_KEY") or "none"  # local servers take any key
        client = openai.OpenAI(base_url=url, api_key=key, timeout=timeout, max_retries=max_retries)
        planner = cls(client, model, url)
        if check:
            planner.check()
        return planner

    def check(self) -> None:
        """Reach the server (one short request, no retries) and see that it serves the model."""
        import openai

        try:
            served = [m.id for m in self.client.with_options(timeout=5.0, max_retries=0).models.list()]
        except openai.APIConnectionError as e:
            raise ModelUnavailableError(f"the VLM server at {self.base_url} cannot be reached ({_reason(e)}); "
                                        "is it running, and is the address right?") from e
        except openai.AuthenticationError as e:
            raise ModelUnavailableError(f"the VLM server at {self.base_url} refused the API key "
                                        "(--vlm-api-key or OPENAI_API_KEY)") from e
        except openai.APIStatusError as e:
            if e.status_code == 404:  # some servers have no /models: the first question will tell
                return
            raise ModelUnavailableError(f"the VLM server at {self.base_url} answered {e.status_code}: "
                                        f"{_reason(e)}") from e
        if served and self.served not in served:
            raise ModelUnavailableError(f"the VLM server at {self.base_url} does not serve {self.served!r}; "
                                        f"it serves: {', '.join(served)}")

    def frame(self, image: np.ndarray) -> VisionFrame:
        return VisionFrame.identity(image.shape[1], image.shape[0])

    def ask(self, image: np.ndarray, text: str, constrained: bool | None = None) -> str:
        """One question about an RGB uint8 HxWx3 image; the server's answer text."""
        import openai

        constrained = self.constrained if constrained is None else constrained
        buf = io.BytesIO()
        to_pil(shrink(image, max_long=MAX_SIDE)).save(buf, format="PNG")
        url = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
        messages = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}},
                                                 {"type": "text", "text": text}]}]
        kwargs = {}
        if constrained:
            kwargs["response_format"] = {"type": "json_schema",
                                         "json_schema": {"name": "edit_plan", "schema": ANSWER_SCHEMA}}
        try:
            out = self.client.chat.completions.create(model=self.served, messages=messages, temperature=0.0,
                                                      max_tokens=self.max_tokens, **kwargs)
        except openai.BadRequestError as e:
            if not constrained:
                raise ModelUnavailableError(f"the VLM server at {self.base_url} refused the question: "
                                            f"{_reason(e)}") from e
            self.constrained = False  # no schema support here: ask freely, and parse tolerantly
            return self.ask(image, text, constrained=False)
        except openai.APIConnectionError as e:
            raise ModelUnavailableError(f"the VLM server at {self.base_url} cannot be reached ({_reason(e)})") from e
        except openai.APIStatusError as e:  # still failing after the client's retries (429, 5xx)
            raise ModelUnavailableError(f"the VLM server at {self.base_url} answered {e.status_code} after "
                                        f"retries: {_reason(e)}") from e
        usage = getattr(out, "usage", None)
        self.last_new_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
        return (out.choices[0].message.content or "").strip()


def _reason(e: Exception) -> str:
    return str(e).splitlines()[0][:200] if str(e) else type(e).__name__
