"""A property-based fuzz of the whole OpenAPI schema (schemathesis): no input makes a 5xx, and
every answer's status is one the schema documents for that route.

The API runs under uvicorn in a thread of its own (its own event loop), on the session's
Postgres and Redis, so the synchronous fuzzer can call it like any client.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import hypothesis
import psycopg
import pytest
import schemathesis
import uvicorn

from api.main import create_app
from radio24 import rack
from tests.api.conftest import add_staff, make_settings
from tests.conftest import LiveKit, Postgres

pytestmark = pytest.mark.integration

HealthCheck, given, settings = hypothesis.HealthCheck, hypothesis.given, hypothesis.settings


@pytest.fixture(scope="module")
def fuzzed_api(
    postgres_server: Postgres, redis_server: str, livekit_server: LiveKit
) -> Iterator[tuple[str, dict[str, str]]]:
    name = f"fuzz_{secrets.token_hex(4)}"
    for _ in range(100):
        try:
            with psycopg.connect(postgres_server.url("postgres"), autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{postgres_server.template}"')
            break
        except psycopg.errors.ObjectInUse:
            time.sleep(0.1)
    database_url = postgres_server.url(name)
    add_staff(database_url, "fuzzer")
    app = create_app(
        make_settings(
            database_url,
            redis_server,
            livekit_server,
            api_post_rate_limit=100_000,
            api_login_rate_limit=100_000,
            api_session_rate_limit=100_000,
            api_embeddings="local",
        )
    )
    port = rack.free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on", log_level="warning")
    )
    thread = threading.Thread(target=server.run, name="fuzzed-api", daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the API did not start"
        time.sleep(0.05)
    from tests.api.conftest import PASSWORD

    token = httpx.post(
        f"{base}/api/auth/login", json={"username": "fuzzer", "password": PASSWORD}
    ).json()["token"]
    yield base, {"Authorization": f"Bearer {token}"}
    server.should_exit = True
    thread.join(20)


def documented(operation: Any) -> set[str]:
    return {str(code) for code in operation.definition.raw.get("responses", {})}


def test_no_input_makes_a_server_error_or_an_undocumented_answer(
    fuzzed_api: tuple[str, dict[str, str]],
) -> None:
    # Driven through Hypothesis directly: schemathesis' own pytest plugin does not load under
    # pytest 9.
    base, auth = fuzzed_api
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 16
    errors: list[str] = []
    undocumented: list[str] = []
    for operation in operations:
        codes = documented(operation)

        @given(case=operation.as_strategy())
        @settings(
            max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        def fuzz(case: Any) -> None:
            for headers in (auth, {}):
                response = case.call(headers={**(case.headers or {}), **headers}, timeout=30)
                said = f"{case.method} {case.formatted_path} {case.query} -> {response.status_code}"
                if response.status_code >= 500:
                    errors.append(f"{said}: {response.text[:200]}")
                elif not {str(response.status_code), "default"} & codes:  # noqa: B023
                    undocumented.append(f"{case.method} {case.path} -> {response.status_code}")

        fuzz()
    assert errors == [], "\n".join(sorted(set(errors)))
    assert undocumented == [], "undocumented answers:\n" + "\n".join(sorted(set(undocumented)))
