"""``RegistryClient``: the explicit registry API (names and versions in, entities out).

It validates input, resolves where a version's files come from (``runs:/…``, a logged
model, an artifact path), freezes a copy of them into the registry, seeds the model card
from the source run, and applies the promotion policy through its store, which records
every change in the audit trail. The actor is the configured user (``Settings.user``, else
the OS user) with every role; a server passes the authenticated user instead
(``as_actor``).

>>> import numpy as np
>>> from sklearn.linear_model import LinearRegression
>>> from modelyard.registry.formats.flavors import save_model
>>> from modelyard.tracking.client import TrackingClient
>>> settings = Settings(home=tmp_home)
>>> X = np.arange(10.0).reshape(5, 2)
>>> _ = save_model(LinearRegression().fit(X, X.sum(axis=1)), "model")
>>> with TrackingClient.from_settings(settings) as tracking:  # a run that logged the model
...     run_id = tracking.create_run("0").info.run_id
...     _ = tracking.log_artifacts(run_id, "model", "model")
>>> registry = RegistryClient.from_settings(settings)
>>> v = registry.register_model(f"runs:/{run_id}/model", "churn")
>>> registry.set_registered_model_alias("churn", "champion", v.version)
>>> registry.load_model("models:/churn@champion").predict(X[:2])
array([1., 5.])
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from modelyard import json_codec
from modelyard.artifacts import namespaces
from modelyard.config import Settings, load_settings, os_user
from modelyard.digests import folder_digest, tree_digest
from modelyard.errors import (
    AlreadyExists,
    IntegrityViolation,
    InvalidParameter,
    NotFound,
    NotImplementedFeature,
    PermissionDenied,
)
from modelyard.ids import now_ms
from modelyard.registry import cards
from modelyard.registry.audit import Verification
from modelyard.registry.entities import (
    Actor,
    Approval,
    AuditEvent,
    Decision,
    GateVerdict,
    ModelVersion,
    RegisteredModel,
    Stage,
)
from modelyard.registry.formats.flavors import (
    MANIFEST_FILE,
    MLFLOW_MANIFEST_FILE,
    LoadedModel,
    load_model,
    read_manifest,
)
from modelyard.registry.logged_models import LoggedModelStore
from modelyard.registry.policy import PromotionPolicy
from modelyard.registry.reserved_tags import UNLOADABLE_TAG, refuse_system_tags
from modelyard.registry.sql_store import SqlRegistryStore
from modelyard.registry.store import RegistryStore
from modelyard.registry.uris import (
    LoggedModelRef,
    ModelRef,
    RunRef,
    check_model_name,
    check_version,
    parse_model_uri,
)
from modelyard.store.engine import Database
from modelyard.tracking import checks
from modelyard.tracking.entities import Page, Run
from modelyard.tracking.search_filter import quote
from modelyard.tracking.sql_store import SqlTrackingStore

#: The logged-model tag where MLflow lists the versions registered from it.
MODEL_VERSIONS_TAG = "mlflow.modelVersions"
#: How many ``models:/`` sources a download URI follows (a copy of a copy of …).
MAX_SOURCE_HOPS = 8
#: Where the registry keeps its frozen copies of versions' files.
REGISTRY_PREFIX = namespaces.REGISTRY
#: Told of each version just stored: ``observer(client, version)``.
VersionObserver = Callable[["RegistryClient", ModelVersion], None]
_ARTIFACT_SCHEME = "mlflow-artifacts:"


@dataclass(frozen=True, slots=True)
class ResolvedModel:
    """What a model URI names right now: the files and, for registry URIs, the version."""

    uri: str
    artifact_path: str
    version: ModelVersion | None = None
    run_id: str | None = None


class RegistryClient:
    def __init__(
        self,
        db: Database,
        artifacts: Any,
        settings: Settings | None = None,
        *,
        policy: PromotionPolicy | None = None,
        actor: Actor | None = None,
        store: RegistryStore | None = None,
        system: bool = True,
        version_observers: Sequence[VersionObserver] = (),
    ) -> None:
        self.db = db
        #: Called after each new version is stored (the monitoring room profiles its
        #: training data): the registry knows nothing of them beyond this signature.
        self.version_observers = tuple(version_observers)
        #: False for a client's request (``for_clients``): ``modelyard.*`` tags are refused.
        self.system = system
        self.artifacts = artifacts
        self.settings = settings or load_settings()
        self.policy = policy or PromotionPolicy.from_settings(self.settings)
        self.actor = actor or Actor(self.settings.user or os_user())
        self.store = store or SqlRegistryStore(db)
        self.tracking = SqlTrackingStore(db)
        self.logged_models = LoggedModelStore(db)

    @classmethod
    def from_settings(
        cls, settings: Settings | None = None, *, policy: PromotionPolicy | None = None
    ) -> RegistryClient:
        """Open the stores the settings name (the same ones ``TrackingClient`` uses)."""
        from modelyard.artifacts.blobs import open_blob_store
        from modelyard.artifacts.repository import ArtifactRepository
        from modelyard.tracking.backends import database_for

        settings = settings or load_settings()
        if settings.is_remote:
            raise NotImplementedFeature(
                "the registry client needs a local store for now; against a server, use the "
                "MLflow client (its registry API is served) or unset MODELYARD_TRACKING_URI",
                field="tracking_uri",
            )
        db = database_for(settings)
        blobs = open_blob_store(settings.resolved_artifacts_uri())
        return cls(db, ArtifactRepository(db, blobs), settings, policy=policy)

    def as_actor(self, actor: Actor) -> RegistryClient:
        """The same stores and policy, acting as ``actor`` (a server's authenticated user)."""
        return RegistryClient(
            self.db,
            self.artifacts,
            self.settings,
            policy=self.policy,
            actor=actor,
            store=self.store,
            system=self.system,
            version_observers=self.version_observers,
        )

    def for_clients(self, actor: Actor | None = None) -> RegistryClient:
        """The client a server hands a request: it acts as ``actor`` (default: as this
        client does) and refuses the ``modelyard.*`` tags only modelyard itself writes."""
        return RegistryClient(
            self.db,
            self.artifacts,
            self.settings,
            policy=self.policy,
            actor=actor or self.actor,
            store=self.store,
            system=False,
            version_observers=self.version_observers,
        )

    def check_client_tags(self, keys: Iterable[str], entity: str) -> None:
        """Refuse reserved keys when this client serves a request (no-op for modelyard)."""
        if not self.system:
            refuse_system_tags(keys, entity)

    # -- registered models ----------------------------------------------------------------

    def create_registered_model(
        self, name: str, description: str | None = None, tags: Mapping[str, Any] | None = None
    ) -> RegisteredModel:
        self.check_client_tags(tags or {}, "registered model")
        return self.store.create_registered_model(
            check_model_name(name), self.actor, description, _tags(tags)
        )

    def get_registered_model(self, name: str) -> RegisteredModel:
        return self.store.get_registered_model(name)

    def search_registered_models(
        self,
        filter_string: str | None = None,
        max_results: int = 100,
        page_token: str | None = None,
        order_by: Sequence[str] | None = None,
    ) -> Page[RegisteredModel]:
        """Models matching MLflow's ``filter_string`` (``name LIKE 'churn%' AND tags.team =
        'retail'``), by ``order_by`` (``name``, ``creation_timestamp``,
        ``last_updated_timestamp``, each ``ASC`` or ``DESC``), then by name."""
        return self.store.search_registered_models(filter_string, max_results, page_token, order_by)

    def list_registered_models(self, name_like: str | None = None) -> list[RegisteredModel]:
        """Every registered model (all pages), by name; ``name_like`` is a LIKE pattern on
        the name, in any case."""
        found: list[RegisteredModel] = []
        token: str | None = None
        by_name = f"name ILIKE {quote(name_like, last=True)}" if name_like else None
        while True:
            page = self.store.search_registered_models(by_name, 1000, token)
            found.extend(page.items)
            token = page.next_page_token
            if not token:
                return found

    def update_registered_model(self, name: str, description: str | None) -> RegisteredModel:
        return self.store.update_registered_model(name, description, self.actor)

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        return self.store.rename_registered_model(name, new_name, self.actor)

    def delete_registered_model(self, name: str) -> None:
        self.store.delete_registered_model(name, self.actor)

    def set_registered_model_tag(self, name: str, key: str, value: Any) -> None:
        self.check_client_tags([key], "registered model")
        value = _tags({key: value})[key]
        self.store.set_registered_model_tag(name, key, value, self.actor)

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        self.check_client_tags([key], "registered model")
        self.store.delete_registered_model_tag(name, key, self.actor)

    # -- versions -------------------------------------------------------------------------

    def register_model(
        self,
        model_uri: str,
        name: str,
        description: str | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> ModelVersion:
        """Register the files at ``model_uri`` as the next version of ``name`` (created if
        needed). Checks the source before creating anything."""
        check_model_name(name)
        self.check_client_tags(tags or {}, "model version")
        clean_tags = _tags(tags)
        source = self._source(model_uri, None)
        try:
            self.store.create_registered_model(name, self.actor)
        except AlreadyExists:
            pass
        return self._create_version(name, model_uri, source, description, clean_tags)

    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str | None = None,
        description: str | None = None,
        tags: Mapping[str, Any] | None = None,
        run_link: str | None = None,
        model_id: str | None = None,
    ) -> ModelVersion:
        """A new version of an existing registered model from ``source`` (any model URI or
        artifact path). Missing model, run or files: NotFound, and nothing is created.

        A request through the server (``for_clients``) is stored as MLflow stores it even
        when ``run_id`` names no run or ``source`` no files here (MLflow keeps both as
        metadata): ``run_id`` is kept verbatim and its lineage edge recorded as unresolved
        (a policy with ``require_lineage`` then refuses to promote it), and a version
        without files keeps ``source`` as its download URI and cannot be loaded."""
        self.store.get_registered_model(name)
        self.check_client_tags(tags or {}, "model version")
        clean_tags = _tags(tags)
        try:
            resolved = self._source(source, run_id)
        except (NotFound, InvalidParameter):
            if self.system:
                raise
            resolved = self._metadata_only(source, run_id)
        if model_id and resolved.get("model_id") is None:
            if self.system:  # a server request's model id is kept as given, as MLflow does
                self.logged_models.get(model_id)
            resolved["model_id"] = model_id
        return self._create_version(name, source, resolved, description, clean_tags, run_link)

    def _metadata_only(self, source: str, run_id: str | None) -> dict[str, Any]:
        """What a version whose files cannot be found here records: no files, the run it
        names (verbatim, unresolved unless that run exists)."""
        if not isinstance(source, str) or not source.strip():
            raise InvalidParameter(
                f"source must be a model URI or path, got {source!r}", field="source"
            )
        check_metadata_source(source)
        return {
            "path": None,
            "run": self._run_if_exists(run_id),
            "run_id": run_id,
            "manifest": {},
            "model_id": None,
            "problem": None,
        }

    def _source(self, source: str, run_id: str | None) -> dict[str, Any]:
        """Where ``source``'s files are, which run produced them, and their manifest."""
        if not isinstance(source, str) or not source.strip():
            raise InvalidParameter(
                f"source must be a model URI or path, got {source!r}", field="source"
            )
        model_id = None
        if source.startswith(("runs:/", "models:/")):
            ref = parse_model_uri(source)
            if isinstance(ref, ModelRef):
                path = self.resolve(source).artifact_path
            elif isinstance(ref, LoggedModelRef):
                logged = self.logged_models.get(ref.model_id)
                path, model_id = logged.artifact_location, logged.model_id
                run_id = run_id or logged.source_run_id
            else:
                source_run = self._run(ref.run_id)
                path = "/".join(p for p in (source_run.info.artifact_root, ref.path) if p)
                run_id = run_id or ref.run_id
        else:
            path = source.removeprefix(_ARTIFACT_SCHEME).strip("/")
        if not path or not self.artifacts.exists(path):
            raise NotFound(f"no model files at {source!r} (artifact path {path!r})", field="source")
        manifest = self._manifest(path)
        problem = None if manifest.get("flavor") else self._no_saved_model(source, path)
        # A manifest may name a run that is gone: the provenance is then unknown, not wrong.
        # A server request may name a run we do not have (MLflow stores it as given).
        run: Run | None
        if run_id and self.system:
            run = self._run(run_id)
        else:
            run = self._run_if_exists(run_id or manifest.get("run_id"))
        return {
            "path": path,
            "run": run,
            "run_id": run_id if run is None else run.info.run_id,
            "manifest": manifest,
            "model_id": model_id,
            "problem": problem,
        }

    def _no_saved_model(self, source: str, path: str) -> str:
        """A version must hold a loadable model. modelyard's own callers are refused; a
        request through the server (the MLflow API, which stores versions of any files)
        is accepted, and the version is flagged at once with how to fix it
        (``UNLOADABLE_TAG``), so ``modelyard serve`` fails fast on it."""
        message = (
            f"{source!r} holds no saved model (no MLmodel.json or MLmodel manifest naming a "
            f"flavor at artifact path {path!r}); save it with modelyard.log_model(model, "
            "'model') or mlflow.<flavor>.log_model, then register that"
        )
        if self.system:
            raise InvalidParameter(message, field="source")
        return message

    def _run_if_exists(self, run_id: str | None) -> Run | None:
        if not run_id:
            return None
        try:
            return self.tracking.get_run(run_id)
        except (NotFound, InvalidParameter):
            return None

    def _run(self, run_id: str) -> Run:
        try:
            return self.tracking.get_run(run_id)
        except NotFound:
            raise NotFound(f"Run with id={run_id} not found", field="run_id") from None

    def _manifest(self, path: str) -> dict[str, Any]:
        for name in (MANIFEST_FILE, MLFLOW_MANIFEST_FILE):
            try:
                data = self.artifacts.read_bytes(f"{path}/{name}")
            except NotFound:
                continue
            with tempfile.TemporaryDirectory(prefix="modelyard-manifest-") as tmp:
                (Path(tmp) / name).write_bytes(data)
                try:
                    return read_manifest(tmp)
                except InvalidParameter:
                    return {}
        return {}

    def _create_version(
        self,
        name: str,
        source: str,
        resolved: dict[str, Any],
        description: str | None,
        tags: dict[str, str],
        run_link: str | None = None,
    ) -> ModelVersion:
        if resolved["path"] is None:  # metadata only (see create_model_version)
            storage, files_digest = "", None
        else:
            storage = self._freeze(resolved["path"])
            files_digest = tree_digest(self.artifacts.digests_under(storage))
        manifest, run = resolved["manifest"], resolved["run"]
        run_id = run.info.run_id if run else resolved.get("run_id")
        if resolved["problem"]:  # written by modelyard: clients cannot remove the flag
            tags = {**tags, UNLOADABLE_TAG: resolved["problem"][:8000]}
        flavor, signature = manifest.get("flavor"), manifest.get("signature")
        card = cards.card_for_version(
            name, 0, run=run, flavor=flavor, signature=signature, created_by=self.actor.name
        ).to_dict()
        card.pop("version")
        created = self.store.create_model_version(
            name,
            self.actor,
            source=source,
            storage_location=storage,
            run_id=run_id,
            lineage_resolved=run is not None or not run_id,
            model_id=resolved["model_id"],
            run_link=run_link,
            description=description,
            tags=tags,
            flavor=flavor,
            signature=signature,
            card=card,
            files_digest=files_digest,
        )
        if created.model_id:
            self._note_registration(created)
        for observe in self.version_observers:
            observe(self, created)
        return created

    def _note_registration(self, version: ModelVersion) -> None:
        """Add the version to its logged model's ``mlflow.modelVersions`` tag, which
        MLflow's UI reads: a JSON list, spaced as MLflow (Python's ``json``) writes it."""
        model_id = version.model_id or ""
        try:
            logged = self.logged_models.get(model_id)
        except NotFound:
            return  # a model id a client named that this store does not hold
        try:
            known = json_codec.loads_lenient(logged.tags.get(MODEL_VERSIONS_TAG) or "[]")
        except ValueError:
            known = []
        pairs = [
            (str(e.get("name")), e.get("version"))
            for e in (known if isinstance(known, list) else [])
            if isinstance(e, dict)
        ]
        pairs.append((version.name, version.version))

        def item(name: str, number: Any) -> str:
            name_json, number_json = json_codec.dumps(name).decode(), json_codec.dumps(number)
            return f'{{"name": {name_json}, "version": {number_json.decode()}}}'

        text = ", ".join(item(name, number) for name, number in pairs)
        self.logged_models.set_tags(model_id, {MODEL_VERSIONS_TAG: f"[{text}]"})

    def _freeze(self, path: str) -> str:
        """Copy the files at ``path`` into the registry (content-addressed: bytes are
        shared, not duplicated), so deleting or purging the run cannot change a version."""
        target = f"{REGISTRY_PREFIX}/{uuid.uuid4().hex}"
        with tempfile.TemporaryDirectory(prefix="modelyard-freeze-") as tmp:
            local = self.artifacts.download(path, tmp)
            if Path(local).is_file():
                self.artifacts.log_file(f"{target}/{Path(local).name}", local)
            else:
                self.artifacts.log_dir(target, local)
        return target

    def get_model_version(self, name: str, version: int | str) -> ModelVersion:
        return self.store.get_model_version(name, check_version(version))

    def search_model_versions(
        self,
        filter_string: str | None = None,
        max_results: int = 1000,
        page_token: str | None = None,
        order_by: Sequence[str] | None = None,
    ) -> Page[ModelVersion]:
        """Versions matching MLflow's ``filter_string`` (``name = 'churn' AND
        version_number > 2``, ``run_id IN ('…')``), by ``order_by``, then models by name
        and the newest version first."""
        return self.store.search_model_versions(filter_string, max_results, page_token, order_by)

    def list_model_versions(self, name: str) -> list[ModelVersion]:
        """Every version of ``name``, newest first (NotFound for an unknown model)."""
        self.store.get_registered_model(name)
        found: list[ModelVersion] = []
        token: str | None = None
        by_name = f"name = {quote(name, last=True)}"
        while True:
            page = self.store.search_model_versions(by_name, 1000, token)
            found.extend(page.items)
            token = page.next_page_token
            if not token:
                return found

    def get_latest_versions(
        self, name: str, stages: Sequence[str] | None = None
    ) -> list[ModelVersion]:
        wanted = {Stage.parse(s) for s in stages} if stages else None
        latest = self.store.get_registered_model(name).latest_versions
        return [v for v in latest if wanted is None or v.stage in wanted]

    def update_model_version(
        self, name: str, version: int | str, description: str | None
    ) -> ModelVersion:
        return self.store.update_model_version(
            name, check_version(version), description, self.actor
        )

    def delete_model_version(self, name: str, version: int | str) -> None:
        self.store.delete_model_version(name, check_version(version), self.actor)

    def set_model_version_tag(self, name: str, version: int | str, key: str, value: Any) -> None:
        self.check_client_tags([key], "model version")
        value = _tags({key: value})[key]
        self.store.set_model_version_tag(name, check_version(version), key, value, self.actor)

    def delete_model_version_tag(self, name: str, version: int | str, key: str) -> None:
        self.check_client_tags([key], "model version")
        self.store.delete_model_version_tag(name, check_version(version), key, self.actor)

    def transition_model_version_stage(
        self, name: str, version: int | str, stage: str, archive_existing_versions: bool = False
    ) -> ModelVersion:
        """Move a version to ``stage``; entering Production applies the promotion policy and
        archives the previous Production version, atomically."""
        return self.store.transition_stage(
            name,
            check_version(version),
            Stage.parse(stage),
            self.actor,
            self.policy,
            archive_existing_versions,
        )

    # -- aliases --------------------------------------------------------------------------

    def set_registered_model_alias(self, name: str, alias: str, version: int | str) -> None:
        """Point ``alias`` at ``version`` (gated aliases such as ``champion`` apply the
        promotion policy)."""
        self.store.set_alias(name, alias, check_version(version), self.actor, self.policy)

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        self.store.delete_alias(name, alias, self.actor)

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        return self.store.get_version_by_alias(name, alias)

    # -- governance -----------------------------------------------------------------------

    def approve(self, name: str, version: int | str, comment: str | None = None) -> Approval:
        return self.store.record_decision(
            name, check_version(version), Decision.APPROVED, self.actor, self.policy, comment
        )

    def reject(self, name: str, version: int | str, reason: str) -> Approval:
        return self.store.record_decision(
            name, check_version(version), Decision.REJECTED, self.actor, self.policy, reason
        )

    def record_gate_verdict(
        self,
        name: str,
        version: int | str,
        *,
        passed: bool,
        policy: str,
        summary: str,
        report: str | None = None,
        created_at: int | None = None,
    ) -> GateVerdict:
        """Store a quality gate's verdict on the version's current files. The gate's own
        entry point (``validation.gates.record_gate``); no server route calls it."""
        if not self.system:
            raise PermissionDenied(
                "gate verdicts are written by `modelyard gate` only, never from a request",
                field="verdict",
            )
        target = self.get_model_version(name, version)
        verdict = GateVerdict(
            name=target.name,
            version=target.version,
            passed=bool(passed),
            files_digest=target.files_digest,
            policy=str(policy)[:256],
            summary=str(summary),
            created_by=self.actor.name,
            created_at=created_at if created_at is not None else now_ms(),
            report=report,
        )
        return self.store.record_gate_verdict(verdict, self.actor)

    def latest_gate_verdict(self, name: str, version: int | str) -> GateVerdict | None:
        return self.store.latest_gate_verdict(name, check_version(version))

    def list_approvals(self, name: str, version: int | str) -> list[Approval]:
        return self.store.list_approvals(name, check_version(version))

    def get_card(self, name: str, version: int | str) -> cards.ModelCard:
        number = check_version(version)
        content = self.store.get_card(name, number)
        return cards.ModelCard.from_dict({**content, "model_name": name, "version": number})

    def update_card(self, name: str, version: int | str, **changes: Any) -> cards.ModelCard:
        """Edit card fields (``intended_use=…``, ``owners=[…]``); an audited change."""
        clean = cards.check_changes(changes)
        number = check_version(version)
        content = self.store.update_card(name, number, clean, self.actor)
        return cards.ModelCard.from_dict({**content, "model_name": name, "version": number})

    def audit_log(
        self, model_name: str | None = None, limit: int | None = None
    ) -> list[AuditEvent]:
        return self.store.audit_events(model_name, limit)

    def verify_audit(self, anchor: str | None = None) -> Verification:
        return self.store.verify_audit(anchor)

    # -- resolving and loading ------------------------------------------------------------

    def resolve(self, uri: str) -> ResolvedModel:
        """What ``uri`` names now: ``models:/name/3``, ``models:/name@alias``,
        ``models:/name/Production``, ``models:/name/latest``, ``models:/m-…``, ``runs:/…``."""
        ref = parse_model_uri(uri)
        if isinstance(ref, RunRef):
            run = self._run(ref.run_id)
            path = "/".join(p for p in (run.info.artifact_root, ref.path) if p)
            return ResolvedModel(uri, path, None, run.info.run_id)
        if isinstance(ref, LoggedModelRef):
            logged = self.logged_models.get(ref.model_id)
            return ResolvedModel(uri, logged.artifact_location, None, logged.source_run_id)
        version = self._version_for(ref)
        if not version.storage_location:
            raise NotFound(
                f"{version.name} version {version.version} holds no files: its source "
                f"{version.source!r} could not be found when it was registered through the "
                "MLflow API, so it was stored as metadata only; register a version from "
                "files to load or serve it",
                field="model_uri",
            )
        return ResolvedModel(uri, version.storage_location, version, version.run_id)

    def _version_for(self, ref: ModelRef) -> ModelVersion:
        if ref.alias is not None:
            return self.store.get_version_by_alias(ref.name, ref.alias)
        if ref.version is not None:
            return self.store.get_model_version(ref.name, ref.version)
        candidates = self.store.get_registered_model(ref.name).latest_versions
        if ref.stage is not None:
            candidates = tuple(v for v in candidates if v.stage == ref.stage)
        if not candidates:
            what = f"in stage {ref.stage.value}" if ref.stage else "at all"
            raise NotFound(f"model {ref.name!r} has no version {what}", field="model_uri")
        return max(candidates, key=lambda v: v.version)

    def get_download_uri(self, name: str, version: int | str) -> str:
        """Where an MLflow client downloads the version's files from (the artifact proxy)."""
        mv = self.get_model_version(name, version)
        for _ in range(MAX_SOURCE_HOPS):
            if mv.storage_location:
                return f"{_ARTIFACT_SCHEME}/{mv.storage_location}"
            # metadata only: the source as given, as MLflow answers; a copy of such a
            # version (source models:/name/N) answers what that version answers
            try:
                ref = parse_model_uri(mv.source) if mv.source.startswith("models:/") else None
                if not isinstance(ref, ModelRef):
                    return mv.source
                mv = self._version_for(ref)
            except (NotFound, InvalidParameter):
                return mv.source
        return mv.source

    def download_model(self, uri: str, dst: str | Path | None = None) -> Path:
        """Fetch the files ``uri`` names into ``dst`` (default: a new temporary folder that
        is the caller's to remove); a registered version's files are verified against the
        digest recorded at registration (IntegrityViolation, audited, if not)."""
        resolved = self.resolve(uri)
        target = Path(dst) if dst else Path(tempfile.mkdtemp(prefix="modelyard-model-"))
        try:
            target.mkdir(parents=True, exist_ok=True)
            local = Path(self.artifacts.download(resolved.artifact_path, target))
            if resolved.version is not None:
                self._verify(resolved.version, local)
        except BaseException:
            if not dst:  # ours: a failed download leaves nothing behind
                shutil.rmtree(target, ignore_errors=True)
            raise
        return local

    def _verify(self, version: ModelVersion, local: Path) -> None:
        actual = folder_digest(local)
        if version.files_digest is not None and actual == version.files_digest:
            return
        self.store.record_integrity_failure(
            version.name, version.version, version.files_digest, actual, self.actor
        )
        expected = version.files_digest or "none recorded"
        raise IntegrityViolation(
            f"{version.name} version {version.version}'s files do not match the digest "
            f"recorded at registration ({expected[:16]}…, found {actual[:16]}…): they were "
            "changed outside the registry, so they are not loaded; this was recorded in the "
            "audit trail (`modelyard audit log`). Register the intended files as a new version.",
            field="files_digest",
        )

    def load_model(
        self, uri: str, *, trusted: bool = False, trusted_types: Collection[str] = ()
    ) -> LoadedModel:
        """Resolve ``uri``, fetch its files and load them (safe formats unless ``trusted``).

        The files are fetched into a temporary folder that is removed once the model is in
        memory: loading leaves nothing behind, however often a server retries.
        """
        with tempfile.TemporaryDirectory(prefix="modelyard-model-") as tmp:
            return load_model(
                self.download_model(uri, tmp), trusted=trusted, trusted_types=trusted_types
            )

    def version_run(self, version: ModelVersion) -> Run | None:
        return self._run(version.run_id) if version.run_id else None


def _tags(tags: Mapping[str, Any] | None) -> dict[str, str]:
    """Validated tags; values are stored as text."""
    out: dict[str, str] = {}
    for key, value in (tags or {}).items():
        checks.check_key(key, "tag")
        out[key] = checks.check_tag_value(key, value)
    return out


def check_metadata_source(source: str) -> None:
    """Refuse, as MLflow does, a source that climbs out of its folder (``..``, also
    percent-encoded, or NUL) or names a file on the server's own disk: a version kept as
    metadata must not point a later download anywhere its writer could not."""
    decoded = unquote(source)
    path = decoded.split("://", 1)[-1] if "://" in decoded else decoded.split(":", 1)[-1]
    if "\x00" in decoded or ".." in path.replace("\\", "/").split("/"):
        raise InvalidParameter(
            f"Invalid model version source: {source!r}. If supplying a source as an http, "
            "https, local file path, ftp, objectstore, or mlflow-artifacts uri, an absolute "
            "path or a relative path without '..' segments is required",
            field="source",
        )
    if decoded.startswith(("/", "file:")) or (len(decoded) > 1 and decoded[1] == ":"):
        raise InvalidParameter(
            f"Invalid model version source: {source!r}. To use a local path as a model "
            "version source, the run_id request parameter has to be specified and the local "
            "path has to be contained within the artifact directory of the run specified by "
            "the run_id; this server keeps artifacts in its own store, so register "
            "runs:/<run_id>/<path> or models:/<model_id> instead",
            field="source",
        )
