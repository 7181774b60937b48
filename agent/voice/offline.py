"""The host's offline voice: speech from local engines when no OpenAI key is set.

A 24-hour station must not fall silent because a cloud key is missing or a quota ran out, so
the host can always speak with engines that live on the machine:

- Japanese: OpenJTalk through `pyopenjtalk`, reading Debian's `open-jtalk-mecab-naist-jdic`
  dictionary (48 kHz). The dictionary folder comes from `OPEN_JTALK_DICT_DIR`, else Debian's
  path; pyopenjtalk's own fallback (download a dictionary at run time) is never reached.
- English: Debian's `espeak-ng` binary, run once per sentence, WAV on stdout (22,050 Hz).
  A child process rather than the `espeakng-loader` library through ctypes: a crash in the C
  engine (espeak-ng has had input-triggered memory bugs) ends one child, not the job that keeps
  the host on air; the child holds no process-wide engine state that concurrent sessions would
  share behind a lock; and no hand-written ctypes callback can misdeclare a signature. Starting
  the child costs about 10 ms a sentence, small beside the sentence's own duration.

`OfflineTTS` is a non-streaming livekit-agents TTS. It speaks sentence by sentence so the first
audio leaves while the rest is still being made, and keeps the engines off the job's event loop:
espeak-ng runs in a worker thread that only waits on its child; OpenJTalk's HTS synthesis holds
the GIL for its whole run (about 0.2 s a sentence, measured), so a thread would still stall the
loop, and it runs instead in one child process owned by the TTS
(`python -m agent.voice.offline_engines`, a sentence per line in, PCM out), which loads the
dictionary once and whose crash the TTS survives: the next sentence starts a new one. Audio is
mono PCM16 at the engine's native rate; the session resamples to its output rate.
"""

from __future__ import annotations

import asyncio
import os
import sys

import numpy as np
from livekit.agents import APIError, tts
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions
from livekit.agents.utils import shortuuid

from agent.voice.offline_engines import (
    ESPEAK_VOICE,
    REPLY,
    REPLY_PCM,
    REPLY_UNAVAILABLE,
    REPO_ROOT,
    SAMPLE_RATES,
    SILENCE_FOR_NOTHING_S,
    OfflineVoiceError,
    OfflineVoiceUnavailable,
    check_offline_voice,
    engine_language,
    speak_sentence,
    split_sentences,
)


class _OpenJTalkProcess:
    """The child process that speaks Japanese for one OfflineTTS, started on first use."""

    def __init__(self) -> None:
        self._proc: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()
        # requests run to their reply even when the caller is cancelled (a listener barged
        # in), so the pipe never holds a stale answer; they are ours to cancel at close
        self._requests: set[asyncio.Task[np.ndarray]] = set()

    def start_soon(self) -> None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop yet: the first sentence starts the process
        self._request("")

    async def speak(self, sentence: str) -> np.ndarray:
        return await asyncio.shield(self._request(sentence))

    def _request(self, sentence: str) -> asyncio.Task[np.ndarray]:
        task = asyncio.create_task(self._ask(sentence), name="openjtalk-request")
        self._requests.add(task)
        task.add_done_callback(self._requests.discard)
        return task

    async def _ask(self, sentence: str) -> np.ndarray:
        async with self._lock:
            proc = self._proc
            if proc is None or proc.returncode is not None:
                proc = self._proc = await self._start()
            assert proc.stdin is not None and proc.stdout is not None
            try:
                proc.stdin.write(sentence.encode() + b"\n")
                await proc.stdin.drain()
                status, size = REPLY.unpack(await proc.stdout.readexactly(REPLY.size))
                payload = await proc.stdout.readexactly(size)
            except (BrokenPipeError, ConnectionResetError, asyncio.IncompleteReadError) as e:
                self._proc = None
                raise OfflineVoiceError(
                    f"the OpenJTalk process died (exit code {await proc.wait()})"
                ) from e
        if status == REPLY_PCM:
            return np.frombuffer(payload, dtype="<i2")
        if status == REPLY_UNAVAILABLE:
            raise OfflineVoiceUnavailable(payload.decode())
        raise OfflineVoiceError(payload.decode())

    @staticmethod
    async def _start() -> asyncio.subprocess.Process:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [REPO_ROOT, os.environ.get("PYTHONPATH")])),
        }
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "agent.voice.offline_engines",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=env,
        )

    async def aclose(self) -> None:
        for task in list(self._requests):
            task.cancel()
        await asyncio.gather(*self._requests, return_exceptions=True)
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        assert proc.stdin is not None
        proc.stdin.close()  # the child's loop ends at end of input
        try:
            await asyncio.wait_for(proc.wait(), timeout=2.0)
        except TimeoutError:
            proc.kill()
            await proc.wait()


class OfflineTTS(tts.TTS):
    """livekit-agents TTS speaking through OpenJTalk ("ja") or espeak-ng ("en"), offline.

    Raises ValueError for another language and OfflineVoiceUnavailable at construction when
    the engine is not installed, so a station without its voice fails at start, not on air.
    """

    def __init__(self, language: str) -> None:
        lang = engine_language(language)
        check_offline_voice(lang)
        super().__init__(
            capabilities=tts.TTSCapabilities(streaming=False),
            sample_rate=SAMPLE_RATES[lang],
            num_channels=1,
        )
        self._language = lang
        self._openjtalk = _OpenJTalkProcess() if lang == "ja" else None

    @property
    def language(self) -> str:
        return self._language

    @property
    def model(self) -> str:
        return "open_jtalk" if self._language == "ja" else f"espeak-ng/{ESPEAK_VOICE}"

    @property
    def provider(self) -> str:
        return "local"

    def prewarm(self) -> None:
        # Starting OpenJTalk's process and loading its dictionary takes a second or two;
        # do it before the first line rather than during it.
        if self._openjtalk is not None:
            self._openjtalk.start_soon()

    async def _speak(self, sentence: str) -> np.ndarray:
        """One sentence's samples, made off the event loop (see the module docstring)."""
        if self._openjtalk is not None:
            return await self._openjtalk.speak(sentence)
        return await asyncio.to_thread(speak_sentence, sentence, self._language)

    async def aclose(self) -> None:
        if self._openjtalk is not None:
            await self._openjtalk.aclose()

    def synthesize(
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> OfflineChunkedStream:
        return OfflineChunkedStream(tts=self, input_text=text, conn_options=conn_options)


class OfflineChunkedStream(tts.ChunkedStream):
    """One synthesis: sentences spoken in turn, each pushed as soon as it is ready."""

    def __init__(self, *, tts: OfflineTTS, input_text: str, conn_options: APIConnectOptions):
        super().__init__(tts=tts, input_text=input_text, conn_options=conn_options)
        self._tts: OfflineTTS = tts

    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        rate = self._tts.sample_rate
        output_emitter.initialize(
            request_id=shortuuid(),
            sample_rate=rate,
            num_channels=1,
            mime_type="audio/pcm",
        )
        pushed = False
        for sentence in split_sentences(self.input_text):
            try:
                pcm = await self._tts._speak(sentence)
            except OfflineVoiceUnavailable as e:
                raise APIError(str(e), retryable=False) from e
            except OfflineVoiceError as e:
                raise APIError(str(e), retryable=True) from e
            if pcm.size:
                output_emitter.push(pcm.tobytes())
                pushed = True
        if not pushed and self.input_text.strip():
            silence = np.zeros(int(rate * SILENCE_FOR_NOTHING_S), dtype=np.int16)
            output_emitter.push(silence.tobytes())
        output_emitter.flush()
