"""The painters, by name: `PAINTERS` (a registry like the stages') maps each name to its class.

    --inpainter flux2-klein                           # the painter, on its default checkpoint
    --inpainter sdxl:/models/my-sdxl-inpainting       # the painter, on that checkpoint
    --inpainter diffusers/stable-diffusion-xl-1.0-inpainting-0.1   # a checkpoint: the painter
                                                                   # its model_index.json names
    --inpainter openai:gpt-image-1.5@https://api.openai.com/v1     # a hosted painter (painters/openai.py)

A new painter is one module here (a `Painter` subclass with `pipeline`, `checkpoint`,
`from_pretrained` and `paint`) and a line in `PAINTERS`. Each class names the diffusers pipeline
class it loads (`pipeline`) and the base pipelines of the same weights, which diffusers loads as
the inpainting one (`base_pipelines`), so a checkpoint is still recognised by its
model_index.json. A painter with no checkpoint (a remote API, a classical
algorithm) is an entry like the others, whose `checkpoint` is None. The `inpaint` executor
(edit/inpaint.py) does the crop, the paste and the check of the steps around any of them; the
editor composites, so no painter can change a pixel outside the mask.
"""

from __future__ import annotations

from pathlib import Path

from ...core.errors import InvalidInputError, ModelUnavailableError
from ...core.registry import Registry
from .base import Painter, PaintRequest

__all__ = ["PAINTERS", "Painter", "PaintRequest", "painter_class", "painter_spec"]

PAINTERS = Registry(
    "painter",
    {  # name -> "module:Class"
        "sd": "lasso_edit.edit.painters.sd:SDPainter",
        "sdxl": "lasso_edit.edit.painters.sd:SDXLPainter",
        "turbo": "lasso_edit.edit.painters.sd:TurboPainter",  # SD-Turbo + TAESD: the lite preset's
        "lama": "lasso_edit.edit.painters.lama:LamaPainter",  # LaMa on ONNX Runtime: lite's remover
        "sd3": "lasso_edit.edit.painters.flow:SD3Painter",
        "flux-fill": "lasso_edit.edit.painters.flow:FluxFillPainter",
        "flux-kontext": "lasso_edit.edit.painters.flow:FluxKontextPainter",
        "flux2-klein": "lasso_edit.edit.painters.flow:Flux2KleinPainter",
        "qwen-image-edit": "lasso_edit.edit.painters.flow:QwenImageEditPainter",
        "openai": "lasso_edit.edit.painters.openai:OpenAIPainter",  # hosted: openai:MODEL@BASE_URL
    },
)


def painter_class(pipeline_class: str) -> type[Painter]:
    """The painter for a checkpoint whose model_index.json names `pipeline_class`."""
    for name in PAINTERS.names():
        cls = PAINTERS.get(name)
        if cls.loads(pipeline_class):
            return cls
    if "StableDiffusion" in pipeline_class and "3" not in pipeline_class:  # a community SD checkpoint's own name
        return PAINTERS.get("sdxl" if "XL" in pipeline_class else "sd")
    known = [PAINTERS.get(name).pipeline for name in PAINTERS.names() if PAINTERS.get(name).pipeline]
    raise ModelUnavailableError(
        f"no painter runs {pipeline_class or 'this checkpoint'}: Lasso paints with "
        f"{', '.join(known)} checkpoints (an inpainting model's folder or Hub id), or with a painter "
        f"named by --inpainter NAME: {', '.join(PAINTERS.names())}"
    )


def painter_spec(value: str) -> tuple[str | None, str | None]:
    """What an `--inpainter` value names: (painter name, checkpoint).

    - a painter's name ("flux2-klein"): that painter on its default checkpoint (None for a
      painter that has none);
    - "NAME:CHECKPOINT" ("sdxl:/models/mine", "sd:org/model"): that painter on that checkpoint;
    - anything else, a Hub id or a local folder (one that exists is always a folder, whatever its
      name): (None, value), the painter its model_index.json names.
    "tiny:..." ids (testing/) are checkpoints too: built locally, then read the same way."""
    if Path(value).expanduser().exists():
        return None, value
    names = PAINTERS.names()
    if value in names:
        return value, getattr(PAINTERS.get(value), "checkpoint", None)
    head, sep, rest = value.partition(":")
    if sep and head in names:
        if not rest:
            raise InvalidInputError(f"--inpainter {value}: give a checkpoint after '{head}:', or just '{head}'")
        return head, rest
    return None, value


def checkpoint_of(value: str) -> str | None:
    """The checkpoint an `--inpainter` value loads (what must be on disk or in the cache), or None
    for a painter that loads none: for one whose `checkpoint` is None (a hosted painter), what
    follows its name is its own ("openai:MODEL@URL"), checked here (InvalidInputError) before
    anything loads."""
    name, checkpoint = painter_spec(value)
    if name is not None and PAINTERS.get(name).checkpoint is None:
        check = getattr(PAINTERS.get(name), "check_target", None)
        if check is not None:
            check(checkpoint)
        return None
    return checkpoint
