"""One-time tickets for the live-event WebSocket.

Browsers cannot set headers on a WebSocket, and a URL ends up in access logs, proxies and the
browser's history; so the page never puts its API token in the socket's URL. It asks
`POST /api/ws/ticket` (with the token in the Authorization header) for a random ticket that
Redis keeps (`Keys.ws_ticket`) for `API_WS_TICKET_TTL_SECONDS` and that opens one connection
once.
"""

from __future__ import annotations

import json
import secrets

import redis.asyncio as aioredis

from contract.keys import Keys


async def issue_ticket(
    redis: aioredis.Redis, keys: Keys, person_id: str, token_expires_at: float, ttl: int
) -> str:
    """A random one-time ticket for `person_id`'s next WebSocket; the connection it opens ends
    when the API token it was bought with expires (`token_expires_at`, Unix seconds)."""
    ticket = secrets.token_urlsafe(32)
    record = json.dumps({"person_id": person_id, "token_expires_at": token_expires_at})
    await redis.set(keys.ws_ticket(ticket), record, ex=ttl, nx=True)
    return ticket


async def redeem_ticket(redis: aioredis.Redis, keys: Keys, ticket: str) -> tuple[str, float] | None:
    """(person id, token expiry) of a ticket, which this call uses up; None when unknown,
    expired or used. Redis errors propagate (the socket is refused)."""
    if not ticket or len(ticket) > 128:
        return None
    raw = await redis.getdel(keys.ws_ticket(ticket))
    if raw is None:
        return None
    record = json.loads(raw)
    return str(record["person_id"]), float(record["token_expires_at"])
