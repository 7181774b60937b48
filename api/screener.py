"""The call screener: what the station's moderation says about a listener's text, as one verdict.

The producers' blocklist always applies; OpenAI's moderation too when a key is set. Nicknames go
through it before a session starts (the host says them on air), and posts can use the same
`screen`. When OpenAI's moderation is configured but does not answer, `ModerationUnavailable` is
raised instead of a pass: the caller decides how to hold the text (a nickname is refused for now).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import httpx

from api import moderation
from api.queries import queries

if TYPE_CHECKING:
    from api.state import Station

log = logging.getLogger("radio24.api.screener")
MODERATION_MODEL = "omni-moderation-latest"


class ModerationUnavailable(Exception):
    """OpenAI's moderation is configured but did not answer."""


async def blocklist(station: Station) -> list[str]:
    async with station.pool.connection() as conn:
        return [row[0] async for row in queries.blocklist_terms(conn)]


async def openai_verdict(station: Station, text: str) -> moderation.Verdict:
    settings = station.settings
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else ""
    if not key or not settings.api_openai_moderation:
        return moderation.ALLOWED
    url = (settings.openai_base_url or "https://api.openai.com/v1").rstrip("/") + "/moderations"
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            resp = await client.post(
                url,
                headers={"Authorization": f"Bearer {key}"},
                json={"model": MODERATION_MODEL, "input": text},
            )
            resp.raise_for_status()
            return moderation.openai_verdict(resp.json())
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        station.metrics.moderation_unavailable.inc()
        log.warning("openai moderation unavailable", extra={"error": repr(exc)})
        raise ModerationUnavailable from exc


async def screen(station: Station, text: str) -> moderation.Verdict:
    """The blocklist first (no network), then OpenAI's moderation."""
    listed = moderation.blocklist_verdict(text, await blocklist(station))
    if not listed.allowed:
        return listed
    return await openai_verdict(station, text)
