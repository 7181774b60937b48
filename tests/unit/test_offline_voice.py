"""The host's offline voice speaks Japanese and English with the engines on the machine.

These run the real engines (OpenJTalk with Debian's dictionary, Debian's espeak-ng): they are
fast and need no network, and a fake engine would prove nothing about what listeners hear.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import numpy as np
import pytest

from agent.voice.offline import OfflineTTS
from agent.voice.offline_engines import (
    SAMPLE_RATES,
    OfflineVoiceUnavailable,
    split_sentences,
    synthesize_pcm,
)
from programme.model import SPOKEN_LANGUAGES

JA_SENTENCE = "東京都庁で明日の会議が開かれます。"
JA_SENTENCE_KANA = "とうきょうとちょうであしたのかいぎがひらかれます。"
EN_SENTENCE = "Good evening, this is radio twenty four, on the air all night."


@pytest.fixture(scope="module")
async def ja_voice() -> AsyncIterator[OfflineTTS]:
    """One Japanese voice for the module: its engine process takes seconds to start."""
    tts = OfflineTTS("ja")
    yield tts
    await tts.aclose()


def rms(pcm: np.ndarray) -> float:
    return float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2))) if pcm.size else 0.0


def seconds(pcm: np.ndarray, rate: int) -> float:
    return pcm.size / rate


async def speak_through_livekit(tts: OfflineTTS, text: str) -> tuple[np.ndarray, set[int]]:
    """Every frame `async for ev in tts.synthesize(text)` yields, joined; and their rates."""
    chunks, rates = [], set()
    async for ev in tts.synthesize(text):
        assert ev.frame.num_channels == 1
        rates.add(ev.frame.sample_rate)
        chunks.append(np.frombuffer(ev.frame.data, dtype=np.int16))
    pcm = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
    return pcm, rates


def test_japanese_with_kanji_is_spoken_as_words() -> None:
    kanji, rate = synthesize_pcm(JA_SENTENCE, "ja")
    kana, _ = synthesize_pcm(JA_SENTENCE_KANA, "ja")

    assert rate == 48_000
    assert kanji.dtype == np.int16
    assert rms(kanji) > 1_000
    # about 25 morae: a couple of seconds, not a blip and not a letter-by-letter spelling
    assert 1.5 < seconds(kanji, rate) < 6.0
    # read through the dictionary, the kanji take as long as the same words written in kana
    assert seconds(kanji, rate) == pytest.approx(seconds(kana, rate), rel=0.2)


def test_english_is_spoken() -> None:
    pcm, rate = synthesize_pcm(EN_SENTENCE, "en")

    assert rate == 22_050
    assert pcm.dtype == np.int16
    assert rms(pcm) > 1_000
    # 62 characters at a radio pace: somewhere between 2 and 8 seconds
    assert 2.0 < seconds(pcm, rate) < 8.0


@pytest.mark.parametrize(
    ("language", "text"),
    [
        ("ja", "今日は晴れです。明日は雨でしょう！傘を忘れずに？"),
        ("en", "It is sunny today. Tomorrow brings rain! Will you take an umbrella?"),
    ],
)
def test_every_sentence_of_a_long_text_is_spoken(language: str, text: str) -> None:
    whole, rate = synthesize_pcm(text, language)
    parts = [synthesize_pcm(s, language)[0] for s in split_sentences(text)]

    assert len(parts) == 3
    assert seconds(whole, rate) == pytest.approx(sum(seconds(p, rate) for p in parts), rel=0.05)


def test_sentences_end_at_japanese_and_english_marks_only() -> None:
    text = "こんにちは。気温は3.5度です！「本当？」\nWelcome to radio24.jp. Really?! Yes"

    assert split_sentences(text) == [
        "こんにちは。",
        "気温は3.5度です！",
        "「本当？」",
        "Welcome to radio24.jp.",
        "Really?!",
        "Yes",
    ]


@pytest.mark.parametrize(("language", "rate"), [("ja", 48_000), ("en", 22_050)])
async def test_livekit_tts_yields_audible_frames_at_its_rate(language: str, rate: int) -> None:
    text = JA_SENTENCE + "よろしくお願いします。" if language == "ja" else EN_SENTENCE + " Bye."
    tts = OfflineTTS(language)
    try:
        pcm, rates = await speak_through_livekit(tts, text)
    finally:
        await tts.aclose()

    assert tts.sample_rate == rate
    assert tts.num_channels == 1
    assert not tts.capabilities.streaming
    assert rates == {rate}
    assert rms(pcm) > 1_000
    direct, _ = synthesize_pcm(text, language)
    assert seconds(pcm, rate) == pytest.approx(seconds(direct, rate), abs=0.25)


async def test_japanese_synthesis_leaves_the_event_loop_free(ja_voice: OfflineTTS) -> None:
    # OpenJTalk holds the GIL for ~0.2 s a sentence; in-process it would stall every tick
    text = "本日の東京は晴れ、最高気温は二十五度の予想です。夕方からは雲が広がるでしょう。"
    gaps: list[float] = []
    done = asyncio.Event()

    async def tick() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticker = asyncio.create_task(tick())
    try:
        await speak_through_livekit(ja_voice, "あ。")  # the engine process is up and warm
        gaps.clear()
        started = time.perf_counter()
        pcm, _ = await speak_through_livekit(ja_voice, text)
        took = time.perf_counter() - started
    finally:
        done.set()
        await ticker

    assert rms(pcm) > 1_000
    assert took > 0.15  # the work was real, so the ticks measured something
    assert max(gaps) < 0.1


@pytest.mark.parametrize("language", ["ja", "en"])
@pytest.mark.parametrize("text", ["", "   ", "\n\t \u3000"])
async def test_blank_text_gives_no_audio_and_no_error(language: str, text: str) -> None:
    pcm, _ = synthesize_pcm(text, language)
    assert pcm.size == 0

    tts = OfflineTTS(language)
    errors = []
    tts.on("error", errors.append)
    try:
        spoken, _ = await speak_through_livekit(tts, text)
    finally:
        await tts.aclose()
    assert spoken.size == 0
    assert errors == []


async def test_punctuation_alone_is_silence_not_a_crash(ja_voice: OfflineTTS) -> None:
    # pyopenjtalk 0.3 segfaults when asked to synthesize text with no phoneme
    pcm, _ = synthesize_pcm("。", "ja")
    assert pcm.size == 0

    errors = []
    ja_voice.on("error", errors.append)
    try:
        spoken, _ = await speak_through_livekit(ja_voice, "……。")
        after, _ = await speak_through_livekit(ja_voice, "はい。")
    finally:
        ja_voice.off("error", errors.append)
    assert errors == []
    assert rms(spoken) == 0.0
    assert rms(after) > 1_000  # and the voice still speaks


@pytest.mark.parametrize("language", ["fr", "", "japanese"])
def test_unknown_language_is_a_clear_value_error(language: str) -> None:
    with pytest.raises(ValueError, match="'ja' or 'en'"):
        synthesize_pcm("Bonjour.", language)
    with pytest.raises(ValueError, match="'ja' or 'en'"):
        OfflineTTS(language)


def test_language_tags_choose_the_engine() -> None:
    assert OfflineTTS("ja-JP").sample_rate == 48_000
    assert OfflineTTS("en_US").sample_rate == 22_050


def test_missing_japanese_dictionary_names_the_debian_package(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    monkeypatch.setenv("OPEN_JTALK_DICT_DIR", str(tmp_path))

    with pytest.raises(OfflineVoiceUnavailable, match="open-jtalk-mecab-naist-jdic"):
        OfflineTTS("ja")
    with pytest.raises(OfflineVoiceUnavailable, match="open-jtalk-mecab-naist-jdic"):
        synthesize_pcm(JA_SENTENCE, "ja")


def test_missing_espeak_names_the_debian_package(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))

    with pytest.raises(OfflineVoiceUnavailable, match="apt-get install espeak-ng"):
        OfflineTTS("en")
    with pytest.raises(OfflineVoiceUnavailable, match="apt-get install espeak-ng"):
        synthesize_pcm(EN_SENTENCE, "en")


def test_the_offline_voice_speaks_every_language_a_station_file_may_name() -> None:
    """`prompts check` admits exactly these languages; a station in one the offline voice lacks
    crashed every new host job (issue 23)."""
    assert set(SAMPLE_RATES) == set(SPOKEN_LANGUAGES)
