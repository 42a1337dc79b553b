"""`lasso mcp`: Lasso's tools for an assistant, over MCP (stdio, or streamable HTTP with --http)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .common import _guard, _need_extra, _quiet_libraries
from .core import Terminated, app
from .options import DEBUG_OPT, DEVICE_OPT, DTYPE_OPT, PRESET_OPT, VLM_API_KEY_OPT, VLM_OPT


@app.command()
def mcp(
    preset: str = PRESET_OPT,
    http: Optional[str] = typer.Option(
        None, "--http", metavar="HOST:PORT", help="Serve streamable HTTP at http://HOST:PORT/mcp instead of stdio."
    ),
    api_key: Optional[str] = typer.Option(
        None,
        "--api-key",
        envvar="LASSO_API_KEY",
        help="With --http: require 'Authorization: Bearer KEY' (or LASSO_API_KEY).",
    ),
    files: Optional[Path] = typer.Option(
        None,
        "--files",
        help="Paths the tools may read and write lie inside this folder. Default: any path over stdio; "
        "none over --http (images then come as data URLs).",
    ),
    sessions: Path = typer.Option(Path("~/.cache/lasso/mcp"), "--sessions", help="Where sessions are kept."),
    device: Optional[str] = DEVICE_OPT,
    dtype: Optional[str] = DTYPE_OPT,
    vlm: Optional[str] = VLM_OPT,
    vlm_api_key: Optional[str] = VLM_API_KEY_OPT,
    debug: bool = DEBUG_OPT,
) -> None:
    """Serve plan_edit, edit_image, open_session, session_edit, undo and redo to an assistant over the
    Model Context Protocol: stdio by default (add it to the assistant's MCP config), streamable HTTP with
    --http. Models load on the first edit and stay loaded."""
    _quiet_libraries()  # stdout is the protocol over stdio: nothing else may go there
    with _guard(debug):
        from ..core.errors import InvalidInputError

        _need_extra("mcp", "`lasso mcp`", ("mcp", "the Model Context Protocol SDK"))
        address = _address(http) if http is not None else None
        if files is not None and not files.expanduser().is_dir():
            raise InvalidInputError(f"--files {str(files)!r} is not a folder")
        from ..core.config import EditorConfig
        from ..core.presets import get_preset
        from ..mcp.server import build, http_app
        from ..sessions.assist import FilePolicy, Tools

        get_preset(preset)  # a typo is exit 2 now, not an error on the first call
        if files is not None:
            policy = FilePolicy.inside(files)
        else:
            policy = FilePolicy() if address is not None else FilePolicy.unrestricted()
        config = EditorConfig(preset, device=device, dtype=dtype, vlm=vlm, vlm_api_key=vlm_api_key)
        tools = Tools(config, policy, sessions)
        server = build(tools)
        try:
            if address is None:
                typer.echo(f"Lasso MCP on stdio; preset {preset}", err=True)
                server.run("stdio")
            else:
                import uvicorn

                host, port = address
                if not api_key and host not in ("127.0.0.1", "localhost", "::1"):
                    typer.echo(f"warning: {host} is reachable from other machines and no --api-key is set", err=True)
                typer.echo(
                    f"Lasso MCP on http://{_url_host(host)}:{port}/mcp; preset {preset}; Ctrl-C to stop", err=True
                )
                uvicorn.Server(
                    uvicorn.Config(http_app(server, host, api_key), host=host, port=port, log_level="warning")
                ).run()
        except (Terminated, KeyboardInterrupt):
            pass
        finally:
            tools.close()


def _address(text: str) -> tuple[str, int]:
    """--http HOST:PORT (or :PORT, or PORT: on 127.0.0.1); bad input names what is wrong."""
    from ..core.errors import InvalidInputError

    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "", text
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise InvalidInputError(f"--http wants HOST:PORT with a port 1-65535, got {text!r}")
    return host, int(port)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
