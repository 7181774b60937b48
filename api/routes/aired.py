"""The as-aired log for producers: every host utterance, caller turn and music item in a time
range, as JSON or CSV (for a spreadsheet or a regulator's request). With `kind=music` the CSV is
a music-use report: one row per track, jingle or bed, with its start (`started_at`), length
(`duration_ms`), `title`, `artist` and `file`.

The CSV streams any range in full, a page of rows at a time (keyset pages by `started_at`, id,
each its own short pool checkout), so a month of a 24-hour station comes out whole in bounded
memory and a slow download holds no database connection. The JSON (the studio's on-screen list)
is one answer of at most `MAX_JSON_ROWS` items: a range with more is refused with a 422 naming
the limit, never cut short."""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel

from api.deps import PoolDep, Producer
from api.errors import SIGNED_IN
from db.queries import load

router = APIRouter(prefix="/api", tags=["aired"], responses=SIGNED_IN)
queries = load("aired.sql")
log = logging.getLogger("radio24.api")

MAX_RANGE = timedelta(days=31)
MAX_JSON_ROWS = 20000  # the JSON's most items (the CSV has no limit)
PAGE_ROWS = 5000  # the CSV's rows per query
FIRST_ID = -(2**63)  # the least bigint: the first page's keyset starts before every id
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
Row = tuple[Any, ...]
Key = tuple[datetime, int]  # a row's (started_at, id): the keyset pages go by
Fetch = Callable[[Key, int], Awaitable[list[Row]]]  # at most n rows after a key, in order
_STARTED_AT, _ID = COLUMNS.index("started_at"), COLUMNS.index("id")


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


async def csv_chunks(
    first: list[Row], fetch: Fetch, page_rows: int = PAGE_ROWS
) -> AsyncIterator[str]:
    """The CSV a page at a time: the header and `first` (read before the answer starts, so a
    database that is down is the usual 503), then the pages after it until one comes back short.
    A page that fails mid-way raises: the download breaks off unfinished, never ends as if
    whole."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    page, sent = first, 0
    try:
        while True:
            writer.writerows([_cell(v) for v in row] for row in page)
            sent += len(page)
            yield out.getvalue()
            out.seek(0)
            out.truncate()
            if len(page) < page_rows:
                return
            page = await fetch((page[-1][_STARTED_AT], page[-1][_ID]), page_rows)
    except Exception as exc:
        log.error("as-aired export broke off", extra={"rows_sent": sent, "error": repr(exc)})
        raise


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
    """Producers: the as-aired log from `from` (inclusive) to `to` (exclusive), oldest first.
    The CSV streams the whole range (at most 31 days); the JSON answers at most 20,000 items
    and refuses a range with more (422: ask for a shorter one, or the CSV)."""
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

    async def fetch(after: Key, n: int) -> list[Row]:
        async with pool.connection() as conn:
            return [
                r
                async for r in queries.aired_between(
                    conn,
                    start=start,
                    stop=stop,
                    kind=kind,
                    after_at=after[0],
                    after_id=after[1],
                    n=n,
                )
            ]

    wants_csv = format == "csv" or (
        format is None and "text/csv" in request.headers.get("accept", "")
    )
    if wants_csv:
        first = await fetch((start, FIRST_ID), PAGE_ROWS)
        name = f"{kind or 'aired'}-{start:%Y%m%dT%H%M}-{stop:%Y%m%dT%H%M}.csv"
        return StreamingResponse(
            csv_chunks(first, fetch, PAGE_ROWS),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    rows = await fetch((start, FIRST_ID), MAX_JSON_ROWS + 1)
    if len(rows) > MAX_JSON_ROWS:
        raise HTTPException(
            422,
            f"more than {MAX_JSON_ROWS} items in this range, the most the JSON answers: "
            "ask for a shorter range, or for all of it as CSV (format=csv)",
        )
    body = [
        AiredOut(**dict(zip(COLUMNS, row, strict=True))).model_dump(mode="json") for row in rows
    ]
    return JSONResponse(body)
