"""`lasso serve`: the page and the HTTP API, on one machine or on Ray Serve."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .common import _guard, _quiet_libraries, _ray_only
from .core import RAY_ANY, Terminated, app
from .options import DEVICE_OPT, LORA_OPT, LORA_SCALE_OPT, PRESET_OPT, RAY_OPT, VLM_API_KEY_OPT, VLM_OPT


@app.command()
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
    debug: bool = typer.Option(False, "--debug", metavar="", help="Show tracebacks."),
):
    (
        """Serve the page (at /) and the HTTP API (OpenAPI at /docs): the models load once and stay warm; """
        """one log line per request; SIGTERM or Ctrl-C stops the running edit cleanly. """
        """--ray: as a Ray Serve deployment, one replica per GPU, sessions shared through --data-dir."""
    )
    _quiet_libraries()
    with _guard(debug):
        try:
            import uvicorn

            from ..server.app import ServerSettings, create_app
        except ImportError as e:
            from ..core.errors import InvalidInputError

            raise InvalidInputError(
                f"`lasso serve` needs the serve extra: pip install 'lasso-edit[serve]' ({e})"
            ) from None
        from ..core.config import EditorConfig

        config = EditorConfig(preset, device=device, vlm=vlm, vlm_api_key=vlm_api_key, lora=lora, lora_scale=lora_scale)
        settings = ServerSettings(
            preset=preset,
            data_dir=str(data_dir.expanduser().resolve()),
            api_key=api_key,
            max_upload_mb=max_upload_mb,
            queue=queue,
            timeout_s=timeout,
            allowed_hosts=tuple(allow_host),
            editor=config,
            offer=tuple(_known_presets(offer)),
        )
        _ray_only(
            ray,
            replicas=replicas,
            min_replicas=min_replicas,
            gpus_per_replica=gpus_per_replica,
            cpus_per_replica=None if cpus_per_replica == 1.0 else cpus_per_replica,
        )
        if ray is not None:
            return _serve_on_ray(
                settings,
                host,
                port,
                None if ray == RAY_ANY else ray,
                replicas,
                min_replicas,
                gpus_per_replica,
                cpus_per_replica,
            )
        app_ = create_app(settings)

        class Server(uvicorn.Server):
            def handle_exit(self, sig, frame):  # SIGTERM / Ctrl-C: the running edit stops at its next step
                app_.state.jobs.cancel_running()
                super().handle_exit(sig, frame)

        typer.echo(
            f"Lasso on http://{host}:{port} (the page; API docs at /docs); preset {preset}; Ctrl-C to stop", err=True
        )
        server = Server(
            uvicorn.Config(app_, host=host, port=port, log_level="info", access_log=True)
        )  # a line per request
        try:
            server.run()
        except (Terminated, KeyboardInterrupt):  # uvicorn shut down cleanly, then passed the signal on
            pass
        typer.echo("stopped", err=True)


def _serve_on_ray(settings, host, port, address, replicas, min_replicas, gpus, cpus) -> None:
    """`lasso serve --ray`: deploy, say where, and hold until SIGTERM or Ctrl-C, then take the app down."""
    import time

    from ..scale import ray_serve

    typer.echo(
        f"Deploying Lasso on Ray Serve (preset {settings.preset}; sessions in {settings.data_dir}) ...", err=True
    )
    try:
        low, high = ray_serve.run(settings, host, port, address, replicas, min_replicas, gpus, cpus)
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
