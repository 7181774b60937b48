"""`radio24 media make`: the default station's own music, idents and bed, synthesised here.

A fresh checkout must sound like a station (music between the talk, an ident at the station ID,
a bed under the host) without anyone's recordings: every sound in `prompts/media/` is made by
this script from numpy oscillators, so its licence is the project's. It is deterministic (fixed
seeds, bit-exact Ogg/Opus), small (mono Opus at 32 kbit/s, a few MB in all) and re-run by hand:

    radio24 media make [DIR]      # writes DIR (default prompts/media), replacing what it made

The pieces are simple on purpose: a few instruments (electric piano, pad, pluck, bass, bell,
soft drums), one chord progression per mood, a melody drawn from the chord tones, and a room.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from mutagen.oggopus import OggOpus
from scipy.signal import butter, fftconvolve, sosfilt

from agent.audio.measure import integrated_loudness
from agent.audio.prepare import normalise
from agent.audio.samples import SAMPLE_RATE

RATE = SAMPLE_RATE
ARTIST = "radio24 house band"
ALBUM = "radio24"
BIT_RATE = 32_000
TARGET_LUFS = -16.0
CEILING_DBTP = -1.0

# ---------------------------------------------------------------------------------------------
# Instruments: each returns a mono float64 note of `seconds`, peak around 1.


def hz(midi: float) -> float:
    return 440.0 * 2 ** ((midi - 69) / 12)


def _t(seconds: float) -> np.ndarray:
    return np.arange(int(seconds * RATE)) / RATE


def _adsr(n: int, attack: float, release: float) -> np.ndarray:
    env = np.ones(n)
    a, r = min(n, int(attack * RATE)), min(n, int(release * RATE))
    if a:
        env[:a] = np.linspace(0, 1, a)
    if r:
        env[n - r :] *= np.linspace(1, 0, r)
    return env


def epiano(midi: float, seconds: float) -> np.ndarray:
    """Two-operator FM, a bell-like attack softening into a sine: a Rhodes-ish tine."""
    t, f = _t(seconds), hz(midi)
    index = 1.8 * np.exp(-t * 5) + 0.15
    tone = np.sin(2 * np.pi * f * t + index * np.sin(2 * np.pi * f * t))
    tine = 0.08 * np.sin(2 * np.pi * f * 7.0 * t) * np.exp(-t * 30)
    return (tone + tine) * np.exp(-t * 1.3) * _adsr(t.size, 0.006, 0.08)


def pluck(midi: float, seconds: float) -> np.ndarray:
    """Harmonics that die faster the higher they are, like a plucked string."""
    t, f = _t(seconds), hz(midi)
    out = sum(np.sin(2 * np.pi * f * h * t) * np.exp(-t * (2.5 + 1.8 * h)) / h for h in range(1, 9))
    return out * _adsr(t.size, 0.002, 0.05)


def pad(midis: Sequence[float], seconds: float, brightness: int = 6) -> np.ndarray:
    """Slightly detuned soft saws for each note, a slow swell and a slow shimmer."""
    t = _t(seconds)
    out = np.zeros(t.size)
    for m in midis:
        for detune in (-0.06, 0.0, 0.07):
            f = hz(m + detune)
            out += sum(np.sin(2 * np.pi * f * h * t + h) / h**1.5 for h in range(1, brightness))
    out *= 1 + 0.15 * np.sin(2 * np.pi * 0.2 * t)
    return out * _adsr(t.size, min(1.2, seconds / 3), min(1.2, seconds / 3)) / (3 * len(midis))


def bass(midi: float, seconds: float) -> np.ndarray:
    t, f = _t(seconds), hz(midi)
    out = np.sin(2 * np.pi * f * t) + 0.25 * np.sin(4 * np.pi * f * t)
    return out * np.exp(-t * 1.5) * _adsr(t.size, 0.01, 0.06)


def bell(midi: float, seconds: float) -> np.ndarray:
    """FM at an inharmonic ratio: a small glassy bell for the idents."""
    t, f = _t(seconds), hz(midi)
    index = 2.5 * np.exp(-t * 3)
    return np.sin(2 * np.pi * f * t + index * np.sin(2 * np.pi * f * 3.5 * t)) * np.exp(-t * 2.2)


def kick(seconds: float = 0.35) -> np.ndarray:
    t = _t(seconds)
    sweep = 45 + 80 * np.exp(-t * 30)
    return np.sin(2 * np.pi * np.cumsum(sweep) / RATE) * np.exp(-t * 9)


def _noise(seconds: float, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(int(seconds * RATE))


def hat(seed: int, seconds: float = 0.06) -> np.ndarray:
    x = np.diff(_noise(seconds + 1 / RATE, seed))
    return 0.35 * x * np.exp(-_t(seconds) * 60)


def brush(seed: int, seconds: float = 0.18) -> np.ndarray:
    band = butter(2, [1200, 6000], btype="bandpass", fs=RATE, output="sos")
    return 0.7 * sosfilt(band, _noise(seconds, seed)) * np.exp(-_t(seconds) * 18)


def room(x: np.ndarray, seconds: float = 1.8, wet: float = 0.25, seed: int = 5) -> np.ndarray:
    """A small hall: decaying, darkening noise as an impulse response."""
    t = _t(seconds)
    ir = _noise(seconds, seed) * np.exp(-t * 6.9 / seconds)
    ir = sosfilt(butter(1, 3500, fs=RATE, output="sos"), ir)
    ir /= np.sqrt(np.sum(ir**2))
    tail = np.concatenate([fftconvolve(x, ir), [0.0]])
    dry = np.concatenate([x, np.zeros(t.size)])
    return (1 - wet) * dry + wet * tail


# ---------------------------------------------------------------------------------------------
# Composition


@dataclass(frozen=True)
class Chord:
    root: int  # MIDI note of the bass
    tones: tuple[int, ...]  # MIDI notes, voiced around middle C


@dataclass(frozen=True)
class Piece:
    file: str
    title: str
    moods: tuple[str, ...]
    bpm: float
    chords: tuple[Chord, ...]  # one per bar, repeated
    bars: int  # intro (4) + body + outro (2)
    lead: Callable[[float, float], np.ndarray]
    comp: str  # "chords" (struck every half bar), "arp" (eighths) or "pad" (held)
    drums: str  # "", "soft" (kick, hats) or "brush"
    seed: int


def chord(name: str) -> Chord:
    """'Fmaj7' and the like, voiced from F3 up: enough for our few progressions."""
    roots = {"C": 48, "D": 50, "E": 52, "F": 53, "G": 55, "A": 57, "B": 59}
    root = roots[name[0]]
    rest = name[1:]
    if rest.startswith("b"):
        root, rest = root - 1, rest[1:]
    shapes = {
        "": (0, 4, 7, 12),
        "m": (0, 3, 7, 12),
        "maj7": (0, 4, 7, 11),
        "m7": (0, 3, 7, 10),
        "7": (0, 4, 7, 10),
        "add9": (0, 4, 7, 14),
        "sus2": (0, 2, 7, 12),
    }
    tones = tuple(root + 12 + s for s in shapes[rest])
    return Chord(root - 12, tones)


def progression(names: str) -> tuple[Chord, ...]:
    return tuple(chord(n) for n in names.split())


PIECES = (
    Piece(
        "midnight_tea.ogg",
        "Midnight Tea",
        ("calm", "night"),
        68,
        progression("Fmaj7 Em7 Dm7 Cmaj7"),
        22,
        epiano,
        "pad",
        "",
        11,
    ),
    Piece(
        "morning_window.ogg",
        "Morning Window",
        ("bright", "warm", "morning"),
        108,
        progression("D A Bm G"),
        32,
        pluck,
        "arp",
        "soft",
        12,
    ),
    Piece(
        "corner_cafe.ogg",
        "Corner Café",
        ("warm", "bright", "afternoon"),
        92,
        progression("Dm7 G7 Cmaj7 Am7"),
        28,
        epiano,
        "chords",
        "brush",
        13,
    ),
    Piece(
        "homeward.ogg",
        "Homeward",
        ("upbeat", "bright", "evening"),
        116,
        progression("Am F C G"),
        34,
        pluck,
        "arp",
        "soft",
        14,
    ),
    Piece(
        "first_light.ogg",
        "First Light",
        ("gentle", "dawn", "calm"),
        76,
        progression("Cadd9 G Am F"),
        24,
        bell,
        "pad",
        "",
        15,
    ),
    Piece(
        "slow_sunday.ogg",
        "Slow Sunday",
        ("calm", "warm", "reflective"),
        72,
        progression("Ebmaj7 Cm7 Abmaj7 Bb"),
        24,
        epiano,
        "chords",
        "brush",
        16,
    ),
)


def _place(track: np.ndarray, note: np.ndarray, at: float, gain: float) -> None:
    start = int(at * RATE)
    end = min(track.size, start + note.size)
    if start < end:
        track[start:end] += gain * note[: end - start]


def _melody(piece: Piece, bar_s: float, rng: np.random.Generator) -> list[tuple[float, int, float]]:
    """(time, MIDI note, length) for the body: a 4-bar motif on the chord tones, then varied."""
    beat = bar_s / 4
    rhythms = [(0, 1, 2, 3), (0, 1.5, 2, 3), (0, 2, 2.5, 3), (0.5, 1, 2, 3.5), (0, 1, 1.5, 2.5)]
    motif = [(rhythms[rng.integers(len(rhythms))], rng.integers(0, 4, 4)) for _ in range(4)]
    notes = []
    body = range(4, piece.bars - 2)
    for bar in body:
        rhythm, steps = motif[(bar - 4) % 4]
        if (bar - 4) // 4 % 2 == 1:  # every other phrase: same rhythm, new notes
            steps = (steps + rng.integers(0, 3, 4)) % 4
        c = piece.chords[bar % len(piece.chords)]
        last_phrase_bar = (bar - 4) % 4 == 3
        for i, (onset, step) in enumerate(zip(rhythm, steps, strict=True)):
            if last_phrase_bar and i == 3:
                continue  # breathe at the end of a phrase
            length = (rhythm[i + 1] - onset) * beat if i < 3 else (4 - onset) * beat
            notes.append((bar * bar_s + onset * beat, c.tones[int(step)] + 12, length * 1.6))
    return notes


def compose(piece: Piece) -> np.ndarray:
    rng = np.random.default_rng(piece.seed)
    bar_s = 4 * 60 / piece.bpm
    length = piece.bars * bar_s
    track = np.zeros(int((length + 2.5) * RATE))
    beat = bar_s / 4
    for bar in range(piece.bars):
        c = piece.chords[bar % len(piece.chords)]
        at = bar * bar_s
        _place(track, bass(c.root, bar_s), at, 0.5)
        if piece.comp == "pad" or bar < 4:
            _place(track, pad(c.tones, bar_s + 0.6), at, 0.55)
        if piece.comp == "chords" and bar >= 2:
            for half in (0, 2):
                for m in c.tones:
                    _place(track, epiano(m, beat * 2.2), at + half * beat, 0.16)
        if piece.comp == "arp" and bar >= 2:
            order = (0, 1, 2, 3, 2, 1, 2, 3)
            for i, k in enumerate(order):
                _place(track, pluck(c.tones[k], beat), at + i * beat / 2, 0.22)
        if piece.comp == "pad" and bar >= 4:
            for m in c.tones[1:3]:
                _place(track, epiano(m - 12, bar_s), at, 0.12)
        if piece.drums and 2 <= bar < piece.bars - 1:
            for b in range(4):
                if piece.drums == "soft":
                    if b in (0, 2):
                        _place(track, kick(), at + b * beat, 0.6)
                    for e in (0, 0.5):
                        _place(
                            track, hat(piece.seed * 100 + bar * 8 + b * 2), at + (b + e) * beat, 0.3
                        )
                else:
                    _place(
                        track,
                        brush(piece.seed * 100 + bar * 4 + b),
                        at + b * beat,
                        0.25 if b % 2 else 0.12,
                    )
    for at, midi, seconds in _melody(piece, bar_s, rng):
        _place(track, piece.lead(midi, seconds), at, 0.42)
    fade = int(2 * bar_s * RATE)
    end = int(length * RATE)
    track[end - fade : end] *= np.linspace(1, 0, fade) ** 2
    track[end:] = 0
    return _finish(room(track[: end + RATE], wet=0.22))


def ident(kind: str) -> np.ndarray:
    """The station's sonic logo: four bell notes rising to the tonic over a swelling pad."""
    notes: tuple[int, ...]
    if kind == "night":
        notes, pad_tones, gap, total = (57, 64, 69, 72), (45, 52, 57, 60), 0.42, 5.0
    elif kind == "sting":
        notes, pad_tones, gap, total = (72, 79, 84), (60, 67, 72, 76), 0.16, 2.6
    else:
        notes, pad_tones, gap, total = (60, 64, 67, 72), (48, 55, 60, 64), 0.26, 4.0
    track = np.zeros(int(total * RATE))
    _place(track, pad(pad_tones, total - 0.8, brightness=5), 0.0, 0.5)
    for i, m in enumerate(notes):
        _place(track, bell(m + 12, 2.0), 0.15 + i * gap, 0.5)
        _place(track, epiano(m, 1.5), 0.15 + i * gap, 0.25)
    if kind == "sting":
        for m in (60, 64, 67):
            _place(track, pluck(m, 1.2), 0.15 + 3 * gap, 0.3)
    track[-int(0.4 * RATE) :] *= np.linspace(1, 0, int(0.4 * RATE))
    return _finish(room(track, seconds=1.4, wet=0.3)[: track.size])


def bed(seconds: float = 48.0) -> np.ndarray:
    """A soft pad loop: the reverb tail of the end is wrapped onto the start, so it loops
    without a seam."""
    chords = progression("Cmaj7 Am7 Fmaj7 G")
    each = seconds / len(chords)
    n = int(seconds * RATE)
    track = np.zeros(n + int(4 * RATE))
    for i, c in enumerate(chords):
        _place(track, pad(c.tones, each + 2.0, brightness=4), i * each - 1.0 if i else 0.0, 0.6)
        _place(track, pad((c.root + 12,), each + 2.0, brightness=3), i * each, 0.3)
    # The first chord's swell starts at 0; the last chord's tail rings past n: fold it back.
    wet = room(track, seconds=2.5, wet=0.35)
    loop = wet[:n].copy()
    loop[: wet.size - n] += wet[n:]
    return _finish(loop, fade=False)


def _finish(x: np.ndarray, fade: bool = True) -> np.ndarray:
    x = np.tanh(x / (np.abs(x).max() + 1e-9) * 1.2)  # a gentle glue: round off the peaks
    if fade:
        x[: int(0.01 * RATE)] *= np.linspace(0, 1, int(0.01 * RATE))
    return normalise(x.astype(np.float32), TARGET_LUFS, CEILING_DBTP)


# ---------------------------------------------------------------------------------------------
# Writing


def write_opus(path: Path, samples: np.ndarray, title: str, artist: str = ARTIST) -> None:
    """48 kHz mono float samples as a bit-exact Ogg/Opus file with title and artist tags."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="ogg", options={"fflags": "+bitexact"}) as out:
        stream = out.add_stream("libopus", rate=RATE, layout="mono")
        stream.bit_rate = BIT_RATE
        stream.codec_context.flags |= av.codec.context.Flags.bitexact
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(samples, dtype=np.float32).reshape(1, -1),
            format="flt",
            layout="mono",
        )
        frame.sample_rate = RATE
        frame.pts = 0
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    tags = OggOpus(path)
    tags.clear()
    tags["title"], tags["artist"], tags["album"] = title, artist, ALBUM
    tags.save()


FOLDER_FILES = {
    "music": """\
# The radio24 house band: made by `radio24 media make` (numpy synthesis; the licence is ours).
kind: track
files:
""",
    "idents": """\
# Station idents (aired with the station ID) and a short sting between items.
kind: ident
files:
""",
    "beds": """\
# A soft loop that plays under the host's talk, ducked while the host speaks.
kind: bed
files:
""",
}


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")


def make(folder: Path, out: Callable[[str], None] = _say) -> list[Path]:
    """Write every sound and the media.yaml files into `folder`; return the files written."""
    written: list[Path] = []
    entries: dict[str, list[str]] = {k: [] for k in FOLDER_FILES}

    def save(sub: str, name: str, samples: np.ndarray, title: str, entry: str) -> None:
        path = folder / sub / name
        write_opus(path, samples, title)
        entries[sub].append(f"  {name}: {entry}")
        written.append(path)
        out(
            f"  {sub}/{name}: {samples.size / RATE:5.1f} s, "
            f"{integrated_loudness(samples):.1f} LUFS, {path.stat().st_size // 1024} KiB"
        )

    for piece in PIECES:
        intro = round(4 * 4 * 60 / piece.bpm, 1)  # the four bars before the melody
        moods = ", ".join(piece.moods)
        save(
            "music",
            piece.file,
            compose(piece),
            piece.title,
            f"{{ moods: [{moods}], intro: {intro} }}",
        )
    save("idents", "radio24_ident.ogg", ident("day"), "radio24 ident", "{ moods: [bright, warm] }")
    save(
        "idents",
        "radio24_ident_night.ogg",
        ident("night"),
        "radio24 ident (night)",
        "{ moods: [calm, night] }",
    )
    save("idents", "radio24_sting.ogg", ident("sting"), "radio24 sting", "{ kind: jingle }")
    save("beds", "soft_pad.ogg", bed(), "radio24 soft pad (loop)", "{ moods: [calm, warm] }")
    for sub, head in FOLDER_FILES.items():
        sidecar = folder / sub / "media.yaml"
        sidecar.write_text(head + "\n".join(entries[sub]) + "\n", encoding="utf-8")
        written.append(sidecar)
    total = sum(p.stat().st_size for p in written)
    out(f"{len(written)} files, {total / 1e6:.1f} MB in {folder}")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="radio24 media make", description=__doc__)
    parser.add_argument("dir", nargs="?", default="prompts/media")
    args = parser.parse_args(argv)
    make(Path(args.dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
