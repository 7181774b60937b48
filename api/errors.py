"""The API's error answers shared by several routes: the documented ones (the schema fuzz holds
the API to them), and the 503 every route gives while the database is away."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import HTTPException, Request, status
from fastapi.responses import JSONResponse

log = logging.getLogger("radio24.api")

Responses = dict[int | str, dict[str, Any]]

DB_DOWN: Responses = {503: {"description": "the database is unavailable (Retry-After)"}}
SIGNED_IN: Responses = {
    401: {"description": "no valid token: sign in"},
    403: {"description": "banned, or the route needs another role"},
    **DB_DOWN,
}


def too_many(detail: str, retry_after: int) -> HTTPException:
    return HTTPException(
        status.HTTP_429_TOO_MANY_REQUESTS, detail, {"Retry-After": str(retry_after)}
    )


async def database_down(request: Request, exc: Exception) -> JSONResponse:
    """psycopg's OperationalError or the pool's timeout, from any route: 503, retry shortly."""
    log.error("database unavailable", extra={"path": request.url.path, "error": repr(exc)})
    return JSONResponse(
        {"detail": "the station's database is unavailable: retry shortly"},
        status_code=503,
        headers={"Retry-After": "5"},
    )
