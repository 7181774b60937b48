"""Rate limits behind a proxy: only API_TRUSTED_PROXIES may say who the client is. Served by
uvicorn exactly as the image runs it (`--no-proxy-headers`), with clients on other loopback
addresses (127.0.0.2 is the load balancer, 127.0.0.3 a client that reaches the API directly)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn

from api.main import create_app
from radio24 import rack
from tests.api.conftest import make_settings
from tests.conftest import LiveKit

pytestmark = pytest.mark.integration


@contextlib.asynccontextmanager
async def image_like(**overrides: object) -> AsyncIterator[str]:
    app = create_app(make_settings(**overrides))  # type: ignore[arg-type]
    port = rack.free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, lifespan="on", log_level="warning", proxy_headers=False
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(20):
            while not server.started:  # noqa: ASYNC110  (uvicorn offers no event to wait on)
                await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 20)


def _from(address: str, base: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base, transport=httpx.AsyncHTTPTransport(local_address=address)
    )


async def _session(client: httpx.AsyncClient, nick: str, forwarded: str) -> int:
    resp = await client.post(
        "/api/session", json={"nickname": nick}, headers={"X-Forwarded-For": forwarded}
    )
    return resp.status_code


async def test_limits_follow_the_real_client_behind_the_trusted_proxy_only(
    database_url: str, redis_url: str, livekit_server: LiveKit
) -> None:
    async with image_like(
        database_url=database_url, redis_url=redis_url, livekit=livekit_server,
        api_session_rate_limit=3, api_trusted_proxies="127.0.0.2/32",
    ) as base, _from("127.0.0.2", base) as proxy, _from("127.0.0.3", base) as direct:  # fmt: skip
        # Through the load balancer each listener has their own limit, not one for everybody.
        for i in range(6):
            assert await _session(proxy, f"Fan{i}", f"198.51.100.{i}") == 201
        # A client's own X-Forwarded-For is not believed: a fresh forged address each time
        # does not reset its limit.
        answers = [await _session(direct, f"Bot{i}", f"203.0.113.{i}") for i in range(5)]
        assert answers == [201, 201, 201, 429, 429]
        # Nor does a forged entry in front of what the proxy appended: the rightmost hop the
        # proxy saw is the client.
        answers = [
            await _session(proxy, f"Sly{i}", f"203.0.113.{i}, 198.51.100.99") for i in range(5)
        ]
        assert answers == [201, 201, 201, 429, 429]
