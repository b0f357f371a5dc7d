"""Packaging: a build context with pinned requirements and an entry point that serves the
folder; Kubernetes manifests valid against the Kubernetes OpenAPI schema."""

from __future__ import annotations

import jsonschema
import kubernetes_validate
import pytest
import yaml

from modelyard.errors import InvalidParameter
from modelyard.serving.packaging import FolderRegistry, build_bundle, k8s_manifests, to_yaml

#: The parts of the Prometheus Operator's ServiceMonitor CRD schema the manifest uses (a
#: CRD is not in the Kubernetes OpenAPI schema that kubernetes-validate bundles).
SERVICE_MONITOR = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {
            "type": "object",
            "required": ["selector", "endpoints"],
            "additionalProperties": False,
            "properties": {
                "selector": {
                    "type": "object",
                    "properties": {"matchLabels": {"type": "object",
                                                   "additionalProperties": {"type": "string"}}},
                },
                "namespaceSelector": {
                    "type": "object",
                    "properties": {"matchNames": {"type": "array", "items": {"type": "string"}}},
                },
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "port": {"type": "string"},
                            "path": {"type": "string", "pattern": "^/"},
                            "interval": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                        },
                    },
                },
            },
        },
    },
}  # fmt: skip


def test_manifests_validate_against_the_kubernetes_schema():
    documents = yaml.safe_load_all(to_yaml(k8s_manifests("web", image="reg.example/my:1")))
    documents = list(documents)
    kinds = [d["kind"] for d in documents]
    assert kinds == ["Deployment", "Service", "HorizontalPodAutoscaler", "ServiceMonitor"]
    version = kubernetes_validate.latest_version()
    for document in documents[:3]:
        kubernetes_validate.validate(document, version, strict=True)
    jsonschema.validate(documents[3], SERVICE_MONITOR)
    container = documents[0]["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert container["args"][:2] == ["serve", "web"]
    assert all("valueFrom" in e for e in container["env"])  # credentials from a Secret


def test_a_broken_manifest_is_caught_by_the_schema():
    deployment = k8s_manifests("web", image="x")[0]
    deployment["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, kubernetes_validate.latest_version(), strict=True)
    with pytest.raises(InvalidParameter, match="replicas"):
        k8s_manifests("web", image="x", replicas=20, max_replicas=10)


def test_bundle_pins_requirements_and_serves_its_folder(yard, tmp_path):
    yard.regressor()
    bundle = build_bundle(yard.registry, "models:/demand/1", tmp_path / "out")
    assert {"Dockerfile", "requirements.txt", "entrypoint.sh", "model/MLmodel.json"} <= set(
        bundle.files
    )
    requirements = (bundle.folder / "requirements.txt").read_text().splitlines()
    assert all("==" in line for line in requirements)
    names = {line.split("==")[0] for line in requirements}
    assert {"modelyard", "scikit-learn", "skops", "starlette", "uvicorn"} <= names
    assert "modelyard serve /app/model" in (bundle.folder / "entrypoint.sh").read_text()
    assert "EXPOSE 8080" in (bundle.folder / "Dockerfile").read_text()
    folder = FolderRegistry(bundle.folder / "model")
    assert (folder.version.name, folder.version.version) == ("demand", 1)
    assert folder.load_model("models:/demand/1").predict(
        yard.registry.load_model("models:/demand/1").input_example()
    ).shape == (20,)
    with pytest.raises(InvalidParameter, match="not empty"):
        build_bundle(yard.registry, "models:/demand/1", tmp_path / "out")


def test_the_grafana_dashboard_queries_metrics_the_data_plane_exports():
    import json
    import re
    from pathlib import Path

    from prometheus_client import generate_latest

    from modelyard.server.inference_metrics import InferenceMetrics

    dashboard = json.loads(
        (Path(__file__).parents[2] / "deploy" / "grafana-dashboard.json").read_text()
    )
    queried = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"modelyard_inference_\w+", target["expr"])
    }
    metrics = InferenceMetrics()
    metrics.answered("web", "primary", "1", "oip", 200, 0.001)
    metrics.in_flight_for("web").inc()
    metrics.log_written_for("web").inc()
    for hook in (
        lambda: metrics.model_loaded("web", "m", 1, 0.5),
        lambda: metrics.batch("web", "m", 1, 4),
        lambda: metrics.shadow("web", "s", 2, False, 0.0),
        lambda: metrics.log_dropped("web", "queue_full", 1),
        lambda: metrics.revision("web", 3),
        lambda: metrics.automatic("web", "rollback", "why"),
        lambda: metrics.contract_violation("web", "flag"),
    ):
        hook()
    exported = set(re.findall(r"^(modelyard_inference_\w+?)(?:\{| )",
                              generate_latest(metrics.registry).decode(), re.M))  # fmt: skip
    assert queried and queried <= exported, queried - exported
