"""The host's voice feed keeps livekit-agents' AudioOutput contract: every playback segment is
reported finished exactly once, in order, interrupted only when it was cut."""

from __future__ import annotations

import asyncio

import numpy as np
from livekit import rtc

from agent.audio.transmitter import BLOCK, RATE, VoiceFeed


def _frame(ms: int, value: int = 1000) -> rtc.AudioFrame:
    n = RATE * ms // 1000
    return rtc.AudioFrame(np.full(n, value, dtype=np.int16).tobytes(), RATE, 1, n)


def _drain(feed: VoiceFeed) -> int:
    played = 0
    while (block := feed.next_block(BLOCK)) is not None:
        played += len(block)
    return played


async def test_a_segment_is_reported_once_when_it_has_played() -> None:
    feed = VoiceFeed(asyncio.Event())
    finished: list[tuple[float, bool]] = []
    feed.on("playback_finished", lambda ev: finished.append((ev.playback_position, ev.interrupted)))
    await feed.capture_frame(_frame(100))
    await feed.capture_frame(_frame(50))
    feed.flush()
    assert finished == []  # flushed, but not yet played
    assert _drain(feed) == RATE * 150 // 1000
    assert finished == [(0.15, False)]
    playout = await asyncio.wait_for(feed.wait_for_playout(), 1)
    assert not playout.interrupted


async def test_a_cut_segment_is_reported_interrupted_at_its_flush() -> None:
    feed = VoiceFeed(asyncio.Event())
    finished: list[bool] = []
    feed.on("playback_finished", lambda ev: finished.append(ev.interrupted))
    await feed.capture_frame(_frame(200))
    feed.next_block(BLOCK)  # 10 ms aired
    feed.clear_buffer()  # a caller pressed
    await feed.capture_frame(_frame(100))  # late frames of the cut reply are dropped
    assert finished == []
    feed.flush()
    assert finished == [True]
    assert feed.next_block(BLOCK) is None  # nothing of the cut reply airs
    await feed.capture_frame(_frame(20))  # the next reply plays normally
    feed.flush()
    _drain(feed)
    assert finished == [True, False]
    await asyncio.wait_for(feed.wait_for_playout(), 1)


async def test_an_open_segment_waits_for_more_audio() -> None:
    feed = VoiceFeed(asyncio.Event())
    await feed.capture_frame(_frame(10))
    assert feed.next_block(BLOCK) is not None
    assert feed.next_block(BLOCK) is None  # open: more may come, nothing finished
    assert feed.captured_playout_segments == 1
