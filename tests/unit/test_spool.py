"""The as-aired spool on disk: what a host could not write is in its file at once; a file whose
host is gone is taken over whole (a line cut short or not ours is skipped with a warning, never
a crash), and no post is claimed until its writes are in Postgres; a live host's file is left
alone. Postgres is never reached here: on a closed pool every write is spooled.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from agent.store.aired import AiredLog, open_pool

NOW = datetime(2030, 1, 7, 12, 10, tzinfo=UTC)
TEXT = "お便りです。一行目\u2028二行目\n三行目"  # line breaks in a listener's text


def closed() -> AiredLog:
    return AiredLog(open_pool("postgresql://postgres@127.0.0.1:1/none"))


def log_on(folder: Path) -> AiredLog:
    return AiredLog(open_pool("postgresql://postgres@127.0.0.1:1/none"), spool_dir=folder)


def files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.jsonl"))


async def spool_a_reading(log: AiredLog) -> tuple[UUID, UUID]:
    """A post read on air while Postgres is down: the line, then its mark. Returns (post, ref)."""
    ref = await log.host_utterance(
        text=TEXT,
        segment="s",
        mode="offline",
        started_at=NOW,
        ended_at=NOW + timedelta(seconds=2),
        interrupted=False,
    )
    post = uuid4()
    assert await log.mark_aired(post, ref, aired_at=NOW) == "spooled"
    return post, ref


async def test_what_postgres_missed_is_in_the_hosts_file_at_once(tmp_path: Path) -> None:
    log = log_on(tmp_path)
    post, ref = await spool_a_reading(log)
    caller = await log.caller_turn(
        identity="x", text="", segment="s", started_at=NOW, ended_at=NOW + timedelta(seconds=3)
    )
    await log.set_text(caller, "もしもし")
    await log.music(
        file="a.ogg", title=None, artist=None, segment="s", started_at=NOW, duration_seconds=1.5
    )
    await log.add_usage("gpt-realtime", audio_in=1, audio_out=2, text_in=3, text_out=4, at=NOW)
    assert log.spooled == 6
    [file] = files(tmp_path)
    lines = [json.loads(line) for line in file.read_text().split("\n") if line]
    # Model usage is a sum (replayed twice it would count twice): in memory only.
    kinds = ["host_utterance", "mark_aired", "caller_turn", "set_text", "music"]
    assert [line["kind"] for line in lines] == kinds
    assert lines[0]["values"]["text"] == TEXT and lines[0]["values"]["ref"] == str(ref)
    assert lines[1]["values"] == {
        "post_id": str(post),
        "ref": str(ref),
        "aired_at": NOW.isoformat(),
    }
    assert log.unwritten_marks == {post}
    await log.aclose(drain=0)
    assert len(files(tmp_path)) == 1, "the host stopped with Postgres down: its file stays"


async def test_a_dead_hosts_file_is_taken_over_whole_and_no_post_is_claimed_before_it_is_written(
    tmp_path: Path,
) -> None:
    dead = log_on(tmp_path)
    post, _ = await spool_a_reading(dead)
    alive = log_on(tmp_path)
    # While the first host lives, its file is its own.
    assert await alive.claim_posts("host:b", 3, 15, []) is None  # (Postgres is down anyway)
    assert alive.spooled == 0
    await dead.aclose(drain=0)  # gone, its writes still in the file

    assert await alive.claim_posts("host:b", 3, 15, []) is None
    assert alive.spooled == 2 and alive.unwritten_marks == {post}
    third = log_on(tmp_path)
    await third.claim_posts("host:c", 3, 15, [])
    assert third.spooled == 0, "a file being written by one host is taken by no other"
    await alive.aclose(drain=0)  # stopped before Postgres came back: the file stays, whole
    await third.claim_posts("host:c", 3, 15, [])
    assert third.spooled == 2
    await third.aclose(drain=0)
    assert len(files(tmp_path)) == 1


async def test_a_cut_or_foreign_line_is_skipped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dead = log_on(tmp_path)
    post, _ = await spool_a_reading(dead)
    await dead.aclose(drain=0)
    [file] = files(tmp_path)
    good = file.read_text().split("\n")[1]  # the mark
    values = json.loads(good)["values"]
    bad = [
        good[: len(good) // 2],  # cut short by the kill
        "not json",
        json.dumps(["a", "list"]),
        json.dumps({"kind": "usage", "values": {}}),  # never spooled to a file
        json.dumps({"kind": ["mark_aired"], "values": values}),
        json.dumps({"kind": "mark_aired", "values": {**values, "extra": 1}}),
        json.dumps({"kind": "mark_aired", "values": {**values, "post_id": "nope"}}),
        json.dumps({"kind": "mark_aired", "values": {**values, "post_id": 7}}),
        json.dumps({"kind": "mark_aired", "values": {**values, "aired_at": "2030-01-07"}}),
        json.dumps({"kind": "set_text", "values": {"ref": values["ref"], "text": {"a": 1}}}),
    ]
    # A blank line is passed over; the last line was cut short as it was written.
    file.write_text("\n".join([bad[0], good, "", *bad[1:], good[:10]]))
    log = log_on(tmp_path)
    with caplog.at_level(logging.WARNING, logger="radio24.aired"):
        assert await log.claim_posts("host:b", 3, 15, []) is None
    assert log.spooled == 1 and log.unwritten_marks == {post}
    skipped = [r for r in caplog.records if r.getMessage().startswith("spool file line skipped")]
    assert [getattr(r, "line", None) for r in skipped] == [1, *range(4, 3 + len(bad)), 13]
    await log.aclose(drain=0)


async def test_without_a_folder_the_spool_is_in_memory_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = closed()
    await spool_a_reading(log)
    assert log.spooled == 2
    with caplog.at_level(logging.WARNING, logger="radio24.aired"):
        await log.aclose(drain=0)
    [lost] = [r for r in caplog.records if r.getMessage() == "as-aired writes lost at shutdown"]
    assert getattr(lost, "count", None) == 2
