"""The seven actions' specs. Their words and prompts are the ones Lasso has always used
(docs/models.md, "Prompts"); a new action is one more entry here, its member in plan.Action, and
its tests (CONTRIBUTING.md, "Add an action")."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .spec import NEGATIVE, ActionSpec

if TYPE_CHECKING:
    from ..plan import Edit


def _background_sentence(edit: Edit, what: str, value: str) -> str:
    keep = f" behind the {edit.subject}" if edit.subject else ""
    return f"replace the background{keep} with {value}"


def _add_sentence(edit: Edit, what: str, value: str) -> str:
    if edit.each and edit.target:
        what = what.replace("all the ", "each of the ", 1)
    where = f" {edit.relation} {what}" if edit.target else ""
    return f"add {value}{where}"


def _adjust_sentence(edit: Edit, what: str, value: str) -> str:  # value: a spec such as "blur" or "brightness +25%"
    if edit.target == "background":
        what = "the background" + (f" behind the {edit.subject}" if edit.subject else "")
    how = "black and white" if value.startswith("saturation -100") else value
    return f"{how}: {what}"


# How a recolour is painted (`--recolor`, EditorConfig.recolor): mode -> what it does, as `--help` says it.
RECOLOR_MODES = {
    "texture": "deterministic, keeps the shading",
    "inpaint": "the inpainting model repaints it",
}

SPECS: dict[str, ActionSpec] = {
    s.name: s
    for s in (
        ActionSpec(
            "recolor",
            words=("recolour", "color", "colour", "change_color", "change color", "paint", "tint"),
            strips_old_colour=True,
            list_continues="colour",
            follow_on=True,
            needs_target=True,
            needs_value=True,
            refine="tight",
            caption=lambda e: (f"a {e.value or ''} {e.target or ''}, photo, natural lighting", NEGATIVE),
            sentence=lambda e, what, value: f"make {what} {value}",
            # deterministic unless the editor was asked to paint recolours (--recolor inpaint)
            executor=lambda e, recolor_mode: "recolor" if recolor_mode == "texture" else "inpaint",
        ),
        ActionSpec(
            "replace",
            words=("swap", "substitute", "change", "transform", "edit", "modify"),
            follow_on=True,
            needs_target=True,
            needs_value=True,
            refine="grown",
            caption=lambda e: (
                f"a {e.value or ''}, photo, high quality, natural lighting",
                f"{e.target or ''}, {NEGATIVE}",
            ),
            sentence=lambda e, what, value: f"replace {what} with {value}",
        ),
        ActionSpec(
            "remove",
            words=("delete", "erase", "inpaint"),
            list_continues="object",
            needs_target=True,
            needs_value=False,
            refine="grown",
            shadow=True,
            caption=lambda e: (
                "empty background, nothing there, seamless continuation of the surroundings, photo",
                f"{e.target or ''}, object, person, animal, text, {NEGATIVE}",
            ),
            sentence=lambda e, what, value: f"remove {what}",
        ),
        ActionSpec(
            "background",
            words=("replace_background", "change_background", "replace background", "bg"),
            answer_form="background",
            needs_target=False,
            needs_value=True,
            refine="inverse",
            whole_crop=True,
            caption=lambda e: (f"{e.value or ''}, background, photo, high quality", NEGATIVE),
            sentence=_background_sentence,
        ),
        ActionSpec(
            "add",
            words=("insert", "put", "place"),
            anchored=True,
            needs_target=False,  # its target is the anchor, and optional
            needs_value=True,
            refine="grown",
            caption=lambda e: (f"a {e.value or ''}, photo, high quality, natural lighting", NEGATIVE),
            sentence=_add_sentence,
        ),
        ActionSpec(
            "style",
            words=("global", "stylize", "restyle", "filter"),
            answer_form="whole",
            value_optional=True,
            needs_target=False,
            needs_value=True,
            refine="whole",
            whole_crop=True,
            uses_strength=True,
            caption=lambda e: (f"{e.value or ''} style, {e.value or ''}", NEGATIVE),
            sentence=lambda e, what, value: f"restyle the image: {value}",
        ),
        ActionSpec(
            "adjust",
            words=(
                "adjustment",
                "blur",
                "pixelate",
                "brightness",
                "brighten",
                "darken",
                "contrast",
                "exposure",
                "saturation",
                "desaturate",
                "black and white",
                "black_and_white",
                "grayscale",
            ),
            answer_form="adjustment",
            value_kind="adjustment",
            # an adjustment of no target covers the photo (as a style edit), of "background" all but
            # the subject (as a background edit), of an object that object's own edge (as a recolour)
            mask_as=lambda e: "style" if e.target is None else "background" if e.target == "background" else "recolor",
            needs_target=False,
            needs_value=True,
            refine="tight",  # its mask follows Edit.mask_action: the photo, the background or the object
            caption=lambda e: (
                f"a {e.value or ''}, photo, high quality, natural lighting",
                f"{e.target or ''}, {NEGATIVE}",
            ),
            sentence=_adjust_sentence,
            executor=lambda e, recolor_mode: "adjust",
        ),
    )
}
