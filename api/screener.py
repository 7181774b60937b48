"""The call screener: what the station's moderation says about a listener's text, as one verdict.

The producers' blocklist always applies; OpenAI's moderation too when a key is set. Nicknames go
through it before a session starts (the host says them on air), and posts through the same
steps (`api/mailbag.py`). When OpenAI's moderation is configured but does not answer,
`ModerationUnavailable` is raised instead of a pass: the caller decides how to hold the text (a
nickname is refused for now, a post is not stored).
"""

from __future__ import annotations

import logging

import httpx
from psycopg_pool import AsyncConnectionPool

from api import moderation
from api.metrics import Metrics
from api.settings import ApiSettings
from db.queries import load

log = logging.getLogger("radio24.api.screener")
MODERATION_MODEL = "omni-moderation-latest"

queries = load("blocklist.sql")


class ModerationUnavailable(Exception):
    """OpenAI's moderation is configured but did not answer."""


class Screener:
    def __init__(self, settings: ApiSettings, pool: AsyncConnectionPool, metrics: Metrics) -> None:
        self.settings = settings
        self.pool = pool
        self.metrics = metrics

    async def blocklist(self) -> list[str]:
        """The producers' blocked terms (Postgres)."""
        async with self.pool.connection() as conn:
            return [row[0] async for row in queries.blocklist_terms(conn)]

    async def openai_verdict(self, text: str) -> moderation.Verdict:
        settings = self.settings
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else ""
        if not key or not settings.api_openai_moderation:
            return moderation.ALLOWED
        url = (settings.openai_base_url or "https://api.openai.com/v1").rstrip("/")
        try:
            async with httpx.AsyncClient(timeout=5) as client:
                resp = await client.post(
                    url + "/moderations",
                    headers={"Authorization": f"Bearer {key}"},
                    json={"model": MODERATION_MODEL, "input": text},
                )
                resp.raise_for_status()
                return moderation.openai_verdict(resp.json())
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            self.metrics.moderation_unavailable.inc()
            log.warning("openai moderation unavailable", extra={"error": repr(exc)})
            raise ModerationUnavailable from exc

    async def screen(self, text: str) -> moderation.Verdict:
        """The blocklist first (no network), then OpenAI's moderation."""
        listed = moderation.blocklist_verdict(text, await self.blocklist())
        if not listed.allowed:
            return listed
        return await self.openai_verdict(text)
