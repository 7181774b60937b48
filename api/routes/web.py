"""The pages people use: the listener page at `/`, the producers' studio at `/studio`.

They are static files that `web/`'s build (`npm ci && npm run build`, run by `make setup`) writes
to `web/dist`; the API serves them so a station is one process and one origin (the pages call
`/api/...` and `/api/ws` on the host they came from). Scripts and styles live under
`/assets/` with content-hashed names, so they may be cached for good; the HTML is never cached.
When the bundle was not built, the pages answer 503 with a page that says how to build it,
instead of a bare 404 that looks like a broken station.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

# Beside the source tree (a checkout, `make run`), else under the working directory (the
# container image installs `api` into site-packages and copies the bundle to /app/web/dist).
_CANDIDATES = (
    Path(__file__).resolve().parents[2] / "web" / "dist",
    Path.cwd() / "web" / "dist",
)


def find_dist() -> Path:
    """The first built bundle of the candidates (the first candidate when none is built)."""
    for path in _CANDIDATES:
        if (path / "index.html").is_file():
            return path
    return _CANDIDATES[0]


DIST = find_dist()

router = APIRouter(tags=["pages"], include_in_schema=False)

_NO_CACHE = {"Cache-Control": "no-cache"}
# Set, not guessed: a module script served with another type is refused by the browser.
_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".map": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
_IMMUTABLE = {"Cache-Control": "public, max-age=31536000, immutable"}

_NOT_BUILT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>radio24 — pages not built</title>
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;
padding:0 1rem;line-height:1.5;background:#14121f;color:#f4f1ff}
code{background:#2a2640;padding:.1rem .3rem}</style>
</head><body>
<h1>The station's pages are not built</h1>
<p>The API is running, but <code>web/dist</code> is missing, so there is no listener page or
studio to show. Build them once with <code>make setup</code> (or
<code>cd web &amp;&amp; npm ci &amp;&amp; npm run build</code>) and reload.</p>
<p lang="ja">ページがビルドされていません。<code>make setup</code>
を実行してから再読み込みしてください。</p>
</body></html>
"""


def _page(name: str) -> Response:
    path = DIST / name
    if not path.is_file():
        return HTMLResponse(_NOT_BUILT, status_code=503, headers={"Retry-After": "60"})
    return FileResponse(path, media_type="text/html; charset=utf-8", headers=_NO_CACHE)


@router.get("/")
async def listener_page() -> Response:
    return _page("index.html")


@router.get("/studio")
async def studio_page() -> Response:
    return _page("studio.html")


@router.get("/studio/")
async def studio_slash() -> Response:
    return RedirectResponse("/studio", status_code=308)


@router.get("/manifest.webmanifest")
async def manifest() -> Response:
    path = DIST / "manifest.webmanifest"
    if not path.is_file():
        raise HTTPException(404)
    return FileResponse(path, media_type="application/manifest+json", headers=_NO_CACHE)


@router.get("/assets/{name:path}")
async def asset(name: str) -> Response:
    root = (DIST / "assets").resolve()
    path = (root / name).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise HTTPException(404)
    # Hashed names never change content; the few unhashed files (the icon) revalidate.
    hashed = path.suffix in {".js", ".css", ".map"}
    return FileResponse(
        path, media_type=_TYPES.get(path.suffix), headers=_IMMUTABLE if hashed else _NO_CACHE
    )
