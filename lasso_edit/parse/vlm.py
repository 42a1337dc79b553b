"""The `vlm` model stage: a local LLaVA-family checkpoint (llava.py), or with an `openai:MODEL@URL` id
an OpenAI-compatible server (remote.py). Both plan through llava.PlanLoop."""

from __future__ import annotations


class VLMStage:
    @classmethod
    def build(cls, path: str, options):
        if path.startswith("openai:"):
            from .remote import RemotePlanner

            return RemotePlanner.from_spec(path, api_key=options.vlm_api_key)
        from .llava import LlavaParser

        return LlavaParser.build(path, options)
