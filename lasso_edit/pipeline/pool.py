"""The model-backed stages of one Editor: each built on first use, once, one load at a time.

A stage's builder (a `MODELS` class's `build`, bound to its path and LoadOptions by
`Editor.from_config`) runs the first time the stage is asked for. Loads are serialised
(`from_pretrained` patches global state), each stage has its own lock so the overlap thread and
the caller can ask at once, and the time spent loading is counted apart from the edits'. Models
stay resident while they fit; on a CUDA out-of-memory error the other stages are unloaded and the
load is tried once more.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from ..core.errors import ModelUnavailableError


class ModelPool:
    def __init__(self, builders: dict[str, Callable[[], Any]]):
        self.builders = builders
        self.stages: dict[str, Any] = {}
        self.load_seconds = 0.0  # time spent loading, subtracted from the steps that waited on it
        self.say: Callable[[str], None] | None = None  # the running call's progress callback
        self._lock = threading.Lock()
        self._load_lock = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def get(self, name: str) -> Any:
        """The loaded stage `name` ("vlm", "segmenter", "inpainter", "detector"), loading it once."""
        with self._stage_lock(name):  # the overlap thread and the caller may ask for a stage at once
            if name not in self.stages:
                if name not in self.builders:
                    raise ModelUnavailableError(f"this editor has no {name} model")
                with self._load_lock:  # from_pretrained patches global state: one load at a time
                    t0 = time.perf_counter()
                    if self.say is not None:  # the first edit waits on this: say so (the page shows it)
                        self.say(
                            f"loading the models, once: the {name} ({len(self.stages) + 1} of {len(self.builders)})"
                        )
                    self.stages[name] = self._load(name)
                    self.load_seconds += time.perf_counter() - t0
            return self.stages[name]

    def put(self, name: str, stage: Any) -> None:
        """Serve `stage` as `name` from now on, in place of loading (or of what was loaded)."""
        with self._stage_lock(name):
            self.stages[name] = stage

    def _stage_lock(self, name: str) -> threading.Lock:
        with self._lock:
            return self._locks.setdefault(name, threading.Lock())

    def _load(self, name: str) -> Any:
        try:
            return self.builders[name]()
        except Exception as e:  # noqa: BLE001 - only out-of-memory is retried
            if "out of memory" not in str(e).lower() or not self.stages:
                raise
        self.unload()
        return self.builders[name]()

    def unload(self, *names: str) -> None:
        """Drop loaded models (all, or the stages named) and return their GPU memory; they reload on next use."""
        import gc

        with self._lock:
            for name in names or list(self.stages):
                self.stages.pop(name, None)
        gc.collect()
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:  # pragma: no cover
            pass

    def preload(self) -> None:
        """Load every stage's model now (by default each loads on first use)."""
        for name in list(self.builders):
            self.get(name)

    @property
    def loaded(self) -> list[str]:
        return list(self.stages)
