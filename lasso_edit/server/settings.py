"""What `lasso serve` (or a Ray Serve replica) configures a server with: `ServerSettings`."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..core.config import Credentials, EditorConfig
from ..core.presets import AUTO, choose_preset


@dataclass
class ServerSettings:
    preset: str = AUTO  # balanced with a CUDA GPU, lite without
    data_dir: str = "~/.cache/lasso/serve"
    api_key: str | None = field(default=None, repr=False)
    max_upload_mb: float = 50.0
    queue: int = 8
    timeout_s: float = 600.0  # how long a request waits for its edit before a 503
    device: str | None = None
    vlm: str | None = None  # another VLM than the preset's: Hub id, folder or openai:MODEL@BASE_URL
    vlm_api_key: str | None = field(default=None, repr=False)
    # another painter than the preset's: a painter's name, NAME:CHECKPOINT, a Hub id or folder, or
    # openai:MODEL@BASE_URL, a hosted image editor this server stands in front of (its key below, or
    # OPENAI_API_KEY; never printed)
    inpainter: str | None = None
    inpainter_api_key: str | None = field(default=None, repr=False)
    lora: str | None = None  # a LoRA of your own (lasso train) fused into the inpainter
    lora_scale: float | None = None
    session_ttl_s: float = 7 * 24 * 3600
    session_max_bytes: int = 20 * 2**30
    # Several servers (the replicas of `lasso serve --ray`) share data_dir: uploads go to a folder of
    # this instance's own, and background jobs are written there too, so any replica answers a poll.
    shared: bool = False
    instance: str | None = None  # this server's name, sent as X-Lasso-Replica
    # Host names a keyless server answers changes for, besides IP addresses, localhost and this
    # machine's own names (guards.py: DNS rebinding); "*" for any (behind a proxy that checks).
    allowed_hosts: tuple[str, ...] = ()
    # The editor's whole configuration (config.py), as `lasso serve` builds it; None: one made of
    # the fields above (preset, device, vlm, vlm_api_key, inpainter, inpainter_api_key, lora,
    # lora_scale), for callers that set those.
    editor: EditorConfig | None = None
    # Other presets a request (the page's model picker) may choose, besides the server's own. Their
    # models load on first use; one preset's models are resident at a time (the others unloaded).
    offer: tuple[str, ...] = ()
    # Who signs the Content Credentials of every image this server writes (answers, sessions):
    # `lasso serve --no-credentials` / --sign-cert / --sign-key; None: LASSO_SIGN_CERT/LASSO_SIGN_KEY
    # or the local identity (pipeline/credentials.py)
    credentials: Credentials | None = None

    def offered(self) -> list[str]:
        """The presets a request may choose: the server's own first, then the offered ones."""
        return list(dict.fromkeys([self.editor_config().preset, *self.offer]))

    def hosted_model(self) -> str | None:
        """The model of the hosted editor this server stands in front of (--inpainter
        openai:MODEL@URL), or None when it paints with a model of its own."""
        painter = self.editor_config().inpainter or ""
        if not painter.startswith("openai:") or "@" not in painter:
            return None
        return painter[len("openai:") :].split("@", 1)[0]

    def editor_config(self) -> EditorConfig:
        """The EditorConfig this server builds its editor from (the detector always offered: the
        page's grounder choice may ask for it)."""
        if self.editor is not None:  # `auto` resolved here, so the page's picker names the preset it runs
            editor = self.editor
            return editor.replace(preset=choose_preset(editor.preset), optional=tuple({*editor.optional, "detector"}))
        return EditorConfig(
            choose_preset(self.preset),
            device=self.device,
            optional=("detector",),
            vlm=self.vlm,
            vlm_api_key=self.vlm_api_key,
            inpainter=self.inpainter,
            inpainter_api_key=self.inpainter_api_key,
            lora=self.lora,
            lora_scale=self.lora_scale,
        )
