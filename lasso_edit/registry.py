"""Registries of stage implementations, by name: swap a stage without touching the editor.

    @PARSERS.register("rules")
    class RulesParser: ...

    PARSERS.get("rules")  # -> the class

Modules register on import; `load_builtin_stages()` imports Lasso's own (cheap: no torch).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class Registry:
    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, Any] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            self._items[name] = obj
            return obj

        return deco

    def get(self, name: str) -> Any:
        load_builtin_stages()
        if name not in self._items:
            from .errors import InvalidInputError

            raise InvalidInputError(f"unknown {self.kind} {name!r}; choose one of: {', '.join(self.names())}")
        return self._items[name]

    def names(self) -> list[str]:
        load_builtin_stages()
        return sorted(self._items)


PARSERS = Registry("parser")  # (image, instruction) -> EditPlan
GROUNDERS = Registry("grounder")  # (image, edit) -> Grounding
SEGMENTERS = Registry("segmenter")  # (image, grounding) -> Segmentation
EXECUTORS = Registry("executor")  # (image, region, alpha, edit, ...) -> edited RGB

_loaded = False


def load_builtin_stages() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    from . import edit, ground, parse, segment  # noqa: F401  (registration side effects)
