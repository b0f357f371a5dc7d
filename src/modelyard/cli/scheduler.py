"""``modelyard scheduler``: the one scheduler process — monitors, pipeline schedules, alert
triggers (``pipelines.scheduler.PipelineScheduler``).

    modelyard scheduler                    # run until Ctrl-C / SIGTERM; as many as you like
    modelyard scheduler --once             # do what is due now, wait for it, stop
    modelyard scheduler --no-monitors      # pipelines only (monitors evaluated elsewhere)

Run one, or several against one PostgreSQL store for availability: leases and firings keep
them from evaluating a window or starting a run twice.
"""

from __future__ import annotations

import typer


def scheduler(
    ctx: typer.Context,
    poll: float = typer.Option(30.0, "--poll", min=0.1, help="Seconds between looks."),
    once: bool = typer.Option(False, "--once", help="Do what is due now, wait for it, stop."),
    monitors: bool = typer.Option(
        True, "--monitors/--no-monitors", help="Evaluate monitors too (the default)."
    ),
    executor: str = typer.Option(
        "process", "--executor", "-e", help="Where alert-triggered pipelines' steps run."
    ),
) -> None:
    """Run monitors, pipeline schedules and alert triggers: each due run started once.

    Monitors are evaluated at their cron ticks; a schedule's tick starts its pipeline; an
    alert naming a pipeline (a rule's ``trigger``) starts it once per firing, the alert
    recorded as the run's cause. A tick missed while no scheduler ran is run once, for
    the latest missed tick, when one starts. A tick that comes while the schedule's
    previous run is still going is skipped (runs of a schedule never overlap).
    """
    import logging
    import signal

    from modelyard.pipelines.scheduler import PipelineScheduler

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    runner = PipelineScheduler.from_settings(
        ctx.obj.settings(), monitors=monitors, poll_s=poll, executor=executor
    )
    if once:
        report = runner.tick()
        for r in report.monitors:
            typer.echo(f"monitor {r.monitor}: window ending {_time(r.window_end)} {r.status}")
        for f in report.recovered:
            typer.echo(f"recovered {f.key} ({f.pipeline}), left by {f.claimed_by}")
        for f in report.started:
            typer.echo(f"started {f.pipeline} for {f.key}")
        for f in report.skipped:
            typer.echo(f"skipped {f.key}: {f.detail}")
        runner.join()
        return
    signal.signal(signal.SIGTERM, lambda *_: runner.stop())
    typer.echo(f"scheduler {runner.holder}: looking every {poll:g}s (Ctrl-C stops)")
    try:
        runner.run_forever()
    except KeyboardInterrupt:
        runner.stop()
        typer.echo("stopping: waiting for the pipelines this scheduler started")
        runner.join()


def _time(ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")
