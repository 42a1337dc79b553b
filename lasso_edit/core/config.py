"""`EditorConfig`: everything an Editor is built from, in one frozen object.

Every surface collects its options into one of these and passes it on whole: `lasso edit`,
`lasso plan`, `lasso batch` (and each Ray worker it starts), `lasso serve` (and each Ray Serve
replica) and the Python API (`Editor.from_preset(...)` builds one from its keywords). So an option
added here reaches every surface without being threaded through each layer by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any


@dataclass(frozen=True)
class EditorConfig:
    preset: Any = "balanced"  # a preset's name (presets.py) or a Preset
    device: str | None = None  # None: CUDA when there is one, else the CPU
    dtype: str | None = None  # None: fp16/bf16 on CUDA, fp32 elsewhere
    # The preset's models overridden, each by a Hub id or a local folder. `vlm` may be
    # "openai:MODEL@BASE_URL", a planner on an OpenAI-compatible server (parse/remote.py);
    # `inpainter` a painter's name or NAME:CHECKPOINT (edit/painters).
    vlm: str | None = None
    segmenter: str | None = None
    inpainter: str | None = None
    detector: str | None = None
    remover: str | None = None  # the painter for remove alone (lite: lama), the same forms as `inpainter`
    parser: str | None = None  # registry.PARSERS; None: the preset's
    grounder: str | None = None  # registry.GROUNDERS; None: the preset's
    box_threshold: float | None = None  # None: the preset's detector's
    recolor: str = "texture"  # "texture" (deterministic) or "inpaint"
    # torch.compile the UNet, the VAE decoder and SAM's encoder, and decode the VLM with a static
    # KV cache: minutes of warm-up, then faster
    compile: bool = False
    low_vram: bool = False  # diffusers' model CPU offload and a 4-bit VLM (bitsandbytes), for 8 GB cards
    # encode the image for SAM and run the detector in a thread while the VLM decodes (measured
    # slower with eager decoding: docs/decisions.md "Overlap")
    overlap: bool = False
    deepcache: int = 0  # N > 1: the UNet's deep features reused for N - 1 of every N steps (an approximation)
    paint: bool = True  # False: plans and masks only, no inpainting model needed (dry runs)
    # more of the preset's models to offer, for a parser or grounder chosen per call (the server
    # offers the detector); one that cannot be had is left out, not an error
    optional: tuple[str, ...] = ()
    attention: Any = None  # ground/attention.py's AttentionSettings: the VLM layers and heads read
    lora: str | None = None  # a LoRA of your own (lasso train's folder, a .safetensors file, a Hub id)
    lora_scale: float | None = None  # its strength (None: 1.0, or the preset's adapter_scale)
    vlm_api_key: str | None = field(default=None, repr=False)  # for an openai:MODEL@URL VLM (None: OPENAI_API_KEY)
    # for an openai:MODEL@URL painter (--inpainter; None: OPENAI_API_KEY)
    inpainter_api_key: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "optional", tuple(self.optional))

    def replace(self, **changes: Any) -> EditorConfig:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a dict (what Ray ships to its workers and replicas)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def of(cls, **options: Any) -> EditorConfig:
        """A config from keyword options; an unknown one is a TypeError naming the known ones (a
        typo is not an option)."""
        known = {f.name for f in fields(cls)}
        unknown = set(options) - known
        if unknown:
            raise TypeError(f"unknown editor options {sorted(unknown)}; known: {sorted(known)}")
        return cls(**options)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EditorConfig:
        """A config from a dict of its fields (to_dict's)."""
        return cls.of(**d)

    @classmethod
    def from_params(cls, params: dict[str, Any], **overrides: Any) -> EditorConfig:
        """A config from a command's parameters (its `locals()`): every parameter named as a field
        is taken by that name, the rest ignored; `overrides` are fields the command computes
        (`paint=not dry_run`). So an option added here and to a command reaches the editor with no
        line in between."""
        names = {f.name for f in fields(cls)}
        return cls.of(**{k: v for k, v in params.items() if k in names and k not in overrides}, **overrides)


@dataclass(frozen=True)
class Credentials:
    """Content Credentials on every output (pipeline/credentials.py): a signed C2PA manifest saying
    which pixels each edit changed, and how. Signed by `cert`/`key` (an organisation's PEM chain,
    leaf first, and key) or, without them, by the local identity Lasso makes once in the user's
    config folder."""

    enabled: bool = True  # False: --no-credentials, credentials=False, lasso serve --no-credentials
    cert: str | None = None  # --sign-cert (LASSO_SIGN_CERT)
    key: str | None = None  # --sign-key (LASSO_SIGN_KEY)
    timestamp_url: str | None = None  # --timestamp-url: a time-stamp authority (None: offline)

    @classmethod
    def of(cls, value: Credentials | bool | None = None, **options: Any) -> Credentials:
        """`value` as Credentials: True or None the defaults, False off; a certificate and key not
        given come from LASSO_SIGN_CERT and LASSO_SIGN_KEY."""
        import os

        if isinstance(value, Credentials):
            return value
        made = cls(enabled=value is not False, **options)
        cert = made.cert or os.environ.get("LASSO_SIGN_CERT") or None
        key = made.key or os.environ.get("LASSO_SIGN_KEY") or None
        return replace(made, cert=str(cert) if cert else None, key=str(key) if key else None)


__all__ = ["Credentials", "EditorConfig"]
