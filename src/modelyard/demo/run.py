"""The demo's story in order: every stage through the rooms' public APIs, on the stores the
settings name. ``run_demo`` is what ``modelyard demo`` calls."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from modelyard.demo import build, retrain, rollout, training, watch
from modelyard.demo.data import Scale, make_sales
from modelyard.demo.story import Story
from modelyard.demo.workspace import DATASET, MODEL, PRODUCTION, REVIEWER, Workspace

WARMUP_DAYS = 56
ROLLOUT_TITLE = "the retrained model: shadow, canary, then promoted or rolled back"

if TYPE_CHECKING:
    from rich.console import Console

    from modelyard.config import Settings


@dataclass(frozen=True)
class Options:
    """How big the demo is: history rows, sweep trials, boosting rounds, CV folds, live
    days, and how many real seconds a simulated day of traffic lasts."""

    rows: int = 20_000
    trials: int = 4
    max_iter: int = 120
    folds: int = 3
    live_days: int = 28
    seconds_per_day: float = 1.0

    @classmethod
    def quick(cls, rows: int = 8_000) -> Options:
        return cls(rows=rows, trials=2, max_iter=40, folds=2, live_days=16, seconds_per_day=0.5)


@dataclass
class Outcome:
    """What the summary needs beyond the stages."""

    story: Story
    log_path: Any = None
    versions: dict[str, Any] = field(default_factory=dict)
    canary: dict[str, str] = field(default_factory=dict)
    mae: dict[str, float] = field(default_factory=dict)
    lead_time_s: float | None = None
    lead_time_days: int | None = None
    pipeline_run: Any = None


def run_demo(settings: Settings, console: Console, options: Options) -> Outcome:
    import sklearn.ensemble  # noqa: F401 - load OpenMP before limiting it
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    # One thread per model fit: on a shared machine OpenMP's spinning threads cost ~10x.
    with threadpool_limits(1, user_api="openmp"):
        ws = Workspace.open(settings)
        try:
            return _story(ws, console, options)
        finally:
            ws.close()


def _story(ws: Workspace, console: Console, options: Options) -> Outcome:
    import pandas as pd

    story = Story(console)
    out = Outcome(story)
    scale = Scale.for_rows(options.rows, options.live_days)

    with story.stage("generate", "generate sales history") as st:
        sales = make_sales(scale)
        history = sales[~sales["live"]].drop(columns="live")
        live = sales[sales["live"]].drop(columns="live")
        st.say(
            f"{scale.stores} stores × {scale.products} products × {scale.history_days} days = "
            f"{len(history):,} rows (4 regions, 4 categories; weekly and yearly seasonality, "
            "promotions with price cuts, supplier disruptions), plus "
            f"{scale.live_days} live days to serve (the season shifts and a promotion "
            f"shock starts on live day {scale.calm_days + 1})"
        )
        source = ws.folder / "sales.parquet"  # the feature store's source: what has arrived
        history.to_parquet(source, index=False)
        # The dataset's rows start once the longest lag has history behind it; the feature
        # source keeps every day, so lags reach back into the warm-up.
        warm = history["date"].min() + pd.Timedelta(days=WARMUP_DAYS)
        st.say(f"the dataset's rows start after a {WARMUP_DAYS}-day warm-up (the longest lag)")

    with story.stage("data", "dataset version and contract check") as st:
        dataset = build.snapshot(
            st, ws, history[history["date"] >= warm], "history up to the cut-off"
        )

    with story.stage("features", "feature store") as st:
        names = build.feature_store(st, ws, source)
        ts = build.training_rows(
            ws, history[history["date"] >= warm], names, "retail-demand-history"
        )
        frame = ts.to_df()
        st.say(
            f"point-in-time training set {ts.training_set_id}: {len(frame):,} rows × "
            f"{len(names)} features"
        )

    with story.stage("train", "training: sweep and time-aware cross-validation") as st:
        fit_rows, holdout = training.holdout_split(frame)
        baseline, chosen = build.sweep_and_train(st, ws, fit_rows, names, options, (dataset, ts))
        params = {k: v for k, v in chosen.params.items() if k != "model"}

    with story.stage("slices", "metrics per region and category") as st:
        build.slices(st, chosen)

    with story.stage("register", "registration with a model card") as st:
        incumbent = build.champion(ws)
        if incumbent is None:
            incumbent = build.register(ws, baseline, "ridge baseline: today's production model")
            build.approve(st, ws, incumbent)
            ws.as_user(REVIEWER).set_registered_model_alias(MODEL, "champion", incumbent.version)
            st.say(f"{incumbent.uri} (ridge baseline) is the champion: the model serving today")
        else:
            st.reused(f"champion {incumbent.uri} from an earlier run serves today")
        candidate = build.register(
            ws, chosen, "gradient boosting over the feature store's features"
        )
        card = ws.registry.get_card(MODEL, candidate.version)
        st.say(
            f"{candidate.uri} registered by {card.created_by or 'ana'}: card with intended use, "
            f"limitations, {len(card.validation_results)} validation results, "
            f"owners {list(card.owners)}"
        )
        for version in (incumbent, candidate):
            watch.reference(ws, version, frame, names, f"{DATASET} history")
        out.versions.update({"champion": incumbent.uri, "candidate": candidate.uri})

    with story.stage("gate", "quality gate against the champion") as st:
        report = build.gate(st, ws, candidate, holdout, names)

    with story.stage("approve", "approval (four eyes)") as st:
        if report.passed:
            build.approve(st, ws, candidate)
        else:
            st.skipped("the candidate failed its gate: it stays registered with the failed verdict")

    with story.stage("deploy", "blue-green in staging, then a canary in production") as st:
        rollout.ensure_deployments(st, ws, incumbent)
        if report.passed:
            rollout.blue_green(st, ws, candidate)
            rollout.start_canary(
                st, ws, candidate, interval_s=max(1.0, 2 * options.seconds_per_day)
            )
        else:
            st.skipped("no blue-green or canary: the candidate failed its gate")

    from modelyard.demo import traffic

    port = traffic.free_port()
    log_path = ws.folder / "serve.log"
    out.log_path = log_path
    # Each live day's sales reach the feature store's source as the day ends; a day's
    # features read only earlier days (lags and windows end the day before) and the day's
    # own plan (price, promotion), so they can be computed for all live days at once.
    sales.drop(columns="live").to_parquet(source, index=False)
    live_rows = build.training_rows(ws, live, names, "retail-demand-live").to_df()
    unfilled = float(live_rows["units_lag_1"].isna().mean())
    if unfilled > 0.01:
        from modelyard.errors import InvalidState

        raise InvalidState(f"{unfilled:.0%} of the live rows have no features in the store")
    days = sorted(live_rows["date"].unique())
    calm, shock_end = days[: scale.calm_days], days[scale.calm_days : (3 * len(days)) // 4]
    after = days[(3 * len(days)) // 4 :]
    args = [
        "serve",
        PRODUCTION,
        "--port",
        str(port),
        "--poll-interval",
        "0.5",
        "--batch-max-size",
        "1",
    ]
    with (
        open(log_path, "ab") as log,
        traffic.process(args, ws.environment(), log, "/ping", port) as url,
        _transport(url) as http,
    ):
        shop = traffic.Shop(http, names, options.seconds_per_day)
        traffic_started = time.monotonic()
        arrived = history.copy()
        with story.stage("traffic", "live traffic over HTTP: canary days") as st:
            st.say(
                f"`modelyard serve {PRODUCTION}` on {url}; one simulated day = "
                f"{options.seconds_per_day:g} real seconds (the prediction log keeps real "
                "timestamps; the monitor's window spans those real minutes)"
            )
            st.say(
                "each request carries a store's rows of the day with their 202 features from "
                "the feature store (computed from the sales up to the day before)"
            )
            for day in calm:
                shop.day(live_rows[live_rows["date"] == day])
            shop.flush()
            arrived = pd.concat([arrived, live[live["date"].isin(calm)]])
            st.say(
                f"{len(calm)} calm days: {shop.served.requests} requests, "
                f"{shop.served.feedback} outcomes sent back a day later"
            )
            if report.passed:
                mae = {v: shop.served.mae(v) for v in shop.served.by_version}
                out.canary["candidate"] = rollout.decide(st, ws, candidate, mae, "canary")
                if out.canary["candidate"] == "promoted":
                    incumbent = candidate
        with story.stage("shock", "live traffic: seasonal shift and promotion shock") as st:
            before = len(shop.served.by_version.get(int(incumbent.version), []))
            for day in shock_end:
                shop.day(live_rows[live_rows["date"] == day])
            shop.flush()
            served = shop.served.by_version.get(int(incumbent.version), [])
            errors = served[before:]
            out.mae["before retraining"] = _mae(errors)
            arrived = pd.concat([arrived, live[live["date"].isin(shock_end)]])
            st.say(
                f"{len(shock_end)} shocked days served by v{incumbent.version}: live MAE "
                f"{out.mae['before retraining']:.3f} (calm days: {_mae(served[:before]):.3f})"
            )
        with story.stage("monitor", "drift and live-metric alert") as st:
            limit = 1.5 * chosen.mae  # half as much again as the cross-validated error
            time.sleep(3.0)  # the data plane flushes its prediction log every 2 s
            # The window: the real minutes the simulated days took, ending now.
            window = f"{math.ceil((time.monotonic() - traffic_started) / 60)}m"
            name = watch.create_monitor(st, ws, limit, window)
            watch.evaluate(st, ws, name)
        with story.stage("retrain", "the retraining pipeline, triggered by the alert") as st:
            cutoff = time.time()
            build.snapshot(
                st, ws, arrived[arrived["date"] >= warm], "history and the live days so far"
            )
            interval = max(1.0, 2 * options.seconds_per_day)
            holdout_days = max(2, len(shock_end) // 3)
            config = retrain.write_config(ws, names, params, interval, holdout_days)
            retrain.register_pipeline(st, ws, config)
            record = retrain.triggered_run(st, ws)
            out.pipeline_run = record
            new = _retrained(st, ws, record)
        serving_now = {v[2] for v in rollout.serving(ws, PRODUCTION) if v[3] >= 100.0}
        if new is not None and int(new.version) in serving_now:
            with story.stage("rollout", ROLLOUT_TITLE) as st:
                st.reused(
                    f"{new.uri} (the same data and model as before) already serves all traffic"
                )
        elif new is not None:
            with story.stage("rollout", ROLLOUT_TITLE) as st:
                st.say(rollout.describe(ws, PRODUCTION))
                build.approve(st, ws, new)
                rollout.blue_green(st, ws, new)
                if not any(v[0] == "canary" for v in rollout.serving(ws, PRODUCTION)):
                    rollout.start_canary(
                        st, ws, new, interval_s=max(1.0, 2 * options.seconds_per_day)
                    )
                first = {v: len(e) for v, e in shop.served.by_version.items()}
                for day in after:
                    shop.day(live_rows[live_rows["date"] == day])
                shop.flush()
                mae = {v: _mae(e[first.get(v, 0) :]) for v, e in shop.served.by_version.items()}
                out.canary["retrained"] = rollout.decide(
                    st, ws, new, mae, "canary of the retrained model"
                )
                out.mae["after retraining"] = mae.get(int(new.version), float("nan"))
                out.mae["old model, same days"] = mae.get(int(incumbent.version), float("nan"))
                if out.canary["retrained"] == "promoted":
                    out.lead_time_s = time.time() - cutoff
                    out.versions["retrained"] = new.uri
                st.say(rollout.describe(ws, PRODUCTION))
        else:
            with story.stage("rollout", ROLLOUT_TITLE) as st:
                st.skipped("no retrained version to roll out (see the retraining stage)")
    return out


def _retrained(stage: Any, ws: Workspace, record: Any) -> Any:
    """The version the pipeline registered, after saying what each step did."""
    if record is None:
        return None
    stage.say(
        f"pipeline run {record.run_id}: {record.status}, cause {record.cause.get('kind')} "
        f"({record.cause.get('rule')})"
    )
    for step in record.steps:
        stage.say(
            f"  {step.step_key:<16} {step.status.lower()}"
            + (f" — {step.reason}" if step.reason else "")
        )
    from modelyard.errors import ModelyardError
    from modelyard.pipelines.runner import load_output

    try:
        verdict = load_output(record, "gate", settings=ws.settings)
        stage.say(f"gate of the retrained version against the champion: {verdict['summary']}")
    except ModelyardError:
        pass  # the run stopped before the gate: its steps above say where
    try:
        version = load_output(record, "register", settings=ws.settings)
        rolled = load_output(record, "roll_out", settings=ws.settings)
    except ModelyardError as exc:
        stage.say(f"nothing to roll out: {exc.message}")
        return None
    stage.say(
        f"registered {version['uri']}; roll-out: shadow {rolled.get('shadow')}, "
        f"canary {rolled.get('canary')}"
    )
    return ws.registry.get_model_version(MODEL, version["version"])


def _mae(errors: list[float]) -> float:
    import numpy as np

    return float(np.mean(np.abs(errors))) if errors else float("nan")


def _transport(url: str) -> Any:
    from modelyard.http_transport import HttpTransport

    return HttpTransport(url, max_retries=2, timeout_s=60.0)
