"""The programme on air: the producers' prompt files, loaded at start and re-read on every edit.

A valid edit reaches the director (and, through the callback, the model's instructions) within
a few seconds; a broken edit is refused and the last good programme stays on air. Either way the
outcome is written to Redis (`Keys.prompts_status`, a `contract.events.PromptsStatus`) so the API
can show producers the file, line and fix.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import watchfiles

from agent.store.board import Board
from contract import events
from programme.files import load_programme
from programme.model import Problem, Programme, PromptError

log = logging.getLogger("radio24.programme")


def status(problems: Sequence[Problem] = ()) -> events.PromptsStatus:
    return events.PromptsStatus(
        ok=not problems,
        problems=[
            events.Problem(file=p.file, line=p.line, message=p.message, fix=p.fix) for p in problems
        ],
        loaded_at=datetime.now(UTC).isoformat(),
    )


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


async def first(folder: Path, board: Board, stop: asyncio.Event) -> Programme:
    """The programme to start with; a broken folder is reported and re-tried until fixed."""
    while True:
        loaded = await load(folder, board)
        if loaded is not None:
            return loaded
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 2.0)
        if stop.is_set():
            raise asyncio.CancelledError


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
