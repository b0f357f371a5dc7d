"""``modelyard deploy``, ``build`` and ``k8s`` as a user types them (registered on a root
group built like ``cli/main.py``'s)."""

from __future__ import annotations

import sys

import pytest
import typer
import yaml
from typer.testing import CliRunner

from modelyard.cli import build, deploy, main, serve


def cli() -> typer.Typer:
    app = typer.Typer(cls=main.ModelyardGroup, no_args_is_help=True)
    app.callback()(main.root)
    app.add_typer(deploy.app, name="deploy")
    app.command("serve")(serve.serve)
    app.command("build")(build.build)
    app.command("k8s")(build.k8s)
    return app


def test_deploy_commands_end_to_end(yard, tmp_path):
    yard.regressor()
    yard.regressor(seed=1)
    yard.regressor(seed=2)
    home = ["--home", str(yard.settings.home)]
    run = CliRunner().invoke
    app = cli()
    out = run(app, ["deploy", "create", "web", "models:/demand/1", *home])
    assert out.exit_code == 0, out.output
    assert "revision 1" in out.output and "100.0 %" in out.output
    out = run(app, ["deploy", "canary", "web", "models:/demand/2", "--steps", "10,100",
                    "--every", "5m", *home])  # fmt: skip
    assert out.exit_code == 0, out.output
    assert "canary steps [10.0, 100.0] every 300 s" in out.output and "10.0 %" in out.output
    out = run(app, ["deploy", "rollback", "web", "--reason", "checking", *home])
    assert out.exit_code == 0 and "revision 3" in out.output
    out = run(app, ["deploy", "status", "web", *home])
    assert "r3 rollback by " in out.output and "checking" in out.output
    out = run(app, ["deploy", "create", "prod", "models:/demand/3", "--env", "production", *home])
    assert out.exit_code == 2 and "has not been deployed in staging yet" in out.output
    out = run(app, ["deploy", "canary", "web", "models:/demand/2", "--every", "soon", *home])
    assert out.exit_code == 2 and "duration" in out.output
    out = run(app, ["k8s", "web", "--image", "reg/modelyard:1", *home])
    assert out.exit_code == 0, out.output
    assert next(d["kind"] for d in yaml.safe_load_all(out.output)) == "Deployment"
    out = run(app, ["build", "models:/demand/1", "--out", str(tmp_path / "b"), *home])
    assert out.exit_code == 0 and "docker build -t demand:1" in out.output
    out = run(app, ["deploy", "ab-report", "web", *home])
    assert out.exit_code == 2 and "no logged predictions" in out.output


@pytest.mark.parametrize(
    "args",
    [
        ["deploy", "status", "nosuch"],
        ["deploy", "compile", "models:/nosuch/1"],
        ["build", "models:/nosuch/1"],
        ["k8s", "nosuch", "--image", "reg/modelyard:1"],
    ],
)
def test_unknown_names_are_one_line_and_exit_2(tmp_path, args):
    out = CliRunner().invoke(cli(), [*args, "--home", str(tmp_path / "yard")])
    assert out.exit_code == 2, out.output
    assert len(out.stderr.strip().splitlines()) == 1 and "nosuch" in out.stderr


def test_compile_without_the_compile_extra_says_which_to_install(yard, monkeypatch):
    yard.regressor()
    monkeypatch.setitem(sys.modules, "skl2onnx", None)  # as if it were not installed
    out = CliRunner().invoke(
        cli(), ["deploy", "compile", "models:/demand/1", "--home", str(yard.settings.home)]
    )
    assert out.exit_code == 2, out.output
    assert out.stderr.strip().endswith("pip install 'modelyard[compile]'")
