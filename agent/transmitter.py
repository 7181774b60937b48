"""The transmitter: the host's one audio track, published at join, for the life of the job.

Everything the host puts on air passes here: the AgentSession's voice (the Realtime model or the
offline voice — this is the session's `voice.io.AudioOutput`, so RoomIO keeps only captions),
programme items the on-air loop plays itself (music, jingles), and a bed looping underneath,
ducked under speech. A 10 ms mixer sums them, runs the live sound chain and hands the block to
one `rtc.AudioSource`, which paces it. Owning the track here, not in the session, is what keeps
it to one track across session renewals, and why a listener who joins an idle station hears the
bed at once instead of waiting for RoomIO to publish.

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

import numpy as np
from livekit import rtc
from livekit.agents.voice import io

log = logging.getLogger("radio24.transmitter")

RATE = 48000
BLOCK = RATE // 100  # 10 ms
TRACK_NAME = "radio24-host"
# How far the mixer may run ahead of the listener: small, so a reply starts at once.
QUEUE_MS = 60
# The bed under speech, and how fast it dips and comes back (per 10 ms block).
BED_GAIN = 0.5
DUCKED_GAIN = 0.1  # -20 dB under the bed's own level while anyone speaks
DUCK_ATTACK = 0.35
DUCK_RELEASE = 0.04
FADE_SAMPLES = RATE // 50  # 20 ms: cuts and item ends without a click

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
    """A programme item the loop plays (music, jingle): samples at 48 kHz mono float32."""

    samples: np.ndarray
    pos: int = 0
    done: asyncio.Future[int] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    fade_out_from: int | None = None


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
    def __init__(self, room: rtc.Room, *, chain: Chain | None = None) -> None:
        self._room = room
        self._chain = chain
        self._source = rtc.AudioSource(RATE, 1, queue_size_ms=QUEUE_MS)
        self._wake = asyncio.Event()
        self._feed: VoiceFeed | None = None
        self._item: _Item | None = None
        self._bed: np.ndarray | None = None
        self._bed_pos = 0
        self._bed_gain = BED_GAIN
        self._mixer: asyncio.Task[None] | None = None
        self.publication: rtc.LocalTrackPublication | None = None
        self.voice_active = False  # the session's voice is on air this block
        self.voice_at = time.monotonic()  # when the voice last had audio on air
        self.blocks = 0

    # --- life --------------------------------------------------------------------------------

    async def start(self) -> None:
        """Publish the one host track now (no wait for a subscriber) and start mixing."""
        track = rtc.LocalAudioTrack.create_audio_track(TRACK_NAME, self._source)
        options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
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

    async def play(self, samples: np.ndarray) -> float:
        """Play an item to its end; returns seconds played. Cancelling fades it out."""
        self._finish_item()
        item = _Item(samples=np.asarray(samples, dtype=np.float32))
        self._item = item
        self._wake.set()
        try:
            played = await asyncio.shield(item.done)
        except asyncio.CancelledError:
            if not item.done.done():
                item.fade_out_from = item.pos
            raise
        return played / RATE

    def stop_item(self) -> None:
        if self._item is not None and self._item.fade_out_from is None:
            self._item.fade_out_from = self._item.pos

    def set_bed(self, samples: np.ndarray | None) -> None:
        """Loop `samples` under everything (None: no bed)."""
        self._bed = None if samples is None or not len(samples) else samples.astype(np.float32)
        self._bed_pos = 0
        self._wake.set()

    @property
    def item_playing(self) -> bool:
        return self._item is not None

    def _finish_item(self) -> None:
        item, self._item = self._item, None
        if item is not None and not item.done.done():
            item.done.set_result(item.pos)

    # --- the mixer ---------------------------------------------------------------------------

    def _idle(self) -> bool:
        feed = self._feed
        return self._bed is None and self._item is None and (feed is None or not feed.buffered)

    async def _mix(self) -> None:
        while True:
            if self._idle():
                self._wake.clear()
                if self._idle():
                    await self._wake.wait()
                    continue
            block = self._block()
            pcm = np.clip(block * 32768.0, -32768, 32767).astype(np.int16)
            try:
                await self._source.capture_frame(rtc.AudioFrame(pcm.tobytes(), RATE, 1, BLOCK))
            except Exception:
                log.warning("transmitter could not send a block", exc_info=True)
                await asyncio.sleep(0.01)
            self.blocks += 1

    def _block(self) -> np.ndarray:
        out = np.zeros(BLOCK, dtype=np.float32)
        voice = self._feed.next_block(BLOCK) if self._feed is not None else None
        self.voice_active = voice is not None
        if voice is not None:
            self.voice_at = time.monotonic()
            out[: len(voice)] += voice
        item = self._item
        if item is not None:
            out += self._item_block(item)
        if self._bed is not None:
            speaking = self.voice_active or item is not None
            target = DUCKED_GAIN if speaking else BED_GAIN
            rate = DUCK_ATTACK if speaking else DUCK_RELEASE
            self._bed_gain += (target - self._bed_gain) * rate
            out += self._bed_block() * self._bed_gain
        if self._chain is not None:
            out = self._chain(out)
        return out

    def _item_block(self, item: _Item) -> np.ndarray:
        chunk = item.samples[item.pos : item.pos + BLOCK]
        start = item.pos
        item.pos += len(chunk)
        if item.fade_out_from is not None:
            ramp = 1.0 - (np.arange(start, start + len(chunk)) - item.fade_out_from) / FADE_SAMPLES
            chunk = chunk * np.clip(ramp, 0.0, 1.0)
            if start - item.fade_out_from >= FADE_SAMPLES:
                chunk = np.zeros(0, dtype=np.float32)
        if len(chunk) < BLOCK:
            self._finish_item()
            chunk = np.pad(chunk, (0, BLOCK - len(chunk)))
        return chunk.astype(np.float32, copy=False)

    def _bed_block(self) -> np.ndarray:
        assert self._bed is not None
        bed = self._bed
        idx = (np.arange(BLOCK) + self._bed_pos) % len(bed)
        self._bed_pos = (self._bed_pos + BLOCK) % len(bed)
        return bed[idx]
