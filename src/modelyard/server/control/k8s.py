"""Kubernetes manifests for the control plane (``modelyard server``) on PostgreSQL and S3.

``control_plane_manifests`` writes, in the order ``kubectl apply`` should create them:

* a **Job** running ``modelyard db upgrade`` once per release (its name carries a digest
  of what it runs, so a new image gets a new Job and re-applying the same manifests
  changes nothing);
* a **Deployment** whose pods first wait in an init container (``modelyard db wait``)
  until the schema is the one their code expects — they never race to migrate and never
  serve an older schema — then run ``modelyard server``; ready on ``/ready`` (the
  database answers), alive on ``/health``; non-root, read-only root filesystem with an
  ``emptyDir`` for ``/tmp``, no service-account token, spread across nodes, rolled out
  without ever dropping below the ready replicas;
* a **Service**, a **HorizontalPodAutoscaler** on CPU, a **PodDisruptionBudget**
  (``minAvailable: 1``) and, if asked, a Prometheus Operator **ServiceMonitor**.

Credentials are never written into a manifest: the database URI (or only its password)
and the S3 keys are read from Secrets by reference (``ControlPlaneStores``), and a URI
given in clear that carries a password is refused. Labels, probes, the Service, the
autoscaler and the YAML writer are the data plane's (``serving.packaging``).

>>> stores = ControlPlaneStores(
...     store_uri="postgresql+psycopg://modelyard@db.internal/modelyard",
...     store_password_secret=SecretRef.parse("modelyard-db:password", "--store-password-secret"),
...     artifacts_uri="s3://ml-artifacts/modelyard",
... )
>>> docs = control_plane_manifests("modelyard-server", image="reg.example/yard:1", stores=stores)
>>> [d["kind"] for d in docs]
['Job', 'Deployment', 'Service', 'HorizontalPodAutoscaler', 'PodDisruptionBudget']
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from modelyard.errors import InvalidParameter
from modelyard.serving.packaging import (
    check_replicas,
    cpu_autoscaler,
    http_probe,
    http_service,
    kubernetes_labels,
    rolling_update,
    selector_of,
    service_monitor,
)

#: The port ``modelyard server`` listens on in the pod (the Service answers on 80).
PORT = 5000
#: Where the pods may write (an ``emptyDir``): temp files, upload spools, MODELYARD_HOME.
TMP = "/tmp"
#: The non-root user and group the pods run as (the data plane's image uses the same).
RUN_AS = 10001
#: Seconds libpq waits for a database connection (``PGCONNECT_TIMEOUT``).
PG_CONNECT_TIMEOUT_S = 5
#: Seconds a stopping pod keeps serving while the Service stops routing to it.
PRE_STOP_S = 5
#: How long a new pod waits for the migration Job before it fails (and is retried).
SCHEMA_WAIT = "10m"
#: The keys of the S3 Secret, named as the variables boto reads.
S3_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
#: A DNS-1123 label, short enough that ``NAME-migrate-12345678`` stays one.
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$")
_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
_SECRET_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]{1,253}$")


@dataclass(frozen=True, slots=True)
class SecretRef:
    """One key of a Kubernetes Secret: where a pod reads a credential from."""

    name: str
    key: str

    @classmethod
    def parse(cls, text: str, field: str) -> SecretRef:
        """``NAME:KEY`` (``modelyard-db:uri``), checked as Kubernetes names them."""
        name, sep, key = text.partition(":")
        if not sep or not _SECRET_NAME.match(name) or not _SECRET_KEY.match(key):
            raise InvalidParameter(
                f"{field} {text!r} is not NAME:KEY, a Secret's name (lower-case letters, digits, "
                "'-' and '.') and one of its keys (letters, digits, '-', '_' and '.'), "
                "e.g. modelyard-db:uri",
                field=field,
            )
        return cls(name, key)

    def env(self, variable: str) -> dict[str, Any]:
        return {
            "name": variable,
            "valueFrom": {"secretKeyRef": {"name": self.name, "key": self.key}},
        }


@dataclass(frozen=True, slots=True)
class ControlPlaneStores:
    """Where the pods find their stores: each either in clear (without credentials) or
    from a Secret. Checked when built, so a manifest is never written half-right.

    * the metadata database: ``store_uri`` (``postgresql+psycopg://USER@HOST/DB``; the
      password from ``store_password_secret``) or the whole URI from ``store_uri_secret``;
    * the artifacts: ``artifacts_uri`` (``s3://bucket/prefix``) or ``artifacts_uri_secret``;
      S3 keys from the Secret ``s3_secret`` (keys ``AWS_ACCESS_KEY_ID`` and
      ``AWS_SECRET_ACCESS_KEY``), or from the pod's service account (IRSA, workload
      identity) when there is none; ``s3_endpoint_url`` for a store other than AWS.
    """

    store_uri: str | None = None
    store_uri_secret: SecretRef | None = None
    store_password_secret: SecretRef | None = None
    artifacts_uri: str | None = None
    artifacts_uri_secret: SecretRef | None = None
    s3_secret: str | None = None
    s3_endpoint_url: str | None = None

    def __post_init__(self) -> None:
        _one_of(
            self.store_uri,
            self.store_uri_secret,
            "--store-uri",
            "postgresql+psycopg://USER@HOST/DB",
        )
        _one_of(
            self.artifacts_uri, self.artifacts_uri_secret, "--artifacts-uri", "s3://BUCKET/PREFIX"
        )
        if self.store_uri is not None:
            _check_store_uri(self.store_uri)
        elif self.store_password_secret is not None:
            raise InvalidParameter(
                "--store-password-secret goes with --store-uri; with --store-uri-secret the "
                "password is part of the URI in that Secret",
                field="--store-password-secret",
            )
        if self.artifacts_uri is not None:
            _check_artifacts_uri(self.artifacts_uri)
        if self.s3_secret is not None and not _SECRET_NAME.match(self.s3_secret):
            raise InvalidParameter(
                f"--s3-secret {self.s3_secret!r} is not a Secret's name (lower-case letters, "
                "digits, '-' and '.')",
                field="--s3-secret",
            )
        if self.s3_endpoint_url is not None:
            _check_endpoint(self.s3_endpoint_url)

    def env(self) -> list[dict[str, Any]]:
        """The pods' environment: the settings ``modelyard`` reads, and boto's."""
        env: list[dict[str, Any]] = []
        if self.store_uri_secret is not None:
            env.append(self.store_uri_secret.env("MODELYARD_STORE_URI"))
        else:
            env.append({"name": "MODELYARD_STORE_URI", "value": self.store_uri})
        if self.store_password_secret is not None:  # libpq reads it when the URI has none
            env.append(self.store_password_secret.env("PGPASSWORD"))
        if self.artifacts_uri_secret is not None:
            env.append(self.artifacts_uri_secret.env("MODELYARD_ARTIFACTS_URI"))
        else:
            env.append({"name": "MODELYARD_ARTIFACTS_URI", "value": self.artifacts_uri})
        if self.s3_secret is not None:
            env.extend(SecretRef(self.s3_secret, key).env(key) for key in S3_KEYS)
        if self.s3_endpoint_url is not None:
            env.append({"name": "AWS_ENDPOINT_URL", "value": self.s3_endpoint_url})
        return env


def _one_of(clear: str | None, secret: SecretRef | None, option: str, example: str) -> None:
    if (clear is None) == (secret is None):
        raise InvalidParameter(
            f"give {option} {example} or {option}-secret NAME:KEY (exactly one): the control "
            "plane's pods need a store every replica reaches",
            field=option,
        )


def _check_store_uri(uri: str) -> None:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(uri)
    except ArgumentError:
        raise InvalidParameter(  # not echoed: it may hold a password
            "--store-uri is not a database URL; use postgresql+psycopg://USER@HOST/DB",
            field="--store-uri",
        ) from None
    if url.password is not None or "password" in url.query:
        raise InvalidParameter(
            "--store-uri carries a password, which would be written into the manifest in "
            "clear: put the password in a Secret and pass --store-password-secret NAME:KEY "
            "(or the whole URI: --store-uri-secret NAME:KEY)",
            field="--store-uri",
        )
    if url.get_backend_name() != "postgresql":
        raise InvalidParameter(
            f"--store-uri {url.render_as_string()!r} is not PostgreSQL: every replica must "
            "reach one database (SQLite is a file in one pod); use "
            "postgresql+psycopg://USER@HOST/DB",
            field="--store-uri",
        )


def _check_artifacts_uri(uri: str) -> None:
    parts = urlsplit(uri)
    if "@" in parts.netloc or parts.query:  # checked first: the URI is not echoed then
        raise InvalidParameter(
            "--artifacts-uri carries credentials or options, which would be written into the "
            "manifest in clear: give s3://BUCKET/PREFIX and the keys with --s3-secret NAME",
            field="--artifacts-uri",
        )
    if parts.scheme.lower() != "s3" or not parts.hostname:
        raise InvalidParameter(
            f"--artifacts-uri {uri!r} is not s3://BUCKET/PREFIX: every replica must reach "
            "one artifact store (a folder is in one pod)",
            field="--artifacts-uri",
        )


def _check_endpoint(url: str) -> None:
    parts = urlsplit(url)
    if "@" in parts.netloc:
        raise InvalidParameter(
            "--s3-endpoint-url carries credentials, which would be written into the manifest "
            "in clear: give http(s)://HOST[:PORT] and the keys with --s3-secret NAME",
            field="--s3-endpoint-url",
        )
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidParameter(
            f"--s3-endpoint-url {url!r} is not http(s)://HOST[:PORT]",
            field="--s3-endpoint-url",
        )


def migration_job_name(name: str, pod: dict[str, Any]) -> str:
    """``NAME-migrate-DIGEST``, the digest of everything the Job's pod runs (image,
    arguments, settings): a Job cannot be changed once created, so a new image or a new
    store gets a new Job, and the same manifests applied again change nothing."""
    digest = hashlib.sha256(json.dumps(pod, sort_keys=True).encode()).hexdigest()
    return f"{name}-migrate-{digest[:8]}"


def _check_shape(name: str, namespace: str, image: str, quantities: dict[str, str]) -> None:
    """Names Kubernetes accepts, an image reference, resource quantities (``500m``, ``1Gi``)."""
    for field, value, pattern in (("--name", name, _NAME), ("--namespace", namespace, _NAMESPACE)):
        if not pattern.match(value):
            raise InvalidParameter(
                f"{field} {value!r} must be lower-case letters, digits and '-' (a Kubernetes "
                f"name of at most {40 if field == '--name' else 63} characters), starting and "
                "ending with a letter or digit",
                field=field,
            )
    if not image or any(ch.isspace() for ch in image):
        raise InvalidParameter(f"--image {image!r} is not an image reference", field="--image")
    for field, quantity in quantities.items():
        if not _QUANTITY.match(quantity):
            raise InvalidParameter(
                f"{field} {quantity!r} is not a Kubernetes quantity, e.g. 500m or 2 (CPU), "
                "512Mi or 4Gi (bytes)",
                field=field,
            )


def control_plane_manifests(
    name: str,
    *,
    image: str,
    stores: ControlPlaneStores,
    namespace: str = "default",
    replicas: int = 2,
    max_replicas: int = 6,
    cpu_target_percent: int = 70,
    workers: int = 2,
    cpu: str = "1",
    memory: str = "1Gi",
    tmp_size: str = "4Gi",
    auth: bool = False,
    service_account: str | None = None,
    scrape_interval: str | None = None,
) -> list[dict[str, Any]]:
    """Job, Deployment, Service, HorizontalPodAutoscaler, PodDisruptionBudget (and a
    ServiceMonitor when ``scrape_interval`` is given) for the control plane ``name``.

    ``workers`` server processes per pod share its ``cpu`` and ``memory`` (requests; memory
    is also the limit: CPU is not capped, so a busy pod is slowed, never killed).
    """
    _check_shape(name, namespace, image, {"--cpu": cpu, "--memory": memory, "tmp_size": tmp_size})
    if service_account is not None and not _SECRET_NAME.match(service_account):
        raise InvalidParameter(
            f"--service-account {service_account!r} is not a Kubernetes name (lower-case "
            "letters, digits, '-' and '.')",
            field="--service-account",
        )
    check_replicas(replicas, max_replicas)
    labels = kubernetes_labels("modelyard-server", name, "control-plane")
    selector = selector_of(labels)
    meta = {"name": name, "namespace": namespace, "labels": labels}
    env = [
        *stores.env(),
        {"name": "MODELYARD_HOME", "value": f"{TMP}/modelyard"},
        {"name": "HOME", "value": TMP},
        {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
        # A database host that drops packets fails a connection in seconds, not the OS's
        # two minutes: probes and `db wait` see it, and no request thread hangs on it.
        {"name": "PGCONNECT_TIMEOUT", "value": str(PG_CONNECT_TIMEOUT_S)},
    ]

    def container(role: str, args: list[str], resources: dict[str, Any]) -> dict[str, Any]:
        return {
            "name": role,
            "image": image,
            "command": ["modelyard"],  # whatever the image's entry point
            "args": args,
            "env": env,
            "resources": resources,
            "securityContext": {
                "runAsNonRoot": True,
                "allowPrivilegeEscalation": False,
                "readOnlyRootFilesystem": True,
                "capabilities": {"drop": ["ALL"]},
            },
            "volumeMounts": [{"name": "tmp", "mountPath": TMP}],
        }

    small = {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": memory}}

    def pod(containers: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        spec: dict[str, Any] = {
            **extra,
            "automountServiceAccountToken": False,  # the server never calls the API server
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": RUN_AS,
                "runAsGroup": RUN_AS,
                "fsGroup": RUN_AS,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": containers,
            "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": tmp_size}}],
        }
        if service_account is not None:  # S3 through IRSA or workload identity
            spec["serviceAccountName"] = service_account
        return spec

    server = container(
        "server",
        ["server", "--host", "0.0.0.0", "--port", str(PORT), "--workers", str(workers),
         *(["--auth"] if auth else [])],
        {"requests": {"cpu": cpu, "memory": memory}, "limits": {"memory": memory}},
    )  # fmt: skip
    server["ports"] = [{"name": "http", "containerPort": PORT, "protocol": "TCP"}]
    server["readinessProbe"] = http_probe("/ready", 5, 3, timeout=3)
    server["livenessProbe"] = http_probe("/health", 10, 3)
    server["startupProbe"] = http_probe("/health", 2, 60)  # migrated already: ~3 s to start
    # The Service stops sending to a terminating pod a moment after it is told to stop:
    # keep serving that moment (Kubernetes >= 1.30), then uvicorn finishes what it holds.
    server["lifecycle"] = {"preStop": {"sleep": {"seconds": PRE_STOP_S}}}
    wait_for_schema = container("wait-for-schema", ["db", "wait", "--timeout", SCHEMA_WAIT], small)
    migrate = container("migrate", ["db", "upgrade"], small)

    job_labels = kubernetes_labels("modelyard-server-migration", name, "migration")
    job_pod = pod([migrate], restartPolicy="Never")
    documents: list[dict[str, Any]] = [
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": migration_job_name(name, job_pod),
                "namespace": namespace,
                "labels": job_labels,
            },
            "spec": {
                "backoffLimit": 3,
                "activeDeadlineSeconds": 3600,
                "ttlSecondsAfterFinished": 7 * 24 * 3600,
                "template": {
                    # Not the server's labels: the Service and the budget must not count it.
                    "metadata": {"labels": job_labels},
                    "spec": job_pod,
                },
            },
        },
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
                    "spec": pod(
                        [server],
                        initContainers=[wait_for_schema],
                        terminationGracePeriodSeconds=30,
                        topologySpreadConstraints=[
                            {
                                "maxSkew": 1,
                                "topologyKey": "kubernetes.io/hostname",
                                "whenUnsatisfiable": "ScheduleAnyway",
                                "labelSelector": {"matchLabels": selector},
                            }
                        ],
                    ),
                },
            },
        },
        http_service(meta, selector),
        cpu_autoscaler(
            meta, minimum=replicas, maximum=max_replicas, cpu_target_percent=cpu_target_percent
        ),
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": meta,
            "spec": {"minAvailable": 1, "selector": {"matchLabels": selector}},
        },
    ]
    if scrape_interval is not None:
        documents.append(service_monitor(meta, selector, scrape_interval))
    return documents
