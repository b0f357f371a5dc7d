"""``DataClient``: dataset versions (snapshot, list, show, diff, pull, load), contract checks
against stored versions (recorded: ``contract_results``), and the link from runs to the
versions they read.

>>> import pandas as pd
>>> pd.DataFrame({"store": [1, 2, 3], "units": [5, 0, 7]}).to_parquet("sales.parquet")
>>> data = DataClient.from_settings(Settings(home=tmp_home))
>>> v = data.snapshot("sales.parquet", name="sales")
>>> v.ref, v.num_rows
('sales@1', 3)
>>> _ = Path("sales.yaml").write_text("{contract: sales, columns: {units: {min: 0}}}")
>>> data.check("sales@1", "sales.yaml").passed
True
>>> [(r.ref, r.contract, r.passed) for r in data.contract_results("sales@1")]
[('sales@1', 'sales', True)]
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from modelyard.artifacts import namespaces
from modelyard.config import Settings, load_settings, os_user
from modelyard.data import contract_checks
from modelyard.data import pointer as pointers
from modelyard.data import snapshot as snap
from modelyard.data.contract_checks import ContractResult
from modelyard.data.contracts.distribution import profile_psi
from modelyard.data.contracts.result import ValidationResult
from modelyard.data.contracts.spec import Contract
from modelyard.data.entities import (
    ColumnChange,
    DatasetDiff,
    DatasetVersion,
    FileRef,
    PullReport,
    check_dataset_name,
)
from modelyard.data.tables import dataset_versions
from modelyard.errors import InvalidParameter, NotFound, NotImplementedFeature
from modelyard.ids import now_ms
from modelyard.store.engine import Database
from modelyard.store.keyset import SortKey, fetch_page
from modelyard.store.lineage import location, node, record_edges
from modelyard.tracking.entities import DatasetInput, Page

#: Artifact paths of stored dataset files: datasets/<name>/<files digest>/<relative path>.
DATASETS_PREFIX = namespaces.DATASETS
#: Profile fields compared by ``diff``.
_DIFF_FIELDS = ("null_fraction", "distinct", "min", "max", "mean", "std")
#: The most versions ``search_versions`` returns in one page.
MAX_PAGE = 1000


def dataset_node(name: str, digest: str) -> str:
    """The lineage node of a dataset version (the tracking room spells it the same)."""
    return node("dataset", f"{name}@{digest}")


class DataClient:
    def __init__(self, db: Database, artifacts: Any, settings: Settings | None = None) -> None:
        self.db = db
        self.artifacts = artifacts
        self.settings = settings or load_settings()

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> DataClient:
        """Open the stores the settings name (the same ones ``TrackingClient`` uses)."""
        from modelyard.artifacts.blobs import open_blob_store
        from modelyard.artifacts.repository import ArtifactRepository
        from modelyard.tracking.backends import database_for

        settings = settings or load_settings()
        if settings.is_remote:
            raise NotImplementedFeature(
                "dataset versions need a local store for now; unset MODELYARD_TRACKING_URI "
                "and point MODELYARD_STORE_URI / MODELYARD_ARTIFACTS_URI at the shared stores",
                field="tracking_uri",
            )
        db = database_for(settings)
        blobs = open_blob_store(settings.resolved_artifacts_uri())
        return cls(db, ArtifactRepository(db, blobs), settings)

    # -- snapshots ------------------------------------------------------------------------

    def snapshot(
        self,
        data: Any,
        name: str,
        *,
        description: str | None = None,
        pointer: bool | str | Path = True,
        gitignore: bool = True,
        run_id: str | None = None,
        memory_limit: int = snap.DEFAULT_MEMORY_LIMIT,
    ) -> DatasetVersion:
        """Record ``data`` (a CSV/Parquet path, a folder of them, or a pandas/polars/Arrow
        table) as the next version of ``name`` — or return the existing version when the
        same files were snapshotted under that name before.

        For a path, a pointer file is written beside it (``pointer=False`` to skip, or a
        path to put it elsewhere); for an in-memory table only when ``pointer`` is a path
        (the data is then restored next to it as ``<name>.parquet``). With ``run_id`` the
        run is recorded as having produced this version.
        """
        check_dataset_name(name)
        with snap.stage(data, name) as staged:
            version = self._existing(name, staged) or self._create(
                name, staged, description, memory_limit
            )
            in_memory = staged.source.table is not None
            this = dataset_node(name, version.digest)
            # the file or folder it was read from: where other tools' lineage meets ours
            edges = [] if in_memory else [(location(staged.label), this, "snapshot_of")]
            if run_id is not None:
                edges.append((node("run", run_id), this, "output"))
            if edges:
                with self.db.write() as conn:
                    record_edges(conn, edges)
            if pointer is not False and not (in_memory and pointer is True):
                self._write_pointer(version, staged, pointer, gitignore)
        return version

    def _existing(self, name: str, staged: snap.Staged) -> DatasetVersion | None:
        c = dataset_versions.c
        query = select(dataset_versions).where(
            c.name == name, c.files_digest == staged.files_digest
        )
        with self.db.read() as conn:
            row = conn.execute(query.order_by(c.version.desc()).limit(1)).first()
        return _version(row) if row is not None else None

    def _create(
        self, name: str, staged: snap.Staged, description: str | None, memory_limit: int
    ) -> DatasetVersion:
        known = self._same_files_elsewhere(staged.files_digest)
        if known is not None:  # the same bytes under another name: no need to read them
            digest, schema, rows, profile = (
                known.digest,
                known.schema,
                known.num_rows,
                known.profile,
            )
        else:
            scan = snap.scan(staged.source, memory_limit=memory_limit)
            digest, schema, rows, profile = scan.digest, scan.schema, scan.num_rows, scan.profile
        location = f"{DATASETS_PREFIX}/{name}/{staged.files_digest[:32]}"
        for ref in staged.files:
            self.artifacts.log_file(f"{location}/{ref.path}", staged.root / ref.path)
        record = {
            "name": name,
            "digest": digest,
            "files_digest": staged.files_digest,
            "schema": json.dumps(schema),
            "num_rows": rows,
            "num_bytes": staged.num_bytes,
            "profile": json.dumps(profile),
            "files": json.dumps([[f.path, f.sha256, f.size] for f in staged.files]),
            "storage_location": location,
            "format": staged.format,
            "source": staged.label[:1024],
            "description": description,
            "created_by": self.settings.user or os_user(),
            "created_at": now_ms(),
        }
        c = dataset_versions.c
        for _attempt in range(3):
            try:
                with self.db.write() as conn:
                    latest = conn.execute(
                        select(func.max(c.version)).where(c.name == name)
                    ).scalar()
                    number = (latest or 0) + 1
                    record["version"] = number
                    conn.execute(dataset_versions.insert().values(**record))
                return self.get_version(name, number)
            except IntegrityError:  # a concurrent snapshot took the number, or the same files
                existing = self._existing(name, staged)
                if existing is not None:
                    return existing
        raise InvalidParameter(  # pragma: no cover - three lost races in a row
            f"could not allocate a version number for dataset {name!r}; retry", field="name"
        )

    def _same_files_elsewhere(self, files_digest: str) -> DatasetVersion | None:
        c = dataset_versions.c
        with self.db.read() as conn:
            row = conn.execute(
                select(dataset_versions).where(c.files_digest == files_digest).limit(1)
            ).first()
        return _version(row) if row is not None else None

    def _write_pointer(
        self,
        version: DatasetVersion,
        staged: snap.Staged,
        pointer: bool | str | Path,
        gitignore: bool,
    ) -> Path:
        source = staged.source
        if source.table is None:
            assert source.root is not None
            data_path = source.root
            target = None if isinstance(pointer, bool) else Path(pointer)
            return pointers.write_pointer(
                version, data_path, is_folder=source.is_folder, pointer=target, gitignore=gitignore
            )
        target = Path(pointer)  # type: ignore[arg-type]
        data_path = target.parent / f"{version.name}.parquet"
        return pointers.write_pointer(version, data_path, pointer=target, gitignore=gitignore)

    # -- reading --------------------------------------------------------------------------

    def get_version(self, name: str, version: int | None = None) -> DatasetVersion:
        """A version of ``name``; the newest when ``version`` is None."""
        c = dataset_versions.c
        query = select(dataset_versions).where(c.name == name)
        if version is not None:
            query = query.where(c.version == int(version))
        with self.db.read() as conn:
            row = conn.execute(query.order_by(c.version.desc()).limit(1)).first()
        if row is None:
            what = f"version {version} of dataset" if version is not None else "dataset"
            raise NotFound(f"{what} {name!r} does not exist", field="dataset")
        return _version(row)

    def resolve(self, ref: str | DatasetVersion) -> DatasetVersion:
        """``sales`` (newest), ``sales@3``, ``sales@latest`` or ``sales@<digest prefix>``."""
        if isinstance(ref, DatasetVersion):
            return ref
        if not isinstance(ref, str) or not ref.strip():
            raise InvalidParameter(f"dataset reference {ref!r} is empty", field="dataset")
        name, _, tail = ref.strip().partition("@")
        check_dataset_name(name)
        if not tail or tail == "latest":
            return self.get_version(name)
        if tail.isdigit():
            return self.get_version(name, int(tail))
        c = dataset_versions.c
        with self.db.read() as conn:
            rows = conn.execute(
                select(dataset_versions).where(c.name == name, c.digest.startswith(tail.lower()))
            ).all()
        if not rows:
            raise NotFound(
                f"dataset {name!r} has no version {tail!r}; use NAME@VERSION, NAME@latest or "
                "NAME@<digest prefix>",
                field="dataset",
            )
        return _version(max(rows, key=lambda r: r.version))

    def list_versions(self, name: str | None = None) -> list[DatasetVersion]:
        """Versions of ``name`` (all datasets when None), newest first within a name."""
        c = dataset_versions.c
        query = select(dataset_versions).order_by(c.name, c.version.desc())
        if name is not None:
            query = query.where(c.name == name)
        with self.db.read() as conn:
            rows = conn.execute(query).all()
        if name is not None and not rows:
            raise NotFound(f"dataset {name!r} does not exist", field="dataset")
        return [_version(r) for r in rows]

    def search_versions(
        self,
        name: str | None = None,
        max_results: int = 100,
        page_token: str | None = None,
        newest_first: bool = False,
    ) -> Page[DatasetVersion]:
        """One page of dataset versions: by name, newest version first within a name (as
        ``list_versions``), or newest first across names (``newest_first``); pass
        ``next_page_token`` back for the next page. Pages seek (``store/keyset.py``), so
        a deep page costs what the first does.
        """
        if type(max_results) is not int or not 1 <= max_results <= MAX_PAGE:
            raise InvalidParameter(
                f"max_results must be an integer from 1 to {MAX_PAGE}, got {max_results!r}",
                field="max_results",
            )
        c = dataset_versions.c
        keys = [SortKey(c.name, True), SortKey(c.version, False)]
        if newest_first:
            keys.insert(0, SortKey(c.created_at, False))
        query = select(dataset_versions)
        if name is not None:
            query = query.where(c.name == check_dataset_name(name))
        scope = "dataset_versions" if name is None else "dataset_versions:name"
        with self.db.read() as conn:
            rows, token = fetch_page(conn, query, keys, scope, page_token, max_results)
        return Page([_version(r) for r in rows], token)

    def diff(self, a: str | DatasetVersion, b: str | DatasetVersion) -> DatasetDiff:
        """Schema and profile differences from ``a`` to ``b`` (PSI per column, from the
        stored profiles: no data is read)."""
        va, vb = self.resolve(a), self.resolve(b)
        return diff_versions(va, vb)

    # -- restoring ------------------------------------------------------------------------

    def pull(self, pointer: str | Path, dest: str | Path | None = None) -> PullReport:
        """Restore exactly the files a pointer names (needs only the artifact store)."""
        parsed = pointers.read_pointer(pointer)
        return pointers.pull(parsed, self.artifacts.blobs, Path(dest) if dest else None)

    def download(self, ref: str | DatasetVersion, dest: str | Path | None = None) -> Path:
        """The version's files in a local folder (cached by content under ``home``)."""
        version = self.resolve(ref)
        root = (
            Path(dest) if dest else self.settings.home / "cache" / "datasets" / version.files_digest
        )
        for f in version.files:
            target = root / f.path
            if not (target.is_file() and target.stat().st_size == f.size):
                self.artifacts.blobs.download(f.sha256, target)
        return root / version.files[0].path if len(version.files) == 1 else root

    def load(self, ref: str | DatasetVersion) -> Any:
        """The version as a pandas DataFrame."""
        from modelyard.data.sources import open_source

        return open_source(self.download(ref)).read_all().to_pandas()

    # -- contracts ------------------------------------------------------------------------

    def check(
        self,
        data: Any,
        contract: Contract | str | Path,
        *,
        sample: int = 5,
        now: Any = None,
    ) -> ValidationResult:
        """Validate ``data`` (a table, a path, or a dataset reference such as ``sales@3``)
        against ``contract``; distribution checks use the stored profiles of the reference
        versions the contract names.

        A check on a dataset version (a reference or a ``DatasetVersion``) is recorded —
        verdict, counts, contract name and digest — with the lineage edge ``dataset -->
        contract_check``, whether it passed or not; a table or a path records nothing (see
        ``contract_checks`` for why a path whose bytes equal a version's is not matched)."""
        if not isinstance(contract, Contract):
            contract = Contract.from_yaml(contract)
        version = None
        if isinstance(data, (DatasetVersion, str)) and not looks_like_path(data):
            version = self.resolve(data)
            data = self.load(version)

        def reference(ref: str) -> dict[str, Any]:
            return self.resolve(ref).profile

        result = contract.validate(data, reference=reference, sample=sample, now=now)
        if version is None:
            return result
        with self.db.write() as conn:
            contract_checks.record(
                conn,
                version,
                contract,
                result,
                checked_by=self.settings.user or os_user(),
                checked_at=now_ms(),
            )
        return replace(result, data=version.ref)

    def contract_results(self, ref: str | DatasetVersion) -> list[ContractResult]:
        """The contract checks recorded on a version (``sales@3``), newest first."""
        version = self.resolve(ref)
        with self.db.read() as conn:
            return contract_checks.results_of(conn, version.name, version.version)

    # -- runs -----------------------------------------------------------------------------

    def log_input(
        self, run_id: str, ref: str | DatasetVersion, context: str = "training"
    ) -> DatasetInput:
        """Record that run ``run_id`` read this version: the run's inputs list it, and the
        lineage graph gets the ``dataset --input--> run`` edge."""
        from modelyard.tracking.sql_store import SqlTrackingStore

        version = self.resolve(ref)
        described = version.as_input(context)
        SqlTrackingStore(self.db).log_inputs(run_id, [described])
        return described


def diff_versions(va: DatasetVersion, vb: DatasetVersion) -> DatasetDiff:
    ta, tb = va.schema_types(), vb.schema_types()
    changes: list[ColumnChange] = []
    for column in ta:
        if column not in tb:
            changes.append(ColumnChange(column, "removed", {"type": ta[column]}, {}))
    for column in tb:
        if column not in ta:
            changes.append(ColumnChange(column, "added", {}, {"type": tb[column]}))
        elif ta[column] != tb[column]:
            changes.append(ColumnChange(column, "type", {"type": ta[column]}, {"type": tb[column]}))
    if va.digest != vb.digest:
        pa_cols = va.profile.get("columns", {})
        pb_cols = vb.profile.get("columns", {})
        for column in tb:
            if column not in ta or column not in pa_cols or column not in pb_cols:
                continue
            before, after = pa_cols[column], pb_cols[column]
            changed_before = {
                k: before.get(k) for k in _DIFF_FIELDS if before.get(k) != after.get(k)
            }
            changed_after = {k: after.get(k) for k in changed_before}
            value = profile_psi(before, after)
            if changed_before or (value is not None and value > 0):
                changes.append(
                    ColumnChange(column, "profile", changed_before, changed_after, value)
                )
    return DatasetDiff(
        va.ref, vb.ref, va.digest == vb.digest, (va.num_rows, vb.num_rows), tuple(changes)
    )


def looks_like_path(value: Any) -> bool:
    """Whether ``value`` names a file or folder rather than a dataset version (``sales@3``)."""
    if isinstance(value, DatasetVersion):
        return False
    text = str(value)
    return (
        "/" in text
        or "\\" in text
        or Path(text).suffix.lower() in (".csv", ".tsv", ".parquet", ".pq", ".parq", ".gz")
        or Path(text).exists()
    )


def _version(row: Any) -> DatasetVersion:
    return DatasetVersion(
        name=row.name,
        version=int(row.version),
        digest=row.digest,
        files_digest=row.files_digest,
        schema=json.loads(row.schema),
        num_rows=int(row.num_rows),
        num_bytes=int(row.num_bytes),
        profile=json.loads(row.profile),
        files=tuple(FileRef(p, s, int(n)) for p, s, n in json.loads(row.files)),
        storage_location=row.storage_location,
        format=row.format,
        source=row.source,
        created_by=row.created_by,
        created_at=int(row.created_at),
        description=row.description,
    )
