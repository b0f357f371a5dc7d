"""``modelyard ui``: the web UI on this machine's stores, one command away.

It runs the same server as ``modelyard server`` (loopback only, no authentication: the
embedded single-user mode) and prints the URL to open; unless ``--no-browser``, it opens
the URL in the default browser once the server answers.

    modelyard ui                 # http://127.0.0.1:5000/, the stores under --home
    modelyard ui --port 8080 --no-browser
"""

from __future__ import annotations

import threading
import time
import urllib.request
import webbrowser

import typer

#: How long to wait for the server before giving up on opening a browser (it keeps running).
BROWSER_WAIT_S = 30.0


def open_when_ready(url: str, timeout_s: float = BROWSER_WAIT_S) -> threading.Thread:
    """Open ``url`` in the default browser once ``url/health`` answers (in a thread)."""

    def wait_then_open() -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{url}health", timeout=1.0):
                    webbrowser.open(url)
                    return
            except OSError:
                time.sleep(0.2)

    thread = threading.Thread(target=wait_then_open, name="modelyard-ui-browser", daemon=True)
    thread.start()
    return thread


def ui(
    ctx: typer.Context,
    port: int = typer.Option(5000, "--port", min=1, max=65535, help="TCP port on 127.0.0.1."),
    no_browser: bool = typer.Option(
        False, "--no-browser", help="Only print the URL; do not open a browser."
    ),
) -> None:
    """Open the web UI: runs, charts, artifacts, served from this machine's stores.

    Examples:
    $ modelyard ui                        # serves http://127.0.0.1:5000/ and opens it
    $ modelyard --home ./yard ui --port 8080 --no-browser
    """
    from modelyard.cli.server import server

    url = f"http://127.0.0.1:{port}/"
    typer.echo(f"modelyard ui: {url}  (Ctrl+C stops it)")
    if not no_browser:
        open_when_ready(url)
    server(
        ctx,
        host="127.0.0.1",
        port=port,
        store_uri=None,
        artifacts_uri=None,
        workers=1,
        auth=False,
    )
