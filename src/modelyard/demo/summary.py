"""The demo's last words: what happened at each stage, the key numbers, the lineage of the
model serving now, and where to look (commands, and the web UI)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from modelyard.demo.story import MARKS
from modelyard.demo.workspace import MODEL, PRODUCTION

if TYPE_CHECKING:
    from rich.console import Console

    from modelyard.demo.run import Outcome


def print_summary(
    console: Console, outcome: Outcome, settings: Any, where: str, command: str
) -> None:
    from rich.markup import escape
    from rich.table import Table

    story = outcome.story
    table = Table(title="modelyard demo: the retail demand-forecasting story")
    for column in ("", "stage", "status", "time", "what happened"):
        table.add_column(column, overflow="fold")
    for number, stage in enumerate(story.stages, 1):
        first = next((line for line in stage.lines if not line.startswith("reused")), "")
        table.add_row(
            MARKS[stage.status], f"{number}. {stage.title}", stage.status, f"{stage.seconds:.0f}s",
            escape(first[:110]),
        )  # fmt: skip
    console.print(table)

    numbers = []
    mae = outcome.mae
    if "before retraining" in mae:
        numbers.append(
            "forecast error (live MAE) during the shock, before retraining: "
            f"{mae['before retraining']:.3f}"
        )
    if "after retraining" in mae and not math.isnan(mae["after retraining"]):
        numbers.append(
            f"after retraining: {mae['after retraining']:.3f} (the old model on the same days: "
            f"{mae.get('old model, same days', float('nan')):.3f})"
        )
    trained = story.get("train")
    for key in ("cv rmse (baseline)", "cv rmse (boosting)"):
        if trained is not None and key in trained.numbers:
            numbers.append(f"{key}: {trained.numbers[key]:.3f}")
    monitor = story.get("monitor")
    if monitor and "drift share" in monitor.numbers:
        numbers.append(
            f"drift: values moved in {monitor.numbers.get('features with moved values')} "
            f"watched features (share drifted {monitor.numbers['drift share']:.0%}); "
            f"alerts fired: {', '.join(monitor.numbers.get('alerts') or [])}"
        )
    for key, verdict in outcome.canary.items():
        numbers.append(f"canary of the {key} model: {verdict}")
    if outcome.lead_time_s is not None:
        numbers.append(
            f"lead time from the data cut-off (the new dataset version) to the retrained model "
            f"serving all traffic: {outcome.lead_time_s:.0f} s"
        )
    else:
        numbers.append("lead time: the retrained model did not take all traffic in this run")
    numbers.append(
        f"demo time: {story.seconds:.0f} s wall, {story.cpu_seconds:.0f} s CPU (this process)"
    )
    console.print("\n[bold]key numbers[/]")
    for line in numbers:
        console.print(f"  {escape(line)}", soft_wrap=True)

    serving = outcome.versions.get("retrained") or outcome.versions.get("candidate")
    console.print("\n[bold]where to look[/]")
    for line in (
        f"{command} runs list {where} --experiment {MODEL}",
        f"{command} models show {MODEL} {where}" if serving else "",
        f"{command} deploy status {PRODUCTION} {where}",
        f"{command} monitor list {where}",
        f"{command} pipelines list {where}",
        f"{command} lineage {serving} {where}" if serving else "",
        f"{command} ui {where}",
    ):
        if line:
            console.print(f"  [cyan]{escape(line)}[/]", soft_wrap=True)
    console.print(f"  metadata:  {escape(settings.resolved_store_uri())}", soft_wrap=True)
    console.print(f"  artifacts: {escape(settings.resolved_artifacts_uri())}", soft_wrap=True)
