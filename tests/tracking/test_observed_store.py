"""``ObservedStore``: every write of the tracking store interface reaches the observers,
once, after it succeeded; reads reach none; nothing passes through unseen.

The write methods are listed by introspection of ``TrackingStore``: every public method
that is not a read. A method added to the interface fails here until it is classified and
``WRITES`` says how to call it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from modelyard.errors import NotFound
from modelyard.ids import now_ms
from modelyard.tracking.entities import DatasetInput, Metric, Param, RunTag
from modelyard.tracking.observed_store import ObservedStore, StoreWrite
from modelyard.tracking.store import TrackingStore

#: The interface's methods that change nothing stored.
READS = frozenset(
    {
        "close",
        "get_experiment",
        "get_experiment_by_name",
        "search_experiments",
        "get_run",
        "get_runs",
        "get_metric_history",
        "get_metric_columns",
        "get_metric_columns_page",
        "search_runs",
        "search_run_revisions",
        "run_revisions",
        "list_deleted_runs",
    }
)


def interface_methods() -> set[str]:
    return {
        name
        for name, _ in inspect.getmembers(TrackingStore, inspect.isfunction)
        if not name.startswith("_")
    }


def write_methods() -> list[str]:
    return sorted(interface_methods() - READS)


@dataclass
class Subject:
    """A run in a fresh experiment, on the store under test."""

    store: TrackingStore
    experiment_id: str
    run_id: str


def _purge(s: Subject) -> None:
    s.store.delete_run(s.run_id)
    s.store.purge_run(s.run_id)


#: How to call each write method on ``Subject``'s store, and the write it must report:
#: (the call, the write it reports), each a function of the subject.
WRITES: dict[str, tuple[Callable[[Subject], object], Callable[[Subject], StoreWrite]]] = {
    "create_experiment": (
        lambda s: s.store.create_experiment(f"other-{s.run_id}"),
        lambda s: StoreWrite("create_experiment", experiment_id=ANY_ID),
    ),
    "rename_experiment": (
        lambda s: s.store.rename_experiment(s.experiment_id, f"renamed-{s.run_id}"),
        lambda s: StoreWrite("rename_experiment", experiment_id=s.experiment_id),
    ),
    "delete_experiment": (
        lambda s: s.store.delete_experiment(s.experiment_id),
        lambda s: StoreWrite("delete_experiment", experiment_id=s.experiment_id),
    ),
    "restore_experiment": (
        lambda s: s.store.restore_experiment(s.experiment_id),
        lambda s: StoreWrite("restore_experiment", experiment_id=s.experiment_id),
    ),
    "set_experiment_tag": (
        lambda s: s.store.set_experiment_tag(s.experiment_id, "team", "a"),
        lambda s: StoreWrite("set_experiment_tag", experiment_id=s.experiment_id),
    ),
    "delete_experiment_tag": (
        lambda s: s.store.delete_experiment_tag(s.experiment_id, "team"),
        lambda s: StoreWrite("delete_experiment_tag", experiment_id=s.experiment_id),
    ),
    "create_run": (
        lambda s: s.store.create_run(s.experiment_id, "ann", now_ms()),
        lambda s: StoreWrite("create_run", (ANY_ID,), s.experiment_id),
    ),
    "update_run_info": (
        lambda s: s.store.update_run_info(s.run_id, status="FINISHED", end_time=now_ms()),
        lambda s: StoreWrite("update_run_info", (s.run_id,)),
    ),
    "delete_run": (
        lambda s: s.store.delete_run(s.run_id),
        lambda s: StoreWrite("delete_run", (s.run_id,)),
    ),
    "restore_run": (
        lambda s: s.store.restore_run(s.run_id),
        lambda s: StoreWrite("restore_run", (s.run_id,)),
    ),
    "log_batch": (
        lambda s: s.store.log_batch(
            s.run_id,
            metrics=[Metric("loss", 0.5, now_ms(), 0), Metric("loss", 0.4, now_ms(), 1)],
            params=[Param("lr", "0.1")],
            tags=[RunTag("team", "a")],
        ),
        lambda s: StoreWrite("log_batch", (s.run_id,), metric_points=2),
    ),
    "delete_tag": (
        lambda s: s.store.delete_tag(s.run_id, "team"),
        lambda s: StoreWrite("delete_tag", (s.run_id,)),
    ),
    "log_inputs": (
        lambda s: s.store.log_inputs(
            s.run_id, [DatasetInput(name="sales", digest="d1", source="s3://b/sales")]
        ),
        lambda s: StoreWrite("log_inputs", (s.run_id,)),
    ),
    "purge_run": (_purge, lambda s: StoreWrite("purge_run", (s.run_id,))),
}

#: Writes whose call needs a state first (the store refuses them otherwise).
PREPARE: dict[str, Callable[[Subject], None]] = {
    "restore_experiment": lambda s: s.store.delete_experiment(s.experiment_id),
    "restore_run": lambda s: s.store.delete_run(s.run_id),
    "delete_tag": lambda s: s.store.log_batch(s.run_id, tags=[RunTag("team", "a")]),
    "delete_experiment_tag": lambda s: s.store.set_experiment_tag(s.experiment_id, "team", "a"),
}


class _Any:
    """Equal to any id: the ones a write creates are not known beforehand."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and bool(other)

    def __hash__(self) -> int:
        return 0


ANY_ID: str = _Any()  # type: ignore[assignment]


class Recorder:
    def __init__(self) -> None:
        self.writes: list[StoreWrite] = []

    def on_write(self, write: StoreWrite) -> None:
        self.writes.append(write)


def subject(store: TrackingStore, name: str) -> Subject:
    experiment_id = store.create_experiment(f"observed-{name}")
    run_id = store.create_run(experiment_id, "ann", now_ms()).info.run_id
    return Subject(store, experiment_id, run_id)


def test_every_write_method_of_the_interface_has_a_call_here():
    assert set(WRITES) == set(write_methods()), (
        "classify the new store method: a read goes in READS, a write in WRITES"
    )


def test_the_observed_store_implements_every_method_itself():
    """No method falls through to ``TrackingStore``'s defaults (which would call the
    observed store's own reads) or to anything like ``__getattr__``."""
    inherited = {name for name in interface_methods() if name not in vars(ObservedStore)}
    assert inherited == set()
    assert "__getattr__" not in vars(ObservedStore)


@pytest.mark.parametrize("method", write_methods())
def test_each_write_reaches_every_observer_once_after_it_succeeded(local_client, method):
    first, second = Recorder(), Recorder()
    store = ObservedStore(local_client.store, [first, second])
    s = subject(local_client.store, method)
    PREPARE.get(method, lambda s: None)(s)
    call, expected = WRITES[method]
    call(Subject(store, s.experiment_id, s.run_id))
    calls = [w for w in first.writes if w.method == method]
    assert calls == [expected(s)]
    assert second.writes == first.writes


@pytest.mark.parametrize("method", sorted(READS & interface_methods()))
def test_reads_reach_no_observer(local_client, method):
    recorder = Recorder()
    store = ObservedStore(local_client.store, [recorder])
    s = subject(local_client.store, method)
    reads: dict[str, Callable[[], object]] = {
        "get_experiment": lambda: store.get_experiment(s.experiment_id),
        "get_experiment_by_name": lambda: store.get_experiment_by_name(f"observed-{method}"),
        "search_experiments": lambda: store.search_experiments(),
        "get_run": lambda: store.get_run(s.run_id),
        "get_runs": lambda: store.get_runs([s.run_id]),
        "get_metric_history": lambda: store.get_metric_history(s.run_id, "loss"),
        "get_metric_columns": lambda: store.get_metric_columns(s.run_id, "loss"),
        "get_metric_columns_page": lambda: store.get_metric_columns_page(s.run_id, "loss", 10),
        "search_runs": lambda: store.search_runs([s.experiment_id]),
        "search_run_revisions": lambda: store.search_run_revisions([s.experiment_id]),
        "run_revisions": lambda: store.run_revisions([s.run_id]),
        "list_deleted_runs": lambda: store.list_deleted_runs(),
        "close": lambda: store.close(),
    }
    reads[method]()
    assert recorder.writes == []


def test_a_refused_write_reaches_no_observer(local_client):
    recorder = Recorder()
    store = ObservedStore(local_client.store, [recorder])
    with pytest.raises(NotFound):
        store.log_batch("f" * 32, metrics=[Metric("loss", 0.5, now_ms(), 0)])
    assert recorder.writes == []
