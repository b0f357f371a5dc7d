"""``modelyard deploy``, ``build`` and ``k8s`` as a user types them (registered on a root
group built like ``cli/main.py``'s)."""

from __future__ import annotations

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
    assert out.exit_code == 1 and "has not been deployed in staging yet" in out.output
    out = run(app, ["deploy", "canary", "web", "models:/demand/2", "--every", "soon", *home])
    assert out.exit_code == 1 and "duration" in out.output
    out = run(app, ["k8s", "web", "--image", "reg/modelyard:1", *home])
    assert out.exit_code == 0, out.output
    assert next(d["kind"] for d in yaml.safe_load_all(out.output)) == "Deployment"
    out = run(app, ["build", "models:/demand/1", "--out", str(tmp_path / "b"), *home])
    assert out.exit_code == 0 and "docker build -t demand:1" in out.output
    out = run(app, ["deploy", "ab-report", "web", *home])
    assert out.exit_code == 1 and "no logged predictions" in out.output
