"""What the offline voice says where the model would improvise: thanks to a caller, a post's
introduction, and the segment's fallback lines in rotation (never one the listener just heard)."""

from __future__ import annotations

from collections.abc import Sequence

from agent.store.posts import Post
from programme.director import Cue

CALLER_THANKS = {
    "ja": "お電話ありがとうございます。いただいた声は、番組で大切に受け取りました。",
    "en": "Thanks for calling in. We heard you on air.",
}
POST_INTRO = {"ja": "{author}さんからのおたよりです。", "en": "A post from {author}."}


def caller_thanks(language: str) -> str:
    return CALLER_THANKS.get(language, CALLER_THANKS["en"])


def fallback_line(
    cue: Cue, post: Post | None, *, language: str, recent: Sequence[str], station_name: str
) -> str:
    """The offline voice's line for `cue`: the post with its introduction, else one of the
    cue's (or its segment's) fallback lines that `recent` does not hold, else the oldest heard."""
    if post is not None:
        intro = POST_INTRO.get(language, POST_INTRO["en"]).format(author=post.post.author)
        return f"{intro} {post.post.text}"
    lines = [line for line in cue.fallback if line.strip()]
    if not lines:
        lines = [line for line in cue.segment.fallback if line.strip()]
    if not lines:
        return station_name
    # Rotate without repeating a line the listener heard recently; the oldest one otherwise.
    heard = list(recent)
    fresh = [line for line in lines if line[:120] not in heard]
    if fresh:
        return fresh[0]
    return min(lines, key=lambda line: _last_index(heard, line[:120]))


def joined(lead: str, line: str) -> str:
    """A back-announce before the offline voice's line (Japanese sentences run on unspaced)."""
    if not lead:
        return line
    return f"{lead}{'' if lead.endswith(('。', '！', '？')) else ' '}{line}"


def _last_index(items: list[str], value: str) -> int:
    for i in range(len(items) - 1, -1, -1):
        if items[i] == value:
            return i
    return -1
