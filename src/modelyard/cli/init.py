"""``modelyard init …``: scaffolding for a project. ``init ci --github`` writes a GitHub
Actions workflow that tests, trains, gates the candidate and comments on the PR."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="Scaffold project files (CI workflows).", no_args_is_help=True)


@app.command("ci")
def ci(
    ctx: typer.Context,
    github: bool = typer.Option(False, "--github", help="Write a GitHub Actions workflow."),
    model: str = typer.Option("demand", "--model", help="Registered model name to gate."),
    data: str = typer.Option(
        "data/eval.parquet", "--data", help="Evaluation data path (its pointer is pulled)."
    ),
    policy: str = typer.Option("gate.yaml", "--policy", help="Gate policy file."),
    train: str = typer.Option(
        "python train.py", "--train", help="Command that trains and registers a candidate."
    ),
    tests: str = typer.Option("pytest -q", "--tests", help="Command that runs the tests."),
    contract: str | None = typer.Option(
        None, "--contract", help="Check the evaluation data against this contract first."
    ),
    root: Path = typer.Option(Path("."), "--root", help="Project root (default: here)."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing workflow."),
) -> None:
    """Write a CI workflow that gates every candidate model."""
    from modelyard.validation.ci_template import CiOptions, write_github_workflow

    if not github:
        raise typer.BadParameter("choose a CI system: --github", param_hint="--github")
    options = CiOptions(
        model=model, data=data, policy=policy, train=train, tests=tests, contract=contract
    )
    path = write_github_workflow(root, options, force=force)
    ctx.obj.console().print(
        f"[green]✓[/] wrote {path}\n  set the repository secrets MODELYARD_STORE_URI and "
        "MODELYARD_ARTIFACTS_URI, commit it, and open a pull request"
    )
