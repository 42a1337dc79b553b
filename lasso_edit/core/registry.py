"""Stages by name: which class does each job, and which models it needs.

    PARSERS.get("rules")                # -> the class, imported on first use
    PARSERS.register("mine", MyParser)  # or "package.module:MyParser"; then --parser mine

Entries are "module:Class" paths imported when first asked for, so this module imports no stage
module and no stage module imports it: there is no cycle. Every stage class follows its Protocol
in `stages.py`: `needs` names the models it uses and `create(models, ...)` builds it from them.
`MODELS` maps a model stage ("vlm", "segmenter", "inpainter", "detector") to the class whose
`build(path, LoadOptions)` loads it (segment-anything's `sam_model_registry`, one level up).
"""

from __future__ import annotations

import importlib
from typing import Any


class Registry:
    def __init__(self, kind: str, entries: dict[str, str]):
        self.kind = kind
        self._items: dict[str, Any] = dict(entries)

    def register(self, name: str, obj: Any = None) -> Any:
        """Add or replace `name`: a class, or a "module:Class" path. Without `obj`, a decorator."""
        if obj is None:

            def deco(cls: Any) -> Any:
                self._items[name] = cls
                return cls

            return deco
        self._items[name] = obj
        return obj

    def get(self, name: str) -> Any:
        if name not in self._items:
            from .errors import InvalidInputError

            raise InvalidInputError(f"unknown {self.kind} {name!r}; choose one of: {', '.join(self.names())}")
        item = self._items[name]
        if isinstance(item, str):
            module, _, attr = item.partition(":")
            item = self._items[name] = getattr(importlib.import_module(module), attr)
        return item

    def names(self) -> list[str]:
        return sorted(self._items)

    def labels(self) -> dict[str, str]:
        """name -> its class's one-line `label` (what the page and `--help` show). Imports them."""
        return {name: getattr(self.get(name), "label", name) for name in self.names()}


PARSERS = Registry(
    "parser",
    {  # (image, instruction) -> EditPlan
        "rules": "lasso_edit.parse.rules:RulesParser",
        "vlm": "lasso_edit.parse.llava:LlavaParser",
        "auto": "lasso_edit.parse.auto:AutoParser",
        "rules-first": "lasso_edit.parse.rules_first:RulesFirstParser",
    },
)
GROUNDERS = Registry(
    "grounder",
    {  # (image, edit) -> Grounding
        "vlm": "lasso_edit.ground.strategies:VLMGrounder",
        "detector": "lasso_edit.ground.strategies:DetectorGrounder",
        "auto": "lasso_edit.ground.strategies:AutoGrounder",
        "attention": "lasso_edit.ground.strategies:AttentionGrounder",
        "sam3": "lasso_edit.ground.concept:Sam3Grounder",
    },
)
EXECUTORS = Registry(
    "executor",
    {  # (image, region, edit, settings) -> edited RGB
        "inpaint": "lasso_edit.edit.inpaint:Inpainter",
        "recolor": "lasso_edit.edit.recolor:Recolorer",
        "adjust": "lasso_edit.edit.adjust:Adjuster",
    },
)
MODELS = Registry(
    "model",
    {  # model stage -> the class that loads it: build(path, LoadOptions)
        "vlm": "lasso_edit.parse.vlm:VLMStage",
        "segmenter": "lasso_edit.segment.sam:SamSegmenter",
        "inpainter": "lasso_edit.edit.inpaint:Inpainter",
        "remover": "lasso_edit.edit.inpaint:Inpainter",  # a preset's painter for remove alone
        "detector": "lasso_edit.ground.detector:Detector",
    },
)
