"""The media library: producers' files are read with their tags; bad ones are named and skipped."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from programme.check import check_main
from programme.files import check, load_programme
from programme.media import load_library, scan
from programme.model import MusicPolicy
from radio24.media_make import ARTIST, ident, write_opus
from tests.unit.test_prompts import HOST, SCHEDULE, STATION, segment

ROOT = Path(__file__).resolve().parents[2]


def tone(seconds: float, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * 48_000)) / 48_000
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def music_segment(title: str, music: str) -> str:
    return segment(title).replace("target_length: 60\n", f"target_length: 60\nmusic: {music}\n")


@pytest.fixture
def station(tmp_path: Path) -> Path:
    """A prompts folder whose media folder holds two good files."""
    files = {
        "station.yaml": STATION + "media: media\n",
        "host.md": HOST,
        "schedule.yaml": SCHEDULE,
        "segments/night.md": music_segment("Night", "{ share: 0.3, moods: [calm] }"),
        "segments/morning.md": segment("Morning"),
        "segments/corner.md": segment("Corner", posts="first"),
    }
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    write_opus(tmp_path / "media" / "music" / "night_song.ogg", tone(3), "Night Song", "Band")
    write_opus(tmp_path / "media" / "idents" / "hello.ogg", tone(2, 660), "Hello")
    (tmp_path / "media" / "music" / "media.yaml").write_text(
        "kind: track\nmoods: [calm]\nfiles:\n  night_song.ogg: { intro: 1.5, segments: [night] }\n"
    )
    (tmp_path / "media" / "idents" / "media.yaml").write_text("kind: ident\n")
    return tmp_path


def problems_of(station: Path) -> list[tuple[str, int, str]]:
    programme = load_programme(station)
    return [(p.file, p.line, p.message) for p in load_library(station, programme).problems]


# --- good media ----------------------------------------------------------------------------


def test_files_are_read_with_their_tags_and_sidecar(station: Path) -> None:
    programme = load_programme(station)
    library = load_library(station, programme)
    assert library.problems == ()
    song = library.get("music/night_song.ogg")
    assert song is not None
    assert (song.title, song.artist, song.kind) == ("Night Song", "Band", "track")
    assert song.moods == ("calm",) and song.segments == ("night",) and song.intro == 1.5
    assert abs(song.duration - 3.0) < 0.05
    hello = library.get("idents/hello.ogg")
    assert hello is not None and hello.kind == "ident" and hello.artist == ARTIST
    assert library.music_for("night", programme.segments["night"].music) == (song,)
    assert library.music_for("morning", MusicPolicy(0.3)) == ()  # the song is for night only


def test_nested_folders_inherit_and_the_nearest_wins(station: Path) -> None:
    deep = station / "media" / "music" / "late"
    write_opus(deep / "owl.ogg", tone(2, 220), "Owl")
    (deep / "media.yaml").write_text("moods: [night]\nfiles:\n  owl.ogg: { title: The Owl }\n")
    owl = load_library(station, load_programme(station)).get("music/late/owl.ogg")
    assert owl is not None
    assert (owl.kind, owl.moods, owl.title) == ("track", ("night",), "The Owl")


def test_other_audio_formats_are_read(station: Path) -> None:
    from tests.unit.test_sound import write

    write(station / "media" / "music" / "a.flac", tone(2), 44_100, "flac")
    write(station / "media" / "music" / "b.wav", tone(2), 22_050, "pcm_s16le")
    write(station / "media" / "music" / "c.mp3", tone(2), 44_100, "libmp3lame", channels=2)
    library = load_library(station, load_programme(station))
    assert library.problems == ()
    for name in ("a.flac", "b.wav", "c.mp3"):
        item = library.get(f"music/{name}")
        rate = {"a.flac": 44_100, "b.wav": 22_050, "c.mp3": 44_100}[name]
        assert item is not None and abs(item.duration - 96_000 / rate) < 0.1, name
        assert item.title == name.split(".")[0]  # no tags: the file name


def test_the_shipped_media_is_the_house_band(tmp_path: Path) -> None:
    programme = load_programme(ROOT / "prompts")
    library = load_library(ROOT / "prompts", programme)
    assert library.problems == ()
    counts = library.counts()
    assert counts["track"] >= 4 and counts["ident"] >= 2 and counts["bed"] == 1
    for item in library.items:
        assert item.artist == ARTIST and item.title, item
        low, high = {"track": (60, 120), "ident": (2, 6), "jingle": (2, 6), "bed": (30, 60)}[
            item.kind
        ]
        assert low <= item.duration <= high, item
    total = sum(p.stat().st_size for p in (ROOT / "prompts" / "media").rglob("*") if p.is_file())
    assert total < 5_000_000


def test_generated_sound_is_bit_exact_and_tagged(tmp_path: Path) -> None:
    sting = ident("sting")
    write_opus(tmp_path / "a" / "sting.ogg", sting, "Sting")
    write_opus(tmp_path / "b" / "sting.ogg", sting, "Sting")
    first, second = (tmp_path / d / "sting.ogg" for d in "ab")
    assert first.read_bytes() == second.read_bytes()  # re-running the script changes nothing
    library = scan(tmp_path, "a")
    assert [(i.title, i.artist) for i in library.items] == [("Sting", ARTIST)]


# --- bad media -----------------------------------------------------------------------------


def test_bad_files_are_named_skipped_and_the_rest_loads(station: Path) -> None:
    media = station / "media" / "music"
    (media / "empty.mp3").write_bytes(b"")
    (media / "notes.ogg").write_text("not audio at all, just a renamed text file\n" * 50)
    (media / "cover.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\0" * 100)
    write_opus(media / "click.ogg", tone(0.1), "Click")
    (media / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")  # hidden: ignored, not reported
    found = {file: message for file, _, message in problems_of(station)}
    assert found == {
        "media/music/empty.mp3": "the file is empty (0 bytes)",
        "media/music/notes.ogg": found["media/music/notes.ogg"],
        "media/music/cover.jpg": "this is not an audio file the station can play",
        "media/music/click.ogg": "the file is too short to air (0.10 s)",
    }
    assert found["media/music/notes.ogg"].startswith("the file cannot be played")
    library = load_library(station, load_programme(station))
    assert {i.name for i in library.items} == {"music/night_song.ogg", "idents/hello.ogg"}


def test_check_command_reports_bad_media_but_the_programme_stays_good(station: Path) -> None:
    (station / "media" / "music" / "empty.mp3").write_bytes(b"")
    out = io.StringIO()
    assert check_main([str(station)], out) == 1
    lines = out.getvalue().splitlines()
    bad = [line for line in lines if "empty.mp3" in line]
    assert bad == [
        f"{station / 'media/music/empty.mp3'}:1: the file is empty (0 bytes) — "
        "copy the file again, or remove it"
    ]
    assert "1 media problem(s): those files are skipped on air" in lines
    assert check(station) == []  # the programme itself can go on air
    load_programme(station)


def test_check_command_on_good_media_says_what_it_holds(station: Path) -> None:
    out = io.StringIO()
    assert check_main([str(station)], out) == 0
    *_, note, summary = out.getvalue().splitlines()
    assert summary == f"{station / 'media'}: 1 track, 0 jingles, 0 beds, 1 ident (0.1 min of music)"
    # A 3 s song cannot give a 30 % share without repeats: a note, not a failure.
    assert note.startswith(
        f"{station / 'segments/night.md'}:5: note: music share 0.3 needs 4.5 min"
    )


def test_sidecar_mistakes_name_their_line(station: Path) -> None:
    (station / "media" / "music" / "media.yaml").write_text(
        "kind: track\n"
        "mood: [calm]\n"  # line 2: misspelt
        "files:\n"
        "  night_song.ogg: { kind: song }\n"  # line 4: unknown kind
        "  nigth_song.ogg: { title: X }\n"  # line 5: no such file
        "  other.ogg: { segments: [noon] }\n"  # line 6: no such file, no such segment
    )
    found = sorted(problems_of(station))
    assert found == [
        ("media/music/media.yaml", 2, "unknown key 'mood'"),
        ("media/music/media.yaml", 4, "unknown kind 'song'"),
        ("media/music/media.yaml", 5, "there is no file 'nigth_song.ogg' in this folder"),
        ("media/music/media.yaml", 6, "segment 'noon' is not defined"),
        ("media/music/media.yaml", 6, "there is no file 'other.ogg' in this folder"),
    ]


@pytest.mark.parametrize(
    ("value", "where", "message"),
    [
        ("eight", "media/music/media.yaml:4", "intro must be seconds from the start, not 'eight'"),
        ("-2", "media/music/media.yaml:4", "intro must be seconds from the start, not -2"),
        ("true", "media/music/media.yaml:4", "intro must be seconds from the start, not True"),
        ("3.5", "media/music/night_song.ogg:1", "its intro (3.5 s) is not shorter than the file"),
    ],
)
def test_a_bad_intro_is_reported_and_the_track_airs_without_talk_over(
    station: Path, value: str, where: str, message: str
) -> None:
    """`prompts check` names a bad intro; the track still airs, introduced before it starts."""
    (station / "media" / "music" / "media.yaml").write_text(
        f"kind: track\nmoods: [calm]\nfiles:\n  night_song.ogg: {{ intro: {value} }}\n"
    )
    out = io.StringIO()
    assert check_main([str(station)], out) == 1
    bad = [line for line in out.getvalue().splitlines() if message in line]
    assert len(bad) == 1 and bad[0].startswith(f"{station / where}: {message}"), out.getvalue()
    assert "intro" in bad[0].split(" — ")[1]  # the fix says what to write
    song = load_library(station, load_programme(station)).get("music/night_song.ogg")
    assert song is not None and song.intro == 0.0


def test_sidecar_syntax_error_keeps_the_files_playable(station: Path) -> None:
    (station / "media" / "music" / "media.yaml").write_text("kind: track\nmoods: [calm\n")
    library = load_library(station, load_programme(station))
    assert [(p.file, p.line) for p in library.problems] == [("media/music/media.yaml", 3)]
    assert library.get("music/night_song.ogg") is not None


def test_segment_asking_for_music_nobody_has_is_reported(station: Path) -> None:
    (station / "segments" / "morning.md").write_text(
        music_segment("Morning", "{ share: 0.3, moods: [disco], bed: true }")
    )
    out = io.StringIO()
    assert check_main([str(station)], out) == 1
    text = out.getvalue()
    assert f"{station / 'segments/morning.md'}:5: the segment asks for music but no track" in text
    assert "asks for a bed but the media folder has none" in text


# --- station.yaml and segment settings ------------------------------------------------------


def test_station_sound_settings_are_read(station: Path) -> None:
    text = STATION + "media: media\nloudness_target_lufs: -23\ntrue_peak_dbtp: -2\n"
    (station / "station.yaml").write_text(text)
    s = load_programme(station).station
    assert (s.media, s.loudness_target_lufs, s.true_peak_dbtp) == ("media", -23.0, -2.0)


def test_station_without_media_has_no_music(station: Path) -> None:
    (station / "station.yaml").write_text(STATION)
    programme = load_programme(station)
    assert programme.station.media == ""
    assert programme.station.loudness_target_lufs == -16.0
    assert load_library(station, programme).items == ()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("media: medai", "the media folder 'medai' does not exist"),
        ("media: ../../etc", "the media folder '../../etc' is outside the prompts folder"),
        ("media: /srv/music", "the media folder '/srv/music' is outside the prompts folder"),
        ("loudness_target_lufs: -5", "loudness_target_lufs must be a number from -30 to -10"),
        ("true_peak_dbtp: 1", "true_peak_dbtp must be a number from -6 to 0, not 1"),
    ],
)
def test_bad_station_sound_settings_name_their_line(station: Path, line: str, message: str) -> None:
    (station / "station.yaml").write_text(STATION + line + "\n")
    [problem] = check(station)
    assert (problem.file, problem.line) == ("station.yaml", 9)
    assert problem.message.startswith(message), problem.message


def test_segment_music_is_read(station: Path) -> None:
    policy = load_programme(station).segments["night"].music
    assert policy == MusicPolicy(0.3, ("track",), ("calm",), False)
    assert load_programme(station).segments["morning"].music == MusicPolicy()  # talk only


@pytest.mark.parametrize(
    ("music", "line", "message"),
    [
        ("{ share: 1.5 }", 5, "music share must be a fraction of the segment from 0 to 1"),
        ("{ share: 0.3, kinds: [bed] }", 5, "music kind 'bed' cannot be a segment's music"),
        ("{ share: 0.3, moods: 3 }", 5, "'moods' must be a list of words"),
        ("{ sahre: 0.3 }", 5, "unknown key 'sahre'"),
        ("{ share: 0.3, bed: maybe }", 5, "music bed must be true or false"),
        ("0.3", 5, "'music' must say how much music and which"),
    ],
)
def test_bad_segment_music_names_its_line(
    station: Path, music: str, line: int, message: str
) -> None:
    (station / "segments" / "night.md").write_text(music_segment("Night", music))
    found = [(p.file, p.line, p.message) for p in check(station)]
    assert any(
        f == "segments/night.md" and n == line and m.startswith(message) for f, n, m in found
    ), found
