"""`lasso serve`: the page and the HTTP API, on one machine or on Ray Serve."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, Optional

import typer

from ..core.config import EditorConfig
from .common import _guard, _quiet_libraries, _ray_only, _say_chosen
from .core import RAY_ANY, Terminated, app

if TYPE_CHECKING:
    from ..server.settings import ServerSettings
from .options import (
    DEBUG_OPT,
    DETECTOR_OPT,
    DEVICE_OPT,
    INPAINTER_API_KEY_OPT,
    INPAINTER_OPT,
    LORA_OPT,
    LORA_SCALE_OPT,
    PRESET_OPT,
    RAY_OPT,
    SEGMENTER_OPT,
    VLM_API_KEY_OPT,
    VLM_OPT,
    CredentialOptions,
    group,
    with_groups,
)


@app.command()
@with_groups
def serve(
    preset: str = PRESET_OPT,
    host: str = typer.Option("127.0.0.1", help="Address to listen on (0.0.0.0: every interface)."),
    port: int = typer.Option(7860, min=1, max=65535, help="Port."),
    data_dir: Path = typer.Option(Path("~/.cache/lasso/serve"), "--data-dir", help="Sessions and uploads."),
    api_key: Optional[str] = typer.Option(
        None, "--api-key", envvar="LASSO_API_KEY", help="Require 'Authorization: Bearer KEY' on /v1 (or LASSO_API_KEY)."
    ),
    allow_host: list[str] = typer.Option(
        [],
        "--allow-host",
        help="A host name this server answers changes for "
        "without an API key, besides its addresses, localhost and its own names "
        "(repeatable; '*' for any, behind a proxy that checks).",
    ),
    offer: list[str] = typer.Option(
        [],
        "--offer",
        metavar="PRESET",
        help="Another preset the page's model picker (and a request's `preset` field) may choose; repeat for "
        "more. One preset's models are loaded at a time.",
    ),
    max_upload_mb: float = typer.Option(50.0, "--max-upload-mb", min=0.001, help="Largest upload, MB (413 above)."),
    queue: int = typer.Option(8, "--queue", min=1, help="Edits that may wait; more get 429 at once."),
    timeout: float = typer.Option(600.0, "--timeout", min=1, help="Seconds a request waits for its edit (503 after)."),
    device: Optional[str] = DEVICE_OPT,
    vlm: Optional[str] = VLM_OPT,
    vlm_api_key: Optional[str] = VLM_API_KEY_OPT,
    segmenter: Optional[str] = SEGMENTER_OPT,
    inpainter: Optional[str] = INPAINTER_OPT,
    inpainter_api_key: Optional[str] = INPAINTER_API_KEY_OPT,
    detector: Optional[str] = DETECTOR_OPT,
    lora: Optional[str] = LORA_OPT,
    lora_scale: Optional[float] = LORA_SCALE_OPT,
    ray: Optional[str] = RAY_OPT,
    replicas: Optional[int] = typer.Option(
        None,
        "--replicas",
        min=1,
        help="With --ray: replicas at most, each a whole server (default: one per GPU of the cluster; 1 without GPUs).",
    ),
    min_replicas: Optional[int] = typer.Option(
        None,
        "--min-replicas",
        min=1,
        help="With --ray: replicas kept when idle (default 1); autoscaling on queue length in between.",
    ),
    gpus_per_replica: Optional[float] = typer.Option(
        None,
        "--gpus-per-replica",
        min=0,
        help="With --ray: GPUs each replica holds (default 1; 0.5 for the fast preset).",
    ),
    cpus_per_replica: float = typer.Option(
        1.0, "--cpus-per-replica", min=0.01, help="With --ray: CPU cores each replica holds."
    ),
    signing: CredentialOptions = group(CredentialOptions, "Options"),
    debug: bool = DEBUG_OPT,
) -> None:
    (
        """Serve the page (at /) and the HTTP API (OpenAPI at /docs): the models load once and stay warm; """
        """one log line per request; SIGTERM or Ctrl-C stops the running edit cleanly. """
        """--ray: as a Ray Serve deployment, one replica per GPU, sessions shared through --data-dir. """
        """--inpainter openai:MODEL@BASE_URL: a proxy in front of a hosted image editor (each edit's crop """
        """goes to it, one API call per edit; every pixel outside the mask stays the photo's)."""
    )
    _quiet_libraries()
    with _guard(debug):
        _need_serve_extra()
        settings = _settings(locals())
        on_ray = _Replicas(ray, replicas, min_replicas, gpus_per_replica, cpus_per_replica)  # checks them
        if ray is not None:
            _serve_on_ray(settings, host, port, on_ray)
        else:
            _serve_here(settings, host, port)


def _settings(params: dict[str, Any]) -> ServerSettings:
    """The server's settings from serve's parameters (its `locals()`): the editor's from every one
    EditorConfig names as a field (the preset and the model options, --inpainter and its key too)."""
    from ..server.app import ServerSettings

    _say_chosen(params["preset"], quiet=False)  # --preset auto: lite on a machine without CUDA, said once
    return ServerSettings(
        preset=params["preset"],
        data_dir=str(params["data_dir"].expanduser().resolve()),
        api_key=params["api_key"],
        max_upload_mb=params["max_upload_mb"],
        queue=params["queue"],
        timeout_s=params["timeout"],
        allowed_hosts=tuple(params["allow_host"]),
        editor=EditorConfig.from_params(params),
        offer=tuple(_known_presets(params["offer"])),
        credentials=params["signing"].credentials(),  # checked now: exit 2 before any model loads
    )


def _need_serve_extra() -> None:
    """Bad input (exit 2), not a traceback, when the serve extra is not installed."""
    try:
        import uvicorn  # noqa: F401

        from ..server.app import create_app  # noqa: F401
    except ImportError as e:
        from ..core.errors import InvalidInputError

        raise InvalidInputError(f"`lasso serve` needs the serve extra: pip install 'lasso-edit[serve]' ({e})") from None


@dataclass(frozen=True)
class _Replicas:
    """--ray and the options that shape a Ray Serve deployment."""

    ray: Optional[str]
    replicas: Optional[int]
    min_replicas: Optional[int]
    gpus: Optional[float]
    cpus: float

    def __post_init__(self) -> None:
        """Any of them given without --ray: bad input, not silently ignored."""
        _ray_only(
            self.ray,
            replicas=self.replicas,
            min_replicas=self.min_replicas,
            gpus_per_replica=self.gpus,
            cpus_per_replica=None if self.cpus == 1.0 else self.cpus,
        )


def _serve_here(settings: ServerSettings, host: str, port: int) -> None:
    """The app on uvicorn, a log line per request, until SIGTERM or Ctrl-C (the running edit stops
    at its next step)."""
    import uvicorn

    from ..server.app import create_app

    app_ = create_app(settings)

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Optional[FrameType]) -> None:
            app_.state.jobs.cancel_running()
            super().handle_exit(sig, frame)

    typer.echo(
        f"Lasso on http://{host}:{port} (the page; API docs at /docs); preset {settings.preset}; Ctrl-C to stop",
        err=True,
    )
    server = Server(uvicorn.Config(app_, host=host, port=port, log_level="info", access_log=True))
    try:
        server.run()
    except (Terminated, KeyboardInterrupt):  # uvicorn shut down cleanly, then passed the signal on
        pass
    typer.echo("stopped", err=True)


def _serve_on_ray(settings: ServerSettings, host: str, port: int, on_ray: _Replicas) -> None:
    """`lasso serve --ray`: deploy, say where, and hold until SIGTERM or Ctrl-C, then take the app down."""
    import time

    from ..scale import ray_serve

    typer.echo(
        f"Deploying Lasso on Ray Serve (preset {settings.preset}; sessions in {settings.data_dir}) ...", err=True
    )
    address = None if on_ray.ray == RAY_ANY else on_ray.ray
    try:
        low, high = ray_serve.run(
            settings, host, port, address, on_ray.replicas, on_ray.min_replicas, on_ray.gpus, on_ray.cpus
        )
        span = f"{high} replica{'s' if high > 1 else ''}" if low == high else f"{low} to {high} replicas"
        typer.echo(f"Lasso on http://{host}:{port} via Ray Serve ({span}); Ctrl-C to stop", err=True)
        while True:
            time.sleep(1)
    except (Terminated, KeyboardInterrupt):
        pass
    finally:
        try:
            ray_serve.stop()
        except Exception:  # noqa: BLE001 - never deployed, or the cluster is gone already
            pass
    typer.echo("stopped", err=True)


def _known_presets(names: list[str]) -> list[str]:
    """The --offer presets, each checked to exist (a typo is exit 2 before the server starts)."""
    from ..core.presets import get_preset

    for name in names:
        get_preset(name)
    return names
