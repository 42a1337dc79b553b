"""What an edit produced: `EditResult` (the image, its mask, the plan, one `EditStep` per edit, the
seed, timings and the proof once written). The pipeline's product, so it lives with the pipeline:
the plan's types below it (core/plan.py) know nothing of pixels written to files."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.plan import Edit, EditPlan, Grounding, Notice, Segmentation

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

    from ..imaging import LoadedImage


@dataclass
class EditStep:
    """Everything one edit produced, in the result."""

    edit: Edit
    grounding: Grounding | None
    segmentation: Segmentation | None
    region: np.ndarray  # bool HxW: pixels this edit may change (the compositing mask, > 0)
    alpha: np.ndarray  # float32 HxW in [0, 1]: the feathered compositing weight


@dataclass
class EditResult:
    """The outcome of `Editor.__call__`.

    `image` has the input's size and mode (alpha kept); `mask` is True where any pixel may
    differ from the input, and every pixel where it is False is bit-identical to the input.
    """

    image: Image.Image | None  # None for a dry run
    rgb: np.ndarray | None  # the edited image, RGB uint8 HxWx3 (None for a dry run)
    mask: np.ndarray  # bool HxW: union of the edits' regions
    alpha: np.ndarray  # float32 HxW in [0, 1]: the strongest compositing weight of any edit
    plan: EditPlan
    steps: list[EditStep]
    seed: int
    timings: dict[str, float]  # seconds per stage ("load", "parse", "ground", "segment", "edit", ...)
    models: dict[str, str]  # stage -> model id or path
    warnings: list[str] = field(default_factory=list)
    # 16-bit RGB(A) inputs: the output's uint16 HxWx3/4 samples (`image` holds them at 8 bits).
    deep: np.ndarray | None = None
    source: LoadedImage | None = field(default=None, repr=False)  # the input, for save()'s metadata
    # The proof, once the output is written: what changed in the file as written against the input,
    # outside the mask and inside it (verify.Verification.to_dict(); None before, or for a dry run).
    preservation: dict[str, Any] | None = None
    # The Content Credentials facts the editor knows (pipeline/credentials.py): how recolours were
    # painted ("texture": deterministic, "inpaint": by a model), and `lasso contain`'s other
    # editor's picture, credited as a componentOf ingredient.
    recolor: str = "texture"
    component: LoadedImage | None = field(default=None, repr=False)
    # Once written: the Content Credentials signed into the output ({signer, local, signed}; None: none)
    credentials: dict[str, Any] | None = None

    def save(self, path: str | Path, png_compress: int = 1, credentials: Any = None) -> list[str]:
        """Write the edited image as the CLI does (outputs.write_and_prove): atomically, in the format
        the suffix names, with the input's ICC profile, EXIF and dpi, 16 bits for 16-bit inputs,
        and proved against the input (the proof in `preservation`). Returns warnings (a lossy
        format, a mode the format cannot hold). `credentials`: False writes no Content Credentials;
        a core.config.Credentials names who signs (None: LASSO_SIGN_CERT/KEY or the local identity). Raises `InvalidInputError` for a dry run or a format
        Pillow cannot write."""
        from ..core.errors import InvalidInputError
        from .outputs import write_and_prove

        if self.image is None:
            raise InvalidInputError("a dry run has no image to save")
        return write_and_prove(self, Path(path), png_compress=png_compress, credentials=credentials)

    @property
    def masks(self) -> list[np.ndarray]:
        return [s.region for s in self.steps]

    @property
    def groundings(self) -> list[Grounding | None]:
        return [s.grounding for s in self.steps]

    def summary(self) -> dict[str, Any]:
        """A JSON-able record of the run (no pixels)."""
        return {
            "plan": self.plan.to_dict(),
            "groundings": [g.to_dict() if g else None for g in self.groundings],
            "seed": self.seed,
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            "models": dict(self.models),
            "changed_pixels": int(self.mask.sum()),
            "steps": [
                {
                    "edit": st.edit.describe(),
                    "found_by": st.grounding.source if st.grounding else None,
                    "pixels": int(st.region.sum()),
                }
                for st in self.steps
            ],
            "warnings": list(self.warnings),
            # the same warnings, each with its code and plain words ({code, text, plain, edit})
            "warning_details": [Notice.of(w).to_dict() for w in self.warnings],
            **({"preservation": self.preservation} if self.preservation is not None else {}),
            **({"credentials": self.credentials} if self.credentials is not None else {}),
        }
