"""Watching the deployment: reference profiles of the served versions, a monitor with
rules (input drift, prediction drift, live forecast error from feedback), and its
evaluation over the window of real minutes the simulated days took."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from modelyard.demo.workspace import MONITOR, PIPELINE, PRODUCTION

if TYPE_CHECKING:
    import pandas as pd

    from modelyard.demo.story import Stage
    from modelyard.demo.workspace import Workspace

PROFILE_ROWS = 5_000


#: The inputs the monitor profiles and compares: the demand, price, promotion and calendar
#: signals. All 200-odd make the window's DuckDB probe exceed the monitoring room's
#: default memory limit (256 MB) today, so the demo watches these.
MONITORED = (
    "price", "promo", "disruption", "discount_depth", "price_ratio_28d", "price_lag_1",
    "promo_days_7d", "promo_days_28d", "promo_lift_28d", "units_lag_1", "units_lag_7",
    "units_avg_7d", "units_avg_28d", "units_max_7d", "units_same_weekday_4w",
    "units_trend_7_28", "day_of_week", "day_of_year", "doy_sin_1", "doy_cos_1",
)  # fmt: skip


def reference(
    ws: Workspace, version: Any, frame: pd.DataFrame, names: list[str], source: str
) -> None:
    """The version's reference profiles: the watched inputs of its training rows, and its
    predictions on them (a sample) — what the monitor compares live windows with."""
    import hashlib

    from modelyard.monitoring.profiles import ReferenceProfile
    from modelyard.monitoring.references import (
        INPUTS,
        PREDICTIONS,
        has_reference,
        prediction_table,
        reference_path,
    )
    from modelyard.monitoring.store import MonitorStore

    if has_reference(ws.registry.db, version.name, int(version.version)):
        return
    sample = frame[names].sample(min(len(frame), PROFILE_ROWS), random_state=7)
    model = ws.registry.load_model(version.uri)
    profiles = {
        INPUTS: ReferenceProfile.from_table(sample[list(MONITORED)], source=source),
        PREDICTIONS: ReferenceProfile.from_table(
            prediction_table(model.predict(sample)), source=f"{version.uri} on {source}"
        ),
    }
    store = MonitorStore(ws.registry.db)
    for kind, profile in profiles.items():
        data = profile.to_bytes()
        path = reference_path(version.name, version.version, kind)
        ws.registry.artifacts.log_bytes(path, data)
        store.put_reference_profile(
            version.name, version.version, kind, artifact_path=path,
            digest=hashlib.sha256(data).hexdigest(), rows=profile.rows, source=profile.source,
            replace=True,
        )  # fmt: skip


def rules(mae_limit: float, window: str) -> str:
    """The monitor's rules; the error rule names the retraining pipeline as its trigger."""
    return f"""\
window: {window}
rules:
  - name: input drift
    drift_share: {{above: 0.2}}
    severity: warning
  - name: prediction drift
    prediction_drift: {{}}
    severity: warning
  - name: forecast error
    metric: {{name: mae, above: {mae_limit:.3f}, min_count: 50}}
    severity: critical
    trigger: {PIPELINE}
notify:
  - log: true
"""


def create_monitor(stage: Stage, ws: Workspace, mae_limit: float, window: str) -> str:
    """A new monitor for this run (``retail-demand-watch-N``): earlier runs' monitors, their
    evaluations and alerts are kept as they were."""
    taken = {m.name for m in ws.monitors.list()}
    number = 1
    while f"{MONITOR}-{number}" in taken:
        number += 1
    name = f"{MONITOR}-{number}"
    if number > 1:
        stage.reused(f"monitors of earlier runs kept ({', '.join(sorted(taken))})")
    ws.monitors.create(name, PRODUCTION, schedule="*/5 * * * *", rules=rules(mae_limit, window))
    stage.say(
        f"monitor {name} on {PRODUCTION}: input drift share > 0.2, prediction drift, "
        f"live MAE > {mae_limit:.2f} (trigger: {PIPELINE}); window {window}"
    )
    return name


def evaluate(stage: Stage, ws: Workspace, name: str) -> Any:
    """Evaluate the window ending now; report drift, live metrics and alert transitions."""
    run = ws.monitors.run(name)
    evaluation = run.evaluation
    stage.say(
        f"evaluation {evaluation.id}: {evaluation.status}, {evaluation.rows or 0:,} logged rows "
        "in the window"
    )
    drift = evaluation.drift or {}
    columns = drift.get("columns") or {}
    if columns:
        moved = sorted(
            (c for c, v in columns.items() if v.get("values_drifted")),
            key=lambda c: -(columns[c].get("scores") or {}).get("ks_statistic", 0.0),
        )
        unread = max((v.get("current_missing") or 0.0) for v in columns.values())
        stage.say(
            f"input drift: values moved in {len(moved)} of {len(columns)} watched features "
            f"({', '.join(moved[:6])}); dataset share drifted {drift.get('share_drifted', 0):.0%}"
        )
        for column in moved[:3]:
            stage.say(f"  {column}: {columns[column].get('verdict')}")
        if unread > 0.01:
            stage.say(
                f"note: up to {unread:.0%} of the window's rows had no readable value for a "
                "watched column (counted as missing, which the share above includes)"
            )
        stage.numbers["drift share"] = drift.get("share_drifted")
        stage.numbers["features with moved values"] = f"{len(moved)} of {len(columns)}"
    for outcome in evaluation.outcomes:
        value = outcome.get("value")
        shown = (
            "unknown"
            if value is None or (isinstance(value, float) and math.isnan(value))
            else f"{value:.3f}"
        )
        state = {True: "BREACHED", False: "ok", None: "unknown"}[outcome.get("breached")]
        detail = outcome.get("detail") or ""
        stage.say(f"rule {outcome.get('rule')!r}: {state} (value {shown}) {detail}".rstrip())
        if outcome.get("rule") == "forecast error" and value is not None:
            stage.numbers["live mae (monitor)"] = value
    for transition in run.transitions:
        alert = transition.alert
        labels = ", ".join(f"{k}={v}" for k, v in sorted(dict(alert.labels).items()))
        stage.say(
            f"alert {alert.rule!r} ({labels}): {transition.previous or 'new'} → {transition.state}"
        )
    fired = [t.alert.rule for t in run.transitions if t.state == "firing"]
    stage.numbers["alerts"] = sorted(set(fired))
    return run
