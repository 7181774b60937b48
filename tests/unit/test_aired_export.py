"""The as-aired CSV's pages (api.routes.aired.csv_chunks) over a fake keyset fetch: every row
once and in order whatever the page size, and a page lost mid-way breaks the CSV off."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from api.routes.aired import COLUMNS, FIRST_ID, Key, Row, csv_chunks

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def rows(n: int) -> list[Row]:
    """n rows in keyset order, two to a started_at (ids break the tie)."""
    out: list[Row] = []
    for i in range(n):
        at = T0 + timedelta(seconds=i // 2)
        row = dict.fromkeys(COLUMNS)
        row.update(id=i + 1, kind="host", speaker="host", text=f"line {i}", started_at=at)
        row["interrupted"] = False
        out.append(tuple(row[c] for c in COLUMNS))
    return out


class Table:
    """The fetch the route gives csv_chunks, over a list: at most n rows after a key."""

    def __init__(self, table: list[Row], fail_at_call: int | None = None) -> None:
        self.table, self.fail_at_call, self.calls = table, fail_at_call, 0

    async def __call__(self, after: Key, n: int) -> list[Row]:
        self.calls += 1
        if self.calls == self.fail_at_call:
            raise psycopg.OperationalError("the database went away")
        return [r for r in self.table if (r[7], r[0]) > after][:n]


async def export(table: Table, page_rows: int) -> tuple[list[str], list[dict[str, str]]]:
    first = await table((T0, FIRST_ID), page_rows)
    chunks = [c async for c in csv_chunks(first, table, page_rows)]
    return chunks, list(csv.DictReader(io.StringIO("".join(chunks))))


@pytest.mark.parametrize(("n", "page_rows"), [(0, 3), (1, 3), (7, 3), (9, 3), (10, 1)])
async def test_every_row_once_in_order_whatever_the_page(n: int, page_rows: int) -> None:
    table = Table(rows(n))
    chunks, out = await export(table, page_rows)
    assert [r["text"] for r in out] == [f"line {i}" for i in range(n)]
    assert chunks[0].startswith(",".join(COLUMNS) + "\r\n")
    assert len(chunks) == n // page_rows + 1  # a page a chunk (a full last page: one empty)
    assert table.calls == len(chunks)


async def test_a_page_lost_mid_way_breaks_the_csv_off() -> None:
    table = Table(rows(10), fail_at_call=3)
    first = await table((T0, FIRST_ID), 3)
    got: list[str] = []
    with pytest.raises(psycopg.OperationalError):
        async for chunk in csv_chunks(first, table, 3):
            got.append(chunk)
    assert len(got) == 2  # the pages before; the answer is never finished as if whole
