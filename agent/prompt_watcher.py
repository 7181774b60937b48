"""The programme on air: the producers' prompt files, loaded at start and re-read on every edit.

A valid edit reaches the director (and, through the callback, the model's instructions) within
a few seconds; a broken edit is refused and the last good programme stays on air. Either way the
outcome is written to Redis (`radio24:prompts:status`) so the API can show producers the file,
line and fix.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import watchfiles

from agent.board import Board
from programme.files import load_programme
from programme.model import Programme, PromptError

log = logging.getLogger("radio24.programme")


def status(problems: list[object] | tuple[object, ...] = ()) -> dict[str, object]:
    return {
        "ok": not problems,
        "problems": [
            {"file": p.file, "line": p.line, "message": p.message, "fix": p.fix}  # type: ignore[attr-defined]
            for p in problems
        ],
        "loaded_at": datetime.now(UTC).isoformat(),
    }


async def load(folder: Path, board: Board) -> Programme | None:
    """Load the folder once; publish the outcome. None when it cannot go on air."""
    try:
        programme = await asyncio.to_thread(load_programme, folder)
    except PromptError as e:
        log.error("prompts refused", extra={"folder": str(folder), "problems": len(e.problems)})
        for p in e.problems:
            log.error("prompt problem", extra={"problem": str(p)})
        await board.prompts_status(status(e.problems))
        return None
    await board.prompts_status(status())
    return programme


async def watch(
    folder: Path,
    board: Board,
    on_change: Callable[[Programme], Awaitable[None]],
    stop: asyncio.Event,
) -> None:
    """Re-load the folder on every change until `stop` is set."""
    async for _changes in watchfiles.awatch(
        folder, stop_event=stop, debounce=300, step=100, rust_timeout=1000
    ):
        programme = await load(folder, board)
        if programme is not None:
            log.info("prompts reloaded", extra={"folder": str(folder)})
            await on_change(programme)
