"""The web UI's files at ``/`` and ``/static/...``: exactly the shipped files, a strict
Content-Security-Policy on each, revalidation by ETag, gzip, year-long caching of the
versioned vendored libraries only, and no token needed for them under ``--auth``."""

from __future__ import annotations

import gzip

import httpx
import pytest

from modelyard.server.control.auth import OPEN_PATHS
from modelyard.server.control.ui_routes import (
    CONTENT_SECURITY_POLICY,
    load_assets,
    public_paths,
    ui_root,
)

UPLOT = "/static/vendor/uplot-1.6.32/uPlot.iife.min.js"


def test_the_shell_is_served_at_the_root_with_a_strict_policy(http: httpx.Client) -> None:
    response = http.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert '<script type="module" src="/static/app.js">' in response.text
    policy = response.headers["content-security-policy"]
    assert policy == CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in policy and "default-src 'none'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert "frame-ancestors 'none'" in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-cache"


def test_the_mlflow_link_shapes_reach_the_shell(http: httpx.Client) -> None:
    """The fragment never reaches the server: `http://host/#/experiments/2/runs/x` is a
    GET of `/`, and the page routes on it."""
    assert http.get("/", headers={"Accept": "text/html"}).status_code == 200


def test_a_module_is_revalidated_by_its_etag(http: httpx.Client) -> None:
    first = http.get("/static/app.js")
    assert first.status_code == 200
    assert first.headers["content-type"] == "text/javascript; charset=utf-8"
    assert first.headers["cache-control"] == "no-cache"
    again = http.get("/static/app.js", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    changed = http.get("/static/app.js", headers={"If-None-Match": '"something-else"'})
    assert changed.status_code == 200


def test_vendored_files_are_cached_for_good_and_gzipped(http: httpx.Client) -> None:
    response = http.get(UPLOT, headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert response.headers["content-encoding"] == "gzip"
    assert int(response.headers["content-length"]) < len(response.content) / 2  # decoded
    raw = http.get(UPLOT, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in raw.headers and raw.content == response.content
    assert raw.content.startswith(b"/*! https://github.com/leeoniya/uPlot (v1.6.32) */")


@pytest.mark.parametrize(
    "path",
    [
        "/static/nope.js",
        "/static/../pyproject.toml",
        "/static/%2e%2e/__init__.py",
        "/static/vendor/uplot-1.6.32",
        "/static/.hidden",
        "/static/",
        "/index.html",
    ],
)
def test_only_the_shipped_files_are_served(http: httpx.Client, path: str) -> None:
    response = http.get(path)
    assert response.status_code == 404


def test_every_file_under_static_is_served_and_listed_as_public() -> None:
    files = {p.relative_to(ui_root()).as_posix() for p in (ui_root() / "static").rglob("*")}
    served = {path.removeprefix("/") for path in load_assets() if path != "/"}
    assert served == {f for f in files if (ui_root() / f).is_file()}
    assert public_paths() == frozenset(load_assets())
    assert "/" in public_paths() and not any(p.startswith("/api") for p in public_paths())


def test_vendored_libraries_ship_with_their_licence() -> None:
    vendor = ui_root() / "static" / "vendor"
    for library in vendor.iterdir():
        assert (library / "LICENSE").is_file(), library


def test_with_auth_the_ui_loads_without_a_token_and_its_api_calls_need_one(
    start_live_server,
) -> None:
    server = start_live_server("--auth")
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        assert client.get("/").status_code == 200
        assert client.get("/static/app.js").status_code == 200
        assert client.get("/static/nope.js").status_code == 401  # not a shipped file: closed
        assert client.get("/api/v1/experiments").status_code == 401
        runs = client.get("/api/v1/runs/0123456789abcdef0123456789abcdef/metric-samples?key=k")
        assert runs.status_code == 401
    assert "/" not in OPEN_PATHS  # added by the middleware from the shipped files only


def test_gzip_is_kept_only_when_it_saves_bytes() -> None:
    for asset in load_assets().values():
        if asset.gzipped is not None:
            assert len(asset.gzipped) < len(asset.body)
            assert gzip.decompress(asset.gzipped) == asset.body
