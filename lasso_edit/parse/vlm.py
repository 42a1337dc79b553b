"""The `vlm` model stage: a local checkpoint, LLaVA-family (llava.py) or Qwen-VL (qwen.py), picked
by its config's `model_type`; or with an `openai:MODEL@URL` id an OpenAI-compatible server
(remote.py). All of them plan through loop.PlanLoop."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..core.stages import LoadOptions
    from .llava import LlavaParser
    from .loop import PlanLoop
    from .qwen import QwenVLParser


class VLMStage:
    @classmethod
    def build(cls, path: str, options: LoadOptions) -> PlanLoop:
        if path.startswith("openai:"):
            from .remote import RemotePlanner

            return RemotePlanner.from_spec(path, api_key=options.vlm_api_key)
        return family(path).build(path, options)


def family(path: str) -> type[LlavaParser] | type[QwenVLParser]:
    """The planner class for a local checkpoint: Qwen-VL's for its model types, LLaVA's otherwise
    (which names every family Lasso reads when the type is neither)."""
    import transformers

    from ..core.loading import load
    from .llava import LlavaParser
    from .qwen import QwenVLParser

    kind = getattr(load("VLM", path, transformers.AutoConfig.from_pretrained), "model_type", "")
    if kind in QwenVLParser.CLASSES:
        return QwenVLParser
    if kind not in LlavaParser.CLASSES:
        from ..core.errors import ModelUnavailableError

        known = ", ".join([*LlavaParser.CLASSES, *QwenVLParser.CLASSES])
        raise ModelUnavailableError(f"VLM {path!r} is a {kind!r} model; Lasso reads {known} checkpoints")
    return LlavaParser
