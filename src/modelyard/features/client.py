"""``FeatureStore``: the feature room's entry point — a thin facade over its modules.

It owns the parts (registry, offline engine, online store, server) and wires them; the
rules live in ``registry``, ``offline``, ``materialize``, ``serving`` and ``skew``.

>>> import pandas as pd
>>> from modelyard.config import Settings
>>> from modelyard.features.definitions import (
...     DataFrameSource, Entity, FeatureService, FeatureView, Field)
>>> frame = pd.DataFrame({"store_id": [7, 7, 8], "units": [3, 5, 2],
...     "day": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-01"], utc=True)})
>>> store = Entity("store", join_keys=["store_id"])
>>> sales = FeatureView("sales", entities=[store], schema=[Field("units", "int64")],
...                     source=DataFrameSource(frame, timestamp_field="day"))
>>> fs = FeatureStore.from_settings(Settings(home=tmp_home))
>>> [c.action for c in fs.apply([store, sales, FeatureService("demand", features=[sales])])]
['created', 'created', 'created']
>>> orders = pd.DataFrame({"store_id": [7, 7], "event_timestamp": pd.to_datetime(
...     ["2024-01-01 12:00", "2024-01-03 00:00"], utc=True)})
>>> fs.get_training_set(orders, service="demand").to_df()["units"].tolist()  # as of each
[3, 5]
>>> [report.rows for report in fs.materialize_incremental()]
[2]
>>> fs.get_online_features([{"store_id": 7}], service="demand").to_dict()
{'store_id': [7], 'units': [5]}
>>> fs.check_skew("demand").ok  # online values agree with offline ones
True
>>> fs.close()
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelyard.artifacts import namespaces
from modelyard.config import Settings, load_settings, os_user
from modelyard.features.catalog import Catalog, load_definitions_file
from modelyard.features.definitions import DEFAULT_TIMESTAMP_COLUMN, FeatureView, collect
from modelyard.features.definitions_store import ApplyChange, Registry
from modelyard.features.online.base import OnlineStore, default_online_uri, open_online_store
from modelyard.features.relations import OfflineEngine
from modelyard.features.sources import DataFrameSource, FileSource
from modelyard.store.engine import Database

# Training sets, materialisation, serving, skew checks and the artifact store are imported
# where first used: ``modelyard features apply`` in a fresh process needs none of them.
if TYPE_CHECKING:
    from modelyard.features import materialize as mat
    from modelyard.features import services, skew
    from modelyard.features.offline import TrainingSet
    from modelyard.features.serving import FeatureServer, OnlineFeatures
    from modelyard.tracking.client import TrackingClient

_SNAPSHOTS = f"{namespaces.FEATURES}/sources"


class FeatureStore:
    """Definitions, training sets, materialisation and online reads over one metadata
    database, one offline engine and one online store."""

    def __init__(
        self,
        db: Database,
        online: OnlineStore,
        engine: OfflineEngine,
        *,
        artifacts: Any = None,
        open_artifacts: Callable[[], Any] | None = None,
        user: str = "",
        refresh_interval_s: float | None = 60.0,
    ) -> None:
        self.db = db
        self.online = online
        self.engine = engine
        self._artifacts = artifacts
        self._open_artifacts = open_artifacts
        self.user = user
        self.registry = Registry(db)
        self._live: dict[tuple[str, str], Any] = {}
        self._catalog: Catalog | None = None
        self._lock = threading.Lock()
        self._open_lock = threading.Lock()  # for the parts opened on first use
        self._refresh_interval_s = refresh_interval_s
        self._server: FeatureServer | None = None

    @property
    def artifacts(self) -> Any:
        """The artifact store (DataFrame source snapshots), opened on first use."""
        if self._artifacts is None and self._open_artifacts is not None:
            with self._open_lock:
                if self._artifacts is None:
                    self._artifacts = self._open_artifacts()
        return self._artifacts

    @property
    def server(self) -> FeatureServer:
        """The online reader, created on first use (it caches resolved requests)."""
        return self._server or self._make_server()

    def _make_server(self) -> FeatureServer:
        from modelyard.features.serving import FeatureServer

        with self._open_lock:
            if self._server is None:
                self._server = FeatureServer(
                    self._reload_catalog,
                    self.online,
                    generation=self.registry.generation,
                    refresh_interval_s=self._refresh_interval_s,
                )
            return self._server

    @classmethod
    def from_settings(
        cls, settings: Settings | None = None, *, online_store_uri: str | None = None
    ) -> FeatureStore:
        """Open the stores the settings name (metadata DB, artifacts, online store); the
        artifact store is opened when first needed (DataFrame sources)."""
        from modelyard.tracking.backends import database_for

        settings = settings or load_settings()
        db = database_for(settings)
        uri = online_store_uri or settings.online_store_uri or default_online_uri(settings.home)
        engine = OfflineEngine(
            Path(settings.home).absolute() / "features-cache",
            memory_limit=settings.features_memory_limit,
        )
        artifacts_uri = settings.resolved_artifacts_uri()

        def open_artifacts() -> Any:
            from modelyard.artifacts.blobs import open_blob_store
            from modelyard.artifacts.repository import ArtifactRepository

            return ArtifactRepository(db, open_blob_store(artifacts_uri))

        return cls(
            db,
            open_online_store(uri),
            engine,
            open_artifacts=open_artifacts,
            user=settings.user or os_user(),
        )

    # ------------------------------------------------------------------ definitions
    def apply(self, objects: Iterable[Any], *, origin: str = "") -> list[ApplyChange]:
        """Register definitions; a changed definition or transformation gets a new version."""
        definitions = collect(objects)
        for obj in definitions:
            if isinstance(obj, FeatureView) and isinstance(obj.source, DataFrameSource):
                self._snapshot(obj.source)
        changes = self.registry.apply(definitions, origin=origin, user=self.user)
        with self._lock:
            for obj in definitions:
                self._live[(obj.kind, obj.name)] = obj
            self._catalog = None
        if self._server is not None:
            self._server.refresh()
        return changes

    def apply_file(self, path: str | Path) -> list[ApplyChange]:
        """Load definitions from a Python file (``features.py``) and apply them."""
        resolved = str(Path(path).expanduser().absolute())
        return self.apply(load_definitions_file(resolved), origin=resolved)

    def catalog(self) -> Catalog:
        """The resolved definitions, loaded once (again after ``apply`` or ``refresh``)."""
        with self._lock:
            if self._catalog is None:
                self._catalog = Catalog(
                    self.registry.latest(), dict(self._live), load_frame=self._load_snapshot
                )
            return self._catalog

    def _reload_catalog(self) -> Catalog:
        with self._lock:
            self._catalog = None
        return self.catalog()

    def refresh(self) -> None:
        """Reload definitions (another process applied new versions)."""
        with self._lock:
            self._catalog = None
        if self._server is not None:
            self._server.refresh()

    # ------------------------------------------------------------------ offline
    def get_training_set(
        self,
        entity_df: Any,
        features: Sequence[Any] | None = None,
        service: Any = None,
        *,
        timestamp_column: str = DEFAULT_TIMESTAMP_COLUMN,
        exclude_created_after: bool = False,
        full_names: bool = False,
        name: str = "training_set",
        record: bool = True,
    ) -> TrainingSet:
        """A point-in-time-correct training set (see ``modelyard.features.offline``);
        recorded with its lineage unless ``record=False``."""
        from modelyard.features import training_sets
        from modelyard.features.offline import get_training_set

        catalog = self.catalog()
        selection = catalog.select(features, service, full_names=full_names)
        with self.engine.session() as session:
            ts = get_training_set(
                session,
                selection,
                entity_df,
                timestamp_column=timestamp_column,
                exclude_created_after=exclude_created_after,
            )
        ts.name = name
        if record:
            training_sets.record(self.db, catalog, ts)
        return ts

    def log_training_set(self, tracking: TrackingClient, run_id: str, ts: TrainingSet) -> None:
        """Record that a run trained on ``ts`` (dataset input + lineage edge)."""
        from modelyard.features import training_sets

        training_sets.log_to_run(self.db, tracking, run_id, ts)

    # ------------------------------------------------------------------ online
    def materialize(
        self,
        start: Any,
        end: Any,
        views: Sequence[str] | None = None,
        *,
        chunk_rows: int | None = None,
    ) -> list[mat.MaterializeReport]:
        """Copy the latest values with ``start <= event time <= end`` to the online store."""
        from modelyard.features import materialize as mat

        start_us = mat.to_us(start, "start") if start is not None else None
        end_us = mat.to_us(end, "end")
        mat.check_window(start_us, end_us)
        return self._materialize(views, lambda _view: start_us, end_us, chunk_rows)

    def materialize_incremental(
        self,
        end: Any = None,
        views: Sequence[str] | None = None,
        *,
        chunk_rows: int | None = None,
    ) -> list[mat.MaterializeReport]:
        """Continue each view from its watermark up to ``end`` (default: now)."""
        from modelyard.features import materialize as mat

        end_us = mat.now_us() if end is None else mat.to_us(end, "end")
        return self._materialize(
            views,
            lambda view: mat.incremental_start(self.db, self.online, view, end_us),
            end_us,
            chunk_rows,
        )

    def _materialize(
        self, names: Sequence[str] | None, start_of: Any, end_us: int, chunk_rows: int | None
    ) -> list[mat.MaterializeReport]:
        from modelyard.features import materialize as mat

        reports = []
        views = mat.views_to_materialize(self.catalog(), names)
        self.engine.warm([v.source.path for v in views if isinstance(v.source, FileSource)])
        with self.engine.session() as session:
            for view in views:
                report = mat.materialize_view(
                    session,
                    view,
                    self.online,
                    start_us=start_of(view),
                    end_us=end_us,
                    chunk_rows=chunk_rows,
                )
                mat.record_watermark(self.db, self.online, report, view)
                reports.append(report)
        return reports

    def get_online_features(
        self,
        entity_rows: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]],
        features: Sequence[Any] | None = None,
        service: Any = None,
        *,
        request_data: Mapping[str, Sequence[Any]] | None = None,
        full_names: bool = False,
    ) -> OnlineFeatures:
        """Latest values per entity with a status each (see ``modelyard.features.serving``)."""
        return (self._server or self._make_server()).get_online_features(
            entity_rows, features, service, request_data=request_data, full_names=full_names
        )

    def check_skew(self, service: str, sample: int = 1000) -> skew.SkewReport:
        """Compare online values with offline point-in-time values for sampled entities."""
        from modelyard.features import skew

        with self.engine.session() as session:
            return skew.check_skew(
                db=self.db,
                session=session,
                catalog=self.catalog(),
                server=self.server,
                store=self.online,
                service=service,
                sample=sample,
            )

    # ------------------------------------------------------------------ models
    def attach_service(
        self, model_name: str, model_version: str | int, service: str
    ) -> services.ServiceBinding:
        """Attach a feature service to a model version (for serving and lineage)."""
        from modelyard.features import services

        return services.attach(self.db, self.catalog(), model_name, model_version, service)

    def service_of_model(
        self, model_name: str, model_version: str | int
    ) -> services.ServiceBinding:
        from modelyard.features import services

        return services.service_of_model(self.db, model_name, model_version)

    def close(self) -> None:
        self.online.close()
        self.engine.close()

    # ------------------------------------------------------------------ DataFrame sources
    def _snapshot(self, source: DataFrameSource) -> None:
        """Keep a Parquet copy of a DataFrame source so other processes can read it."""
        if self.artifacts is None:
            return
        path = f"{_SNAPSHOTS}/{source.content_digest}.parquet"
        if self.artifacts.exists(path):
            return
        buffer = io.BytesIO()
        source.frame.to_parquet(buffer, index=False)
        self.artifacts.log_bytes(path, buffer.getvalue())

    def _load_snapshot(self, digest: str) -> Any:
        import pandas as pd

        if self.artifacts is None:
            from modelyard.errors import InvalidState

            raise InvalidState("DataFrame sources need an artifact store to be read back")
        return pd.read_parquet(
            io.BytesIO(self.artifacts.read_bytes(f"{_SNAPSHOTS}/{digest}.parquet"))
        )
