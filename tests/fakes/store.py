"""The host's stores as the on-air loop sees them: the as-aired log (Postgres) and the studio
board (Redis). They keep what was written so a test can read the log back."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4


class FakeAiredLog:
    def __init__(self) -> None:
        self.lines: list[dict[str, Any]] = []  # host utterances
        self.turns: list[dict[str, Any]] = []  # caller turns
        self.music_played: list[dict[str, Any]] = []
        self.texts: dict[UUID, str] = {}

    async def host_utterance(self, **fields: Any) -> UUID:
        self.lines.append(fields)
        return uuid4()

    async def caller_turn(self, **fields: Any) -> UUID:
        self.turns.append(fields)
        return uuid4()

    async def music(self, **fields: Any) -> UUID:
        self.music_played.append(fields)
        return uuid4()

    async def set_text(self, ref: UUID, text: str) -> None:
        self.texts[ref] = text

    async def add_usage(self, *args: Any, **kwargs: Any) -> None:
        pass

    async def renew_claims(self, claimer: str, ids: list[UUID], lease: float) -> set[UUID]:
        return set(ids)

    async def mark_aired(self, *args: Any, **kwargs: Any) -> str:
        return "aired"


class FakeBoard:
    def __init__(self) -> None:
        self.shown: list[tuple[str, Any]] = []

    async def show(self, kind: str, value: Any, **_: Any) -> None:
        self.shown.append((kind, value))
