"""The tracking store interface: one contract test suite for all implementations.

Every method is abstract except a few optional ones with a working default
(``get_runs``; ``get_metric_columns_page``, from ``get_metric_history``, and
``get_metric_columns``, from its pages; ``close``, which has nothing to release) or a
clear refusal (``search_run_revisions``, ``run_revisions``).

Implementations: ``SqlTrackingStore`` (SQLite, PostgreSQL) and, for
``MODELYARD_TRACKING_URI=http://…``, a REST store that speaks to ``modelyard server``,
where the same SQL store enforces the same rules.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from modelyard.errors import NotFound, NotImplementedFeature
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

#: The page of a metric history the mlflow client asks for (its
#: ``GET_METRIC_HISTORY_MAX_RESULTS``), and ours.
HISTORY_PAGE = 25_000
#: The largest page a store hands out: a server holds a page while answering (about 200
#: bytes a point), so a larger request is answered a page of this size at a time.
MAX_HISTORY_PAGE = 100_000


class TrackingStore(ABC):
    # experiments ---------------------------------------------------------------
    @abstractmethod
    def create_experiment(
        self, name: str, artifact_location: str | None = None, tags: dict[str, str] | None = None
    ) -> str: ...

    @abstractmethod
    def get_experiment(self, experiment_id: str) -> Experiment: ...

    @abstractmethod
    def get_experiment_by_name(self, name: str) -> Experiment | None: ...

    @abstractmethod
    def search_experiments(
        self,
        view_type: ViewType = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        filter_string: str | None = None,
        page_token: str | None = None,
        order_by: Sequence[str] | None = None,
    ) -> Page[Experiment]:
        """MLflow's experiment search: ``filter_string`` and ``order_by`` in its grammar
        (``search_filter.EXPERIMENTS``); id order when ``order_by`` is empty."""

    @abstractmethod
    def rename_experiment(self, experiment_id: str, new_name: str) -> None: ...

    @abstractmethod
    def delete_experiment(self, experiment_id: str) -> None: ...

    @abstractmethod
    def restore_experiment(self, experiment_id: str) -> None: ...

    @abstractmethod
    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None: ...

    @abstractmethod
    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        """Remove a tag; NotFound when the experiment has no such tag."""

    # runs ----------------------------------------------------------------------
    @abstractmethod
    def create_run(
        self,
        experiment_id: str,
        user_id: str,
        start_time: int,
        tags: Sequence[RunTag] = (),
        run_name: str | None = None,
        parent_run_id: str | None = None,
    ) -> Run: ...

    @abstractmethod
    def get_run(self, run_id: str) -> Run: ...

    @abstractmethod
    def update_run_info(
        self,
        run_id: str,
        status: str | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
    ) -> RunInfo: ...

    @abstractmethod
    def delete_run(self, run_id: str) -> None: ...

    @abstractmethod
    def restore_run(self, run_id: str) -> None: ...

    @abstractmethod
    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
    ) -> None:
        """Write all or nothing. Replaying the same batch is a no-op (retries are safe)."""

    @abstractmethod
    def delete_tag(self, run_id: str, key: str) -> None: ...

    @abstractmethod
    def get_metric_history(
        self, run_id: str, key: str, max_results: int | None = None, page_token: str | None = None
    ) -> Page[Metric]: ...

    def get_metric_columns_page(
        self, run_id: str, key: str, max_results: int, page_token: str | None = None
    ) -> tuple[MetricColumns, str | None]:
        """A page of ``get_metric_history`` as NumPy columns, and the next page's token:
        what a chart streams through a long history (the SQL store decodes its chunks
        straight into arrays, without a Python object a point)."""
        import numpy as np

        page = self.get_metric_history(run_id, key, max_results, page_token)
        return (
            MetricColumns(
                np.array([p.step for p in page.items], dtype=np.int64),
                np.array([p.timestamp for p in page.items], dtype=np.int64),
                np.array([p.value for p in page.items], dtype=np.float64),
            ),
            page.next_page_token,
        )

    def get_metric_columns(self, run_id: str, key: str) -> MetricColumns:
        """The whole history as NumPy columns, in ``get_metric_history`` order (charts
        down-sample it), gathered a page at a time (``gather_columns``): besides the
        answer, memory holds a page and one column."""
        return gather_columns(metric_column_pages(self, run_id, key, MAX_HISTORY_PAGE))

    @abstractmethod
    def log_inputs(self, run_id: str, datasets: Sequence[DatasetInput]) -> None: ...

    @abstractmethod
    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        view_type: ViewType = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> Page[Run]: ...

    def search_run_revisions(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        view_type: ViewType = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> Page[tuple[str, int]]:
        """``search_runs`` answering only ``(run_id, revision)`` per run. The revision is a
        counter bumped by every change to the run, so a caller that keeps rendered runs
        (the server's search answers) reloads only the runs that moved."""
        raise NotImplementedFeature("this store keeps no run revisions", field="store")

    def run_revisions(self, run_ids: Sequence[str]) -> dict[str, int]:
        """The current revision of each run in ``run_ids`` that exists."""
        raise NotImplementedFeature("this store keeps no run revisions", field="store")

    def get_runs(self, run_ids: Sequence[str]) -> list[Run]:
        """Whole runs in the order of ``run_ids``; ids not found are skipped."""
        found = []
        for run_id in run_ids:
            try:
                found.append(self.get_run(run_id))
            except NotFound:
                continue
        return found

    def close(self) -> None:  # noqa: B027 - optional, like get_runs: nothing to release
        """Release what this store holds for itself (a remote store's kept-alive
        connections). A SQL store holds nothing of its own: its ``Database`` is shared per
        process (``tracking.backends.database_for``). A closed store stays usable."""

    @abstractmethod
    def list_deleted_runs(self, older_than_ms: int | None = None) -> list[RunInfo]:
        """Runs in the deleted stage (for garbage collection)."""

    @abstractmethod
    def purge_run(self, run_id: str) -> None:
        """Remove a deleted run and everything it logged, for good."""


def metric_column_pages(
    store: TrackingStore, run_id: str, key: str, page_size: int = HISTORY_PAGE
) -> Iterator[MetricColumns]:
    """A history's ``get_metric_columns_page``s, one after the other (each read when
    the one before has been taken)."""
    token: str | None = None
    while True:
        columns, token = store.get_metric_columns_page(run_id, key, page_size, token)
        yield columns
        if not token:
            return


def gather_columns(pages: Iterable[MetricColumns]) -> MetricColumns:
    """Pages of a history joined into one set of columns, in their order.

    Why this shape: the answer itself is 24 bytes a point (240 MB for the 10 million
    points of a long training run) and the caller asked for all of it, as
    ``MlflowClient.get_metric_history`` returns all of a history, however long; what
    must not grow with the history is the work beside it. Decoding all the chunks at
    once and sorting them peaked at 6.8 times the answer (1.6 GB for 10 million points);
    here the pages are kept as they come, then joined a column at a time, each page's
    part of a column freed as it is copied: at most the answer, one more column (8 bytes
    a point) and a page — 1.34 times the answer, 322 MB, at 10 million.
    """
    import numpy as np

    steps: list[Any] = []
    timestamps: list[Any] = []
    values: list[Any] = []
    for page in pages:
        steps.append(page.steps)
        timestamps.append(page.timestamps)
        values.append(page.values)

    def joined(parts: list[Any], dtype: Any) -> Any:
        column = np.concatenate(parts) if parts else np.empty(0, dtype=dtype)
        parts.clear()  # the pages' parts of this column go before the next is built
        return column

    return MetricColumns(
        joined(steps, np.int64), joined(timestamps, np.int64), joined(values, np.float64)
    )
