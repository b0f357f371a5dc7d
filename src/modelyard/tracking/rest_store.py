"""The tracking store of a ``modelyard server``, spoken over its MLflow REST API 2.0.

``MODELYARD_TRACKING_URI=http://host:port`` gives the ``TrackingClient`` this store: the
client still validates and applies conventions locally (so mistakes fail before a round
trip), and the server's own client applies the same rules again in front of its database.
Errors come back as the same exception classes local use raises.

Batches larger than one request allows (1000 metrics, 100 params, 100 tags, 1000 items,
~1 MB) are split, params first, so an immutable-param conflict stops the batch before
any metric is written; only a batch that fits one request is all-or-nothing. Replaying a
batch is harmless: a repeated metric point is stored once.

Requests go through an ``HttpTransport`` (``modelyard.http_transport``): kept-alive
connections, retries honouring ``Retry-After``, error answers rebuilt as exceptions.
``close()`` closes its connections.

Example::

    store = RestTrackingStore(HttpTransport("http://127.0.0.1:5000"))
    store.get_experiment("0").name  # 'Default'
    store.close()
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from modelyard.errors import NotFound, NotImplementedFeature
from modelyard.http_transport import HttpTransport
from modelyard.tracking import mlflow_wire as wire
from modelyard.tracking.checks import MAX_BATCH_METRICS, MAX_BATCH_PARAMS, MAX_BATCH_TAGS
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
from modelyard.tracking.mlflow_wire import Fields
from modelyard.tracking.store import TrackingStore

API = "/api/2.0/mlflow"
MAX_BATCH_ITEMS = 1000
#: Bytes of keys and values per request: under the server's 1 MiB body limit with room
#: for JSON syntax and escapes.
MAX_BATCH_BYTES = 700_000
_ITEM_OVERHEAD = 64  # JSON punctuation, field names, timestamp and step of one item


class RestTrackingStore(TrackingStore):
    def __init__(self, transport: HttpTransport) -> None:
        self.http = transport

    def __repr__(self) -> str:
        return f"RestTrackingStore({self.http.base_url!r})"

    def close(self) -> None:
        """Close the transport's kept-alive connections (a later call reconnects)."""
        self.http.close()

    def _get(self, path: str, **params: Any) -> Fields:
        return Fields(self.http.call("GET", API + path, params=params))

    def _post(self, path: str, body: dict[str, Any]) -> Fields:
        return Fields(self.http.call("POST", API + path, body=wire.prune(body)))

    # experiments ---------------------------------------------------------------
    def create_experiment(
        self, name: str, artifact_location: str | None = None, tags: dict[str, str] | None = None
    ) -> str:
        body = {
            "name": name,
            "artifact_location": artifact_location,
            "tags": wire.tags_to_json(tags or {}),
        }
        return str(self._post("/experiments/create", body).ident("experiment_id", required=True))

    def get_experiment(self, experiment_id: str) -> Experiment:
        found = self._get("/experiments/get", experiment_id=experiment_id).object("experiment")
        return wire.experiment_from_json(found or Fields({}))

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        try:
            found = self._get("/experiments/get-by-name", experiment_name=name)
        except NotFound:
            return None
        return wire.experiment_from_json(found.object("experiment") or Fields({}))

    def search_experiments(
        self,
        view_type: ViewType = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        filter_string: str | None = None,
        page_token: str | None = None,
        order_by: Sequence[str] | None = None,
    ) -> Page[Experiment]:
        body: dict[str, Any] = {
            "view_type": str(ViewType(view_type)),
            "max_results": max_results,
            "page_token": page_token,
            "filter": filter_string,
            # MLflow's server orders by creation time when order_by is empty; this store's
            # contract is id order, so say so.
            "order_by": list(order_by or ["experiment_id ASC"]),
        }
        answer = self._post("/experiments/search", body)
        return Page(
            [wire.experiment_from_json(e) for e in answer.objects("experiments")],
            answer.text("next_page_token") or None,
        )

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        self._post("/experiments/update", {"experiment_id": experiment_id, "new_name": new_name})

    def delete_experiment(self, experiment_id: str) -> None:
        self._post("/experiments/delete", {"experiment_id": experiment_id})

    def restore_experiment(self, experiment_id: str) -> None:
        self._post("/experiments/restore", {"experiment_id": experiment_id})

    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        body = {"experiment_id": experiment_id, "key": key, "value": value}
        self.http.call("POST", API + "/experiments/set-experiment-tag", body=body)

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        body = {"experiment_id": experiment_id, "key": key}
        self.http.call("POST", API + "/experiments/delete-experiment-tag", body=body)

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
        tag_map = {t.key: t.value for t in tags}
        if parent_run_id:
            tag_map[wire.PARENT_RUN_TAG] = parent_run_id
        body = {
            "experiment_id": experiment_id,
            "user_id": user_id,
            "start_time": start_time,
            "run_name": run_name,
            "tags": wire.tags_to_json(tag_map),
        }
        return wire.run_from_json(self._post("/runs/create", body).object("run") or Fields({}))

    def get_run(self, run_id: str) -> Run:
        return wire.run_from_json(self._get("/runs/get", run_id=run_id).object("run") or Fields({}))

    def update_run_info(
        self,
        run_id: str,
        status: str | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
    ) -> RunInfo:
        body = {"run_id": run_id, "status": status, "end_time": end_time, "run_name": run_name}
        answer = self._post("/runs/update", body).object("run_info") or Fields({})
        return wire.run_info_from_json(answer)

    def delete_run(self, run_id: str) -> None:
        self._post("/runs/delete", {"run_id": run_id})

    def restore_run(self, run_id: str) -> None:
        self._post("/runs/restore", {"run_id": run_id})

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
    ) -> None:
        for chunk_metrics, chunk_params, chunk_tags in split_batch(metrics, params, tags):
            body = {
                "run_id": run_id,
                "metrics": [wire.metric_to_json(m) for m in chunk_metrics],
                "params": [{"key": p.key, "value": p.value} for p in chunk_params],
                "tags": [{"key": t.key, "value": t.value} for t in chunk_tags],
            }
            self.http.call("POST", API + "/runs/log-batch", body=body)

    def delete_tag(self, run_id: str, key: str) -> None:
        self._post("/runs/delete-tag", {"run_id": run_id, "key": key})

    def get_metric_history(
        self, run_id: str, key: str, max_results: int | None = None, page_token: str | None = None
    ) -> Page[Metric]:
        answer = self._get(
            "/metrics/get-history",
            run_id=run_id,
            metric_key=key,
            max_results=max_results,
            page_token=page_token,
        )
        return Page(
            [wire.metric_from_json(m, default_timestamp=0) for m in answer.objects("metrics")],
            answer.text("next_page_token") or None,
        )

    def log_inputs(self, run_id: str, datasets: Sequence[DatasetInput]) -> None:
        if datasets:
            body = {"run_id": run_id, "datasets": [wire.dataset_input_to_json(d) for d in datasets]}
            self._post("/runs/log-inputs", body)

    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        view_type: ViewType = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> Page[Run]:
        body = {
            "experiment_ids": [str(e) for e in experiment_ids],
            "filter": filter_string,
            "run_view_type": str(ViewType(view_type)),
            "max_results": max_results,
            "order_by": list(order_by or []),
            "page_token": page_token,
        }
        answer = self._post("/runs/search", body)
        return Page(
            [wire.run_from_json(r) for r in answer.objects("runs")],
            answer.text("next_page_token") or None,
        )

    def list_deleted_runs(self, older_than_ms: int | None = None) -> list[RunInfo]:
        raise _gc_on_server()

    def purge_run(self, run_id: str) -> None:
        raise _gc_on_server()


def _gc_on_server() -> NotImplementedFeature:
    return NotImplementedFeature(
        "garbage collection runs next to the store: run `modelyard gc` on the server's host"
    )


def _size(*texts: str) -> int:
    return sum(len(t.encode("utf-8", "surrogatepass")) for t in texts) + _ITEM_OVERHEAD


def split_batch(
    metrics: Sequence[Metric], params: Sequence[Param], tags: Sequence[RunTag]
) -> Iterator[tuple[list[Metric], list[Param], list[RunTag]]]:
    """Requests within the server's limits: params first, then tags, then metrics."""
    chunk: tuple[list[Metric], list[Param], list[RunTag]] = ([], [], [])
    count = size = 0
    items: list[tuple[int, Any, int]] = [
        *((1, p, _size(p.key, p.value)) for p in params),
        *((2, t, _size(t.key, t.value)) for t in tags),
        *((0, m, _size(m.key)) for m in metrics),
    ]
    limits = (MAX_BATCH_METRICS, MAX_BATCH_PARAMS, MAX_BATCH_TAGS)
    for kind, item, item_size in items:
        full = (
            len(chunk[kind]) >= limits[kind]
            or count >= MAX_BATCH_ITEMS
            or (count and size + item_size > MAX_BATCH_BYTES)
        )
        if full:
            yield chunk
            chunk, count, size = ([], [], []), 0, 0
        chunk[kind].append(item)
        count += 1
        size += item_size
    if count or not items:
        yield chunk
