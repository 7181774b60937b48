"""The transmitter: the host's one audio track, published at join, for the life of the job.

Everything the host puts on air passes here: the AgentSession's voice (the Realtime model or the
offline voice — this is the session's `voice.io.AudioOutput`, so RoomIO keeps only captions),
programme items the on-air loop plays itself (music, jingles), and a bed looping underneath,
ducked under speech. A 10 ms mixer levels the voice (`chain.SpeechChain`, the leveller alone),
ducks the bed under it (`chain.BedMixer`), trims the talk (voice and bed) slowly so it airs at
the target as a listener's meter integrates it, pauses, bed and limiting included
(`chain.TalkLeveller`, which reads what aired), adds the items and passes the sum through ONE
true-peak limiter (`chain.TruePeakLimiter`, ~6 ms of delay) before one `rtc.AudioSource`,
which paces it. Files are decoded and brought to the station's loudness in a thread
(`prepare.PreparedSounds`), never on the event loop. Owning the track here, not in the session,
is what keeps it to one track across session renewals, and why a listener who joins an idle
station hears the bed at once instead of waiting for RoomIO to publish.

The AudioOutput contract (livekit-agents 1.8.9, `voice/io.py`): `capture_frame` opens a
playback segment, `flush` closes it, `clear_buffer` drops what has not played; every segment is
reported once with `on_playback_finished`, at its end or, when cleared, at its flush.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from livekit import rtc
from livekit.agents.voice import io

from agent.audio.chain import (
    BedMixer,
    Fader,
    Loop,
    SpeechChain,
    TalkLeveller,
    TruePeakLimiter,
    edge_envelope,
    fade_curve,
)
from agent.audio.prepare import PreparedSounds
from agent.audio.samples import to_int16

log = logging.getLogger("radio24.transmitter")

RATE = 48000
BLOCK = RATE // 100  # 10 ms
TRACK_NAME = "radio24-host"
# How far the mixer may run ahead of the listener: small, so a reply starts at once.
QUEUE_MS = 60
# Item edges: a few ms at a file's own start and end so nothing clicks; a cut (a caller
# pressed, the bed changes) is a quick fade, short enough that the caller is not talked over.
EDGE_SAMPLES = RATE // 200  # 5 ms
CUT_SECONDS = 0.25
BED_FADE_SECONDS = 0.6
# Under speech the bed sits this far under its prepared level (both are at the station's
# loudness, so this is how far under the voice it is); between phrases it comes up to BED_OPEN_DB.
BED_DUCK_DB = -20.0
BED_OPEN_DB = -10.0
# A track the host talks over (its intro) dips this far under the voice.
ITEM_DUCK_DB = -12.0
# Listeners hear the track after Opus, which keeps each band's energy, not the waveform: on a
# loud sibilant or a drum hit its decoded peaks land over what went in. The same recording
# through the SFU (the limiter's -2.3 dBTP in): at WebRTC's default ~32 kbps up to 2.7 dB over
# (listeners got +0.4 dBTP), at 96 kbps 1.5 dB, at 128 kbps 0.65 dB. So: 128 kbps, and the
# live limiter leaves 1 dB for the codec.
# No DTX: it airs comfort noise for a quiet passage, and a station is never silent on purpose.
BITRATE = 128_000
CODEC_HEADROOM_DB = 1.0

Chain = Callable[[np.ndarray], np.ndarray]  # float32 block in, float32 block out


@dataclass
class _Segment:
    """One playback segment of the session's voice."""

    chunks: deque[np.ndarray] = field(default_factory=deque)
    flushed: bool = False
    cleared: bool = False
    played: int = 0  # samples
    started: bool = False

    def take(self, n: int) -> np.ndarray:
        out = np.zeros(n, dtype=np.float32)
        filled = 0
        while filled < n and self.chunks:
            chunk = self.chunks[0]
            k = min(n - filled, len(chunk))
            out[filled : filled + k] = chunk[:k]
            filled += k
            if k == len(chunk):
                self.chunks.popleft()
            else:
                self.chunks[0] = chunk[k:]
        self.played += filled
        return out[:filled]

    @property
    def buffered(self) -> bool:
        return bool(self.chunks)


@dataclass
class _Item:
    """A programme item the loop plays (music, jingle): prepared samples, 48 kHz mono float32."""

    samples: np.ndarray
    pos: int = 0
    done: asyncio.Future[int] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    cut_at: int | None = None  # where a cut's fade began

    def block(self, n: int) -> np.ndarray:
        """The item's next `n` samples (zero-padded at its end), faded at its edges or cut."""
        length, start = len(self.samples), self.pos
        if self.cut_at is not None:
            length = min(length, self.cut_at + CUT_SAMPLES)
        chunk = self.samples[start : min(start + n, length)]
        gain = edge_envelope(length, start, len(chunk), EDGE_SAMPLES, EDGE_SAMPLES)
        if self.cut_at is not None:
            into = np.arange(start, start + len(chunk)) - self.cut_at
            gain = gain * _CUT_CURVE[np.clip(into, 0, CUT_SAMPLES - 1)]
        self.pos = start + len(chunk)
        out = np.zeros(n, np.float32)
        out[: len(chunk)] = chunk * gain
        return out

    @property
    def over(self) -> bool:
        end = len(self.samples)
        if self.cut_at is not None:
            end = min(end, self.cut_at + CUT_SAMPLES)
        return self.pos >= end


CUT_SAMPLES = int(CUT_SECONDS * RATE)
_CUT_CURVE = fade_curve(CUT_SAMPLES)[::-1].copy()


class VoiceFeed(io.AudioOutput):
    """The session's voice into the transmitter: one feed per AgentSession.

    The session (and RoomIO's caption sync, which wraps it) register listeners on their audio
    output; a feed that lives and dies with its session takes those listeners with it, so a
    renewed session never leaves handlers on the transmitter.
    """

    def __init__(self, wake: asyncio.Event) -> None:
        super().__init__(
            label="radio24-voice",
            capabilities=io.AudioOutputCapabilities(pause=False),
            sample_rate=RATE,
        )
        self._wake = wake
        self._segments: deque[_Segment] = deque()
        self._open: _Segment | None = None

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)
        if self._open is None:
            self._open = _Segment()
            self._segments.append(self._open)
        pcm = np.frombuffer(frame.data, dtype=np.int16)
        if frame.num_channels > 1:
            pcm = pcm.reshape(-1, frame.num_channels).mean(axis=1)
        if not self._open.cleared:
            self._open.chunks.append(pcm.astype(np.float32) / 32768.0)
        self._wake.set()

    def flush(self) -> None:
        super().flush()
        segment, self._open = self._open, None
        if segment is None:
            return
        segment.flushed = True
        self._wake.set()
        self._settle()

    def clear_buffer(self) -> None:
        """Cut the voice now (a caller pressed, or the host is cut): drop what has not played."""
        for segment in self._segments:
            segment.chunks.clear()
            segment.cleared = True
        self._settle()

    @property
    def buffered(self) -> bool:
        return any(s.buffered for s in self._segments)

    def next_block(self, n: int) -> np.ndarray | None:
        """Up to `n` samples of the voice, or None while it has nothing to play."""
        while self._segments:
            head = self._segments[0]
            if head.buffered:
                if not head.started:
                    head.started = True
                    self.on_playback_started(created_at=time.time())
                block = head.take(n)
                self._settle()  # the segment's last block: report it now, the mixer may idle
                return block
            if head.flushed:
                self._settle()
                continue
            return None  # the segment is open and waiting for more audio
        return None

    def _settle(self) -> None:
        """Report finished segments, oldest first (each exactly once)."""
        while self._segments:
            head = self._segments[0]
            if not head.flushed or head.buffered:
                return
            self._segments.popleft()
            self.on_playback_finished(
                playback_position=head.played / RATE, interrupted=head.cleared
            )


class Transmitter:
    def __init__(
        self,
        room: rtc.Room,
        *,
        target_lufs: float = -16.0,
        ceiling_dbtp: float = -1.0,
        chain: Chain | None = None,
    ) -> None:
        self._room = room
        self._chain = chain
        self._source = rtc.AudioSource(RATE, 1, queue_size_ms=QUEUE_MS)
        self._wake = asyncio.Event()
        self._feed: VoiceFeed | None = None
        self._item: _Item | None = None
        self._fading: list[_Item] = []  # cut items finishing their fade (a crossfade)
        self._bed: Loop | None = None
        self._bed_key: object = None
        self._bed_fader = Fader(0.0)
        self._old_bed: tuple[Loop, Fader] | None = None  # the bed fading out under a new one
        self._mixer: asyncio.Task[None] | None = None
        self.publication: rtc.LocalTrackPublication | None = None
        self.voice_active = False  # the session's voice is on air this block
        self.voice_at = time.monotonic()  # when the voice last had audio on air
        self.blocks = 0
        self.configure(target_lufs, ceiling_dbtp)

    def configure(self, target_lufs: float, ceiling_dbtp: float) -> None:
        """The station's loudness target and ceiling (station.yaml); new ones re-prepare files."""
        key = (float(target_lufs), float(ceiling_dbtp))
        if getattr(self, "_loudness", None) == key:
            return
        self._loudness = key
        self.sounds = PreparedSounds(*key)
        self._leveller = SpeechChain(*key)
        self._bed_ducker = BedMixer(*key[1:], duck_db=BED_DUCK_DB, open_db=BED_OPEN_DB)
        self._item_ducker = BedMixer(*key[1:], duck_db=ITEM_DUCK_DB, open_db=0.0)
        self._talk = TalkLeveller(target_lufs)
        self._limiter = TruePeakLimiter(ceiling_dbtp - CODEC_HEADROOM_DB)

    # --- life --------------------------------------------------------------------------------

    async def start(self) -> None:
        """Publish the one host track now (no wait for a subscriber) and start mixing."""
        track = rtc.LocalAudioTrack.create_audio_track(TRACK_NAME, self._source)
        options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE, dtx=False)
        options.audio_encoding.max_bitrate = BITRATE
        self.publication = await self._room.local_participant.publish_track(track, options)
        self._mixer = asyncio.create_task(self._mix(), name="transmitter-mixer")

    async def aclose(self) -> None:
        if self._mixer is not None:
            self._mixer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._mixer
        if self._feed is not None:
            self._feed.clear_buffer()
        self._finish_item()
        await self._source.aclose()

    def set_chain(self, chain: Chain | None) -> None:
        self._chain = chain

    def feed(self) -> VoiceFeed:
        """A new voice input for a new AgentSession; the previous one is cut."""
        if self._feed is not None:
            self._feed.clear_buffer()
        self._feed = VoiceFeed(self._wake)
        return self._feed

    # --- programme items and the bed ---------------------------------------------------------

    async def prepared(self, path: str | Path) -> np.ndarray:
        """A file decoded and brought to the station's loudness, in a thread (cached).
        Raises `prepare.MediaError` for a file that cannot air."""
        return await asyncio.to_thread(self.sounds.get, path)

    async def play(self, samples: np.ndarray) -> float:
        """Play an item to its end; returns seconds played. Cancelling fades it out."""
        self.stop_item()
        item = _Item(samples=np.asarray(samples, dtype=np.float32))
        self._item = item
        self._wake.set()
        try:
            played = await asyncio.shield(item.done)
        except asyncio.CancelledError:
            if self._item is item:
                self.stop_item()
            raise
        return played / RATE

    def stop_item(self) -> None:
        """Fade the item on air out (it finishes its fade while the next one starts)."""
        item, self._item = self._item, None
        if item is None:
            return
        if item.cut_at is None:
            item.cut_at = item.pos
        self._fading.append(item)
        if not item.done.done():
            item.done.set_result(item.pos)

    def set_bed(self, samples: np.ndarray | None, key: object = None) -> None:
        """Loop `samples` under the talk (None: fade the bed out). The same `key` as the bed
        already playing keeps it going where it is (each talk step names its segment's bed)."""
        playing = self._bed is not None and key is not None and key == self._bed_key
        if playing and samples is not None and len(samples):
            self._bed_fader.to(1.0, BED_FADE_SECONDS)
            self._wake.set()
            return
        if self._bed is not None and self._bed_fader.gain > 0:
            fader = self._bed_fader
            fader.to(0.0, BED_FADE_SECONDS)
            self._old_bed = (self._bed, fader)
        self._bed, self._bed_key = None, None
        if samples is not None and len(samples):
            self._bed = Loop(np.asarray(samples, dtype=np.float32))
            self._bed_key = key
            self._bed_fader = Fader(0.0)
            self._bed_fader.to(1.0, BED_FADE_SECONDS)
        self._wake.set()

    def hush(self) -> None:
        """Everything but the voice out, quickly (a caller is about to be on air)."""
        self.stop_item()
        if self._bed is not None:
            self._bed_fader.to(0.0, CUT_SECONDS)

    @property
    def item_playing(self) -> bool:
        return self._item is not None

    def _finish_item(self) -> None:
        for item in [self._item, *self._fading]:
            if item is not None and not item.done.done():
                item.done.set_result(item.pos)
        self._item, self._fading = None, []

    # --- the mixer ---------------------------------------------------------------------------

    def _idle(self) -> bool:
        feed = self._feed
        bed_silent = self._bed is None or (self._bed_fader.done and self._bed_fader.gain == 0)
        return (
            bed_silent
            and self._old_bed is None
            and self._item is None
            and not self._fading
            and (feed is None or not feed.buffered)
        )

    async def _mix(self) -> None:
        while True:
            if self._idle():
                self._wake.clear()
                if self._idle():
                    await self._wake.wait()
                    continue
            pcm = to_int16(self._block())
            try:
                await self._source.capture_frame(rtc.AudioFrame(pcm.tobytes(), RATE, 1, BLOCK))
            except Exception:
                log.warning("transmitter could not send a block", exc_info=True)
                await asyncio.sleep(0.01)
            self.blocks += 1

    def _block(self) -> np.ndarray:
        """One 10 ms block: the talk (the voice levelled, the bed ducked under it, both
        trimmed) + the item (ducked under the voice), then the one limiter."""
        voice = self._feed.next_block(BLOCK) if self._feed is not None else None
        self.voice_active = voice is not None
        talk = np.zeros(BLOCK, dtype=np.float32)
        if voice is not None:
            self.voice_at = time.monotonic()
            talk[: len(voice)] = voice
            talk = self._leveller.level(talk)
        key = talk
        if self._bed is not None or self._old_bed is not None:
            bed = np.zeros(BLOCK, dtype=np.float32)
            if self._bed is not None:
                bed += self._bed_fader.apply(self._bed.next(BLOCK))
            if self._old_bed is not None:
                old, fader = self._old_bed
                bed += fader.apply(old.next(BLOCK))
                if fader.done:
                    self._old_bed = None
            ducked = self._bed_ducker.duck(key, bed)
            if ducked is not None:
                talk = talk + ducked
        out = self._talk.level(talk)
        music = np.zeros(BLOCK, dtype=np.float32)
        if self._item is not None:
            item = self._item
            music += item.block(BLOCK)
            if item.over:
                self._item = None
                if not item.done.done():
                    item.done.set_result(item.pos)
        for item in list(self._fading):
            music += item.block(BLOCK)
            if item.over:
                self._fading.remove(item)
        track = bool(music.any())
        if track:
            ducked = self._item_ducker.duck(key, music)
            out = out + ducked if ducked is not None else out
        if self._chain is not None:
            out = self._chain(out)
        aired = self._limiter.process(out)
        self._talk.heard(aired, talk=not track)
        return aired
