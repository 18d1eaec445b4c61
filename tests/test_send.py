"""`eventtui send` against a hostile peer: a real websocket server that answers what it likes.

Each scenario runs `eventtui send` as a subprocess with a timeout: a hang fails the test instead of
hanging the suite, and the output checked is the exact bytes a terminal would get.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request, Response

ESC = "\x1b"
# An OSC 52 clipboard write, a screen clear and a colour: what a hostile peer would print.
EVIL = f"{ESC}]52;c;ZWNobyBwd25lZA=={ESC}\\{ESC}[2J{ESC}[31mred"
SHOWN = "\\x1b]52;c;ZWNobyBwd25lZA==\\x1b\\\\x1b[2J\\x1b[31mred"

Handler = Callable[[ServerConnection], Awaitable[None]]


async def run_send(
    handler: Handler,
    tmp_path: Path,
    lines: list[str],
    *,
    name: str = "events.jsonl",
    process_request: Callable[[ServerConnection, Request], Response | None] | None = None,
) -> tuple[int, bytes, bytes]:
    """Serve `handler` on a free port and run `eventtui send FILE` against it."""
    events = tmp_path / name
    events.write_text("".join(line + "\n" for line in lines))
    async with serve(handler, "127.0.0.1", 0, process_request=process_request) as server:
        port = server.sockets[0].getsockname()[1]
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "eventtui", "send", str(events), "--url", f"ws://127.0.0.1:{port}",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=tmp_path,
        )  # fmt: skip
        try:
            out, err = await asyncio.wait_for(proc.communicate(), 30)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            pytest.fail("eventtui send hung")
    assert proc.returncode is not None
    return proc.returncode, out, err


def replies(*messages: Any, after: int = 1) -> Handler:
    """A server that reads `after` frames, sends each message (JSON-encoded unless bytes or str)."""

    async def handler(ws: ServerConnection) -> None:
        for _ in range(after):
            await ws.recv()
        for message in messages:
            if isinstance(message, bytes | str):
                await ws.send(message)
            else:
                await ws.send(json.dumps(message))
        await ws.wait_closed()

    return handler


def one_error(code: int, out: bytes, err: bytes) -> str:
    assert code == 2, err
    assert ESC.encode() not in out + err
    assert b"Traceback" not in err
    (line,) = err.decode().splitlines()
    assert line.startswith("eventtui: error: ws://127.0.0.1:")
    return line


async def test_an_escape_sequence_in_an_error_reply_or_the_file_name_is_shown_inert(
    tmp_path: Path,
) -> None:
    handler = replies({"error": EVIL, "frame": 1, "index": 0}, {"ack": 1})
    code, out, err = await run_send(handler, tmp_path, ['{"event": "a"}'], name=f"ev{EVIL}.jsonl")
    assert code == 1
    assert ESC.encode() not in out + err
    assert err.decode() == f"{tmp_path}/ev{SHOWN}.jsonl:1 [0]: refused: {SHOWN}\n"
    assert out.decode() == "sent 1 frame; 1 acknowledged; 1 event refused\n"


@pytest.mark.parametrize(
    ("reply", "problem"),
    [
        ({"ack": 1000000000000}, "an ack for frame 1000000000000, but 1 frame was sent"),
        ({"ack": "1"}, "Expected `int | null`, got `str` - at `$.ack`"),
        ({"ack": True}, "Expected `int | null`, got `bool` - at `$.ack`"),
        ({"ack": 1.5}, "Expected `int | null`, got `float` - at `$.ack`"),
        ({"ack": -1}, "an ack for frame -1 after an ack for frame 0"),
        ({"ack": 10**30}, "an ack for frame (31-digit number), but 1 frame was sent"),
        ('{"ack": ' + "9" * 5000 + "}", "Integer value out of range - at `$.ack`"),
        ({"error": "x", "frame": 2}, "an error for frame 2, but 1 frame was sent"),
        ({"error": "x", "frame": 0}, "an error for frame 0, but 1 frame was sent"),
        ({"error": "x"}, "an error that names no frame"),
        ({"error": 5, "frame": 1}, "Expected `str | null`, got `int` - at `$.error`"),
        ({"error": "x", "frame": 1, "index": -1}, "an error for index -1"),
        ({"hello": 1}, "a reply that is neither an ack nor an error"),
        ([1, 2], "Expected `object`, got `array`"),
        ("not json", "a reply that is not JSON"),
        (b'{"ack": 1}', "a binary message"),
    ],
)
async def test_a_reply_outside_the_protocol_is_one_line_and_exit_2(
    tmp_path: Path, reply: Any, problem: str
) -> None:
    code, out, err = await run_send(replies(reply), tmp_path, ['{"event": "a"}'])
    line = one_error(code, out, err)
    assert line.endswith(f"broke the protocol: {problem}; 0 of 1 frames were acknowledged"), line
    assert out == b""


async def test_an_escape_sequence_in_a_reply_that_breaks_the_protocol_is_inert(
    tmp_path: Path,
) -> None:
    code, out, err = await run_send(replies({"ack": EVIL}), tmp_path, ['{"event": "a"}'])
    one_error(code, out, err)
    code, out, err = await run_send(replies(EVIL), tmp_path, ['{"event": "a"}'])
    one_error(code, out, err)


async def test_a_close_reason_is_shown_inert(tmp_path: Path) -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.recv()
        await ws.close(1011, EVIL[:60])

    code, out, err = await run_send(handler, tmp_path, ['{"event": "a"}'])
    line = one_error(code, out, err)
    assert "after 0 of 1 frames were acked (code 1011: " in line


async def test_a_refusal_body_is_shown_inert(tmp_path: Path) -> None:
    def refuse(ws: ServerConnection, request: Request) -> Response:
        return ws.respond(HTTPStatus.FORBIDDEN, EVIL)

    code, out, err = await run_send(replies(), tmp_path, ['{"event": "a"}'], process_request=refuse)
    line = one_error(code, out, err)
    assert line.endswith(f"refused the connection: HTTP 403 {SHOWN}")


async def test_a_normal_close_before_every_ack_is_not_success(tmp_path: Path) -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.recv()
        await ws.send('{"ack": 1}')
        await ws.recv()
        await ws.close(1000)

    code, out, err = await run_send(handler, tmp_path, ['{"event": "a"}', '{"event": "b"}'])
    line = one_error(code, out, err)
    assert "closed the connection after 1 of 2 frames were acked (code 1000" in line


async def test_a_close_while_the_window_is_full_does_not_hang(tmp_path: Path) -> None:
    """A collector shutting down (1001) while `send` waits for room to send more: exit 2, no hang."""

    async def handler(ws: ServerConnection) -> None:
        for _ in range(1000):  # `send`'s window: it now waits for an ack before the next frame
            await ws.recv()
        await ws.close(1001, "collector shutting down")

    lines = [json.dumps({"event": "e", "properties": {"n": n}}) for n in range(1500)]
    code, out, err = await run_send(handler, tmp_path, lines)
    line = one_error(code, out, err)
    assert "closed the connection after 0 of 1000 frames were acked (code 1001" in line


async def test_an_oversized_reply_closes_the_connection(tmp_path: Path) -> None:
    code, out, err = await run_send(
        replies({"error": "x" * (2 * 1024 * 1024), "frame": 1}), tmp_path, ['{"event": "a"}']
    )
    line = one_error(code, out, err)
    assert "a reply was over the 1 MiB limit" in line


async def test_a_well_behaved_peer_still_works(tmp_path: Path) -> None:
    """Acks may arrive late and cover several frames; unknown keys beside ack/error are allowed."""

    async def handler(ws: ServerConnection) -> None:
        for _ in range(3):
            await ws.recv()
        await ws.send('{"error": "no name", "frame": 2, "index": 1, "extra": true}')
        await ws.send('{"ack": 2}')
        await ws.send('{"ack": 2}')
        await ws.send('{"ack": 3}')
        await ws.wait_closed()

    lines = ['{"event": "a"}', '[{"event": "b"}, {}]', '{"event": "c"}']
    code, out, err = await run_send(handler, tmp_path, lines)
    assert (code, err.decode()) == (1, f"{tmp_path}/events.jsonl:2 [1]: refused: no name\n")
    assert out.decode() == "sent 3 frames; 3 acknowledged; 1 event refused\n"


def test_send_prints_through_the_sanitiser_without_loading_textual(tmp_path: Path) -> None:
    """`send` prints through the one sanitiser (`eventtui.text`), which brings no Textual with it."""
    events = tmp_path / f"a{ESC}b.jsonl"
    events.write_text('{"event": "a"}\n')
    code = (
        "import sys\n"
        "from eventtui.cli import main\n"
        f"assert main(['send', {str(events)!r}, '--url', 'ws://127.0.0.1:9']) == 2\n"
        "assert 'eventtui.text' in sys.modules, 'the sanitiser was not used'\n"
        "assert 'textual' not in sys.modules, sorted(m for m in sys.modules if 'textual' in m)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60, capture_output=True)
