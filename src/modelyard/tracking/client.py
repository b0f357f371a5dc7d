"""``TrackingClient``: the explicit, stateless tracking API (ids in, entities out).

It validates what callers log, applies team conventions, records where a run came from,
and moves artifacts; the store it is given (local SQL or a remote server) persists. The
fluent functions in ``modelyard`` (``start_run``, ``log_metric``…) are a thin layer over
one of these.

>>> client = TrackingClient.from_settings(Settings(home=tmp_home))
>>> run = client.create_run(client.create_experiment("demand"))
>>> client.log_metric(run.info.run_id, "rmse", 12.5, step=1)
>>> client.get_run(run.info.run_id).data.metrics
{'rmse': 12.5}
>>> client.close()

``close()`` (or ``with TrackingClient.from_settings(...) as client:``) writes what
background logging holds and closes the store's connections to a remote server.
"""

from __future__ import annotations

import json
import posixpath
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelyard.config import Settings, load_settings, os_user
from modelyard.errors import AlreadyExists, InvalidParameter, NotFound
from modelyard.ids import now_ms
from modelyard.store.metric_chunks import MetricColumns
from modelyard.tracking import checks, conventions
from modelyard.tracking.async_logging import AsyncLogger
from modelyard.tracking.datasets import describe
from modelyard.tracking.entities import (
    DatasetInput,
    Experiment,
    Metric,
    Page,
    Param,
    Run,
    RunInfo,
    RunStatus,
    RunTag,
    ViewType,
)
from modelyard.tracking.run_context import system_tags
from modelyard.tracking.search_filter import quote
from modelyard.tracking.store import (
    HISTORY_PAGE,
    MAX_HISTORY_PAGE,
    TrackingStore,
    gather_columns,
    metric_column_pages,
)
from modelyard.tracking.system_tags import CLIENT_REPORTED_RUN_TAGS, refuse_system_tags


@dataclass(frozen=True)
class GcReport:
    runs_purged: int
    blobs_removed: int
    bytes_freed: int


class TrackingClient:
    def __init__(
        self,
        store: TrackingStore,
        artifacts: Any,
        settings: Settings | None = None,
        *,
        system: bool = True,
    ) -> None:
        self.store = store
        self.artifacts = artifacts
        self.settings = settings or load_settings()
        #: False for a server answering requests: ``modelyard.*`` tags are refused
        #: (``system_tags``), but for those a client reports about where a run ran.
        self.system = system
        self._async: AsyncLogger | None = None

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> TrackingClient:
        """Open the stores the settings name: local SQL + artifacts, or a remote server."""
        from modelyard.tracking.backends import open_backends

        settings = settings or load_settings()
        store, artifacts = open_backends(settings)
        return cls(store, artifacts, settings)

    def __enter__(self) -> TrackingClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Write what background logging holds (raising what failed, like ``flush``) and
        close the store's connections. The client stays usable: a later call reconnects."""
        try:
            if self._async is not None:
                logger, self._async = self._async, None
                logger.close()
        finally:
            self.store.close()

    # experiments ---------------------------------------------------------------
    def create_experiment(
        self, name: str, artifact_location: str | None = None, tags: Mapping[str, str] | None = None
    ) -> str:
        checks.check_experiment_name(name)
        conventions.check_experiment_name(self.settings, name)
        self._check_client_tags(tags or {}, "experiment")
        clean = {
            checks.check_key(k, "tag"): checks.check_tag_value(k, v)
            for k, v in (tags or {}).items()
        }
        return self.store.create_experiment(name, artifact_location, clean)

    def get_experiment(self, experiment_id: str) -> Experiment:
        return self.store.get_experiment(str(experiment_id))

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        return self.store.get_experiment_by_name(name)

    def get_or_create_experiment(self, name: str) -> Experiment:
        found = self.store.get_experiment_by_name(name)
        if found is None:
            try:
                return self.get_experiment(self.create_experiment(name))
            except AlreadyExists:  # another thread or process created it since we looked
                found = self.store.get_experiment_by_name(name)
                if found is None:
                    raise
        return found

    def search_experiments(
        self,
        view_type: ViewType | str = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        name_like: str | None = None,
        page_token: str | None = None,
        *,
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
    ) -> Page[Experiment]:
        """Experiments matching MLflow's ``filter_string`` (``name LIKE 'demand%' AND
        tags.team = 'retail'``), in ``order_by`` order (id order by default).

        ``name_like`` is a shorthand for the clause ``name ILIKE '<name_like>'``.
        """
        if name_like:
            by_name = f"name ILIKE {quote(name_like, last=True)}"
            filter_string = f"{filter_string} AND {by_name}" if filter_string else by_name
        return self.store.search_experiments(
            _view_type(view_type), max_results, filter_string, page_token, order_by
        )

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        conventions.check_experiment_name(self.settings, new_name)
        self.store.rename_experiment(str(experiment_id), new_name)

    def delete_experiment(self, experiment_id: str) -> None:
        self.store.delete_experiment(str(experiment_id))

    def restore_experiment(self, experiment_id: str) -> None:
        self.store.restore_experiment(str(experiment_id))

    def set_experiment_tag(self, experiment_id: str, key: str, value: Any) -> None:
        checks.check_key(key, "tag")
        self._check_client_tags([key], "experiment")
        self.store.set_experiment_tag(str(experiment_id), key, checks.check_tag_value(key, value))

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        self._check_client_tags([key], "experiment")
        self.store.delete_experiment_tag(str(experiment_id), key)

    # runs ----------------------------------------------------------------------
    def create_run(
        self,
        experiment_id: str,
        run_name: str | None = None,
        tags: Mapping[str, Any] | None = None,
        start_time: int | None = None,
        parent_run_id: str | None = None,
        record_system_tags: bool = True,
    ) -> Run:
        """Start a run; it records git commit, entry point, versions, host and user."""
        self._check_client_tags(tags or {}, "run")
        user_tags = {
            checks.check_key(k, "tag"): checks.check_tag_value(k, v)
            for k, v in (tags or {}).items()
        }
        conventions.check_run_tags(self.settings, user_tags)
        if run_name is not None:
            checks.check_text(run_name, "run name", checks.MAX_RUN_NAME_LENGTH)
        if parent_run_id is not None:
            parent = self.store.get_run(parent_run_id)
            if parent.info.experiment_id != str(experiment_id):
                raise InvalidParameter(
                    f"parent run {parent_run_id} belongs to experiment "
                    f"{parent.info.experiment_id}, not {experiment_id}",
                    field="parent_run_id",
                )
        user = self.settings.user or os_user()
        merged = {**(system_tags(user) if record_system_tags else {}), **user_tags}
        return self.store.create_run(
            str(experiment_id),
            user_id=user,
            start_time=start_time if start_time is not None else now_ms(),
            tags=[RunTag(k, v) for k, v in merged.items()],
            run_name=run_name,
            parent_run_id=parent_run_id,
        )

    def get_run(self, run_id: str) -> Run:
        return self.store.get_run(run_id)

    def set_terminated(
        self, run_id: str, status: RunStatus | str = RunStatus.FINISHED, end_time: int | None = None
    ) -> RunInfo:
        """End a run. Pending asynchronous writes for it are flushed first."""
        if self._async is not None:
            self._async.flush(run_id)
        return self.store.update_run_info(run_id, status=str(status), end_time=end_time or now_ms())

    def update_run(
        self, run_id: str, status: str | None = None, name: str | None = None
    ) -> RunInfo:
        if name is not None:
            checks.check_text(name, "run name", checks.MAX_RUN_NAME_LENGTH)
        return self.store.update_run_info(run_id, status=status, run_name=name)

    def delete_run(self, run_id: str) -> None:
        self.store.delete_run(run_id)

    def restore_run(self, run_id: str) -> None:
        self.store.restore_run(run_id)

    # params, metrics, tags -----------------------------------------------------
    def log_metric(
        self,
        run_id: str,
        key: str,
        value: float,
        step: int = 0,
        timestamp: int | None = None,
        synchronous: bool = True,
    ) -> None:
        metric = Metric(key, value, now_ms() if timestamp is None else timestamp, step)
        checks.check_metrics((metric,))
        self._write(run_id, synchronous, metrics=(metric,))

    def log_param(self, run_id: str, key: str, value: Any, synchronous: bool = True) -> str:
        param = Param(checks.check_key(key, "param"), checks.check_param_value(key, value))
        self._write(run_id, synchronous, params=(param,))
        return param.value

    def set_tag(self, run_id: str, key: str, value: Any, synchronous: bool = True) -> None:
        self._check_client_tags([key], "run")
        tag = RunTag(checks.check_key(key, "tag"), checks.check_tag_value(key, value))
        self._write(run_id, synchronous, tags=(tag,))

    def delete_tag(self, run_id: str, key: str) -> None:
        self._check_client_tags([key], "run")
        self.store.delete_tag(run_id, key)

    def _check_client_tags(self, keys: Iterable[object], entity: str) -> None:
        if not self.system:
            refuse_system_tags(keys, entity, allowed=CLIENT_REPORTED_RUN_TAGS)

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
        synchronous: bool = True,
    ) -> None:
        """Log many values in one transaction: all are written or none is."""
        checks.check_metrics(metrics)
        if not self.system:  # gather the keys only to check them (a hot path)
            self._check_client_tags([t.key for t in tags], "run")
        params = [
            Param(checks.check_key(p.key, "param"), checks.check_param_value(p.key, p.value))
            for p in params
        ]
        tags = [
            RunTag(checks.check_key(t.key, "tag"), checks.check_tag_value(t.key, t.value))
            for t in tags
        ]
        self._write(run_id, synchronous, metrics=metrics, params=params, tags=tags)

    def _write(
        self,
        run_id: str,
        synchronous: bool,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
    ) -> None:
        if synchronous:
            self.store.log_batch(run_id, metrics, params, tags)
        else:
            checks.check_run_id(run_id)
            self.async_logger.submit(run_id, metrics, params, tags)

    @property
    def async_logger(self) -> AsyncLogger:
        if self._async is None:
            self._async = AsyncLogger(self.store)
        return self._async

    def flush(self, run_id: str | None = None) -> None:
        """Wait for asynchronous writes; raises the first one that failed."""
        if self._async is not None:
            self._async.flush(run_id)

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Every point of one metric, in (step, timestamp, value) order (for a history too
        long to hold, ``iter_metric_history``)."""
        return list(self.iter_metric_history(run_id, key))

    def iter_metric_history(
        self, run_id: str, key: str, page_size: int = HISTORY_PAGE
    ) -> Iterator[Metric]:
        """``get_metric_history`` a page at a time: memory holds one page, however long
        the history."""
        token: str | None = None
        while True:
            page = self.get_metric_history_page(run_id, key, page_size, token)
            yield from page.items
            token = page.next_page_token
            if not token:
                return

    def get_metric_history_page(
        self, run_id: str, key: str, max_results: int, page_token: str | None = None
    ) -> Page[Metric]:
        """One page of ``get_metric_history`` and the next page's token (``None`` after
        the last page); tokens are opaque."""
        return self.store.get_metric_history(run_id, key, max_results, page_token)

    def get_metric_columns(self, run_id: str, key: str) -> MetricColumns:
        """``get_metric_history`` as NumPy columns (steps, timestamps, values): for charts
        and statistics over long histories, without a Python object per point.

        The whole history, however long (24 bytes a point), read a page at a time:
        memory beyond the answer stays at a page and a column (``gather_columns``). To
        hold less than the history, take its pages: ``iter_metric_columns``.
        """
        return gather_columns(self.iter_metric_columns(run_id, key, MAX_HISTORY_PAGE))

    def iter_metric_columns(
        self, run_id: str, key: str, page_size: int = HISTORY_PAGE
    ) -> Iterator[MetricColumns]:
        """``get_metric_columns`` a page at a time (charts down-sample a long history as
        it streams by: ``tracking.downsample.StreamingSample``)."""
        return metric_column_pages(self.store, run_id, key, page_size)

    def log_inputs(self, run_id: str, datasets: Sequence[DatasetInput]) -> None:
        self.store.log_inputs(run_id, datasets)

    def log_input(
        self, run_id: str, dataset: Any, context: str = "training", name: str | None = None
    ) -> DatasetInput:
        """Record that the run read ``dataset`` (a DataFrame, a path or a DatasetInput)."""
        described = describe(dataset, name=name, context=context)
        self.store.log_inputs(run_id, [described])
        return described

    # search --------------------------------------------------------------------
    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        run_view_type: ViewType | str = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> Page[Run]:
        return self.store.search_runs(
            [str(e) for e in experiment_ids],
            filter_string,
            _view_type(run_view_type),
            max_results,
            order_by,
            page_token,
        )

    def search_run_revisions(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        run_view_type: ViewType | str = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> Page[tuple[str, int]]:
        """``search_runs``, answering ``(run_id, revision)`` pairs: the revision moves with
        every change to a run, so whoever keeps rendered runs reloads only those that did
        (``get_runs``). Local SQL stores only."""
        return self.store.search_run_revisions(
            [str(e) for e in experiment_ids],
            filter_string,
            _view_type(run_view_type),
            max_results,
            order_by,
            page_token,
        )

    def run_revisions(self, run_ids: Sequence[str]) -> dict[str, int]:
        """The current revision of each existing run in ``run_ids`` (local SQL stores)."""
        return self.store.run_revisions(run_ids)

    def get_runs(self, run_ids: Sequence[str]) -> list[Run]:
        """Whole runs, in the order given; ids not found are skipped."""
        return self.store.get_runs(run_ids)

    # artifacts -----------------------------------------------------------------
    def _artifact_path(self, run_id: str, artifact_path: str | None, name: str = "") -> str:
        root = self.store.get_run(run_id).info.artifact_root
        parts = [root, (artifact_path or "").strip("/"), name]
        return posixpath.join(*[p for p in parts if p])

    def log_artifact(
        self, run_id: str, local_path: str | Path, artifact_path: str | None = None
    ) -> str:
        local = Path(local_path)
        if not local.is_file():
            raise InvalidParameter(f"{str(local)!r} is not a file", field="local_path")
        dest = self._artifact_path(run_id, artifact_path, local.name)
        self.artifacts.log_file(dest, local)
        return dest

    def log_artifacts(
        self, run_id: str, local_dir: str | Path, artifact_path: str | None = None
    ) -> str:
        local = Path(local_dir)
        if not local.is_dir():
            raise InvalidParameter(f"{str(local)!r} is not a folder", field="local_dir")
        dest = self._artifact_path(run_id, artifact_path)
        self.artifacts.log_dir(dest, local)
        return dest

    def log_text(self, run_id: str, text: str, artifact_file: str) -> str:
        dest = self._artifact_path(run_id, None, artifact_file)
        self.artifacts.log_bytes(dest, text.encode("utf-8"))
        return dest

    def log_dict(self, run_id: str, dictionary: Mapping[str, Any], artifact_file: str) -> str:
        """Save a dict as JSON (or YAML when the file ends in .yaml/.yml)."""
        if artifact_file.endswith((".yaml", ".yml")):
            import yaml

            text = yaml.safe_dump(dict(dictionary), sort_keys=False)
        else:
            text = json.dumps(dictionary, indent=2, default=str)
        return self.log_text(run_id, text, artifact_file)

    def log_figure(self, run_id: str, figure: Any, artifact_file: str) -> str:
        """Save a matplotlib figure (png, svg, pdf…) or a plotly figure (html, or json)."""
        dest = self._artifact_path(run_id, None, artifact_file)
        suffix = Path(artifact_file).suffix.lower()
        if hasattr(figure, "savefig"):  # matplotlib
            with tempfile.TemporaryDirectory() as tmp:
                out = Path(tmp) / Path(artifact_file).name
                figure.savefig(out, format=suffix.lstrip(".") or "png")
                self.artifacts.log_file(dest, out)
            return dest
        if hasattr(figure, "to_html") and hasattr(figure, "to_json"):  # plotly
            if suffix == ".html":
                self.artifacts.log_bytes(dest, figure.to_html(include_plotlyjs="cdn").encode())
            elif suffix == ".json":
                self.artifacts.log_bytes(dest, figure.to_json().encode())
            else:
                raise InvalidParameter(
                    f"a plotly figure is saved as .html or .json, not {suffix or 'no suffix'!r} "
                    "(static images need kaleido)",
                    field="artifact_file",
                )
            return dest
        raise InvalidParameter(
            f"log_figure takes a matplotlib or plotly figure, got {type(figure).__name__}",
            field="figure",
        )

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[Any]:
        root = self._artifact_path(run_id, None)
        prefix = self._artifact_path(run_id, path)
        entries = self.artifacts.list(prefix)
        return [_relative(e, root) for e in entries]

    def download_artifacts(
        self, run_id: str, path: str = "", dst_path: str | Path | None = None
    ) -> str:
        source = self._artifact_path(run_id, path)
        dst = Path(dst_path) if dst_path else Path(tempfile.mkdtemp(prefix="modelyard-"))
        dst.mkdir(parents=True, exist_ok=True)
        target: str = self.artifacts.download(source, dst)
        return target

    def read_artifact(self, run_id: str, path: str) -> bytes:
        data: bytes = self.artifacts.read_bytes(self._artifact_path(run_id, path))
        return data

    # housekeeping --------------------------------------------------------------
    def gc(self, older_than_ms: int | None = None, grace_s: float = 3600.0) -> GcReport:
        """Purge deleted runs (and their artifacts), then remove unreferenced blobs."""
        purged = 0
        for info in self.store.list_deleted_runs(older_than_ms):
            try:
                self.artifacts.delete(info.artifact_root)
            except NotFound:
                pass
            self.store.purge_run(info.run_id)
            purged += 1
        report = self.artifacts.collect_garbage(grace_s=grace_s)
        return GcReport(purged, report.blobs_removed, report.bytes_freed)


def _relative(entry: Any, root: str) -> Any:
    from dataclasses import replace

    path = entry.path
    if path.startswith(root + "/"):
        path = path[len(root) + 1 :]
    return replace(entry, path=path)


def _view_type(view_type: ViewType | str) -> ViewType:
    try:
        return ViewType(str(view_type).upper())
    except ValueError:
        raise InvalidParameter(
            f"unknown view type {view_type!r}; use ACTIVE_ONLY, DELETED_ONLY or ALL",
            field="view_type",
        ) from None
