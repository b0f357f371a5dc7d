"""The web UI's files: ``GET /`` (the shell page) and ``GET /static/<file>``.

The pages are plain ES modules and vendored libraries shipped inside the package
(``modelyard/ui``, see its README): no build step, no CDN. Every file is read once when
the app is built and served from memory, with

* a strict ``Content-Security-Policy``: scripts, styles and connections from this origin
  only, no inline script or style, no plugins, no framing of the UI by other sites;
  images may also be ``blob:`` (artifacts fetched with the user's token);
* an ``ETag`` (the content's SHA-256) answered with 304 when it matches; the shell and
  the modules are ``no-cache`` (revalidated each load, so an upgrade is seen at once),
  vendored files live under a versioned folder and are ``immutable`` for a year;
* gzip when the browser accepts it and it saves bytes.

The MLflow client prints links such as ``http://host:port/#/experiments/2/runs/<id>``:
the fragment never reaches the server, which answers ``GET /`` and the page routes on
``location.hash``.

``PUBLIC_PATHS`` lists the exact paths served here (no prefix match): the shell and its
code hold no user data, so ``--auth`` lets them load without a token, and the page asks
for one before calling the API.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import mimetypes
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from modelyard.errors import NotFound

STATIC_PREFIX = "/static/"
#: Vendored libraries sit in folders named with their version: safe to cache for good.
IMMUTABLE_PREFIX = "vendor/"
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' blob:",
        "connect-src 'self'",
        "frame-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
#: Smaller files gain nothing from gzip's header and a decompression.
MIN_GZIP_BYTES = 1024
_TYPES = {".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css"}


@dataclass(frozen=True)
class Asset:
    body: bytes
    gzipped: bytes | None
    media_type: str
    etag: str
    cache_control: str


def ui_root() -> Path:
    """The folder of the UI's files inside the installed package."""
    return Path(str(resources.files("modelyard") / "ui"))


def _media_type(name: str) -> str:
    suffix = Path(name).suffix
    guessed = _TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"
    return f"{guessed}; charset=utf-8" if guessed.startswith("text/") else guessed


def load_asset(path: Path, name: str, cache_control: str) -> Asset:
    body = path.read_bytes()
    packed = gzip.compress(body, compresslevel=9, mtime=0) if len(body) >= MIN_GZIP_BYTES else None
    if packed is not None and len(packed) >= len(body):
        packed = None
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    return Asset(body, packed, _media_type(name), etag, cache_control)


@functools.cache
def load_assets(root: Path | None = None) -> dict[str, Asset]:
    """Every file the UI serves, by URL path (read once per process)."""
    root = root or ui_root()
    out = {"/": load_asset(root / "index.html", "index.html", "no-cache")}
    static = root / "static"
    for path in sorted(static.rglob("*")):
        if not path.is_file() or path.name.startswith("."):
            continue
        name = path.relative_to(static).as_posix()
        immutable = name.startswith(IMMUTABLE_PREFIX)
        cache = "public, max-age=31536000, immutable" if immutable else "no-cache"
        out[STATIC_PREFIX + name] = load_asset(path, name, cache)
    return out


def public_paths() -> frozenset[str]:
    """The exact paths of the UI's files (open without a token under ``--auth``)."""
    return frozenset(load_assets())


def respond(request: Request, asset: Asset) -> Response:
    headers = {
        **SECURITY_HEADERS,
        "ETag": asset.etag,
        "Cache-Control": asset.cache_control,
        "Vary": "Accept-Encoding",
    }
    if asset.etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    body = asset.body
    if asset.gzipped is not None and "gzip" in request.headers.get("accept-encoding", ""):
        body = asset.gzipped
        headers["Content-Encoding"] = "gzip"
    return Response(body, media_type=asset.media_type, headers=headers)


def routes() -> list[BaseRoute]:
    assets = load_assets()

    async def index(request: Request) -> Response:
        return respond(request, assets["/"])

    async def static(request: Request) -> Response:
        asset = assets.get(request.url.path)
        if asset is None:  # only the files shipped: no path reaches the file system
            raise NotFound(f"no UI file {request.url.path[:200]!r}", field="path")
        return respond(request, asset)

    return [
        Route("/", index, methods=["GET", "HEAD"]),
        Route(STATIC_PREFIX + "{path:path}", static, methods=["GET", "HEAD"]),
    ]
