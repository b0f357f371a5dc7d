"""``modelyard serve``: ``--auth`` puts the token check in front of the data plane (in the
process and in every worker), and a non-loopback host without it is warned about."""

from __future__ import annotations

import os
import sys

import pytest
import typer
from tests.serving.conftest import make_yard
from typer.testing import CliRunner

from modelyard.cli import main, serve
from modelyard.server.http.auth_middleware import AuthMiddleware


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    yard = make_yard(tmp_path_factory.mktemp("serve-cli"))
    yard.deployments.create("web", yard.regressor().uri)
    return yard.settings.home


@pytest.fixture
def run(home, monkeypatch):
    """``modelyard serve …`` with uvicorn.run recorded instead of run."""
    import uvicorn

    calls: list[tuple[tuple, dict]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: calls.append((a, k)))
    for name in list(os.environ):
        if name.startswith("MODELYARD_"):
            monkeypatch.delenv(name)
    app = typer.Typer(cls=main.ModelyardGroup, no_args_is_help=True)
    app.callback()(main.root)
    app.command("serve")(serve.serve)
    yield lambda *args: (CliRunner().invoke(app, ["--home", str(home), "serve", *args]), calls)
    for name in list(os.environ):  # what a --workers run hands its worker processes
        if name.startswith("MODELYARD_"):
            os.environ.pop(name)


def middleware_of(app) -> list[type]:
    return [m.cls for m in app.user_middleware]


def test_without_auth_a_public_host_is_warned_about_and_loopback_is_not(run):
    public, calls = run("web", "--host", "0.0.0.0")
    assert public.exit_code == 0, public.output
    assert "warning: listening on 0.0.0.0 without --auth" in public.output
    assert AuthMiddleware not in middleware_of(calls[0][0][0])
    local, _ = run("web")
    assert local.exit_code == 0 and "without --auth" not in local.output


def test_auth_puts_the_token_check_in_front_and_says_so(run):
    result, calls = run("web", "--auth", "--host", "0.0.0.0")
    assert result.exit_code == 0, result.output
    assert "authentication on" in result.output and "warning" not in result.output
    assert "no users yet" in result.output
    ((args, _),) = calls
    assert middleware_of(args[0]) == [AuthMiddleware]


def test_auth_workers_build_their_apps_with_the_token_check(run):
    result, calls = run("web", "--auth", "--workers", "2")
    assert result.exit_code == 0, result.output
    assert calls[0][0] == (serve.APP_FACTORY,) and os.environ["MODELYARD_SERVE_AUTH"] == "True"
    from uvicorn.importer import import_from_string

    worker_app = import_from_string(serve.APP_FACTORY)()  # what each worker process runs
    assert middleware_of(worker_app) == [AuthMiddleware]


def test_an_unknown_target_exits_2_before_listening(run):
    result, calls = run("nosuchdeployment")
    assert result.exit_code == 2 and calls == []
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")


@pytest.mark.parametrize("module", ["uvicorn", "starlette"])
def test_without_the_serving_extra_it_says_so_in_one_line_and_exits_2(run, monkeypatch, module):
    for loaded in [m for m in sys.modules if m == module or m.startswith(f"{module}.")]:
        monkeypatch.delitem(sys.modules, loaded)
    for loaded in ("modelyard.server.inference.app", "modelyard.server.inference.metrics"):
        monkeypatch.delitem(sys.modules, loaded, raising=False)
    monkeypatch.setitem(sys.modules, module, None)  # as if it were not installed
    result, calls = run("web")
    assert result.exit_code == 2 and calls == []
    assert result.stderr.strip().splitlines() == [
        f"error: modelyard serve needs the '{module}' package: pip install 'modelyard[serving]'"
    ]
