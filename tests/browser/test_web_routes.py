"""How the API serves the pages (no browser needed): the routes, the caching, the 503 page."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.routes import web


def _client() -> TestClient:
    app = FastAPI()
    app.include_router(web.router)
    return TestClient(app)


@pytest.mark.browser  # needs the built bundle (web/dist)
def test_pages_and_assets_are_served_from_the_bundle(web_dist: Path) -> None:
    client = _client()
    for path in ("/", "/studio"):
        resp = client.get(path)
        assert resp.status_code == 200
        assert resp.headers["cache-control"] == "no-cache"
        assert '<script type="module" src="/assets/' in resp.text
    script = next((web_dist / "assets").glob("listener-*.js")).name
    resp = client.get(f"/assets/{script}")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/javascript")
    assert "immutable" in resp.headers["cache-control"]
    assert client.get("/manifest.webmanifest").json()["start_url"] == "/"
    assert client.get("/assets/../index.html").status_code == 404
    assert client.get("/assets/%2e%2e/index.html").status_code == 404


def test_an_unbuilt_bundle_answers_503_saying_how_to_build_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(web, "DIST", tmp_path / "dist")
    resp = _client().get("/")
    assert resp.status_code == 503
    assert "make setup" in resp.text
