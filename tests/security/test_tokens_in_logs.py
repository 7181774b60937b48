"""Tokens in the logs: the page authenticated its WebSocket with `?token=`, and uvicorn logs every
request line, so listener and producer JWTs landed in the API's log file. The API runs here as
a process of its own, as `make run` and the image run it (uvicorn CLI, access log on as in the
image), writing to a real log file; every credential the test is handed (API tokens, LiveKit
tokens, WebSocket tickets) and anything shaped like a JWT must be absent from that file, while
the request lines themselves are there."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from radio24 import rack
from tests.api.conftest import PASSWORD, add_staff
from tests.conftest import LiveKit

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]
JWT = re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


def _serve(log: Path, env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "uvicorn", "--factory", "api.main:create_app",
            "--host", "127.0.0.1", "--port", str(port), "--no-proxy-headers"]  # fmt: skip
    out = log.open("wb")
    return subprocess.Popen(argv, cwd=rack.ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


async def _ws_once(url: str) -> int | None:
    try:
        async with connect(url) as ws:
            await ws.recv()  # the snapshot
            await ws.close()
            return 1000
    except ConnectionClosed as exc:
        return exc.rcvd.code if exc.rcvd else None


async def test_no_credential_reaches_the_api_log(
    database_url: str, redis_url: str, livekit_server: LiveKit, tmp_path: Path
) -> None:
    port = rack.free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("API_", "RADIO_"))}
    env |= {
        "DATABASE_URL": database_url, "REDIS_URL": redis_url, "LIVEKIT_URL": livekit_server.url,
        "LIVEKIT_API_KEY": livekit_server.api_key, "LIVEKIT_API_SECRET": livekit_server.api_secret,
        "RADIO_ROOM": "radio24-logs", "API_KEEPER": "false", "API_EMBEDDINGS": "off",
        "OPENAI_API_KEY": "", "PYTHONUNBUFFERED": "1",
    }  # fmt: skip
    log = tmp_path / "api.log"
    proc = _serve(log, env, port)
    base, ws_base = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/api/ws"
    secrets_seen: list[str] = []
    try:
        deadline = time.monotonic() + 30
        while not rack.port_open(port):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-2000:]
            await asyncio.sleep(0.1)
        add_staff(database_url, "alice")
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            session = (await client.post("/api/session", json={"nickname": "Mika"})).json()
            staff = (
                await client.post(
                    "/api/auth/login", json={"username": "alice", "password": PASSWORD}
                )
            ).json()
            auth = {"Authorization": f"Bearer {session['token']}"}
            grant = (await client.post("/api/livekit/token", headers=auth)).json()
            ticket = (await client.post("/api/ws/ticket", headers=auth)).json()["ticket"]
            secrets_seen += [session["token"], staff["token"], grant["token"], ticket, PASSWORD]
            # The page's way in: one ticket, once.
            assert await _ws_once(f"{ws_base}?ticket={ticket}") == 1000
            assert await _ws_once(f"{ws_base}?ticket={ticket}") == 4401  # used up
            # An old page (or a careless client) sends the token in the URL: refused, and
            # not written down either.
            assert await _ws_once(f"{ws_base}?token={staff['token']}") == 4401
            # A failing request with a token in its query string.
            await client.get(f"/api/me?token={session['token']}")
        await asyncio.sleep(0.5)  # let the process flush its last lines
    finally:
        proc.terminate()
        proc.wait(20)
    text = log.read_text()
    assert "WebSocket /api/ws?ticket=[redacted]" in text, text[-3000:]
    assert "POST /api/auth/login" in text  # the access log is on: its lines were scrubbed
    for secret in secrets_seen:
        assert secret not in text
    assert JWT.findall(text) == []
