"""The fake Realtime server holds a real session with the real LiveKit OpenAI plugin.

Every other test that puts the host on air leans on this fake, so these tests drive the plugin's
own `RealtimeSession` (no LiveKit room) through a caller's turn, a failure, a dropped socket and
an outage, and check both sides: what the fake heard and what the plugin surfaced.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator

import numpy as np
import pytest
from livekit import rtc
from livekit.agents import APIConnectOptions, llm
from livekit.plugins.openai.realtime import RealtimeModel, RealtimeSession

from radio24 import rack
from tests.fakes.realtime_server import FakeRealtimeServer, ReplyContext, synthesize

pytestmark = pytest.mark.integration

CALLER_RATE = 48000  # what WebRTC hands the host; the plugin resamples to 24 kHz


def _rms(pcm: bytes) -> float:
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    return float(np.sqrt(np.mean(samples**2))) if samples.size else 0.0


def _caller_frames(seconds: float) -> list[rtc.AudioFrame]:
    """A caller's voice as 20 ms, 48 kHz mono frames, as RoomIO would push them."""
    per_frame = CALLER_RATE // 50
    t = np.arange(round(seconds * CALLER_RATE)) / CALLER_RATE
    pcm = (0.3 * np.sin(2 * np.pi * 300 * t) * 32767).astype("<i2").tobytes()
    step = per_frame * 2
    return [
        rtc.AudioFrame(pcm[i : i + step], CALLER_RATE, 1, per_frame)
        for i in range(0, len(pcm) - step + 1, step)
    ]


async def _hear(gen: llm.GenerationCreatedEvent) -> tuple[list[rtc.AudioFrame], str]:
    """Drain a generation the way the host's playout does: audio and transcript together."""
    frames: list[rtc.AudioFrame] = []
    text: list[str] = []

    async def audio(stream: AsyncIterator[rtc.AudioFrame]) -> None:
        async for frame in stream:
            frames.append(frame)

    async def words(stream: AsyncIterator[str]) -> None:
        async for delta in stream:
            text.append(delta)

    async for msg in gen.message_stream:
        await asyncio.gather(audio(msg.audio_stream), words(msg.text_stream))
    return frames, "".join(text)


@pytest.fixture
def fake() -> Iterator[FakeRealtimeServer]:
    with FakeRealtimeServer(pace=None) as server:
        yield server


@pytest.fixture
async def session(fake: FakeRealtimeServer) -> AsyncIterator[RealtimeSession]:
    model = RealtimeModel(
        api_key="fake",
        base_url=fake.base_url,
        conn_options=APIConnectOptions(max_retry=10, retry_interval=0.2, timeout=5.0),
    )
    sess = model.session(turn_detection_disabled=True)  # push-to-talk: we commit the turns
    await asyncio.wait_for(fake.wait_until_async(lambda: fake.open_connections == 1), 5)
    yield sess
    with contextlib.suppress(Exception):
        await asyncio.wait_for(sess.aclose(), 5)
    await model.aclose()


async def test_instructions_reach_the_server(
    fake: FakeRealtimeServer, session: RealtimeSession
) -> None:
    await session.update_instructions("You are the overnight host of radio24.")

    await asyncio.wait_for(
        fake.wait_for_async(
            lambda e: (
                e["type"] == "session.update"
                and e["session"].get("instructions") == "You are the overnight host of radio24."
            )
        ),
        5,
    )
    assert fake.instructions == "You are the overnight host of radio24."
    # the startup update configures PCM16 at 24 kHz both ways, as the fake assumes
    first = fake.received_of("session.update")[0]["session"]
    assert first["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
    assert first["audio"]["input"]["turn_detection"] is None
    assert any(e["type"] == "session.updated" for e in fake.sent)


async def test_a_callers_turn_is_heard_transcribed_and_answered_aloud(
    fake: FakeRealtimeServer, session: RealtimeSession
) -> None:
    fake.transcript = "Can you play something calm?"
    fake.reply = "Thanks for calling radio24."
    fake.reply_seconds = 1.5
    transcripts: list[llm.InputTranscriptionCompleted] = []
    session.on("input_audio_transcription_completed", transcripts.append)

    for frame in _caller_frames(0.6):
        session.push_audio(frame)
    session.commit_audio()
    gen = await asyncio.wait_for(session.generate_reply(), 5)
    frames, said = await asyncio.wait_for(_hear(gen), 10)

    # the fake heard the caller: ~0.6 s of 24 kHz PCM16, one commit, loud audio in it
    assert fake.audio_bytes_received() >= 0.5 * 48000
    assert fake.commits == 1
    assert _rms(fake.committed_audio[0]) > 1000
    assert fake.responses_requested == 1
    # the plugin surfaced the caller's words and a spoken, transcribed reply
    assert [t.transcript for t in transcripts if t.is_final] == ["Can you play something calm?"]
    assert said == "Thanks for calling radio24."
    assert all(f.sample_rate == 24000 and f.num_channels == 1 for f in frames)
    duration = sum(f.samples_per_channel for f in frames) / 24000
    assert duration == pytest.approx(1.5, abs=0.05)
    assert _rms(b"".join(bytes(f.data) for f in frames)) > 1000
    # both turns are in the plugin's mirror of the server conversation, in order
    history = [(m.role, m.text_content) for m in session.chat_ctx.messages()]
    assert history == [
        ("user", "Can you play something calm?"),
        ("assistant", "Thanks for calling radio24."),
    ]


async def test_reply_callable_sees_the_conversation_and_instructions(
    fake: FakeRealtimeServer, session: RealtimeSession
) -> None:
    seen: list[ReplyContext] = []

    def reply(ctx: ReplyContext) -> str:
        seen.append(ctx)
        return f"You said {ctx.last_user_text}"

    fake.reply = reply
    await session.update_instructions("Be brief.")
    chat = llm.ChatContext.empty()
    chat.add_message(role="user", content="Play the blues")
    # update_chat_ctx waits for conversation.item.added: it times out if the fake doesn't answer
    await asyncio.wait_for(session.update_chat_ctx(chat), 6)
    gen = await asyncio.wait_for(session.generate_reply(instructions="Mention the time."), 5)
    _, said = await asyncio.wait_for(_hear(gen), 10)

    assert said == "You said Play the blues"
    assert seen[0].instructions == "Be brief."
    assert seen[0].response_instructions == "Be brief.\nMention the time."
    assert [i["role"] for i in fake.conversation] == ["user", "assistant"]


async def test_an_injected_error_fails_the_reply_and_surfaces_as_an_error_event(
    fake: FakeRealtimeServer, session: RealtimeSession
) -> None:
    errors: list[llm.RealtimeModelError] = []
    session.on("error", errors.append)
    fake.fail_next_response(error_code="rate_limit_exceeded", type="invalid_request_error")

    with pytest.raises(llm.RealtimeError):
        await asyncio.wait_for(session.generate_reply(), 5)

    assert len(errors) == 1
    assert errors[0].recoverable
    assert errors[0].error.body.code == "rate_limit_exceeded"  # type: ignore[attr-defined]
    # recoverable: the same session answers the next request
    gen = await asyncio.wait_for(session.generate_reply(), 5)
    _, said = await asyncio.wait_for(_hear(gen), 10)
    assert said == "Thanks for calling radio24."


async def test_a_failed_response_and_a_fatal_error_take_their_paths(
    fake: FakeRealtimeServer, session: RealtimeSession
) -> None:
    errors: list[llm.RealtimeModelError] = []
    session.on("error", errors.append)

    fake.fail_next_response(error_code="inference_rate_limit_exceeded", in_response=True)
    gen = await asyncio.wait_for(session.generate_reply(), 5)
    frames, said = await asyncio.wait_for(_hear(gen), 5)
    assert (frames, said) == ([], "")
    await asyncio.sleep(0.1)
    assert [e.recoverable for e in errors] == [True]

    fake.fail_next_response(error_code="insufficient_quota", type="insufficient_quota")
    with pytest.raises(llm.RealtimeError):
        await asyncio.wait_for(session.generate_reply(), 5)
    await asyncio.sleep(0.3)
    assert [e.recoverable for e in errors] == [True, False]
    assert fake.connection_count == 1  # a fatal error is not retried


async def test_a_dropped_connection_makes_the_plugin_reconnect_and_resume(
    fake: FakeRealtimeServer, session: RealtimeSession
) -> None:
    reconnected = asyncio.Event()
    session.on("session_reconnected", lambda _: reconnected.set())
    await session.update_instructions("Keep the station on air.")
    await asyncio.wait_for(
        fake.wait_for_async(lambda e: e["session"].get("instructions") is not None), 5
    )
    before = len(fake.received)

    assert fake.drop_connections() == 1
    await asyncio.wait_for(reconnected.wait(), 5)

    assert fake.connection_count == 2
    # the new connection was given the session's instructions again
    await asyncio.wait_for(
        fake.wait_for_async(
            lambda e: (
                e["type"] == "session.update"
                and e["session"].get("instructions") == "Keep the station on air."
            ),
            since=before,
        ),
        5,
    )
    gen = await asyncio.wait_for(session.generate_reply(), 5)
    frames, said = await asyncio.wait_for(_hear(gen), 10)
    assert said == "Thanks for calling radio24." and frames


async def test_an_outage_is_retried_until_the_server_is_back(
    fake: FakeRealtimeServer, session: RealtimeSession
) -> None:
    reconnected = asyncio.Event()
    session.on("session_reconnected", lambda _: reconnected.set())

    fake.set_down(True)
    fake.drop_connections()
    await asyncio.wait_for(fake.wait_until_async(lambda: fake.refused_count >= 2), 5)
    assert not reconnected.is_set()
    fake.set_down(False)
    await asyncio.wait_for(reconnected.wait(), 5)

    assert fake.connection_count == 2
    gen = await asyncio.wait_for(session.generate_reply(), 5)
    _, said = await asyncio.wait_for(_hear(gen), 10)
    assert said == "Thanks for calling radio24."


async def test_interrupting_cancels_the_reply_mid_stream(
    fake: FakeRealtimeServer, session: RealtimeSession
) -> None:
    fake.pace = 1.0
    fake.reply_seconds = 3.0
    gen = await asyncio.wait_for(session.generate_reply(), 5)
    msg = await anext(aiter(gen.message_stream))
    first = await anext(aiter(msg.audio_stream))
    session.interrupt()
    rest = [f async for f in msg.audio_stream]

    await asyncio.wait_for(fake.wait_for_async("response.cancel"), 5)
    heard = (first.samples_per_channel + sum(f.samples_per_channel for f in rest)) / 24000
    assert heard < 1.0

    def statuses() -> list[str]:
        return [e["response"]["status"] for e in fake.sent if e["type"] == "response.done"]

    # the audio stream ends at output_item.done; response.done follows it
    await asyncio.wait_for(fake.wait_until_async(lambda: bool(statuses())), 5)
    assert statuses() == ["cancelled"]


async def test_latency_delays_the_reply(fake: FakeRealtimeServer, session: RealtimeSession) -> None:
    fake.response_latency = 0.4
    started = time.monotonic()
    await asyncio.wait_for(session.generate_reply(), 5)
    assert time.monotonic() - started >= 0.4


def test_raw_protocol_from_a_sync_client(fake: FakeRealtimeServer) -> None:
    """The fake is usable from plain sync code (another thread or process) too."""
    from websockets.sync.client import connect

    url = fake.base_url.replace("http://", "ws://") + "/realtime?model=gpt-realtime"
    with connect(url, additional_headers={"Authorization": "Bearer fake"}) as ws:
        assert json.loads(ws.recv(timeout=5))["type"] == "session.created"
        ws.send(
            json.dumps(
                {
                    "type": "input_audio_buffer.append",
                    "audio": base64.b64encode(b"\0\0" * 240).decode(),
                }
            )
        )
        ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
        error = json.loads(ws.recv(timeout=5))
        assert error["error"]["code"] == "input_audio_buffer_commit_empty"

        ws.send(
            json.dumps(
                {
                    "type": "input_audio_buffer.append",
                    "audio": base64.b64encode(synthesize(0.3)).decode(),
                }
            )
        )
        ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
        fake.wait_for("input_audio_buffer.commit", since=2)
        kinds = [json.loads(ws.recv(timeout=5))["type"] for _ in range(4)]
    assert kinds == [
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
        "conversation.item.input_audio_transcription.completed",
    ]
    assert fake.commits == 2
    assert len(fake.committed_audio) == 1
    fake.set_down(True)
    with (
        pytest.raises(Exception, match="503"),
        connect(url, additional_headers={"Authorization": "Bearer fake"}),
    ):
        pass


def test_runs_standalone_for_other_processes() -> None:
    from websockets.sync.client import connect

    port = rack.free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.realtime_server", "--port", str(port)],
        cwd=rack.ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}/v1" in line
        url = f"ws://127.0.0.1:{port}/v1/realtime?model=gpt-realtime"
        with connect(url, additional_headers={"Authorization": "Bearer fake"}) as ws:
            ws.recv(timeout=5)
            ws.send(
                json.dumps(
                    {
                        "type": "session.update",
                        "session": {"type": "realtime", "instructions": "hi"},
                    }
                )
            )
            updated = json.loads(ws.recv(timeout=5))
        assert updated["type"] == "session.updated"
        assert updated["session"]["instructions"] == "hi"
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
