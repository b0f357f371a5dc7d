"""Packaging for scale: a container build context for one version, Kubernetes manifests
for a deployment.

``build_bundle`` writes a self-contained build context: the model's files, a Dockerfile,
``requirements.txt`` pinned to exact versions (the model's own, recorded when it was
saved, plus what the ``serving`` extra brings — and ``onnx`` for a compiled version — as
declared in pyproject.toml and installed here) and ``entrypoint.sh``. The image serves
that one version from its folder — no metadata store needed — on port 8080.

``k8s_manifests`` describes a deployment that follows its revisions from the metadata
store (``modelyard serve DEPLOYMENT``): a Deployment whose readiness probe is the OIP
``/v2/health/ready`` (so a pod still loading its model gets no traffic) and whose
liveness probe is ``/v2/health/live``; a Service; a HorizontalPodAutoscaler on CPU; and a
Prometheus Operator ServiceMonitor scraping ``/metrics``. Store credentials come from a
Secret, never from the manifest.

>>> docs = k8s_manifests("web", image="registry.example/web:1")
>>> [d["kind"] for d in docs]
['Deployment', 'Service', 'HorizontalPodAutoscaler', 'ServiceMonitor']
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from modelyard import __version__
from modelyard.distribution import normal_name, requirements_of
from modelyard.errors import InvalidParameter
from modelyard.registry.formats.flavors import MANIFEST_FILE, read_manifest
from modelyard.serving.compiled import TAG as COMPILED_TAG

PORT = 8080
#: The extras the data plane needs at run time (modelyard's own requirements come too).
RUNTIME_EXTRAS = ("serving",)
#: What a version with a verified ONNX graph (``serving.compiled``) adds, to run it.
COMPILED_EXTRAS = ("onnx",)


@dataclass(frozen=True, slots=True)
class Bundle:
    folder: Path
    files: tuple[str, ...]
    image_hint: str


def _installed(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def requirements_for(manifest: dict[str, Any], extras: Sequence[str] = RUNTIME_EXTRAS) -> str:
    """``requirements.txt`` for the image: modelyard, its requirements and those of
    ``extras``, each pinned to the version installed here (with its environment marker),
    or as declared when it is not installed here (a package for another platform); the
    model's recorded requirements win over the runtime's."""
    model_reqs = {normal_name(k): str(v) for k, v in (manifest.get("requirements") or {}).items()}
    lines = {
        r.name: r.line(_installed(r.name))
        for r in requirements_of(*extras, base=True)
        if r.name not in model_reqs
    }
    lines.update({name: f"{name}=={version}" for name, version in model_reqs.items()})
    return "\n".join([f"modelyard=={__version__}", *(lines[n] for n in sorted(lines))]) + "\n"


def dockerfile(python_version: str) -> str:
    major_minor = ".".join(python_version.split(".")[:2]) or "3.11"
    return f"""\
# Built by `modelyard build`: serves one model version on port {PORT} (OIP v2, MLflow
# /invocations, /predict, /metrics). Health: /v2/health/live, /v2/health/ready.
FROM python:{major_minor}-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 MODELYARD_HOME=/var/lib/modelyard
RUN useradd --create-home --uid 10001 modelyard
WORKDIR /app
COPY requirements.txt .
# wheels/ may hold a modelyard wheel when it is not on your package index.
COPY wheels/ wheels/
RUN pip install --no-cache-dir --find-links wheels/ -r requirements.txt
COPY model/ model/
COPY entrypoint.sh .
USER 10001
EXPOSE {PORT}
ENTRYPOINT ["sh", "/app/entrypoint.sh"]
"""


ENTRYPOINT = f"""\
#!/bin/sh
# WORKERS: worker processes (default 1; one per CPU you give the container).
set -e
exec modelyard serve /app/model --host 0.0.0.0 --port "${{PORT:-{PORT}}}" \\
  --workers "${{WORKERS:-1}}" --no-log-predictions
"""


def build_bundle(registry: Any, model_uri: str, out_dir: str | Path) -> Bundle:
    """Write the build context for the version ``model_uri`` names into ``out_dir``."""
    resolved = registry.resolve(model_uri)
    version = resolved.version
    if version is None:
        raise InvalidParameter(
            f"{model_uri!r} is not a registered version; use models:/NAME/VERSION",
            field="model_uri",
        )
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise InvalidParameter(f"{str(out)!r} is not empty; build into a new folder", field="out")
    out.mkdir(parents=True, exist_ok=True)
    local = registry.download_model(version.uri, out / "download")
    shutil.move(str(local), str(out / "model"))
    shutil.rmtree(out / "download", ignore_errors=True)
    manifest = read_manifest(out / "model")
    manifest["registered_model"] = {"name": version.name, "version": version.version}
    import json

    (out / "model" / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, default=str))
    compiled = version.tags.get(COMPILED_TAG) == "onnx"
    extras = RUNTIME_EXTRAS + (COMPILED_EXTRAS if compiled else ())
    (out / "requirements.txt").write_text(requirements_for(manifest, extras))
    (out / "Dockerfile").write_text(dockerfile(str(manifest.get("python_version") or "3.11")))
    (out / "entrypoint.sh").write_text(ENTRYPOINT)
    (out / "wheels").mkdir(exist_ok=True)
    (out / "wheels" / ".keep").write_text("")
    (out / ".dockerignore").write_text("**/__pycache__\n")
    files = tuple(sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()))
    image = f"{_dns(version.name)}:{version.version}"
    return Bundle(out, files, image)


def _dns(name: str) -> str:
    cleaned = "".join(ch if ch.isalnum() else "-" for ch in name.lower()).strip("-")
    return cleaned[:63] or "model"


#: The labels every object modelyard writes carries (Kubernetes' recommended labels); the
#: selector is the first two, which never change between releases.
MANAGED_BY = "modelyard"


def kubernetes_labels(name: str, instance: str, component: str) -> dict[str, str]:
    """The recommended ``app.kubernetes.io/*`` labels: ``name`` the application (one per
    plane), ``instance`` this installation of it."""
    return {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/instance": instance,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/managed-by": MANAGED_BY,
    }


def selector_of(labels: dict[str, str]) -> dict[str, str]:
    """The labels a Service, an autoscaler or a disruption budget selects pods by."""
    return {k: labels[k] for k in ("app.kubernetes.io/name", "app.kubernetes.io/instance")}


def http_probe(path: str, period: int, failures: int, timeout: int = 2) -> dict[str, Any]:
    """A probe that GETs ``path`` on the container's port named ``http``."""
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period,
        "timeoutSeconds": timeout,
        "failureThreshold": failures,
    }


def http_service(meta: dict[str, Any], selector: dict[str, str]) -> dict[str, Any]:
    """A ClusterIP Service on port 80 in front of the pods' port named ``http``."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {
            "selector": selector,
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def cpu_autoscaler(
    meta: dict[str, Any], *, minimum: int, maximum: int, cpu_target_percent: int
) -> dict[str, Any]:
    """A HorizontalPodAutoscaler of the Deployment named as ``meta``, on CPU use."""
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": meta,
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": meta["name"]},
            "minReplicas": minimum,
            "maxReplicas": maximum,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": cpu_target_percent},
                    },
                }
            ],
        },
    }


def service_monitor(
    meta: dict[str, Any], selector: dict[str, str], interval: str
) -> dict[str, Any]:
    """A Prometheus Operator ServiceMonitor scraping ``/metrics`` of the Service's pods."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": meta,
        "spec": {
            "selector": {"matchLabels": selector},
            "namespaceSelector": {"matchNames": [meta["namespace"]]},
            "endpoints": [{"port": "http", "path": "/metrics", "interval": interval}],
        },
    }


def rolling_update() -> dict[str, Any]:
    """A Deployment's rollout: never fewer ready pods than asked for while a new image
    rolls out (one extra pod at a time)."""
    return {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}


def check_replicas(replicas: int, max_replicas: int) -> None:
    """The autoscaler's range must hold the replicas asked for."""
    if not 1 <= replicas <= max_replicas:
        raise InvalidParameter(
            f"replicas must be between 1 and max_replicas ({max_replicas}), got {replicas}",
            field="replicas",
        )


def k8s_manifests(
    deployment: str,
    *,
    image: str,
    namespace: str = "default",
    replicas: int = 2,
    max_replicas: int = 10,
    cpu_target_percent: int = 70,
    workers: int = 1,
    cpu: str = "1",
    memory: str = "512Mi",
    store_secret: str = "modelyard-store",
    scrape_interval: str = "15s",
) -> list[dict[str, Any]]:
    """Deployment, Service, HorizontalPodAutoscaler and ServiceMonitor for ``deployment``.

    The pods run ``modelyard serve DEPLOYMENT`` and read ``MODELYARD_STORE_URI`` and
    ``MODELYARD_ARTIFACTS_URI`` from the Secret ``store_secret``.
    """
    check_replicas(replicas, max_replicas)
    labels = kubernetes_labels("modelyard-inference", deployment, "data-plane")
    selector = selector_of(labels)
    meta = {"name": deployment, "namespace": namespace, "labels": labels}
    container = {
        "name": "inference",
        "image": image,
        "args": ["serve", deployment, "--host", "0.0.0.0", "--port", str(PORT),
                 "--workers", str(workers)],
        "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
        "env": [
            {"name": name, "valueFrom": {"secretKeyRef": {"name": store_secret, "key": key}}}
            for name, key in (
                ("MODELYARD_STORE_URI", "store-uri"),
                ("MODELYARD_ARTIFACTS_URI", "artifacts-uri"),
            )
        ],
        "readinessProbe": http_probe("/v2/health/ready", 5, 3),
        "livenessProbe": http_probe("/v2/health/live", 10, 3),
        # Loading a model may take a while; liveness waits until the process is up.
        "startupProbe": http_probe("/v2/health/live", 2, 60),
        "resources": {
            "requests": {"cpu": cpu, "memory": memory},
            "limits": {"memory": memory},
        },
        "securityContext": {
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": False,
        },
    }  # fmt: skip
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta,
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": selector},
                "strategy": rolling_update(),
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "terminationGracePeriodSeconds": 30,
                        "containers": [container],
                    },
                },
            },
        },
        http_service(meta, selector),
        cpu_autoscaler(
            meta, minimum=replicas, maximum=max_replicas, cpu_target_percent=cpu_target_percent
        ),
        service_monitor(meta, selector, scrape_interval),
    ]


def to_yaml(documents: list[dict[str, Any]]) -> str:
    """The documents as one multi-document YAML stream, keys in the order written, and a
    part used twice (the labels) written out twice rather than as ``&id001``/``*id001``."""
    import yaml

    class Dumper(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:
            return True

    return "---\n".join(yaml.dump(doc, Dumper=Dumper, sort_keys=False) for doc in documents)


class FolderRegistry:
    """Just enough of a registry to serve one saved model folder (a built image): the
    version is read from the folder's manifest; there is no store, feedback or alias."""

    def __init__(self, folder: str | Path) -> None:
        from modelyard.registry.entities import ModelVersion, Stage

        self.folder = Path(folder).absolute()
        manifest = read_manifest(self.folder)
        registered = manifest.get("registered_model") or {}
        name = str(registered.get("name") or self.folder.name)
        number = int(registered.get("version") or 1)
        self.version = ModelVersion(
            name=name,
            version=number,
            source=str(self.folder),
            storage_location=str(self.folder),
            stage=Stage.NONE,
            status="READY",
            created_by="",
            creation_time=0,
            last_updated_time=0,
            flavor=manifest.get("flavor"),
            signature=manifest.get("signature"),
        )
        self.artifacts = None
        self.db = None

    def resolve(self, uri: str) -> Any:
        from types import SimpleNamespace

        return SimpleNamespace(uri=uri, artifact_path=str(self.folder), version=self.version)

    def get_model_version(self, name: str, version: int) -> Any:
        return self.version

    def load_model(self, uri: str, *, trusted: bool = False, **_: Any) -> Any:
        from modelyard.registry.formats.flavors import load_model

        return load_model(self.folder, trusted=trusted)
