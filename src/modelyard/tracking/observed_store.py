"""A tracking store that tells its observers about each write, after the write succeeded.

Why: the server counts what it ingests (``/metrics``) and renders the runs it writes for
search answers (``server.control.prerender``); both must see *every* write. ``ObservedStore``
implements ``TrackingStore`` method by method — no ``__getattr__`` pass-through — so a
write method added to the interface is abstract here too and the class cannot be built
until it is written; ``tests/tracking/test_observed_store.py`` lists the interface's
write methods and checks that each one reaches the observers.

An observer is called on the writing thread (the request's, or the async logger's), after
the inner store returned, so it must be quick and must not raise: the write is already
committed.

>>> store = ObservedStore(SqlTrackingStore(db), [metrics, prerenderer])  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Protocol

from modelyard.store.metric_chunks import MetricColumns
from modelyard.tracking.entities import (
    DatasetInput,
    Experiment,
    Metric,
    Page,
    Param,
    Run,
    RunInfo,
    RunTag,
    ViewType,
)
from modelyard.tracking.store import TrackingStore


class StoreWrite(NamedTuple):
    """One successful write to a tracking store.

    ``method`` is the store method's name; ``run_ids`` the runs the caller named or the
    write created (a deleted or restored experiment also changes its runs' lifecycle
    stage, which only its ``experiment_id`` says); ``metric_points`` how many metric
    points were stored. (A named tuple: built on every logging call, it costs a third of
    a frozen dataclass.)
    """

    method: str
    run_ids: tuple[str, ...] = ()
    experiment_id: str | None = None
    metric_points: int = 0


class WriteObserver(Protocol):
    def on_write(self, write: StoreWrite) -> None:
        """Called after each successful write; quick, and never raises."""


class ObservedStore(TrackingStore):
    """``store``, telling ``observers`` about each successful write (in order)."""

    def __init__(self, store: TrackingStore, observers: Sequence[WriteObserver]) -> None:
        self.store = store
        self.observers = tuple(observers)

    def _wrote(self, write: StoreWrite) -> None:
        for observer in self.observers:
            observer.on_write(write)

    # experiments ---------------------------------------------------------------
    def create_experiment(
        self, name: str, artifact_location: str | None = None, tags: dict[str, str] | None = None
    ) -> str:
        experiment_id = self.store.create_experiment(name, artifact_location, tags)
        self._wrote(StoreWrite("create_experiment", experiment_id=experiment_id))
        return experiment_id

    def get_experiment(self, experiment_id: str) -> Experiment:
        return self.store.get_experiment(experiment_id)

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        return self.store.get_experiment_by_name(name)

    def search_experiments(
        self,
        view_type: ViewType = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        filter_string: str | None = None,
        page_token: str | None = None,
        order_by: Sequence[str] | None = None,
    ) -> Page[Experiment]:
        return self.store.search_experiments(
            view_type, max_results, filter_string, page_token, order_by
        )

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        self.store.rename_experiment(experiment_id, new_name)
        self._wrote(StoreWrite("rename_experiment", experiment_id=experiment_id))

    def delete_experiment(self, experiment_id: str) -> None:
        self.store.delete_experiment(experiment_id)
        self._wrote(StoreWrite("delete_experiment", experiment_id=experiment_id))

    def restore_experiment(self, experiment_id: str) -> None:
        self.store.restore_experiment(experiment_id)
        self._wrote(StoreWrite("restore_experiment", experiment_id=experiment_id))

    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        self.store.set_experiment_tag(experiment_id, key, value)
        self._wrote(StoreWrite("set_experiment_tag", experiment_id=experiment_id))

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        self.store.delete_experiment_tag(experiment_id, key)
        self._wrote(StoreWrite("delete_experiment_tag", experiment_id=experiment_id))

    # runs ----------------------------------------------------------------------
    def create_run(
        self,
        experiment_id: str,
        user_id: str,
        start_time: int,
        tags: Sequence[RunTag] = (),
        run_name: str | None = None,
        parent_run_id: str | None = None,
    ) -> Run:
        run = self.store.create_run(
            experiment_id, user_id, start_time, tags, run_name, parent_run_id
        )
        info = run.info
        self._wrote(StoreWrite("create_run", (info.run_id,), info.experiment_id))
        return run

    def get_run(self, run_id: str) -> Run:
        return self.store.get_run(run_id)

    def update_run_info(
        self,
        run_id: str,
        status: str | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
    ) -> RunInfo:
        info = self.store.update_run_info(run_id, status, end_time, run_name)
        self._wrote(StoreWrite("update_run_info", (run_id,)))
        return info

    def delete_run(self, run_id: str) -> None:
        self.store.delete_run(run_id)
        self._wrote(StoreWrite("delete_run", (run_id,)))

    def restore_run(self, run_id: str) -> None:
        self.store.restore_run(run_id)
        self._wrote(StoreWrite("restore_run", (run_id,)))

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
    ) -> None:
        self.store.log_batch(run_id, metrics, params, tags)
        self._wrote(StoreWrite("log_batch", (run_id,), metric_points=len(metrics)))

    def delete_tag(self, run_id: str, key: str) -> None:
        self.store.delete_tag(run_id, key)
        self._wrote(StoreWrite("delete_tag", (run_id,)))

    def get_metric_history(
        self, run_id: str, key: str, max_results: int | None = None, page_token: str | None = None
    ) -> Page[Metric]:
        return self.store.get_metric_history(run_id, key, max_results, page_token)

    def get_metric_columns(self, run_id: str, key: str) -> MetricColumns:
        return self.store.get_metric_columns(run_id, key)

    def get_metric_columns_page(
        self, run_id: str, key: str, max_results: int, page_token: str | None = None
    ) -> tuple[MetricColumns, str | None]:
        return self.store.get_metric_columns_page(run_id, key, max_results, page_token)

    def log_inputs(self, run_id: str, datasets: Sequence[DatasetInput]) -> None:
        self.store.log_inputs(run_id, datasets)
        self._wrote(StoreWrite("log_inputs", (run_id,)))

    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        view_type: ViewType = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> Page[Run]:
        return self.store.search_runs(
            experiment_ids, filter_string, view_type, max_results, order_by, page_token
        )

    def search_run_revisions(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        view_type: ViewType = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> Page[tuple[str, int]]:
        return self.store.search_run_revisions(
            experiment_ids, filter_string, view_type, max_results, order_by, page_token
        )

    def run_revisions(self, run_ids: Sequence[str]) -> dict[str, int]:
        return self.store.run_revisions(run_ids)

    def get_runs(self, run_ids: Sequence[str]) -> list[Run]:
        return self.store.get_runs(run_ids)

    def list_deleted_runs(self, older_than_ms: int | None = None) -> list[RunInfo]:
        return self.store.list_deleted_runs(older_than_ms)

    def purge_run(self, run_id: str) -> None:
        self.store.purge_run(run_id)
        self._wrote(StoreWrite("purge_run", (run_id,)))

    def close(self) -> None:
        self.store.close()


__all__ = ["ObservedStore", "StoreWrite", "WriteObserver"]
