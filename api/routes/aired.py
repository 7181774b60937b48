"""The as-aired log for producers: every host utterance, caller turn and music item in a time
range, as JSON or CSV (for a spreadsheet or a regulator's request). With `kind=music` the CSV is
a music-use report: one row per track, jingle or bed, with its start (`started_at`), length
(`duration_ms`), `title`, `artist` and `file`."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from api.deps import PoolDep, Producer
from api.errors import SIGNED_IN
from db.queries import load

router = APIRouter(prefix="/api", tags=["aired"], responses=SIGNED_IN)
queries = load("aired.sql")

MAX_RANGE = timedelta(days=31)
MAX_ROWS = 20000
COLUMNS = (
    "id",
    "kind",
    "speaker",
    "person",
    "text",
    "segment",
    "mode",
    "started_at",
    "ended_at",
    "interrupted",
    "duration_ms",
    "title",
    "artist",
    "file",
)
Kind = Literal["host", "caller", "music"]


class AiredOut(BaseModel):
    id: int
    kind: Kind
    speaker: str
    person: str | None
    text: str
    segment: str | None
    mode: str | None
    started_at: datetime
    ended_at: datetime | None
    interrupted: bool
    duration_ms: int | None
    title: str | None = None  # music items only
    artist: str | None = None
    file: str | None = None


def _cell(value: object) -> str:
    """CSV cell; text a spreadsheet would run as a formula is quoted with a leading '."""
    if value is None:
        return ""
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@router.get(
    "/aired",
    response_model=list[AiredOut],
    responses={200: {"content": {"text/csv": {}}}},
)
async def aired(
    _: Producer,
    pool: PoolDep,
    request: Request,
    from_: Annotated[datetime | None, Query(alias="from", description="default: 24 h ago")] = None,
    to: Annotated[datetime | None, Query(description="default: now")] = None,
    kind: Annotated[
        Kind | None, Query(description="only this kind (music: music-use report)")
    ] = None,
    format: Annotated[
        Literal["json", "csv"] | None, Query(description="or Accept: text/csv")
    ] = None,
) -> Response:
    """Producers: the as-aired log from `from` (inclusive) to `to` (exclusive), oldest first."""
    stop = to or datetime.now(UTC)
    try:
        start = from_ or stop - timedelta(days=1)
    except OverflowError:  # found by the schema fuzz: to=0001-01-01T00:01:00Z was a 500
        raise HTTPException(422, "to is too early for the default range: give from too") from None
    if start.tzinfo is None or stop.tzinfo is None:
        raise HTTPException(422, "from and to need a timezone, e.g. 2026-01-01T00:00:00Z")
    if start >= stop:
        raise HTTPException(422, "from must be before to")
    if stop - start > MAX_RANGE:
        raise HTTPException(422, f"range too long: at most {MAX_RANGE.days} days per request")
    async with pool.connection() as conn:
        rows = [
            r
            async for r in queries.aired_between(
                conn, start=start, stop=stop, kind=kind, n=MAX_ROWS
            )
        ]
    wants_csv = format == "csv" or (
        format is None and "text/csv" in request.headers.get("accept", "")
    )
    if wants_csv:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(COLUMNS)
        writer.writerows([_cell(v) for v in row] for row in rows)
        name = f"{kind or 'aired'}-{start:%Y%m%dT%H%M}-{stop:%Y%m%dT%H%M}.csv"
        return Response(
            out.getvalue(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    body = [
        AiredOut(**dict(zip(COLUMNS, row, strict=True))).model_dump(mode="json") for row in rows
    ]
    return JSONResponse(body)
