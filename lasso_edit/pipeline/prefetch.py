"""The overlap (`Editor(overlap=True)`): work done in a thread while the VLM decodes.

SAM's image encoding and the detector on the target the rules parser reads from the instruction;
on CUDA on a side stream, whose kernels fill the gaps between the VLM's small decoding kernels.
The results are used only when the VLM's plan names the same target on the same image; otherwise
the grounder runs as usual. Off by default: measured slower with eager decoding
(docs/decisions.md, "Overlap").
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from typing import Any

import numpy as np


class Prefetch:
    """Work done while the VLM decodes: SAM's image encoding, and the detector on the targets the
    rules parser reads from the instruction. On CUDA it runs on a side stream, whose kernels fill
    the gaps between the VLM's small decoding kernels. Its results are used only when the VLM's plan
    names the same target on the same image; otherwise the grounder runs as usual."""

    def __init__(self, editor: Any, rgb: np.ndarray, instruction: str):
        self.editor, self.rgb, self.instruction = editor, rgb, instruction
        self.future: Future = Future()
        self.seconds = 0.0
        threading.Thread(target=self._run, name="lasso-prefetch", daemon=True).start()

    def _run(self) -> None:
        t0 = time.perf_counter()
        try:
            found = self._work()
        except BaseException as e:  # noqa: BLE001 - the main path redoes whatever failed here
            self.seconds = time.perf_counter() - t0
            self.future.set_exception(e)
            return
        self.seconds = time.perf_counter() - t0  # before the result: readers wake on it
        self.future.set_result(found)

    def _work(self) -> dict[str, tuple]:
        import contextlib

        import torch

        from ..core.errors import InvalidInstructionError
        from ..ground.strategies import query_phrase
        from ..parse.rules import parse_instruction

        ed = self.editor
        stream = torch.cuda.Stream() if str(ed.device).startswith("cuda") else None
        found: dict[str, tuple] = {}
        with torch.cuda.stream(stream) if stream is not None else contextlib.nullcontext():
            if ed.has("segmenter"):
                ed.stage("segmenter").set_image(self.rgb)
            if ed.grounder_name in ("detector", "auto") and ed.has("detector"):
                try:
                    edits, _ = parse_instruction(self.instruction)
                except (InvalidInstructionError, ValueError):
                    edits = []
                detector = ed.stage("detector")
                for e in edits[:1]:  # the first edit runs on this image; later ones on edited images
                    phrase = query_phrase(e)
                    if phrase and phrase not in found:
                        found[phrase] = detector.detect(self.rgb, phrase)
        if stream is not None:
            stream.synchronize()  # results are complete before the main stream reads them
        return found

    def detector_for(self, image: np.ndarray) -> PrefetchedDetector | None:
        """Wait for the work; a detector that answers from it for this image's prefetched phrases."""
        try:
            found = self.future.result()
        except BaseException:  # noqa: BLE001
            return None
        if not found:
            return None
        return PrefetchedDetector(self.editor.stage("detector"), image, found)


class PrefetchedDetector:
    def __init__(self, detector: Any, image: np.ndarray, found: dict[str, tuple[Any, Any]]):
        self.detector, self.image, self.found = detector, image, found

    def detect(self, image: np.ndarray, phrase: str) -> tuple[list[Any], list[float]]:
        if image is self.image and phrase in self.found:
            boxes, scores = self.found[phrase]
            return list(boxes), list(scores)
        return self.detector.detect(image, phrase)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.detector, name)
