"""`/metrics` for Prometheus (the counters and gauges are `api/metrics.py`'s).

Not public: it answers a bearer `API_METRICS_TOKEN` when one is set, and otherwise only clients
on loopback (a Prometheus beside the API, or an operator on the machine).
"""

from __future__ import annotations

import hmac
import ipaddress

from fastapi import APIRouter, HTTPException, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import KeysDep, MemoryDep, MetricsDep, PoolDep, RedisDep, SettingsDep
from api.metrics import refresh_if_stale

router = APIRouter(tags=["operations"])


def _allowed(request: Request, token: str | None) -> bool:
    if token:
        given = request.headers.get("authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())
    try:
        return ipaddress.ip_address(request.client.host if request.client else "").is_loopback
    except ValueError:
        return False


@router.get("/metrics", include_in_schema=False)
async def metrics(
    request: Request,
    settings: SettingsDep,
    m: MetricsDep,
    pool: PoolDep,
    redis: RedisDep,
    keys: KeysDep,
    memory: MemoryDep,
) -> Response:
    secret = settings.api_metrics_token
    if not _allowed(request, secret.get_secret_value() if secret else None):
        raise HTTPException(
            404 if secret is None else 401,
            "not found" if secret is None else "metrics need Authorization: Bearer <token>",
        )
    every = settings.api_metrics_refresh_seconds
    await refresh_if_stale(m, every, pool, redis, keys, memory)
    return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)
