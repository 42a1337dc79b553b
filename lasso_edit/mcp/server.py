"""`lasso mcp`: Lasso's tools for assistants, over the Model Context Protocol (the official `mcp`
SDK's `MCPServer`). stdio by default; streamable HTTP with `--http HOST:PORT`, which honours the
API key as `Authorization: Bearer KEY`.

Tools (assist.py does the work; this file says it in MCP):
  plan_edit(image, instruction)             the plan as `lasso plan --json` prints it
  edit_image(image, instruction, output?, seed?, steps?, guidance?, strength?)
  contain_edit(original, edited, mask?, output?)  another editor's output kept inside its region
  open_session(image) / session_edit(session, instruction) / undo(session) / redo(session)

An image is a path or a data URL. Edited images come back as image content with a one-line text
summary; errors are `isError` results with the CLI's sentences (the server's own folders named
"the uploaded image", as the HTTP API names them), and the server stays up. Edits run
in a worker thread, one at a time, and send progress notifications as they go.
"""

# No `from __future__ import annotations`: the SDK reads the tools' annotations at run time to build
# their schemas and to find the Context parameter, so the names must be real here.
import base64
import hmac
import json
from collections.abc import Callable
from typing import Annotated, Any

import anyio
import anyio.from_thread
import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.types import CallToolResult, ImageContent, TextContent
from pydantic import Field, ValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

from ..core.errors import Scrubber, sentence
from ..sessions.assist import MAX_DATA_URL_BYTES, Answer, Tools

Image = Annotated[str, Field(description="The photo: a file path, or a data URL (data:image/png;base64,...).")]
Instruction = Annotated[str, Field(description='What to change, e.g. "make the car red" or "remove the dog".')]
SessionId = Annotated[str, Field(description="A session id from open_session.")]
Original = Annotated[str, Field(description="The photo before the edit: a file path, or a data URL.")]
Edited = Annotated[
    str,
    Field(
        description="Another editor's output of that photo (any size; zoomed, shifted, turned or recoloured "
        "a little): a file path, or a data URL."
    ),
]
Mask = Annotated[
    str | None,
    Field(
        description="Where the edit was allowed (0 kept, above 0 may change), ORIGINAL's size: a file path or a "
        "data URL; optional (without it, the region is what changed)."
    ),
]

INSTRUCTIONS = (
    "Lasso edits a photo from a plain-language instruction and changes only the pixels inside the mask it "
    "finds; everything else stays bit-identical. Images are a file path or a data URL. Use plan_edit to see "
    "what would change, edit_image for one edit, or open_session then session_edit, undo and redo to work "
    "on one photo step by step. contain_edit takes another editor's output of a photo and puts back only "
    "its edited region, proving every other pixel unchanged."
)


class _Server(MCPServer):
    """The SDK's server, with arguments its schemas refuse (an image that is not text, a missing
    instruction) answered in one line as every Lasso error is, not pydantic's report of several."""

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Any = None) -> Any:
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as e:
            if isinstance(e, UnexpectedToolError) or not isinstance(e.__cause__, ValidationError):
                raise
            return CallToolResult(
                content=[TextContent(type="text", text=f"error: {_refused(e.__cause__)}")], is_error=True
            )


_JSON_TYPES = {
    "NoneType": "null",
    "bool": "boolean",
    "int": "number",
    "float": "number",
    "list": "array",
    "dict": "object",
}


def _refused(e: ValidationError) -> str:
    """What was wrong with the arguments, by field, without echoing the values (they may be megabytes)."""
    parts = []
    for err in e.errors():
        field = ".".join(str(part) for part in err.get("loc", ())) or "the arguments"
        said = str(err.get("msg", "is not valid"))
        kind = type(err.get("input")).__name__
        got = "" if err.get("type") == "missing" else f" (got {_JSON_TYPES.get(kind, kind)})"
        parts.append(f"{field}: {said[:1].lower()}{said[1:]}{got}")
    return "; ".join(parts)


def build(tools: Tools, name: str = "lasso") -> MCPServer:
    """The MCPServer with Lasso's seven tools on `tools`."""
    server = _Server(name, instructions=INSTRUCTIONS, version=_own_version(), log_level="WARNING")
    runner = _Runner(
        Scrubber(tools.work_dir)
    )  # its decoded uploads and unsaved results, named as the HTTP API names them
    _add_one_shot_tools(server, tools, runner)
    _add_contain_tool(server, tools, runner)
    _add_session_tools(server, tools, runner)
    return server


def _own_version() -> str:
    """Lasso's version, as the server tells its clients ("0" from a source tree never installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lasso-edit")
    except PackageNotFoundError:
        return "0"


class _Runner:
    """How a tool does its work: in a worker thread (the models block), any error answered as the
    CLI says it, the server's own folders named as the HTTP API names them."""

    def __init__(self, scrub: Scrubber) -> None:
        self.scrub = scrub

    async def slow(self, ctx: Context | None, work: Callable[..., Answer], *args: Any, **kwargs: Any) -> CallToolResult:
        """`work`, its progress sent as notifications."""
        said = 0

        def progress(message: str) -> None:
            nonlocal said
            said += 1
            if ctx is not None:
                try:
                    anyio.from_thread.run(ctx.report_progress, said, None, message)
                except Exception:  # a client gone or not listening: the edit goes on
                    pass

        return await self.quick(lambda: work(*args, progress=progress, **kwargs))

    async def quick(self, work: Callable[..., Answer], *args: Any) -> CallToolResult:
        """`work`, with no progress to report."""
        try:
            answer = await anyio.to_thread.run_sync(lambda: work(*args))
        except Exception as e:
            return _error(e, self.scrub)
        return _result(answer, self.scrub)


def _add_one_shot_tools(server: MCPServer, tools: Tools, runner: _Runner) -> None:
    """plan_edit and edit_image: one photo, one instruction."""

    @server.tool()
    async def plan_edit(image: Image, instruction: Instruction) -> CallToolResult:
        """What Lasso understands the instruction to change, without painting: the edits (action,
        target, value), where the plan came from, and warnings, as JSON."""
        return await runner.quick(tools.plan, image, instruction)

    @server.tool()
    async def edit_image(
        image: Image,
        instruction: Instruction,
        ctx: Context,
        output: Annotated[
            str | None, Field(description="Where to write the edited image (a file or a folder); optional.")
        ] = None,
        seed: Annotated[int | None, Field(description="Random seed, to reproduce an edit.")] = None,
        steps: Annotated[int | None, Field(description="Denoising steps (default: the model's own).")] = None,
        guidance: Annotated[float | None, Field(description="Guidance scale (default: the model's own).")] = None,
        strength: Annotated[float | None, Field(description="How far a style edit departs, 0.01-1.")] = None,
    ) -> CallToolResult:
        """Edit the photo as the instruction says. Only the pixels inside the mask Lasso finds change;
        the answer is the edited image, what changed and the seed, and the proof that nothing outside
        the mask did."""
        return await runner.slow(
            ctx,
            tools.edit,
            image,
            instruction,
            output=output,
            seed=seed,
            steps=steps,
            guidance=guidance,
            strength=strength,
        )


def _add_contain_tool(server: MCPServer, tools: Tools, runner: _Runner) -> None:
    """contain_edit: another editor's output, kept inside its region. No model: it waits for no edit."""

    @server.tool()
    async def contain_edit(
        original: Original,
        edited: Edited,
        mask: Mask = None,
        output: Annotated[
            str | None, Field(description="Where to write the contained image (a file or a folder); optional.")
        ] = None,
    ) -> CallToolResult:
        """Keep another editor's change inside its region: align its output on the original (size, zoom,
        shift, rotation), undo its colour drift, and paste it back only inside the region (the mask
        given, or what changed). The answer is the contained image, one line with the alignment found,
        the colour undone, the region's size and the proof that no pixel outside it changed, and the
        report as `lasso contain --json` gives it. An output that is not an edit of the original is an
        error saying how far apart they are."""
        return await runner.quick(tools.contain, original, edited, mask, output)


def _add_session_tools(server: MCPServer, tools: Tools, runner: _Runner) -> None:
    """open_session, session_edit, undo and redo: several edits of one photo."""

    @server.tool()
    async def open_session(image: Image) -> CallToolResult:
        """Start a session on a photo, for several edits with undo and redo. Answers its id."""
        return await runner.quick(tools.open_session, image)

    @server.tool()
    async def session_edit(session: SessionId, instruction: Instruction, ctx: Context) -> CallToolResult:
        """Apply an edit to the session's current image; the answer is the new image. The instruction may
        lean on the last one: "make it darker", "a bit more", "no, the other one", "undo that and try
        green", "and the bike too". When it cannot be read (nothing before it), the answer is a question
        and nothing changes."""
        return await runner.slow(ctx, tools.session_edit, session, instruction)

    @server.tool()
    async def undo(session: SessionId) -> CallToolResult:
        """Go back one step in the session; the answer is the image now current."""
        return await runner.quick(tools.undo, session)

    @server.tool()
    async def redo(session: SessionId) -> CallToolResult:
        """Go forward again after an undo; the answer is the image now current."""
        return await runner.quick(tools.redo, session)


def _result(answer: Answer, scrub: Scrubber) -> CallToolResult:
    content: list[Any] = [TextContent(type="text", text=scrub(answer.text))]
    if answer.image is not None:
        content.append(
            ImageContent(
                type="image", data=base64.b64encode(answer.image).decode(), mime_type=answer.mime or "image/png"
            )
        )
    return CallToolResult(content=content, structured_content=json.loads(json.dumps(answer.data, default=str)))


def _error(e: BaseException, scrub: Scrubber) -> CallToolResult:
    message = scrub(sentence(e)[0])
    return CallToolResult(content=[TextContent(type="text", text=f"error: {message}")], is_error=True)


def http_app(server: MCPServer, host: str, api_key: str | None) -> ASGIApp:
    """The streamable HTTP app at /mcp, behind `Authorization: Bearer KEY` when `api_key` is set."""
    app = server.streamable_http_app(host=host, max_request_body_size=MAX_DATA_URL_BYTES * 4 // 3 + 2**20)
    if not api_key:
        return app
    expected = f"Bearer {api_key}".encode()

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            given = dict(scope.get("headers") or []).get(b"authorization", b"")
            if not hmac.compare_digest(given, expected):
                body = json.dumps({"error": "missing or wrong API key: send 'Authorization: Bearer KEY'"}).encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await app(scope, receive, send)

    return guarded
