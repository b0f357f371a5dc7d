"""``modelyard sweep FILE.py:objective --config sweep.yaml``: a hyperparameter sweep.

    modelyard sweep train.py:objective --config sweep.yaml
    modelyard sweep train.py:objective --config sweep.yaml --n-trials 128 --parallel 4

``sweep.yaml`` (every key but ``space`` optional; unknown keys are refused)::

    name: demand-gbm          # a sweep run again under its name continues
    metric: val_rmse          # what the objective returns and logs per step
    direction: minimize       # or maximize
    n_trials: 64              # in all (grid: the grid's size by default)
    sampler: tpe              # tpe, random or grid
    pruner: median            # median, hyperband or none
    seed: 7
    parallel: 2               # workers
    executor: process         # process or ray (local: this process)
    experiment: sweeps
    space:
      lr: {type: float, low: 0.001, high: 0.3, log: true}
      depth: {type: int, low: 2, high: 8}
      loss: [squared_error, huber]

Exit 0 when the sweep finished with a best trial, 1 when no trial completed (every one
failed or was pruned), 2 on bad usage (the config, the target, a missing extra).
"""

from __future__ import annotations

from pathlib import Path

import typer

EXIT_NO_TRIAL = 1


def sweep(
    ctx: typer.Context,
    target: str = typer.Argument(..., help="The objective: FILE.py:NAME or package.module:NAME."),
    config: Path = typer.Option(
        ..., "--config", "-c", help="The sweep's YAML: space, n_trials, sampler, ..."
    ),
    n_trials: int | None = typer.Option(None, "--n-trials", min=1, help="Trials in all."),
    parallel: int | None = typer.Option(None, "--parallel", min=1, help="Workers."),
    executor: str | None = typer.Option(
        None, "--executor", "-e", help="Where workers run: process, ray, or local."
    ),
    name: str | None = typer.Option(None, "--name", help="The sweep's name (to continue one)."),
    experiment: str | None = typer.Option(None, "--experiment", help="Default: sweeps."),
) -> None:
    """Search hyperparameters with Optuna: each trial a tracked child run, pruned early."""
    from modelyard.pipelines.sweeps import NoTrialCompleted, require_optuna

    require_optuna()
    from modelyard.pipelines.sweep_setup import read_sweep_file
    from modelyard.pipelines.sweep_trials import load_objective, objective_target
    from modelyard.pipelines.sweeps import sweep as run_sweep
    from modelyard.tracking import fluent

    spec = read_sweep_file(config.read_text(encoding="utf-8"), label=str(config))
    objective = load_objective(target)
    fluent.configure(ctx.obj.settings())
    console = ctx.obj.console()
    try:
        result = run_sweep(
            objective,
            spec.space,
            n_trials=n_trials or spec.n_trials,
            direction=spec.direction,
            sampler=spec.sampler,
            seed=spec.seed,
            parallel=parallel or spec.parallel,
            executor=executor or spec.executor,
            pruner=spec.pruner,
            metric=spec.metric,
            name=name or spec.name or getattr(objective, "__name__", "sweep"),
            experiment=experiment or spec.experiment,
            target=objective_target(objective),
        )
    except NoTrialCompleted as exc:
        console.print(exc.message, markup=False)
        raise typer.Exit(EXIT_NO_TRIAL) from None
    counts = ", ".join(
        f"{result.count(s)} {s.lower()}" for s in ("COMPLETE", "PRUNED", "FAIL") if result.count(s)
    )
    how = "continued" if result.resumed else "ran"
    console.print(
        f"sweep {result.name} {how}: run {result.run_id}, {len(result.trials)} trials ({counts})",
        markup=False,
    )
    console.print(
        f"best: run {result.best_run_id}  {result.metric}={result.best_value!r}  "
        f"params {result.best_params}",
        markup=False,
    )
    console.print(
        f"compare: modelyard runs compare {result.best_run_id} <another trial's run>",
        markup=False,
    )
