"""The music planner: shares kept, fixed events respected, no file repeated inside its window."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from programme.files import load_programme
from programme.media import MediaItem, MediaLibrary
from programme.model import MusicPolicy, Segment
from programme.music import Airing, MusicPlanner, Play, Played, Talk, capacity_problems, plan
from tests.fakes.clock import FakeClock

TZ = ZoneInfo("Asia/Tokyo")
ROOT = Path(__file__).resolve().parents[2]


def item(name: str, seconds: float, kind: str = "track", moods: tuple[str, ...] = ()) -> MediaItem:
    return MediaItem(name, Path(name), name.title(), "band", seconds, kind, moods)


LIBRARY = MediaLibrary(
    None,
    (
        item("a.ogg", 80, moods=("calm",)),
        item("b.ogg", 75, moods=("calm",)),
        item("c.ogg", 90, moods=("calm", "warm")),
        item("d.ogg", 70, moods=("bright",)),
        item("e.ogg", 85, moods=("bright",)),
        item("f.ogg", 40, moods=("calm",)),
        item("sting.ogg", 3, kind="jingle"),
        item("ident.ogg", 4, kind="ident", moods=("calm",)),
        item("ident_day.ogg", 4, kind="ident", moods=("bright",)),
        item("bed.ogg", 48, kind="bed"),
    ),
)


def segment(sid: str, share: float, moods: tuple[str, ...] = (), length: int = 60) -> Segment:
    policy = MusicPolicy(share, ("track", "jingle"), moods, bed=True)
    return Segment(sid, sid.title(), "calm", length, ("Hi.",), "sometimes", "Talk.", policy)


NOW = datetime(2026, 3, 2, 12, 0, tzinfo=TZ)


def test_talk_only_segment_never_plays_music() -> None:
    choice = plan(NOW, segment("news", 0.0), LIBRARY, Airing())
    assert choice == Talk(60, "the segment has no music")


def test_a_segment_starts_with_talk_then_music_follows() -> None:
    seg = segment("day", 0.4)
    assert isinstance(plan(NOW, seg, LIBRARY, Airing("day")), Talk)
    after_talk = plan(NOW, seg, LIBRARY, Airing("day", talk_seconds=60))
    assert isinstance(after_talk, Play) and after_talk.item.kind == "track"


def test_never_a_track_past_the_next_event_when_a_shorter_one_fits() -> None:
    seg = segment("night", 0.5, moods=("calm",))
    airing = Airing("night", talk_seconds=120)
    in_60 = plan(NOW, seg, LIBRARY, airing, NOW + timedelta(seconds=60))
    assert isinstance(in_60, Play) and in_60.item.name == "f.ogg"  # the 40 s piece
    in_30 = plan(NOW, seg, LIBRARY, airing, NOW + timedelta(seconds=30))
    assert in_30 == Talk(30, "no piece fits before the next fixed event")
    in_10 = plan(NOW, seg, LIBRARY, airing, NOW + timedelta(seconds=10))
    assert isinstance(in_10, Play) and in_10.item.kind == "jingle"


def test_moods_and_segments_choose_the_pieces() -> None:
    seg = segment("night", 1.0, moods=("bright",))
    names = set()
    airing = Airing("night", talk_seconds=60)
    for minute in range(2):
        choice = plan(NOW + timedelta(minutes=minute * 2), seg, LIBRARY, airing)
        assert isinstance(choice, Play)
        names.add(choice.item.name)
        airing = Airing(
            "night",
            60,
            airing.music_seconds + 80,
            0,
            (*airing.recent, Played(choice.item.name, NOW)),
        )
    assert names == {"d.ogg", "e.ogg"}  # the two bright tracks, one after the other
    third = plan(NOW + timedelta(minutes=4), seg, LIBRARY, airing)
    assert third == Talk(60, "every piece for the segment aired within the repeat window")
    only_here = MediaLibrary(
        None, (MediaItem("x.ogg", Path("x"), "X", "", 60, "track", (), ("morning",)),)
    )
    assert plan(NOW, segment("night", 1.0), only_here, Airing("night", 60)) == Talk(
        60, "the segment has no music"
    )


def test_a_file_is_not_repeated_inside_the_window() -> None:
    seg = segment("night", 1.0, moods=("calm",))
    tracks = {"a.ogg", "b.ogg", "c.ogg", "f.ogg"}
    recent = tuple(Played(n, NOW - timedelta(minutes=5)) for n in tracks)
    choice = plan(NOW, seg, LIBRARY, Airing("night", 60, 0, 0, recent))
    assert choice == Talk(60, "every piece for the segment aired within the repeat window")
    later = plan(NOW + timedelta(minutes=11), seg, LIBRARY, Airing("night", 60, 0, 0, recent))
    assert isinstance(later, Play) and later.item.name in tracks  # 16 minutes on: free again


def test_least_recently_played_goes_first() -> None:
    seg = segment("night", 1.0, moods=("calm",))
    recent = (
        Played("c.ogg", NOW - timedelta(minutes=50)),
        Played("a.ogg", NOW - timedelta(minutes=40)),
        Played("b.ogg", NOW - timedelta(minutes=30)),
        Played("f.ogg", NOW - timedelta(minutes=20)),
    )
    choice = plan(NOW, seg, LIBRARY, Airing("night", 60, 0, 0, recent))
    assert isinstance(choice, Play) and choice.item.name == "c.ogg"


# --- an hour and more on a fake clock, through midnight -----------------------------------


SCHEDULE = (  # (start, end, segment) in station time, 22:30 to 01:30 across midnight
    (datetime(2026, 3, 1, 22, 30, tzinfo=TZ), datetime(2026, 3, 2, 0, 0, tzinfo=TZ), "late"),
    (datetime(2026, 3, 2, 0, 0, tzinfo=TZ), datetime(2026, 3, 2, 1, 30, tzinfo=TZ), "overnight"),
)
SEGMENTS = {
    "late": segment("late", 0.3, moods=("calm",), length=60),
    "overnight": segment("overnight", 0.5, length=90),
}
ID_MINUTES = (0, 30)


def _next_event(now: datetime, ends: datetime) -> datetime:
    minute = now.replace(second=0, microsecond=0)
    for step in range(1, 61):
        t = minute + timedelta(minutes=step)
        if t.minute in ID_MINUTES:
            return min(t, ends)
    return ends


def test_shares_events_and_repeats_over_three_hours_through_midnight() -> None:
    clock = FakeClock(SCHEDULE[0][0])
    planner = MusicPlanner(LIBRARY, clock, seed=7)
    log: list[tuple[str, datetime, float, str]] = []  # (segment, start, seconds, name or "")
    crossings = []
    for _start, end, sid in SCHEDULE:
        seg = SEGMENTS[sid]
        while clock() < end:
            now = clock()
            if now.minute in ID_MINUTES and now.second < 5:  # the station ID, on its minute
                ident = planner.ident(seg)
                assert ident is not None
                planner.aired(sid, ident, now)
                planner.aired_talk(sid, 8)
                log.append((sid, now, ident.duration + 8, ident.name))
                clock.advance(seconds=ident.duration + 8)
                continue
            until = _next_event(now, end)
            choice = planner.next_item(seg, until)
            if isinstance(choice, Play):
                seconds = choice.item.duration
                if now + timedelta(seconds=seconds) > until:
                    crossings.append((now, choice.item.name, until))
                planner.aired(sid, choice.item, now)
                log.append((sid, now, seconds, choice.item.name))
            else:
                seconds = max(choice.seconds, 1.0)  # the host's talk fills up to the event
                planner.aired_talk(sid, seconds)
                log.append((sid, now, seconds, ""))
            clock.advance(seconds=seconds)
    assert not crossings
    for sid, seg in SEGMENTS.items():
        rows = [r for r in log if r[0] == sid]
        music = sum(s for _, _, s, name in rows if name and not name.startswith("ident"))
        total = sum(s for _, _, s, _ in rows)
        assert abs(music / total - seg.music.share) <= 0.1, (sid, music / total)
    plays = [(t, name) for _, t, _, name in log if name.endswith(".ogg") and "ident" not in name]
    for i, (t, name) in enumerate(plays):
        for t2, name2 in plays[i + 1 :]:
            if name2 == name:
                assert t2 - t >= planner.repeat_window, (name, t, t2)
    late_tracks = {
        name for sid, _, _, name in log if sid == "late" and name and "ident" not in name
    }
    assert late_tracks <= {"a.ogg", "b.ogg", "c.ogg", "f.ogg", "sting.ogg"}  # its calm moods
    ids = [t for _, t, _, name in log if "ident" in name]
    # Every ID aired on its minute to the second: no item ran into one.
    assert [t.strftime("%H:%M:%S") for t in ids] == [
        f"{h}:{m}:00" for h, m in [("22", "30"), ("23", "00"), ("23", "30"), ("00", "00")]
    ] + ["00:30:00", "01:00:00"]


def test_a_new_segment_starts_its_own_share() -> None:
    clock = FakeClock(NOW)
    planner = MusicPlanner(LIBRARY, clock)
    planner.aired_talk("late", 600)
    assert planner.airing.talk_seconds == 600
    planner.next_item(SEGMENTS["overnight"])
    assert planner.airing.segment == "overnight" and planner.airing.total_seconds == 0


def test_ident_and_bed_follow_the_segment() -> None:
    planner = MusicPlanner(LIBRARY, FakeClock(NOW))
    assert planner.ident(segment("x", 0.2, moods=("bright",))).name == "ident_day.ogg"
    assert planner.bed(segment("x", 0.2)).name == "bed.ogg"
    no_bed = Segment("y", "Y", "calm", 60, ("Hi.",), "sometimes", "Talk.", MusicPolicy(0.2))
    assert planner.bed(no_bed) is None


@pytest.mark.parametrize("station", ["prompts", "prompts/examples/english"])
def test_shipped_stations_have_music_enough_for_their_shares(station: str) -> None:
    from programme.media import load_library

    programme = load_programme(ROOT / station)
    library = load_library(ROOT / station, programme)
    assert library.problems == ()
    assert capacity_problems(programme, library) == []
    assert any(s.music.share > 0 for s in programme.segments.values())
