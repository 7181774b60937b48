"""The programme as pages see it (public: now, next and the rest of today, `api/programme.py`),
and whether the producers' prompt files loaded (producers): what the host last reported in Redis
(`Keys.prompts_status`), since the host is the one that goes on air with them."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel

from api.deps import KeysDep, Producer, RedisDep, SettingsDep
from api.errors import SIGNED_IN
from api.programme import ScheduleOut, ScheduleUnavailable, schedule_now
from core.errors import REDIS_DOWN

router = APIRouter(
    prefix="/api",
    tags=["programme"],
    responses={
        **SIGNED_IN,
        404: {"description": "the host has not reported its prompt status yet"},
        502: {"description": "the host's prompt status is not readable"},
    },
)


@router.get("/schedule", response_model=ScheduleOut)
async def schedule(settings: SettingsDep) -> ScheduleOut:
    """What is on air now, what comes next and the rest of today, in the station's time zone,
    with the station's language (pages speak it)."""
    try:
        return schedule_now(settings.radio_prompts_dir)
    except ScheduleUnavailable as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            {"message": "the prompt files do not load", "problems": exc.problems},
        ) from None


class ProblemOut(BaseModel):
    file: str
    line: int
    message: str
    fix: str


class PromptsStatusOut(BaseModel):
    ok: bool
    problems: list[ProblemOut]
    loaded_at: Any = None


@router.get("/prompts/status", response_model=PromptsStatusOut)
async def prompts_status(_: Producer, redis: RedisDep, keys: KeysDep) -> PromptsStatusOut:
    """Producers: whether the host loaded the prompt files, and every problem (file, line, fix)."""
    try:
        raw = await redis.get(keys.prompts_status)
    except REDIS_DOWN:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "redis unavailable") from None
    if raw is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "the host has not reported yet")
    try:
        return PromptsStatusOut.model_validate(json.loads(raw))
    except ValueError:
        raise HTTPException(
            status.HTTP_502_BAD_GATEWAY, "the host's prompt status is not readable"
        ) from None
