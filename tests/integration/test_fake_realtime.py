"""The fake Realtime server holds a real session with the real LiveKit OpenAI plugin.

Every other test that puts the host on air leans on this fake, so these tests drive the plugin's
own `RealtimeSession` (no LiveKit room) through a caller's turn, a failure, a dropped socket, an
outage, a tool call, a slow or stalled stream, an incomplete reply and the 60-minute session end,
and check both sides: what the fake heard and what the plugin surfaced. The facts they pin down
are the ones the host's session keeper and circuit breaker are built on.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any, TypeGuard

import numpy as np
import pytest
from livekit import rtc
from livekit.agents import Agent, AgentSession, APIConnectOptions, function_tool, llm, metrics
from livekit.plugins.openai.realtime import RealtimeModel, RealtimeSession

from radio24 import rack
from tests.fakes.realtime_server import (
    FakeRealtimeServer,
    ReplyContext,
    ToolOutput,
    synthesize,
)

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


async def _listen(
    gen: llm.GenerationCreatedEvent,
) -> tuple[list[tuple[float, rtc.AudioFrame]], str]:
    """Like `_hear`, with each frame's arrival time (monotonic)."""
    timed: list[tuple[float, rtc.AudioFrame]] = []
    text: list[str] = []

    async def audio(stream: AsyncIterator[rtc.AudioFrame]) -> None:
        async for frame in stream:
            timed.append((time.monotonic(), frame))

    async def words(stream: AsyncIterator[str]) -> None:
        async for delta in stream:
            text.append(delta)

    async for msg in gen.message_stream:
        await asyncio.gather(audio(msg.audio_stream), words(msg.text_stream))
    return timed, "".join(text)


async def _drain(stream: AsyncIterator[Any]) -> list[Any]:
    return [item async for item in stream]


def _of_a_response(m: object) -> TypeGuard[metrics.RealtimeModelMetrics]:
    """A response's metrics, not the one the plugin emits per connection (no request id)."""
    return isinstance(m, metrics.RealtimeModelMetrics) and bool(m.request_id)


def _seconds(frames: list[rtc.AudioFrame]) -> float:
    return sum(f.samples_per_channel for f in frames) / 24000


@contextlib.asynccontextmanager
async def _session_of(fake: FakeRealtimeServer, **model: Any) -> AsyncIterator[RealtimeSession]:
    """A plugin session on the fake, with model options of the test's own."""
    rt = RealtimeModel(
        api_key="fake",
        base_url=fake.base_url,
        conn_options=APIConnectOptions(max_retry=10, retry_interval=0.2, timeout=5.0),
        **model,
    )
    sess = rt.session(turn_detection_disabled=True)
    try:
        await asyncio.wait_for(fake.wait_until_async(lambda: fake.open_connections == 1), 5)
        yield sess
    finally:
        with contextlib.suppress(Exception):  # a session that died re-raises its error here
            await asyncio.wait_for(sess.aclose(), 5)
        await rt.aclose()


@function_tool
async def recall_posts(query: str) -> str:
    """Find what listeners posted about a topic."""
    return f"nothing about {query}"


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


# --- what the real service does that the plain reply does not ----------------------------------


async def test_the_model_calls_a_tool_and_answers_with_its_result(
    fake: FakeRealtimeServer, session: RealtimeSession
) -> None:
    await session.update_tools([recall_posts])
    fake.call_tool_next_response("recall_posts", {"query": "jazz"}, delay=1.0)
    fake.reply = lambda ctx: f"Listeners said: {ctx.last_tool_output}"

    asked = time.monotonic()
    gen = await asyncio.wait_for(session.generate_reply(), 5)
    created = time.monotonic()
    calls = [call async for call in gen.function_stream]
    called = time.monotonic()
    messages = [msg async for msg in gen.message_stream]

    await asyncio.wait_for(fake.wait_until_async(lambda: fake.tools is not None), 5)
    assert [t["name"] for t in fake.tools or []] == ["recall_posts"]
    # generate_reply resolves at response.created: the model's "deciding" is not under its
    # 10 s timeout, and the call surfaces only when the function_call item is done
    assert created - asked < 1.0 <= called - asked
    assert messages == []
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [
        ("recall_posts", {"query": "jazz"})
    ]
    # the plugin's mirror holds the call with its finished arguments (a reconnection replays it)
    mirrored = [i for i in session.chat_ctx.items if i.type == "function_call"]
    assert [(i.call_id, i.arguments) for i in mirrored] == [(calls[0].call_id, '{"query": "jazz"}')]

    # the client answers as AgentSession does: the output item, then a new response
    chat = session.chat_ctx.copy()
    chat.items.append(
        llm.FunctionCallOutput(
            call_id=calls[0].call_id,
            name="recall_posts",
            output="2 posts about Coltrane",
            is_error=False,
        )
    )
    await asyncio.wait_for(session.update_chat_ctx(chat), 6)
    gen = await asyncio.wait_for(session.generate_reply(), 5)
    frames, said = await asyncio.wait_for(_hear(gen), 10)

    assert fake.tool_outputs == [
        ToolOutput(
            calls[0].call_id, "2 posts about Coltrane", "recall_posts", '{"query": "jazz"}', 1
        )
    ]
    assert said == "Listeners said: 2 posts about Coltrane" and frames
    assert [i["type"] for i in fake.response_requests[-1].new_items] == ["function_call_output"]


async def test_an_interrupt_while_the_model_decides_on_a_tool_cancels_the_call(
    fake: FakeRealtimeServer, session: RealtimeSession
) -> None:
    fake.call_tool_next_response("recall_posts", {"query": "jazz"}, delay=5.0)
    gen = await asyncio.wait_for(session.generate_reply(), 5)
    session.interrupt()
    calls = await asyncio.wait_for(_drain(gen.function_stream), 2)  # not the 5 s

    assert calls == []
    done = [e["response"] for e in fake.sent if e["type"] == "response.done"]
    assert [(r["status"], r["output"]) for r in done] == [("cancelled", [])]


async def test_an_agent_session_runs_the_called_tool_and_voices_its_result(
    fake: FakeRealtimeServer,
) -> None:
    """The whole framework path: AgentSession executes the tool and asks for the reply."""
    ran: list[str] = []

    class Host(Agent):
        def __init__(self) -> None:
            super().__init__(instructions="You are the overnight host.")

        @function_tool
        async def recall_posts(self, query: str) -> str:
            """Find what listeners posted about a topic."""
            ran.append(query)
            await asyncio.sleep(0.5)  # a tool round slower than the model's reply
            return f"3 posts about {query}"

    fake.call_tool_next_response("recall_posts", {"query": "jazz"})
    fake.reply = lambda ctx: f"I found {ctx.last_tool_output}"
    model = RealtimeModel(api_key="fake", base_url=fake.base_url)
    agent_session = AgentSession(llm=model)
    try:
        await asyncio.wait_for(agent_session.start(Host()), 10)
        handle = agent_session.generate_reply(instructions="Talk about the posts.")
        await asyncio.wait_for(handle.wait_for_playout(), 15)
        said = [m.text_content for m in agent_session.history.messages() if m.role == "assistant"]
    finally:
        await agent_session.aclose()
        await model.aclose()

    assert ran == ["jazz"]
    [output] = fake.tool_outputs
    assert (output.name, output.output) == ("recall_posts", "3 posts about jazz")
    ask, answer = fake.response_requests
    assert ask.response_instructions == "You are the overnight host.\nTalk about the posts."
    # the tool reply is asked for with the output item just before it, and no extra instructions
    assert [(i["type"], i["call_id"]) for i in answer.new_items] == [
        ("function_call_output", output.call_id)
    ]
    assert answer.response_instructions is None
    assert said == ["I found 3 posts about jazz"]


async def test_a_slow_first_chunk_delays_first_audio_by_that_much(
    fake: FakeRealtimeServer, session: RealtimeSession
) -> None:
    ttfts: list[float] = []
    session.on("metrics_collected", lambda m: ttfts.append(m.ttft) if _of_a_response(m) else None)

    async def first_audio() -> float:
        """Seconds from asking to the first audio frame (the rest is drained)."""
        asked = time.monotonic()
        gen = await asyncio.wait_for(session.generate_reply(), 5)
        timed, said = await asyncio.wait_for(_listen(gen), 10)
        assert said == "Thanks for calling radio24."
        return timed[0][0] - asked

    fake.first_audio_delay = 0.8
    every_reply = await first_audio()
    fake.first_audio_delay = 0.0
    fake.stall_next_response(after_chunks=0, seconds=0.8)  # the same, for one reply only
    this_reply = await first_audio()
    plain = await first_audio()

    # measured from before the request, so the delay is a strict lower bound
    assert 0.8 <= every_reply < 0.8 + 1.5
    assert 0.8 <= this_reply < 0.8 + 1.5
    assert plain < 0.8
    # the plugin's own time-to-first-token sees it (from response.created, on the client)
    assert len(ttfts) == 3 and ttfts[0] > 0.6 and ttfts[1] > 0.6 and ttfts[2] < ttfts[0]


async def test_a_stall_mid_stream_is_a_silent_gap_the_plugin_waits_out(
    fake: FakeRealtimeServer, session: RealtimeSession
) -> None:
    errors: list[llm.RealtimeModelError] = []
    session.on("error", errors.append)
    fake.stall_next_response(after_chunks=3, seconds=1.0)

    gen = await asyncio.wait_for(session.generate_reply(), 5)
    timed, said = await asyncio.wait_for(_listen(gen), 10)

    gaps = [later - earlier for (earlier, _), (later, _) in itertools.pairwise(timed)]
    # all the audio arrives (pace=None: in a burst), with one long gap after the third chunk
    assert _seconds([f for _, f in timed]) == pytest.approx(1.0, abs=0.01)
    assert said == "Thanks for calling radio24."
    assert gaps.index(max(gaps)) == 2 and max(gaps) >= 0.7
    assert errors == []  # the plugin has no stall timeout: a stall is only a gap


async def test_a_stall_without_end_holds_the_reply_open_until_it_is_interrupted(
    fake: FakeRealtimeServer, session: RealtimeSession
) -> None:
    fake.stall_next_response(after_chunks=2, seconds=None)
    gen = await asyncio.wait_for(session.generate_reply(), 5)
    msg = await asyncio.wait_for(anext(aiter(gen.message_stream)), 5)
    frames: list[rtc.AudioFrame] = []

    async def play() -> None:
        async for frame in msg.audio_stream:
            frames.append(frame)

    player = asyncio.create_task(play())
    await asyncio.sleep(1.0)
    assert len(frames) == 2 and not player.done()  # stuck: nothing in the plugin times it out

    session.interrupt()
    await asyncio.wait_for(player, 5)
    assert len(frames) == 2
    await asyncio.wait_for(
        fake.wait_until_async(lambda: any(e["type"] == "response.done" for e in fake.sent)),
        5,
    )
    done = [e["response"] for e in fake.sent if e["type"] == "response.done"]
    assert [r["status"] for r in done] == ["cancelled"]


async def test_an_incomplete_reply_just_ends_and_raises_no_error(
    fake: FakeRealtimeServer, session: RealtimeSession
) -> None:
    errors: list[llm.RealtimeModelError] = []
    seen: list[metrics.RealtimeModelMetrics] = []
    finished = asyncio.Event()
    statuses: list[Any] = []

    def on_server_event(event: dict[str, Any]) -> None:
        if event["type"] == "response.done":
            statuses.append((event["response"]["status"], event["response"]["status_details"]))
            finished.set()

    session.on("error", errors.append)
    session.on("metrics_collected", lambda m: seen.append(m) if _of_a_response(m) else None)
    session.on("openai_server_event_received", on_server_event)
    fake.cut_next_response(after_chunks=3, reason="max_output_tokens")

    gen = await asyncio.wait_for(session.generate_reply(), 5)
    frames, said = await asyncio.wait_for(_hear(gen), 10)
    await asyncio.wait_for(finished.wait(), 5)

    # 0.3 s of the 1.0 s reply, and the words spoken with it
    assert _seconds(frames) == pytest.approx(0.3, abs=0.01)
    assert said == "Thanks for calling"
    # only the raw server event says so: no error, and the metrics do not mark it
    assert statuses == [("incomplete", {"type": "incomplete", "reason": "max_output_tokens"})]
    assert errors == []
    assert [m.cancelled for m in seen] == [False]
    assert [(m.role, m.text_content) for m in session.chat_ctx.messages()] == [
        ("assistant", "Thanks for calling")
    ]
    # the session is unharmed
    gen = await asyncio.wait_for(session.generate_reply(), 5)
    _, said = await asyncio.wait_for(_hear(gen), 10)
    assert said == "Thanks for calling radio24."


async def test_session_expiry_is_a_recoverable_error_and_the_plugin_reconnects(
    fake: FakeRealtimeServer,
) -> None:
    fake.session_max_seconds = 1.0
    async with _session_of(fake) as sess:
        errors: list[llm.RealtimeModelError] = []
        reconnections: asyncio.Queue[None] = asyncio.Queue()
        sess.on("error", errors.append)
        sess.on("session_reconnected", lambda _: reconnections.put_nowait(None))
        await sess.update_instructions("Keep the station on air.")

        await asyncio.wait_for(reconnections.get(), 5)  # the cap passed on the first socket
        fake.session_max_seconds = None  # let the next socket live
        assert fake.expired_count == 1 and fake.connection_count == 2
        # first the service's error (not fatal), then the dropped socket, both recoverable
        assert [e.recoverable for e in errors] == [True, True]
        assert errors[0].error.body.code == "session_expired"  # type: ignore[attr-defined]
        assert "closed unexpectedly" in str(errors[1].error)
        # the new socket was given the instructions again (the plugin's replay), and answers
        gen = await asyncio.wait_for(sess.generate_reply(), 5)
        _, said = await asyncio.wait_for(_hear(gen), 10)
        assert said == "Thanks for calling radio24."
        assert fake.response_requests[-1].instructions == "Keep the station on air."
        assert fake.response_requests[-1].connection == 2

        # a reply streaming when the session ends stops early, with no error of its own
        fake.pace = 1.0
        fake.reply_seconds = 3.0
        gen = await asyncio.wait_for(sess.generate_reply(), 5)
        msg = await asyncio.wait_for(anext(aiter(gen.message_stream)), 5)
        first = await asyncio.wait_for(anext(aiter(msg.audio_stream)), 5)
        assert fake.expire_sessions() == 1
        rest = await asyncio.wait_for(_drain(msg.audio_stream), 5)
        await asyncio.wait_for(reconnections.get(), 5)
        assert _seconds([first, *rest]) < 1.5
        assert fake.expired_count == 2 and fake.connection_count == 3
        assert [e.recoverable for e in errors] == [True] * 4


async def test_the_plugins_own_renewal_below_the_cap_never_meets_session_expired(
    fake: FakeRealtimeServer,
) -> None:
    fake.session_max_seconds = 1.5
    async with _session_of(fake, max_session_duration=0.5) as sess:
        errors: list[llm.RealtimeModelError] = []
        renewals = 0
        third = asyncio.Event()

        def renewed(_: llm.RealtimeSessionReconnectedEvent) -> None:
            nonlocal renewals
            renewals += 1
            if renewals == 3:
                third.set()

        sess.on("error", errors.append)
        sess.on("session_reconnected", renewed)
        await asyncio.wait_for(third.wait(), 10)  # each socket lives 0.5 s, under the 1.5 s cap
        assert fake.expired_count == 0 and errors == []
        assert fake.connection_count >= 4

        # but a request still waiting for response.created when the renewal comes is dropped
        fake.response_latency = 1.0
        with pytest.raises(llm.RealtimeError, match="discarded due to session reconnection"):
            await asyncio.wait_for(sess.generate_reply(), 5)
        assert errors == []  # and no error event says so


async def test_a_renewal_that_meets_an_incomplete_reply_ends_the_session_for_good(
    fake: FakeRealtimeServer,
) -> None:
    """A plugin hazard the host must survive: its renewal waits for the reply in flight, and a
    reply that ends `incomplete` (or `failed`) then kills the session instead of renewing it."""
    fake.pace = 1.0
    fake.reply_seconds = 2.0
    fake.cut_next_response(after_chunks=12)  # 1.2 s, past the 0.5 s renewal
    async with _session_of(fake, max_session_duration=0.5) as sess:
        fatal = asyncio.Event()
        errors: list[llm.RealtimeModelError] = []

        def on_error(error: llm.RealtimeModelError) -> None:
            errors.append(error)
            if not error.recoverable:
                fatal.set()

        sess.on("error", on_error)
        gen = await asyncio.wait_for(sess.generate_reply(), 5)
        frames, _ = await asyncio.wait_for(_hear(gen), 10)
        await asyncio.wait_for(fatal.wait(), 5)
        await asyncio.sleep(0.6)  # longer than a renewal interval

        assert _seconds(frames) == pytest.approx(1.2, abs=0.01)
        assert [(e.recoverable, str(e.error)) for e in errors] == [
            (False, "response incomplete: max_output_tokens")
        ]
        # no renewal, no reconnection: the socket is closed and stays closed
        assert fake.connection_count == 1 and fake.open_connections == 0
        # a later request reaches no server; only the plugin's own 10 s timeout would end it
        pending = sess.generate_reply()
        await asyncio.sleep(0.5)
        assert not pending.done() and fake.responses_requested == 1
        pending.cancel()


async def test_each_response_request_is_recorded_with_its_instructions_and_new_items(
    fake: FakeRealtimeServer, session: RealtimeSession
) -> None:
    standing = "Segment: Night Jazz. Up next: the news at 02:00."
    post = 'A listener wrote: "play Coltrane"'
    await session.update_instructions(standing)
    chat = llm.ChatContext.empty()
    chat.add_message(role="user", content=post)
    await asyncio.wait_for(session.update_chat_ctx(chat), 6)
    gen = await asyncio.wait_for(session.generate_reply(instructions="Read the post."), 5)
    await asyncio.wait_for(_hear(gen), 10)
    gen = await asyncio.wait_for(session.generate_reply(), 5)
    await asyncio.wait_for(_hear(gen), 10)

    first, second = fake.response_requests
    assert first.instructions == standing and second.instructions == standing
    assert first.response_instructions == f"{standing}\nRead the post."
    assert second.response_instructions is None  # the session's instructions apply
    assert first.metadata == {"client_event_id": first.event_id}
    assert [(i["type"], i["role"], i["content"]) for i in first.new_items] == [
        ("message", "user", [{"type": "input_text", "text": post}])
    ]
    assert first.user_texts == [post] and second.user_texts == [post]
    assert second.new_items == []
    assert [i["role"] for i in second.conversation] == ["user", "assistant"]

    # a request while a reply is active is refused, as OpenAI does, and recorded as such
    fake.pace = 1.0
    gen = await asyncio.wait_for(session.generate_reply(), 5)
    with pytest.raises(llm.RealtimeError, match="active response"):
        await asyncio.wait_for(session.generate_reply(), 5)
    assert fake.response_requests[-1].refused == "conversation_already_has_active_response"
    assert fake.response_requests[-2].refused is None
    session.interrupt()
    await asyncio.wait_for(_hear(gen), 10)


def test_an_expired_session_ends_as_openai_ends_it(fake: FakeRealtimeServer) -> None:
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    fake.session_max_seconds = 0.3
    url = fake.base_url.replace("http://", "ws://") + "/realtime?model=gpt-realtime"
    with connect(url, additional_headers={"Authorization": "Bearer fake"}) as ws:
        created = json.loads(ws.recv(timeout=5))
        assert created["session"]["expires_at"] >= int(time.time())
        error = json.loads(ws.recv(timeout=5))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
    assert error["error"] == {
        "type": "invalid_request_error",
        "code": "session_expired",
        "message": "Your session hit the maximum duration of 0.3 seconds.",
        "param": None,
        "event_id": None,
    }
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
    assert closed.value.rcvd.reason == error["error"]["message"]
    assert fake.expired_count == 1
