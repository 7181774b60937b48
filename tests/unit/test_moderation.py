"""What may reach the air: post text, nicknames and the blocklist (pure, no I/O)."""

from __future__ import annotations

import pytest

from api.moderation import (
    ALLOWED,
    Verdict,
    blocklist_verdict,
    clean_nickname,
    clean_post_text,
    clean_term,
    first_refusal,
    openai_verdict,
)


@pytest.mark.parametrize(
    ("text", "blocked"),
    [
        ("This is a SPOILER alert", True),
        ("ｓｐｏｉｌｅｒ in full width", True),  # NFKC folds full-width letters
        ("spo\u200biler with a zero-width space", True),
        ("spoilers", False),  # whole words only for word terms
        ("unspoiler", False),
        ("nothing to see", False),
    ],
)
def test_blocklist_matches_whole_words_case_and_width_insensitively(
    text: str, blocked: bool
) -> None:
    verdict = blocklist_verdict(text, ["spoiler"])
    assert verdict.allowed is not blocked
    if blocked:
        assert verdict.reason == "blocklist: spoiler"


def test_blocklist_phrases_match_across_any_spacing() -> None:
    assert not blocklist_verdict("buy   cheap\nwatches", ["buy cheap"]).allowed
    assert blocklist_verdict("buy a cheap one", ["buy cheap"]).allowed


def test_blocklist_matches_substrings_in_scripts_without_spaces() -> None:
    verdict = blocklist_verdict("今日はネタバレします", ["ネタバレ"])
    assert verdict == Verdict(False, "blocklist: ネタバレ")


def test_blocklist_class_is_not_ass() -> None:
    assert blocklist_verdict("first class radio", ["ass"]).allowed
    assert not blocklist_verdict("what an ass!", ["ass"]).allowed


def test_blocklist_terms_with_symbols_match_as_written() -> None:
    assert not blocklist_verdict("see www.spam.example now", ["spam.example"]).allowed
    assert not blocklist_verdict("c++ is here", ["c++"]).allowed


def test_empty_blocklist_allows_everything() -> None:
    assert blocklist_verdict("anything at all", []) is ALLOWED


def test_openai_verdict_names_the_flagged_categories() -> None:
    flagged = {
        "results": [
            {"flagged": True, "categories": {"violence": True, "hate": True, "sexual": False}}
        ]
    }
    assert openai_verdict(flagged) == Verdict(False, "moderation: hate, violence")
    assert openai_verdict({"results": [{"flagged": False, "categories": {}}]}) is ALLOWED
    with pytest.raises(ValueError):
        openai_verdict({"error": "nope"})


def test_first_refusal_wins() -> None:
    refused = Verdict(False, "blocklist: x")
    assert first_refusal(ALLOWED, refused, Verdict(False, "other")) is refused
    assert first_refusal(ALLOWED, ALLOWED) is ALLOWED


@pytest.mark.parametrize(
    ("text", "cleaned"),
    [
        ("  hi  ", "hi"),
        ("ｈｉ", "hi"),
        ("line one\nline two", "line one\nline two"),
        ("a" * 500, "a" * 500),
        ("\u200bhello", "hello"),
    ],
)
def test_post_text_is_trimmed_and_normalised(text: str, cleaned: str) -> None:
    assert clean_post_text(text) == cleaned


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "empty"),
        ("  \n ", "empty"),
        ("\u200b", "empty"),
        ("a" * 501, "501 characters"),
        ("nul\x00byte", "control"),
        ("bell\x07", "control"),
    ],
)
def test_bad_post_text_says_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        clean_post_text(text)


@pytest.mark.parametrize(
    ("nickname", "cleaned"),
    [
        ("Mika", "Mika"),
        ("  DJ   Kaz ", "DJ Kaz"),
        ("みか", "みか"),
        ("o'brien_2", "o'brien_2"),
        ("Ｍｉｋａ", "Mika"),
        ("tab\there", "tab here"),
    ],
)
def test_good_nicknames(nickname: str, cleaned: str) -> None:
    assert clean_nickname(nickname) == cleaned


@pytest.mark.parametrize(
    ("nickname", "says"),
    [
        ("a", "2 to 24"),
        ("x" * 25, "2 to 24"),
        ("<b>bold</b>", "letters, digits"),
        ("_under", "start with a letter"),
        ("HOST", "reserved"),
        ("Radio24", "reserved"),
        ("a/b", "letters, digits"),
        ("emoji🎵", "letters, digits"),
    ],
)
def test_bad_nicknames_say_why(nickname: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        clean_nickname(nickname)


def test_terms_are_stored_lower_case_single_spaced() -> None:
    assert clean_term("  Buy   CHEAP ") == "buy cheap"
    with pytest.raises(ValueError):
        clean_term("   ")
    with pytest.raises(ValueError):
        clean_term("x" * 101)
