"""`GET /api/schedule` as the pages read it (web/src/api.ts `toSchedule`): the station's name,
language and time zone, now and next, and the rest of today in station time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from api.programme import schedule_at
from radio24 import rack
from tests.api.conftest import make_settings, running
from tests.conftest import LiveKit

ENGLISH = str(rack.ROOT / "prompts" / "examples" / "english")


def _times(slots: list[dict[str, str]]) -> list[tuple[datetime, datetime]]:
    return [(datetime.fromisoformat(s["starts"]), datetime.fromisoformat(s["ends"])) for s in slots]


def _assert_rest_of_today(body: dict[str, object]) -> None:
    today, now = body["today"], body["now"]
    assert isinstance(today, list) and isinstance(now, dict)
    at = datetime.fromisoformat(str(body["at"]))
    midnight = datetime.combine(at.date() + timedelta(days=1), datetime.min.time(), at.tzinfo)
    # It starts with the run on air, each run follows the last, the last is on air at midnight.
    assert {k: today[0][k] for k in ("segment", "title", "starts", "ends")} == {
        k: now[k] for k in ("segment", "title", "starts", "ends")
    }
    spans = _times(today)
    assert all(a[1] == b[0] for a, b in pairwise(spans))
    assert all(starts < midnight for starts, _ in spans)
    assert spans[-1][1] >= midnight
    if len(today) > 1:
        assert today[1]["segment"] == body["next"]["segment"]  # type: ignore[index]


@pytest.mark.integration
async def test_schedule_gives_the_language_and_the_rest_of_today(
    database_url: str, redis_url: str, livekit_server: LiveKit
) -> None:
    settings = make_settings(database_url, redis_url, livekit_server)
    async with running(settings) as api:
        resp = await api.client.get("/api/schedule")  # public: no token
    assert resp.status_code == 200
    body = resp.json()
    assert (body["station"], body["language"], body["timezone"]) == (
        "24時間AIラジオ",
        "ja",
        "Asia/Tokyo",
    )
    assert datetime.fromisoformat(body["at"]).utcoffset() == timedelta(hours=9)
    _assert_rest_of_today(body)


@pytest.mark.integration
async def test_schedule_of_the_english_example_station(
    database_url: str, redis_url: str, livekit_server: LiveKit, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RADIO_PROMPTS_DIR", ENGLISH)
    settings = make_settings(database_url, redis_url, livekit_server)
    async with running(settings) as api:
        body = (await api.client.get("/api/schedule")).json()
    assert (body["station"], body["language"], body["timezone"]) == (
        "Radio24 London",
        "en",
        "Europe/London",
    )
    _assert_rest_of_today(body)


def test_the_rest_of_a_weekday_at_noon_in_tokyo() -> None:
    noon = datetime(2026, 3, 2, 12, 0, tzinfo=ZoneInfo("Asia/Tokyo"))  # a Monday
    out = schedule_at("prompts", lambda: noon.astimezone(UTC))
    assert out.language == "ja"
    assert [(s.segment, s.starts.hour) for s in out.today] == [
        ("listener_corner", 12),
        ("afternoon", 13),
        ("evening_drive", 17),
        ("night_talk", 19),
        ("listener_corner", 22),
        ("late_night", 23),
    ]
    assert out.today[-1].ends == datetime(2026, 3, 3, 5, 0, tzinfo=ZoneInfo("Asia/Tokyo"))


def test_after_midnight_the_night_that_began_yesterday_leads_today() -> None:
    two = datetime(2026, 3, 3, 2, 0, tzinfo=ZoneInfo("Asia/Tokyo"))
    today = schedule_at("prompts", lambda: two).today
    assert (today[0].segment, today[0].starts.day, today[0].starts.hour) == ("late_night", 2, 23)
    assert (today[-1].segment, today[-1].starts.day, today[-1].starts.hour) == ("late_night", 3, 23)
    assert len(today) == 10


def test_late_at_night_today_is_only_the_run_on_air() -> None:
    london = ZoneInfo("Europe/London")
    late = datetime(2026, 3, 28, 23, 30, tzinfo=london)
    out = schedule_at(ENGLISH, lambda: late)
    assert out.language == "en"
    assert [s.segment for s in out.today] == [out.now.segment]


def test_the_day_the_clocks_go_forward_has_23_hours() -> None:
    london = ZoneInfo("Europe/London")
    out = schedule_at(ENGLISH, lambda: datetime(2026, 3, 29, 0, 30, tzinfo=london))
    first, last = out.today[0], out.today[-1]
    assert first.starts == datetime(2026, 3, 29, 0, 0, tzinfo=london)
    assert last.ends == datetime(2026, 3, 30, 0, 0, tzinfo=london)
    # Same-zone subtraction is wall-clock time in Python: compare instants.
    assert last.ends.astimezone(UTC) - first.starts.astimezone(UTC) == timedelta(hours=23)
