"""/metrics was public and ran full-table counts on every scrape: now it answers only loopback or
the bearer API_METRICS_TOKEN, and reads the station's gauges at most once per interval."""

from __future__ import annotations

import httpx
import pytest

from tests.api.conftest import make_settings, running
from tests.conftest import LiveKit

pytestmark = pytest.mark.integration


async def test_metrics_are_not_public_and_not_a_database_load(
    database_url: str, redis_url: str, livekit_server: LiveKit
) -> None:
    async with running(make_settings(database_url, redis_url, livekit_server)) as api:
        outside = httpx.ASGITransport(app=api.app, client=("203.0.113.7", 40000))
        async with httpx.AsyncClient(transport=outside, base_url="http://radio24.test") as c:
            assert (await c.get("/metrics")).status_code == 404
        assert (await api.client.get("/metrics")).status_code == 200  # loopback: an operator
        # Scrapes in a burst read Postgres once: the gauges keep the first reading.
        listener = await api.listener()
        await api.post(listener, "counted later")
        for _ in range(5):
            text = (await api.client.get("/metrics")).text
            assert 'radio24_posts{status="queued"} 0.0' in text

    settings = make_settings(database_url, redis_url, livekit_server, api_metrics_token="s3cret")
    async with running(settings) as api:
        assert (await api.client.get("/metrics")).status_code == 401  # loopback needs it too
        wrong = {"Authorization": "Bearer guess"}
        assert (await api.client.get("/metrics", headers=wrong)).status_code == 401
        right = {"Authorization": "Bearer s3cret"}
        resp = await api.client.get("/metrics", headers=right)
        assert resp.status_code == 200
        assert 'radio24_posts{status="queued"} 1.0' in resp.text
