"""A fake OpenAI Realtime server on loopback, so the real LiveKit OpenAI plugin runs offline.

OpenAI cannot be reached from the machines that test radio24, and a test that needs a paid model
proves nothing about our code anyway. This server speaks the Realtime websocket protocol closely
enough for `livekit-plugins-openai` 1.8.9 (`RealtimeModel(base_url=fake.base_url)` or
`OPENAI_BASE_URL`) to hold a real session against it: it hears the caller's audio, transcribes it
with a scripted transcript, answers `response.create` with a scripted reply spoken as a
non-silent waveform, and records everything the client sent, with one `ResponseRequest` per
`response.create` (instructions, metadata, the conversation as the model would see it).

Fault injection drives the host's failure paths. Each `*_next_response` call shapes one future
response, in the order called: `fail_next_response` (an error), `call_tool_next_response` (the
model calls a tool instead of speaking), `stall_next_response` (audio stops for a while, or until
cancelled), `cut_next_response` (`response.done` with status `incomplete`). `response_latency`,
`first_audio_delay` and `session_max_seconds` apply to every response or connection;
`drop_connections`, `set_down` and `expire_sessions` act at once.

What the plugin (1.8.9) does with each, as the tests in tests/integration/test_fake_realtime.py
show:
- a tool call reaches the consumer on `GenerationCreatedEvent.function_stream` when
  `response.output_item.done` arrives (the argument deltas are ignored); nothing more happens
  until the client sends a `function_call_output` item and asks for a new response.
- a stall is only a gap: no event, no timeout; the audio stream waits for as long as it lasts.
- `incomplete` is not surfaced: the audio and text streams simply end, no `error` is emitted,
  `RealtimeModelMetrics.cancelled` is False; only the raw `openai_server_event_received` event
  shows the status.
- session expiry (OpenAI: an `error` with code `session_expired`, then a close with 1001 "going
  away", at 60 minutes) is a recoverable `error` and then a dropped socket: the plugin reconnects
  at once (0.1 s), replays instructions, tools and the chat context, and emits
  `session_reconnected`; a reply that was streaming ends early, silently.
- the plugin's own renewal (`max_session_duration`) below the cap never meets `session_expired`,
  but it drops a `generate_reply` still waiting for `response.created` ("pending response
  discarded due to session reconnection", no error event), and if it waits for a reply that
  then ends `incomplete` or `failed`, the session dies (an unrecoverable `error`, no reconnection;
  later requests reach no server and time out after 10 s).

It runs in its own thread and event loop, so sync tests, async tests and agent worker processes
(through `python -m tests.fakes.realtime_server --port P`) can all use it. It has no server-side
VAD: turns end when the client commits, as with radio24's push-to-talk.

It also answers `POST /v1/embeddings` (the memory's OpenAI embedder, pointed here by the same
`OPENAI_BASE_URL`) with `fake_embedding(text)`: the same text always gives the same unit vector
and different texts are nearly orthogonal, so a search by exactly a stored text finds it.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import math
import signal
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Self

import numpy as np
from aiohttp import WSCloseCode, WSMsgType, web

logger = logging.getLogger("radio24.tests.fake_realtime")

SAMPLE_RATE = 24000
BYTES_PER_SECOND = SAMPLE_RATE * 2  # PCM16 mono
MIN_COMMIT_BYTES = BYTES_PER_SECOND // 10  # the real API refuses commits under 100 ms
CHUNK_SECONDS = 0.1

SESSION_MAX_SECONDS = 3600.0  # OpenAI ends every Realtime session at 60 minutes

EMBEDDING_DIMENSIONS = 1536  # text-embedding-3-small's

DEFAULT_REPLY = "Thanks for calling radio24."
DEFAULT_TRANSCRIPT = "Hello radio24, this is a caller."

Event = dict[str, Any]


def _text_of(item: Event) -> str | None:
    for part in item.get("content") or []:
        text = part.get("text") or part.get("transcript")
        if text:
            return text
    return None


def fake_embedding(text: str, dimensions: int = EMBEDDING_DIMENSIONS) -> list[float]:
    """The unit vector this fake returns for `text` (seeded by the text's SHA-256)."""
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
    vector = np.random.default_rng(seed).standard_normal(dimensions)
    return (vector / np.linalg.norm(vector)).tolist()


@dataclass(frozen=True)
class ResponseRequest:
    """One `response.create` as the fake received it, with the conversation the model would see.

    A reply callable is handed one of these (taken when the reply starts, after any latency);
    `FakeRealtimeServer.response_requests` keeps one per request (taken when it arrives).
    """

    conversation: list[Event]
    instructions: str | None  # the session's, from `session.update`
    response_instructions: str | None  # this request's own (the plugin sends session + extra)
    metadata: Event | None = None
    new_items: list[Event] = field(default_factory=list)
    """Items the client added on this connection (created or committed audio) since its last
    accepted `response.create`, in arrival order; after a reconnection, the plugin's replay."""
    tool_choice: Any = None
    connection: int = 0
    event_id: str | None = None
    refused: str | None = None
    """The error code if the fake refused the request at once (active response, injected error)."""

    @property
    def last_user_text(self) -> str | None:
        """The text or transcript of the latest user message, if any."""
        for item in reversed(self.conversation):
            if item.get("type") == "message" and item.get("role") == "user":
                return _text_of(item)
        return None

    @property
    def user_texts(self) -> list[str]:
        """The text of every user message in the conversation, oldest first."""
        return [
            text
            for item in self.conversation
            if item.get("type") == "message" and item.get("role") == "user"
            if (text := _text_of(item)) is not None
        ]

    @property
    def last_tool_output(self) -> str | None:
        """The output of the latest `function_call_output` item, if any."""
        for item in reversed(self.conversation):
            if item.get("type") == "function_call_output":
                return item.get("output")
        return None


ReplyContext = ResponseRequest  # the name reply callables have always used


@dataclass(frozen=True)
class ToolOutput:
    """A `function_call_output` item the client created, matched to the call the fake made."""

    call_id: str
    output: str
    name: str | None  # None if the fake never made a call with this id
    arguments: str | None
    connection: int


Reply = str | Callable[[ResponseRequest], str]
Transcript = str | Callable[[bytes], str]


@dataclass(frozen=True)
class _Failure:
    type: str
    code: str
    message: str
    in_response: bool


@dataclass(frozen=True)
class _ToolCall:
    name: str
    arguments: str
    call_id: str | None
    delay: float


@dataclass(frozen=True)
class _Stall:
    after_chunks: int
    seconds: float | None  # None: until the response is cancelled or the socket closes


@dataclass(frozen=True)
class _Cut:
    after_chunks: int
    reason: str


_Plan = _Failure | _ToolCall | _Stall | _Cut


@dataclass
class _Connection:
    id: int
    ws: web.WebSocketResponse
    send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    audio: bytearray = field(default_factory=bytearray)
    items: list[Event] = field(default_factory=list)
    new_items: list[Event] = field(default_factory=list)  # since the last accepted request
    session: Event = field(default_factory=dict)
    response_task: asyncio.Task[None] | None = None
    response_id: str | None = None
    plan: _Plan | None = None  # how the current response deviates from a plain reply
    cancel_requested: bool = False
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    opened_at: float = 0.0  # loop time of session.created
    expiry: asyncio.TimerHandle | None = None
    expiring: bool = False


def _id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


def synthesize(seconds: float, *, pitch: float = 180.0) -> bytes:
    """A voice-like waveform (a buzz with harmonics and a syllable rhythm) as PCM16 24 kHz mono.

    Loud enough in every 10 ms frame for a level meter or a listener test to hear it.
    """
    n = max(1, round(seconds * SAMPLE_RATE))
    t = np.arange(n, dtype=np.float64) / SAMPLE_RATE
    buzz = sum(np.sin(2 * math.pi * pitch * k * t) / k for k in (1, 2, 3, 4))
    syllables = 0.65 + 0.35 * np.sin(2 * math.pi * 4.0 * t)
    fade = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.01 + 0.05)
    wave = 0.25 * buzz * syllables * fade
    return (np.clip(wave, -1.0, 1.0) * 32767).astype("<i2").tobytes()


class FakeRealtimeServer:
    """A loopback OpenAI Realtime websocket server that records what the client sent.

    Use as `with FakeRealtimeServer() as fake:` (or `start()` / `stop()`), then point the plugin
    at `fake.base_url`. Every public method is safe to call from any thread.
    """

    def __init__(
        self,
        *,
        port: int = 0,
        reply: Reply = DEFAULT_REPLY,
        transcript: Transcript = DEFAULT_TRANSCRIPT,
        reply_seconds: float = 1.0,
        pace: float | None = 4.0,
        response_latency: float = 0.0,
        first_audio_delay: float = 0.0,
        session_max_seconds: float | None = SESSION_MAX_SECONDS,
    ) -> None:
        """
        Args:
            port: the loopback port to bind; 0 picks a free one.
            reply: the assistant's reply text, or a callable given a `ReplyContext`.
            transcript: what the caller "said" in each committed turn, or a callable given the
                committed PCM16 bytes.
            reply_seconds: how long each spoken reply lasts.
            pace: how many times faster than real time reply audio is streamed; None streams
                it all at once.
            response_latency: seconds to wait after `response.create` before `response.created`.
            first_audio_delay: seconds between `response.content_part.added` and the first
                audio (and transcript) delta of every reply: a slow first chunk.
            session_max_seconds: how long a connection lives before the fake expires it as
                OpenAI does (an `error` with code `session_expired`, then a close with 1001);
                60 minutes by default, None for never. Changing it applies to open connections
                too, counted from when each opened.
        """
        self.reply: Reply = reply
        self.transcript: Transcript = transcript
        self.reply_seconds = reply_seconds
        self.pace = pace
        self.response_latency = response_latency
        self.first_audio_delay = first_audio_delay
        self._session_max_seconds = session_max_seconds

        self._requested_port = port
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._received: list[Event] = []
        self._sent: list[Event] = []
        self._committed_audio: list[bytes] = []
        self._audio_bytes = 0
        self._connection_count = 0
        self._refused_count = 0
        self._instructions: str | None = None
        self._tools: list[Event] | None = None
        self._plans: deque[_Plan] = deque()
        self._requests: list[ResponseRequest] = []
        self._tool_outputs: list[ToolOutput] = []
        self._calls: dict[str, tuple[str, str]] = {}  # call_id -> (name, arguments)
        self._embedded: list[str] = []
        self._expired_count = 0
        self._down = False
        self._connections: dict[int, _Connection] = {}
        self._latest_conversation: list[Event] = []
        self._closing: set[asyncio.Future[bool]] = set()
        self._version = 0  # bumped on every change, so waiters never miss one
        self._async_waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> Self:
        """Bind the port and serve from a background thread; returns once it accepts."""
        if self._thread is not None:
            raise RuntimeError("FakeRealtimeServer already started")
        ready = threading.Event()
        startup_error: list[BaseException] = []

        def _run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            try:
                loop.run_until_complete(self._serve())
            except BaseException as e:  # reported to start()
                startup_error.append(e)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self._shutdown())
                loop.close()

        self._thread = threading.Thread(target=_run, name="fake-realtime-server", daemon=True)
        self._thread.start()
        ready.wait()
        if startup_error:
            self._thread.join()
            self._thread = None
            raise startup_error[0]
        logger.info("fake realtime server ready", extra={"port": self._port})
        return self

    def stop(self) -> None:
        """Close every connection and the listening socket, and end the thread."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        self._thread = None
        self._loop = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("FakeRealtimeServer is not started")
        return self._port

    @property
    def base_url(self) -> str:
        """The value for `RealtimeModel(base_url=...)` or `OPENAI_BASE_URL`."""
        return f"http://127.0.0.1:{self.port}/v1"

    async def _serve(self) -> None:
        app = web.Application()
        app.router.add_get("/v1/realtime", self._handle_ws)
        app.router.add_post("/v1/embeddings", self._handle_embeddings)
        self._runner = web.AppRunner(
            app, handle_signals=False, access_log=None, shutdown_timeout=1.0
        )
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", self._requested_port))
        except OSError:
            sock.close()
            await self._runner.cleanup()
            raise
        self._port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()

    async def _shutdown(self) -> None:
        for conn in list(self._connections.values()):
            if conn.response_task is not None:
                conn.response_task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.ws.close(code=WSCloseCode.GOING_AWAY), 1.0)
        if self._runner is not None:
            await self._runner.cleanup()
        current = asyncio.current_task()
        rest = [t for t in asyncio.all_tasks() if t is not current]
        for task in rest:
            task.cancel()
        await asyncio.gather(*rest, return_exceptions=True)

    async def _handle_embeddings(self, request: web.Request) -> web.Response:
        body = await request.json()
        texts = body.get("input")
        texts = [texts] if isinstance(texts, str) else texts
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            return web.json_response(
                {"error": {"type": "invalid_request_error", "message": "input must be text"}},
                status=400,
            )
        dimensions = int(body.get("dimensions") or EMBEDDING_DIMENSIONS)
        with self._lock:
            self._embedded.extend(texts)
        self._notify()
        data = [
            {"object": "embedding", "index": i, "embedding": fake_embedding(t, dimensions)}
            for i, t in enumerate(texts)
        ]
        tokens = sum(len(t) for t in texts) // 4 + 1
        return web.json_response(
            {
                "object": "list",
                "data": data,
                "model": body.get("model"),
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    # --- what the client sent --------------------------------------------------------------

    @property
    def embedded(self) -> list[str]:
        """Every text sent to `/v1/embeddings`, oldest first."""
        with self._lock:
            return list(self._embedded)

    @property
    def received(self) -> list[Event]:
        """Every event the clients sent, parsed, oldest first (a copy)."""
        with self._lock:
            return list(self._received)

    @property
    def sent(self) -> list[Event]:
        """Every event this server sent, oldest first (a copy); audio deltas included."""
        with self._lock:
            return list(self._sent)

    def received_of(self, event_type: str) -> list[Event]:
        with self._lock:
            return [e for e in self._received if e.get("type") == event_type]

    def audio_bytes_received(self) -> int:
        """Total PCM16 bytes appended with `input_audio_buffer.append`, over all connections."""
        with self._lock:
            return self._audio_bytes

    @property
    def committed_audio(self) -> list[bytes]:
        """The PCM16 audio of each accepted commit, in order."""
        with self._lock:
            return list(self._committed_audio)

    @property
    def commits(self) -> int:
        """How many `input_audio_buffer.commit` events arrived (accepted or refused)."""
        return len(self.received_of("input_audio_buffer.commit"))

    @property
    def responses_requested(self) -> int:
        return len(self.received_of("response.create"))

    @property
    def response_requests(self) -> list[ResponseRequest]:
        """One record per `response.create` received (refused ones too), oldest first.

        Each holds the request's own and the session's instructions, its metadata, the items
        added since the previous request on that connection and the whole conversation, as
        they stood when the request arrived.
        """
        with self._lock:
            return list(self._requests)

    @property
    def tool_outputs(self) -> list[ToolOutput]:
        """Every `function_call_output` item the clients created, oldest first."""
        with self._lock:
            return list(self._tool_outputs)

    @property
    def expired_count(self) -> int:
        """How many connections the fake ended with `session_expired`."""
        with self._lock:
            return self._expired_count

    @property
    def instructions(self) -> str | None:
        """The latest session instructions sent with `session.update`."""
        with self._lock:
            return self._instructions

    @property
    def tools(self) -> list[Event] | None:
        """The latest tool list sent with `session.update`, None if never sent."""
        with self._lock:
            return None if self._tools is None else list(self._tools)

    @property
    def conversation(self) -> list[Event]:
        """The server-side items of the most recent connection, oldest first."""
        with self._lock:
            return [dict(item) for item in self._latest_conversation]

    @property
    def connection_count(self) -> int:
        """How many websocket connections were accepted since start."""
        with self._lock:
            return self._connection_count

    @property
    def open_connections(self) -> int:
        with self._lock:
            return len(self._connections)

    @property
    def refused_count(self) -> int:
        """How many connection attempts were refused while down."""
        with self._lock:
            return self._refused_count

    def wait_for(
        self, match: str | Callable[[Event], bool], timeout: float = 5.0, *, since: int = 0
    ) -> Event:
        """Block until a received event (from index `since`) matches; return it.

        `match` is an event type or a predicate on the parsed event. An event is recorded once
        the server has handled it: its direct answers are sent (a reply is still streaming).
        Raises TimeoutError.
        """
        pred = _matcher(match)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for event in self._received[since:]:
                    if pred(event):
                        return event
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no received event matched {match!r} in {timeout}s")
                self._changed.wait(remaining)

    def wait_until(self, condition: Callable[[], bool], timeout: float = 5.0) -> None:
        """Block until `condition()` (which may read this server's properties) is true."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                seen = self._version
            if condition():
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"condition not met in {timeout}s")
            with self._changed:
                self._changed.wait_for(lambda seen=seen: self._version != seen, remaining)

    async def wait_for_async(
        self, match: str | Callable[[Event], bool], *, since: int = 0
    ) -> Event:
        """`wait_for` for coroutines; never blocks the caller's event loop.

        It has no timeout of its own (ruff's ASYNC109): wrap it, e.g.
        `await asyncio.wait_for(fake.wait_for_async("response.create"), 5)`.
        """
        pred = _matcher(match)
        found: list[Event] = []

        def matched() -> bool:
            with self._lock:
                found.extend(e for e in self._received[since:] if pred(e))
            return bool(found)

        await self.wait_until_async(matched)
        return found[0]

    async def wait_until_async(self, condition: Callable[[], bool]) -> None:
        """`wait_until` for coroutines; like `wait_for_async`, wrap it in a timeout."""
        changed = asyncio.Event()
        waiter = (asyncio.get_running_loop(), changed)
        with self._lock:
            self._async_waiters.add(waiter)
        try:
            while not condition():
                await changed.wait()
                changed.clear()
        finally:
            with self._lock:
                self._async_waiters.discard(waiter)

    def clear_records(self) -> None:
        """Forget what was received and sent so far (connections and settings stay)."""
        with self._lock:
            self._received.clear()
            self._sent.clear()
            self._committed_audio.clear()
            self._audio_bytes = 0
            self._requests.clear()
            self._tool_outputs.clear()
            self._embedded.clear()

    # --- fault injection -------------------------------------------------------------------

    def fail_next_response(
        self,
        error_code: str = "server_error",
        type: str = "server_error",  # the protocol's own field name
        message: str = "The fake server was told to fail this response.",
        *,
        in_response: bool = False,
    ) -> None:
        """Make the next `response.create` fail instead of replying.

        By default the server answers with an `error` event tied to the request's event id (as
        OpenAI does for a rejected request). With `in_response=True` the response starts and
        ends in `response.done` with status `failed` (as for rate limits mid-stream). Codes such
        as `insufficient_quota` or `invalid_api_key` are fatal to the plugin's session.
        Calls queue up with the other `*_next_response` calls: each shapes one response.
        """
        self._plan(_Failure(type, error_code, message, in_response))

    def call_tool_next_response(
        self,
        name: str,
        arguments: Event | str | None = None,
        *,
        call_id: str | None = None,
        delay: float = 0.0,
    ) -> None:
        """Answer the next `response.create` by calling the tool `name` instead of speaking.

        The events are the real service's for a function call: `response.created`, then (after
        `delay` seconds of the model "deciding") `response.output_item.added` with a
        `function_call` item, `response.function_call_arguments.delta`/`.done`,
        `response.output_item.done`, `response.done`. The client answers with a
        `function_call_output` item (see `tool_outputs`) and a new `response.create`, which
        is spoken as usual (a reply callable sees the output as `last_tool_output`).
        `arguments` is a JSON object (or its text); `call_id` defaults to a fresh one.
        A cancel during `delay` ends the response `cancelled` with no output.
        """
        text = arguments if isinstance(arguments, str) else json.dumps(arguments or {})
        self._plan(_ToolCall(name, text, call_id, delay))

    def stall_next_response(self, after_chunks: int = 1, seconds: float | None = None) -> None:
        """Stop the next reply's stream after `after_chunks` audio chunks (of 0.1 s).

        It resumes after `seconds`, or with None only when the client cancels the response (or
        the socket closes). A cancel always ends the stall. `after_chunks=0` delays the first
        chunk of just that reply (`first_audio_delay` does it for every reply).
        """
        self._plan(_Stall(after_chunks, seconds))

    def cut_next_response(self, after_chunks: int = 2, reason: str = "max_output_tokens") -> None:
        """End the next reply after `after_chunks` audio chunks with status `incomplete`.

        As when the model hits `max_output_tokens` (or `content_filter`): the partial audio and
        transcript are closed normally, the item is `incomplete` and `response.done` carries
        `status_details: {type: "incomplete", reason}`.
        """
        self._plan(_Cut(after_chunks, reason))

    def _plan(self, plan: _Plan) -> None:
        with self._lock:
            self._plans.append(plan)

    @property
    def session_max_seconds(self) -> float | None:
        return self._session_max_seconds

    @session_max_seconds.setter
    def session_max_seconds(self, seconds: float | None) -> None:
        self._session_max_seconds = seconds
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(self._schedule_all_expiries)

    def expire_sessions(self) -> int:
        """End every open connection now as OpenAI ends a session at its cap; returns how many."""
        with self._lock:
            conns = list(self._connections.values())
        loop = self._loop
        if loop is not None:
            for conn in conns:
                loop.call_soon_threadsafe(self._expire, conn)
        return len(conns)

    def drop_connections(self) -> int:
        """Close every open websocket from the server side; returns how many were open."""
        with self._lock:
            conns = list(self._connections.values())
        loop = self._loop
        if loop is not None and conns:
            # not awaited: the close handshake needs the client's loop, which may be the caller's
            loop.call_soon_threadsafe(self._close_all, conns)
        return len(conns)

    def set_down(self, down: bool = True) -> None:
        """While down, refuse new websocket connections with HTTP 503 (open ones stay)."""
        with self._lock:
            self._down = down

    # --- protocol --------------------------------------------------------------------------

    def _close_all(self, conns: list[_Connection]) -> None:
        for conn in conns:
            if conn.response_task is not None:
                conn.response_task.cancel()
            task = asyncio.ensure_future(
                conn.ws.close(code=WSCloseCode.GOING_AWAY, message=b"dropped")
            )
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    def _schedule_all_expiries(self) -> None:
        for conn in list(self._connections.values()):
            self._schedule_expiry(conn)

    def _schedule_expiry(self, conn: _Connection) -> None:
        if conn.expiry is not None:
            conn.expiry.cancel()
            conn.expiry = None
        cap = self._session_max_seconds
        if cap is not None and self._loop is not None:
            conn.expiry = self._loop.call_at(conn.opened_at + cap, self._expire, conn)

    def _expire(self, conn: _Connection) -> None:
        if conn.expiring or conn.ws.closed:
            return
        conn.expiring = True
        task = asyncio.ensure_future(self._end_session(conn))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _end_session(self, conn: _Connection) -> None:
        """What OpenAI sends at a session's cap: an `error`, then a 1001 close with the reason."""
        if conn.response_task is not None:
            conn.response_task.cancel()
        lived = self._session_max_seconds or asyncio.get_running_loop().time() - conn.opened_at
        message = f"Your session hit the maximum duration of {_duration(lived)}."
        with self._lock:
            self._expired_count += 1
        await self._send_error(conn, None, "invalid_request_error", "session_expired", message)
        with contextlib.suppress(Exception):
            await conn.ws.close(code=WSCloseCode.GOING_AWAY, message=message.encode())

    def _notify(self) -> None:
        """Wake every waiter, sync or async, after any change to what the fake recorded."""
        with self._changed:
            self._version += 1
            self._changed.notify_all()
            waiters = list(self._async_waiters)
        for loop, changed in waiters:
            with contextlib.suppress(RuntimeError):  # that loop has closed
                loop.call_soon_threadsafe(changed.set)

    async def _handle_ws(self, request: web.Request) -> web.StreamResponse:
        with self._lock:
            down = self._down
            if down:
                self._refused_count += 1
        if down:
            self._notify()
            return web.json_response(
                {"error": {"type": "server_error", "code": None, "message": "fake is down"}},
                status=503,
            )
        if not request.headers.get("Authorization", "").startswith("Bearer "):
            return web.json_response(
                {"error": {"type": "invalid_request_error", "code": "missing_api_key"}},
                status=401,
            )

        ws = web.WebSocketResponse(max_msg_size=16 * 1024 * 1024)
        # counted before the handshake completes, so a client that saw its socket open can
        # rely on the count
        with self._lock:
            self._connection_count += 1
            conn = _Connection(id=self._connection_count, ws=ws)
            self._connections[conn.id] = conn
            self._latest_conversation = conn.items
        self._notify()
        try:
            await ws.prepare(request)
        except BaseException:
            with self._lock:
                self._connections.pop(conn.id, None)
            raise
        logger.debug("client connected", extra={"connection": conn.id})

        model = request.query.get("model", "gpt-realtime")
        cap = self._session_max_seconds
        conn.session = {
            "type": "realtime",
            "object": "realtime.session",
            "model": model,
            "id": _id("sess"),
            "output_modalities": ["audio"],
            "expires_at": 0 if cap is None else int(time.time() + cap),
        }
        conn.opened_at = asyncio.get_running_loop().time()
        self._schedule_expiry(conn)
        await self._send(conn, {"type": "session.created", "session": dict(conn.session)})
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    event = json.loads(msg.data)
                except ValueError:
                    await self._send_error(
                        conn,
                        None,
                        "invalid_request_error",
                        "invalid_json",
                        "The message is not valid JSON.",
                    )
                    continue
                # recorded once handled, so whoever waits for an event also sees its effects
                # (instructions, commits, direct answers); a reply streams on afterwards
                try:
                    await self._dispatch(conn, event)
                finally:
                    self._record(event)
        finally:
            if conn.response_task is not None:
                conn.response_task.cancel()
            if conn.expiry is not None:
                conn.expiry.cancel()
            with self._lock:
                self._connections.pop(conn.id, None)
            self._notify()
            logger.debug("client disconnected", extra={"connection": conn.id})
        return ws

    def _record(self, event: Event) -> None:
        with self._lock:
            self._received.append(event)
            if event.get("type") == "input_audio_buffer.append":
                self._audio_bytes += len(base64.b64decode(event.get("audio", "")))
        self._notify()

    async def _send(self, conn: _Connection, event: Event) -> None:
        event.setdefault("event_id", _id("event"))
        with self._lock:
            self._sent.append(event)
        async with conn.send_lock:
            if not conn.ws.closed:
                await conn.ws.send_str(json.dumps(event))
        self._notify()

    async def _send_error(
        self,
        conn: _Connection,
        event_id: str | None,
        type_: str,
        code: str | None,
        message: str,
        param: str | None = None,
    ) -> None:
        error = {
            "type": type_,
            "code": code,
            "message": message,
            "param": param,
            "event_id": event_id,
        }
        await self._send(conn, {"type": "error", "error": error})

    async def _dispatch(self, conn: _Connection, event: Event) -> None:
        kind = event.get("type")
        event_id = event.get("event_id")
        if kind == "session.update":
            await self._on_session_update(conn, event)
        elif kind == "input_audio_buffer.append":
            conn.audio.extend(base64.b64decode(event.get("audio", "")))
        elif kind == "input_audio_buffer.commit":
            await self._on_commit(conn, event_id)
        elif kind == "input_audio_buffer.clear":
            conn.audio.clear()
            await self._send(conn, {"type": "input_audio_buffer.cleared"})
        elif kind == "conversation.item.create":
            await self._on_item_create(conn, event)
        elif kind == "conversation.item.delete":
            await self._on_item_delete(conn, event)
        elif kind == "conversation.item.truncate":
            await self._on_item_truncate(conn, event)
        elif kind == "response.create":
            await self._on_response_create(conn, event)
        elif kind == "response.cancel":
            await self._on_response_cancel(conn, event)
        else:
            await self._send_error(
                conn,
                event_id,
                "invalid_request_error",
                "unknown_event",
                f"Unknown event type {kind!r}.",
                param="type",
            )

    async def _on_session_update(self, conn: _Connection, event: Event) -> None:
        session = event.get("session") or {}
        with self._lock:
            if "instructions" in session:
                self._instructions = session["instructions"]
            if "tools" in session:
                self._tools = list(session["tools"] or [])
        for key, value in session.items():
            if key == "audio" and isinstance(value, dict):
                audio = conn.session.setdefault("audio", {})
                for direction, cfg in value.items():
                    if isinstance(cfg, dict):
                        audio.setdefault(direction, {}).update(cfg)
            else:
                conn.session[key] = value
        await self._send(
            conn, {"type": "session.updated", "session": json.loads(json.dumps(conn.session))}
        )

    def _transcription_enabled(self, conn: _Connection) -> bool:
        inp = (conn.session.get("audio") or {}).get("input") or {}
        return inp.get("transcription", {}) is not None

    async def _on_commit(self, conn: _Connection, event_id: str | None) -> None:
        if len(conn.audio) < MIN_COMMIT_BYTES:
            ms = len(conn.audio) / BYTES_PER_SECOND * 1000
            await self._send_error(
                conn,
                event_id,
                "invalid_request_error",
                "input_audio_buffer_commit_empty",
                "Error committing input audio buffer: buffer too small. Expected at least 100ms "
                f"of audio, but buffer only has {ms:.2f}ms of audio.",
            )
            return
        audio = bytes(conn.audio)
        conn.audio.clear()
        with self._lock:
            self._committed_audio.append(audio)
        previous = conn.items[-1]["id"] if conn.items else None
        item = {
            "id": _id("item"),
            "object": "realtime.item",
            "type": "message",
            "role": "user",
            "status": "completed",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        self._append_item(conn, item)
        conn.new_items.append(item)
        await self._send(
            conn,
            {
                "type": "input_audio_buffer.committed",
                "previous_item_id": previous,
                "item_id": item["id"],
            },
        )
        await self._send(
            conn,
            {"type": "conversation.item.added", "previous_item_id": previous, "item": _copy(item)},
        )
        await self._send(
            conn,
            {"type": "conversation.item.done", "previous_item_id": previous, "item": _copy(item)},
        )
        if not self._transcription_enabled(conn):
            return
        transcript = self.transcript(audio) if callable(self.transcript) else self.transcript
        with self._lock:
            item["content"][0]["transcript"] = transcript
        await self._send(
            conn,
            {
                "type": "conversation.item.input_audio_transcription.completed",
                "item_id": item["id"],
                "content_index": 0,
                "transcript": transcript,
                "usage": {"type": "duration", "seconds": round(len(audio) / BYTES_PER_SECOND, 3)},
            },
        )

    def _append_item(self, conn: _Connection, item: Event, after: int | None = None) -> None:
        with self._lock:
            if after is None:
                conn.items.append(item)
            else:
                conn.items.insert(after, item)

    def _index_of(self, conn: _Connection, item_id: str | None) -> int | None:
        return next((i for i, it in enumerate(conn.items) if it.get("id") == item_id), None)

    async def _on_item_create(self, conn: _Connection, event: Event) -> None:
        event_id = event.get("event_id")
        item = _copy(event.get("item") or {})
        item.setdefault("id", _id("item"))
        item.setdefault("object", "realtime.item")
        item.setdefault("status", "completed")
        if self._index_of(conn, item["id"]) is not None:
            await self._send_error(
                conn,
                event_id,
                "invalid_request_error",
                "item_create_duplicate_item_id",
                f"Item with id '{item['id']}' already exists.",
                param="item.id",
            )
            return
        prev_id = event.get("previous_item_id")
        if prev_id == "root":
            at, previous = 0, None
        elif prev_id is None:
            at, previous = None, (conn.items[-1]["id"] if conn.items else None)
        else:
            index = self._index_of(conn, prev_id)
            if index is None:
                await self._send_error(
                    conn,
                    event_id,
                    "invalid_request_error",
                    "invalid_value",
                    f"Error adding item: the previous item with id '{prev_id}' does not exist.",
                    param="previous_item_id",
                )
                return
            at, previous = index + 1, prev_id
        self._append_item(conn, item, at)
        conn.new_items.append(item)
        if item.get("type") == "function_call_output":
            call_id = str(item.get("call_id"))
            with self._lock:
                name, arguments = self._calls.get(call_id, (None, None))
                self._tool_outputs.append(
                    ToolOutput(call_id, str(item.get("output")), name, arguments, conn.id)
                )
        await self._send(
            conn,
            {"type": "conversation.item.added", "previous_item_id": previous, "item": _copy(item)},
        )
        await self._send(
            conn,
            {"type": "conversation.item.done", "previous_item_id": previous, "item": _copy(item)},
        )

    async def _on_item_delete(self, conn: _Connection, event: Event) -> None:
        item_id = event.get("item_id")
        index = self._index_of(conn, item_id)
        if index is None:
            await self._send_error(
                conn,
                event.get("event_id"),
                "invalid_request_error",
                "invalid_value",
                f"Error deleting item: the item with id '{item_id}' does not exist.",
                param="item_id",
            )
            return
        with self._lock:
            del conn.items[index]
        await self._send(conn, {"type": "conversation.item.deleted", "item_id": item_id})

    async def _on_item_truncate(self, conn: _Connection, event: Event) -> None:
        item_id = event.get("item_id")
        index = self._index_of(conn, item_id)
        if index is None:
            await self._send_error(
                conn,
                event.get("event_id"),
                "invalid_request_error",
                "invalid_value",
                f"Error truncating item: the item with id '{item_id}' does not exist.",
                param="item_id",
            )
            return
        with self._lock:
            for part in conn.items[index].get("content") or []:
                if "transcript" in part:
                    part["transcript"] = ""  # OpenAI drops the transcript of truncated audio
        await self._send(
            conn,
            {
                "type": "conversation.item.truncated",
                "item_id": item_id,
                "content_index": event.get("content_index", 0),
                "audio_end_ms": event.get("audio_end_ms", 0),
            },
        )

    async def _on_response_cancel(self, conn: _Connection, event: Event) -> None:
        wanted = event.get("response_id")
        active = conn.response_task is not None and not conn.response_task.done()
        if not active or (wanted and conn.response_id and wanted != conn.response_id):
            await self._send_error(
                conn,
                event.get("event_id"),
                "invalid_request_error",
                "response_cancel_not_active",
                "Cancellation failed: no active response found",
            )
            return
        conn.cancel_requested = True
        conn.cancelled.set()

    async def _on_response_create(self, conn: _Connection, event: Event) -> None:
        event_id = event.get("event_id")
        params = event.get("response") or {}
        with self._lock:
            request = ResponseRequest(
                conversation=[_copy(it) for it in conn.items],
                instructions=conn.session.get("instructions"),
                response_instructions=params.get("instructions"),
                metadata=params.get("metadata"),
                new_items=[_copy(it) for it in conn.new_items],
                tool_choice=params.get("tool_choice"),
                connection=conn.id,
                event_id=event_id,
            )
        if conn.response_task is not None and not conn.response_task.done():
            self._add_request(replace(request, refused="conversation_already_has_active_response"))
            await self._send_error(
                conn,
                event_id,
                "invalid_request_error",
                "conversation_already_has_active_response",
                "Conversation already has an active response in progress.",
            )
            return
        with self._lock:
            plan = self._plans.popleft() if self._plans else None
        if isinstance(plan, _Failure) and not plan.in_response:
            self._add_request(replace(request, refused=plan.code))
            await self._send_error(conn, event_id, plan.type, plan.code, plan.message)
            return
        self._add_request(request)
        conn.new_items.clear()
        conn.cancel_requested = False
        conn.cancelled.clear()
        conn.plan = plan
        conn.response_id = _id("resp")
        conn.response_task = asyncio.create_task(
            self._respond(conn, conn.response_id, params, plan),
            name=f"fake-realtime-response-{conn.id}",
        )

    def _add_request(self, request: ResponseRequest) -> None:
        with self._lock:
            self._requests.append(request)

    async def _pause(self, conn: _Connection, seconds: float | None) -> float:
        """Wait `seconds` (None: forever) or until a cancel; returns how long it waited."""
        started = time.monotonic()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(conn.cancelled.wait(), seconds)
        return time.monotonic() - started

    async def _respond(
        self, conn: _Connection, resp_id: str, params: Event, plan: _Plan | None
    ) -> None:
        if self.response_latency > 0:
            await asyncio.sleep(self.response_latency)
        modalities = (
            params.get("output_modalities") or conn.session.get("output_modalities") or ["audio"]
        )
        audio_out = "audio" in modalities
        response: Event = {
            "id": resp_id,
            "object": "realtime.response",
            "status": "in_progress",
            "status_details": None,
            "output": [],
            "output_modalities": modalities,
            "metadata": params.get("metadata"),
            "usage": None,
            "conversation_id": "conv_fake",
        }
        await self._send(conn, {"type": "response.created", "response": _copy(response)})

        if isinstance(plan, _Failure):
            response.update(
                status="failed",
                status_details={
                    "type": "failed",
                    "reason": None,
                    "error": {"type": plan.type, "code": plan.code, "message": plan.message},
                },
                usage=_usage(0, 0),
            )
            await self._send(conn, {"type": "response.done", "response": response})
            return

        context = ResponseRequest(
            conversation=[_copy(it) for it in conn.items],
            instructions=conn.session.get("instructions"),
            response_instructions=params.get("instructions"),
            metadata=params.get("metadata"),
            tool_choice=params.get("tool_choice"),
            connection=conn.id,
        )
        heard = sum(len(str(it.get("content"))) for it in context.conversation) // 4
        input_tokens = heard + len(context.instructions or "") // 4
        if isinstance(plan, _ToolCall):
            await self._call_tool(conn, response, plan, input_tokens)
            return
        text = self.reply(context) if callable(self.reply) else self.reply
        item_id = _id("item")
        item: Event = {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "role": "assistant",
            "status": "in_progress",
            "content": [],
        }
        where = {"response_id": resp_id, "item_id": item_id, "output_index": 0, "content_index": 0}
        previous = conn.items[-1]["id"] if conn.items else None
        self._append_item(conn, item)
        await self._send(
            conn,
            {
                "type": "response.output_item.added",
                "response_id": resp_id,
                "output_index": 0,
                "item": _copy(item),
            },
        )
        await self._send(
            conn,
            {"type": "conversation.item.added", "previous_item_id": previous, "item": _copy(item)},
        )
        part_type = "audio" if audio_out else "text"
        await self._send(
            conn,
            {
                "type": "response.content_part.added",
                **where,
                "part": {"type": part_type, "transcript": "", "text": ""},
            },
        )

        spoken = await self._stream(conn, where, text, audio_out)
        cancelled = conn.cancel_requested
        cut = not cancelled and isinstance(plan, _Cut)
        if audio_out:
            await self._send(conn, {"type": "response.output_audio.done", **where})
            await self._send(
                conn,
                {"type": "response.output_audio_transcript.done", **where, "transcript": spoken},
            )
            part = {"type": "audio", "transcript": spoken}
            content = {"type": "output_audio", "transcript": spoken}
        else:
            await self._send(conn, {"type": "response.output_text.done", **where, "text": spoken})
            part = {"type": "text", "text": spoken}
            content = {"type": "output_text", "text": spoken}
        await self._send(conn, {"type": "response.content_part.done", **where, "part": part})
        with self._lock:
            item["content"] = [content]
            item["status"] = "incomplete" if cancelled or cut else "completed"
        await self._send(
            conn,
            {
                "type": "response.output_item.done",
                "response_id": resp_id,
                "output_index": 0,
                "item": _copy(item),
            },
        )
        await self._send(
            conn,
            {"type": "conversation.item.done", "previous_item_id": previous, "item": _copy(item)},
        )
        if cancelled:
            status, details = "cancelled", {"type": "cancelled", "reason": "client_cancelled"}
        elif isinstance(plan, _Cut):
            status, details = "incomplete", {"type": "incomplete", "reason": plan.reason}
        else:
            status, details = "completed", None
        response.update(
            status=status,
            status_details=details,
            output=[_copy(item)],
            usage=_usage(input_tokens, len(spoken.split()) + 1),
        )
        await self._send(conn, {"type": "response.done", "response": response})

    async def _call_tool(
        self, conn: _Connection, response: Event, plan: _ToolCall, input_tokens: int
    ) -> None:
        """The model answers with a function call: one `function_call` item, no audio."""
        resp_id = response["id"]
        if plan.delay > 0:
            await self._pause(conn, plan.delay)
        if conn.cancel_requested:
            response.update(
                status="cancelled",
                status_details={"type": "cancelled", "reason": "client_cancelled"},
                usage=_usage(input_tokens, 0),
            )
            await self._send(conn, {"type": "response.done", "response": response})
            return
        call_id = plan.call_id or _id("call")
        with self._lock:
            self._calls[call_id] = (plan.name, plan.arguments)
        item: Event = {
            "id": _id("item"),
            "object": "realtime.item",
            "type": "function_call",
            "status": "in_progress",
            "name": plan.name,
            "call_id": call_id,
            "arguments": "",
        }
        where = {"response_id": resp_id, "item_id": item["id"], "output_index": 0}
        previous = conn.items[-1]["id"] if conn.items else None
        self._append_item(conn, item)
        await self._send(
            conn,
            {
                "type": "response.output_item.added",
                "response_id": resp_id,
                "output_index": 0,
                "item": _copy(item),
            },
        )
        await self._send(
            conn,
            {"type": "conversation.item.added", "previous_item_id": previous, "item": _copy(item)},
        )
        step = max(1, math.ceil(len(plan.arguments) / 3))
        for i in range(0, len(plan.arguments), step):
            await self._send(
                conn,
                {
                    "type": "response.function_call_arguments.delta",
                    **where,
                    "call_id": call_id,
                    "delta": plan.arguments[i : i + step],
                },
            )
        await self._send(
            conn,
            {
                "type": "response.function_call_arguments.done",
                **where,
                "call_id": call_id,
                "name": plan.name,
                "arguments": plan.arguments,
            },
        )
        with self._lock:
            item.update(status="completed", arguments=plan.arguments)
        await self._send(
            conn,
            {"type": "conversation.item.done", "previous_item_id": previous, "item": _copy(item)},
        )
        await self._send(
            conn,
            {
                "type": "response.output_item.done",
                "response_id": resp_id,
                "output_index": 0,
                "item": _copy(item),
            },
        )
        response.update(
            status="completed",
            output=[_copy(item)],
            usage=_usage(input_tokens, len(plan.arguments) // 4 + 1),
        )
        await self._send(conn, {"type": "response.done", "response": response})

    async def _stream(self, conn: _Connection, where: Event, text: str, audio_out: bool) -> str:
        """Send the reply as interleaved transcript and audio deltas; returns what was said.

        Honours `first_audio_delay` and the response's stall or cut, if any.
        """
        plan = conn.plan
        pcm = synthesize(self.reply_seconds) if audio_out else b""
        chunk = int(BYTES_PER_SECOND * CHUNK_SECONDS)
        chunks = [pcm[i : i + chunk] for i in range(0, len(pcm), chunk)] or [b""]
        words = text.split(" ")
        per_chunk = math.ceil(len(words) / len(chunks))
        spoken: list[str] = []
        started = time.monotonic()
        for i, audio in enumerate(chunks):
            # a pause shifts the pacing clock, so the rest streams at pace rather than in a burst
            if i == 0 and self.first_audio_delay > 0:
                started += await self._pause(conn, self.first_audio_delay)
            if isinstance(plan, _Stall) and i == plan.after_chunks:
                started += await self._pause(conn, plan.seconds)
            if conn.cancel_requested or (isinstance(plan, _Cut) and i >= plan.after_chunks):
                break
            piece = " ".join(words[i * per_chunk : (i + 1) * per_chunk])
            if piece:
                delta = piece if not spoken else " " + piece
                spoken.append(delta)
                kind = (
                    "response.output_audio_transcript.delta"
                    if audio_out
                    else "response.output_text.delta"
                )
                await self._send(conn, {"type": kind, **where, "delta": delta})
            if audio:
                await self._send(
                    conn,
                    {
                        "type": "response.output_audio.delta",
                        **where,
                        "delta": base64.b64encode(audio).decode(),
                    },
                )
            if self.pace:
                due = started + (i + 1) * CHUNK_SECONDS / self.pace
                await asyncio.sleep(max(0.0, due - time.monotonic()))
        return "".join(spoken)


def _duration(seconds: float) -> str:
    """A session's length as OpenAI words it ("60 minutes"), in seconds when not whole minutes."""
    amount, unit = (
        (seconds / 60, "minute") if seconds >= 60 and seconds % 60 == 0 else (seconds, "second")
    )
    return f"{amount:g} {unit}{'' if amount == 1 else 's'}"


def _matcher(match: str | Callable[[Event], bool]) -> Callable[[Event], bool]:
    if isinstance(match, str):
        return lambda event: event.get("type") == match
    return match


def _copy(item: Event) -> Event:
    return json.loads(json.dumps(item))


def _usage(input_tokens: int, output_tokens: int) -> Event:
    return {
        "total_tokens": input_tokens + output_tokens,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "input_token_details": {"text_tokens": input_tokens, "audio_tokens": 0, "cached_tokens": 0},
        "output_token_details": {
            "text_tokens": output_tokens // 2,
            "audio_tokens": output_tokens - output_tokens // 2,
        },
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fakes.realtime_server",
        description="Serve a fake OpenAI Realtime API on 127.0.0.1 until interrupted.",
    )
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--reply", default=DEFAULT_REPLY)
    parser.add_argument("--transcript", default=DEFAULT_TRANSCRIPT)
    parser.add_argument("--reply-seconds", type=float, default=1.0)
    parser.add_argument(
        "--pace",
        type=float,
        default=1.0,
        help="times faster than real time; 0 sends all audio at once",
    )
    parser.add_argument(
        "--latency", type=float, default=0.0, help="seconds before each response.created"
    )
    parser.add_argument(
        "--first-audio-delay", type=float, default=0.0, help="seconds before each first chunk"
    )
    parser.add_argument(
        "--session-max-seconds",
        type=float,
        default=SESSION_MAX_SECONDS,
        help="expire each connection after this long, as OpenAI does at 60 minutes; 0 never",
    )
    args = parser.parse_args(argv)

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    fake = FakeRealtimeServer(
        port=args.port,
        reply=args.reply,
        transcript=args.transcript,
        reply_seconds=args.reply_seconds,
        pace=args.pace or None,
        response_latency=args.latency,
        first_audio_delay=args.first_audio_delay,
        session_max_seconds=args.session_max_seconds or None,
    )
    with fake:
        print(f"fake realtime server ready: OPENAI_BASE_URL={fake.base_url}", flush=True)
        while not stop.wait(0.5):
            pass


if __name__ == "__main__":
    main()
