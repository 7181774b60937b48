"""Who gets in: guest sessions, producer logins, and the authorisation matrix."""

from __future__ import annotations

import asyncio
import io
import time
import uuid

import httpx
import jwt
import psycopg
import pytest

from api import producers
from api.auth import AUDIENCE, ISSUER, Person, issue_token
from tests.api.conftest import PASSWORD, Api, add_staff, make_settings, running
from tests.conftest import LiveKit

pytestmark = pytest.mark.integration

# Every route only producers may use, with a body that would otherwise be valid.
PRODUCER_ROUTES = [
    ("GET", "/api/posts", None),
    ("GET", "/api/posts/search?q=cats", None),
    ("PATCH", f"/api/posts/{uuid.uuid4()}", {"action": "hide"}),
    ("POST", f"/api/listeners/{uuid.uuid4()}/ban", {}),
    ("DELETE", f"/api/listeners/{uuid.uuid4()}/ban", None),
    ("GET", "/api/aired", None),
    ("GET", "/api/blocklist", None),
    ("POST", "/api/blocklist", {"term": "spoiler"}),
    ("DELETE", "/api/blocklist/spoiler", None),
    ("GET", "/api/prompts/status", None),
]
AUTHENTICATED_ROUTES = [
    ("GET", "/api/me", None),
    ("POST", "/api/livekit/token", None),
    ("POST", "/api/posts", {"text": "hello"}),
    ("GET", "/api/posts/mine", None),
    *PRODUCER_ROUTES,
]


def _secret(api: Api) -> str:
    return api.settings.api_jwt_secret.get_secret_value()


async def test_guest_session_gives_a_working_token(api: Api) -> None:
    resp = await api.client.post("/api/session", json={"nickname": "  Mika  "})
    assert resp.status_code == 201
    body = resp.json()
    assert body["person"]["nickname"] == "Mika"
    assert body["person"]["role"] == "listener"
    me = await api.client.get("/api/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert me.status_code == 200
    assert me.json() == body["person"]


@pytest.mark.parametrize(
    ("nickname", "says"),
    [
        ("", "2 to 24 characters"),
        ("x" * 30, "2 to 24"),
        ("<script>", "letters, digits"),
        ("host", "reserved"),
        ("a\u0000b", "letters, digits"),
    ],
)
async def test_bad_nickname_is_refused_with_the_reason(api: Api, nickname: str, says: str) -> None:
    resp = await api.client.post("/api/session", json={"nickname": nickname})
    assert resp.status_code == 422
    assert says in resp.text


async def test_a_staff_name_is_no_different_from_any_other_nickname(api: Api) -> None:
    # Guest nicknames may repeat; refusing staff names would tell anyone which exist.
    await api.producer("Alice")
    resp = await api.client.post("/api/session", json={"nickname": "alice"})
    assert resp.status_code == 201
    assert resp.json()["person"]["role"] == "listener"


async def test_producer_logs_in_and_wrong_password_is_401(api: Api) -> None:
    producer = await api.producer("alice")
    me = await api.client.get("/api/me", headers=producer.headers)
    assert me.json()["role"] == "producer"
    wrong = await api.client.post(
        "/api/auth/login", json={"username": "alice", "password": "nope nope nope"}
    )
    assert wrong.status_code == 401
    unknown = await api.client.post(
        "/api/auth/login", json={"username": "nobody", "password": PASSWORD}
    )
    assert unknown.status_code == 401
    assert wrong.json() == unknown.json()  # the answer does not tell which was wrong


async def test_a_username_with_control_characters_is_422_not_a_crash(api: Api) -> None:
    resp = await api.client.post("/api/auth/login", json={"username": "a\u0000b", "password": "x"})
    assert resp.status_code == 422


async def test_new_sessions_are_limited_per_client_address(
    database_url: str, redis_url: str, livekit_server: LiveKit
) -> None:
    settings = make_settings(
        database_url,
        redis_url,
        livekit_server,
        api_session_rate_limit=3,
        api_session_rate_window_seconds=1,
    )
    async with running(settings) as api:
        for i in range(3):
            resp = await api.client.post("/api/session", json={"nickname": f"Mika{i}"})
            assert resp.status_code == 201
        resp = await api.client.post("/api/session", json={"nickname": "Mika3"})
        assert resp.status_code == 429
        assert "too many new sessions" in resp.json()["detail"]
        retry_after = int(resp.headers["Retry-After"])
        assert retry_after == 1
        # Another address is not held back by this one.
        elsewhere = httpx.ASGITransport(app=api.app, client=("203.0.113.7", 50000))
        async with httpx.AsyncClient(transport=elsewhere, base_url="http://radio24.test") as c:
            assert (await c.post("/api/session", json={"nickname": "Ken"})).status_code == 201
        # The refused request did not count: after Retry-After this address gets in again.
        await asyncio.sleep(retry_after + 0.1)
        resp = await api.client.post("/api/session", json={"nickname": "Mika3"})
        assert resp.status_code == 201


async def test_listeners_cannot_log_in_as_staff(api: Api) -> None:
    await api.listener("Mika")
    resp = await api.client.post("/api/auth/login", json={"username": "Mika", "password": "x"})
    assert resp.status_code == 401


async def test_repeated_failed_logins_are_limited_even_with_the_right_password(api: Api) -> None:
    add_staff(api.settings.database_url.get_secret_value(), "bob")
    for _ in range(api.settings.api_login_rate_limit):
        resp = await api.client.post("/api/auth/login", json={"username": "bob", "password": "no"})
        assert resp.status_code == 401
    resp = await api.client.post("/api/auth/login", json={"username": "bob", "password": PASSWORD})
    assert resp.status_code == 429
    assert int(resp.headers["Retry-After"]) > 0


@pytest.mark.parametrize(("method", "path", "body"), PRODUCER_ROUTES)
async def test_a_listener_on_a_producer_route_is_403(
    api: Api, method: str, path: str, body: object
) -> None:
    listener = await api.listener()
    resp = await api.client.request(method, path, json=body, headers=listener.headers)
    assert resp.status_code == 403, resp.text


@pytest.mark.parametrize(("method", "path", "body"), AUTHENTICATED_ROUTES)
async def test_without_a_token_every_protected_route_is_401(
    api: Api, method: str, path: str, body: object
) -> None:
    resp = await api.client.request(method, path, json=body)
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"] == "Bearer"


async def test_expired_forged_and_unsigned_tokens_are_401(api: Api) -> None:
    listener = await api.listener()
    person = Person(uuid.UUID(listener.id), listener.nickname, "listener")
    expired, _ = issue_token(_secret(api), person, 60, now=time.time() - 3600)
    forged, _ = issue_token("not-the-station-secret-0123456789abcdef", person, 600)
    claims = {
        "sub": listener.id,
        "role": "admin",
        "iat": int(time.time()),
        "exp": int(time.time()) + 600,
        "iss": ISSUER,
        "aud": AUDIENCE,
    }
    unsigned = jwt.encode(claims, key=None, algorithm="none")
    other_audience = jwt.encode({**claims, "aud": "elsewhere"}, _secret(api), algorithm="HS256")
    no_expiry = jwt.encode(
        {k: v for k, v in claims.items() if k != "exp"}, _secret(api), algorithm="HS256"
    )
    for name, token in [
        ("expired", expired),
        ("forged", forged),
        ("alg none", unsigned),
        ("audience", other_audience),
        ("no exp", no_expiry),
        ("garbage", "abc.def.ghi"),
    ]:
        resp = await api.client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 401, name
    assert (
        "expired"
        in (await api.client.get("/api/me", headers={"Authorization": f"Bearer {expired}"})).json()[
            "detail"
        ]
    )


async def test_a_token_for_a_deleted_database_person_is_401(api: Api) -> None:
    ghost = Person(uuid.uuid4(), "ghost", "listener")
    token, _ = issue_token(_secret(api), ghost, 600)
    resp = await api.client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 401


async def test_role_comes_from_the_database_not_the_token(api: Api) -> None:
    listener = await api.listener()
    claims_admin = Person(uuid.UUID(listener.id), listener.nickname, "admin")
    token, _ = issue_token(_secret(api), claims_admin, 600)
    resp = await api.client.get("/api/posts", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 403


async def test_a_banned_listener_gets_nothing(api: Api) -> None:
    producer, listener = await api.producer(), await api.listener("Troll")
    queued = (await api.post(listener, "first post")).json()
    resp = await api.client.post(
        f"/api/listeners/{listener.id}/ban", json={"reason": "spam"}, headers=producer.headers
    )
    assert resp.status_code == 200
    assert resp.json() == {"id": listener.id, "banned": True, "hidden_posts": 1}
    for method, path, body in AUTHENTICATED_ROUTES[:4]:
        resp = await api.client.request(method, path, json=body, headers=listener.headers)
        assert resp.status_code == 403, path
    posts = (await api.client.get("/api/posts", headers=producer.headers)).json()
    assert [(p["id"], p["status"], p["author_banned"]) for p in posts] == [
        (queued["id"], "hidden", True)
    ]
    resp = await api.client.delete(f"/api/listeners/{listener.id}/ban", headers=producer.headers)
    assert resp.status_code == 200
    assert (await api.client.get("/api/me", headers=listener.headers)).status_code == 200


async def test_ban_of_staff_or_unknown_person_is_refused(api: Api) -> None:
    producer = await api.producer()
    other = await api.producer("carol")
    resp = await api.client.post(
        f"/api/listeners/{other.id}/ban", json={}, headers=producer.headers
    )
    assert resp.status_code == 409
    resp = await api.client.post(
        f"/api/listeners/{uuid.uuid4()}/ban", json={}, headers=producer.headers
    )
    assert resp.status_code == 404
    resp = await api.client.delete(f"/api/listeners/{uuid.uuid4()}/ban", headers=producer.headers)
    assert resp.status_code == 404


def test_producer_add_reads_the_password_from_stdin(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
    assert producers.add_producer_cli("dana", "admin") == 0
    assert "created admin dana" in capsys.readouterr().out
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT role, password_hash FROM people WHERE nickname = 'dana'")
        role, password_hash = row.fetchone()  # type: ignore[misc]
    assert role == "admin"
    assert password_hash.startswith("$argon2id$")
    assert "a long enough password" not in password_hash

    monkeypatch.setattr("sys.stdin", io.StringIO("another long password\n"))
    assert producers.add_producer_cli("Dana", "producer") == 1  # names are unique
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert producers.add_producer_cli("erin", "producer") == 1
    assert "too short" in capsys.readouterr().err


async def test_a_producer_created_by_the_cli_can_log_in(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", api.settings.database_url.get_secret_value())
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
    assert producers.add_producer_cli("frank", "producer") == 0
    resp = await api.client.post(
        "/api/auth/login", json={"username": "Frank", "password": "a long enough password"}
    )
    assert resp.status_code == 200
    assert resp.json()["person"]["role"] == "producer"
