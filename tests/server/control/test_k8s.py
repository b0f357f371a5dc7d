"""The control plane's Kubernetes manifests: valid against the Kubernetes OpenAPI schema,
migrated once before the rollout, credentials only by reference, bad input refused."""

from __future__ import annotations

import jsonschema
import kubernetes_validate
import pytest
import yaml
from tests.serving.test_packaging import SERVICE_MONITOR
from typer.testing import CliRunner

from modelyard.cli.main import app
from modelyard.errors import InvalidParameter
from modelyard.server.control.k8s import (
    ControlPlaneStores,
    SecretRef,
    control_plane_manifests,
    migration_job_name,
)
from modelyard.serving.packaging import to_yaml

IMAGE = "reg.example/modelyard:1"
STORE = "postgresql+psycopg://modelyard@db.internal:5432/modelyard"
ARTIFACTS = "s3://ml-artifacts/modelyard"


def stores(**changes) -> ControlPlaneStores:
    given = {
        "store_uri": STORE,
        "store_password_secret": SecretRef("modelyard-db", "password"),
        "artifacts_uri": ARTIFACTS,
        "s3_secret": "modelyard-s3",
        **changes,
    }
    return ControlPlaneStores(**given)


def manifests(**options) -> dict[str, dict]:
    """The documents as written to YAML and read back, by kind."""
    documents = control_plane_manifests(
        "yard",
        image=options.pop("image", IMAGE),
        stores=options.pop("stores", stores()),
        **options,
    )
    return {d["kind"]: d for d in yaml.safe_load_all(to_yaml(documents))}


def pod_spec(document: dict) -> dict:
    return document["spec"]["template"]["spec"]


def env_of(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container["env"]}


def test_every_manifest_validates_against_the_kubernetes_schema():
    documents = manifests(scrape_interval="15s", service_account="modelyard", auth=True)
    assert pod_spec(documents["Deployment"])["serviceAccountName"] == "modelyard"
    assert list(documents) == [
        "Job",
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "ServiceMonitor",
    ]
    version = kubernetes_validate.latest_version()
    for kind, document in documents.items():
        if kind == "ServiceMonitor":  # a CRD: not in the bundled schema
            jsonschema.validate(document, SERVICE_MONITOR)
        else:
            kubernetes_validate.validate(document, version, strict=True)


def test_the_job_migrates_and_the_server_pods_wait_for_it_before_serving():
    documents = manifests()
    job = documents["Job"]
    (migrate,) = pod_spec(job)["containers"]
    assert (migrate["command"], migrate["args"]) == (["modelyard"], ["db", "upgrade"])
    assert pod_spec(job)["restartPolicy"] == "Never" and job["spec"]["backoffLimit"] >= 1
    deployment = pod_spec(documents["Deployment"])
    (wait,) = deployment["initContainers"]
    assert wait["args"][:2] == ["db", "wait"] and wait["image"] == IMAGE
    (server,) = deployment["containers"]
    assert server["command"] == ["modelyard"]
    assert server["args"][:5] == ["server", "--host", "0.0.0.0", "--port", "5000"]
    assert server["args"][server["args"].index("--workers") + 1] == "2"
    assert server["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert server["livenessProbe"]["httpGet"]["path"] == "/health"
    assert server["lifecycle"]["preStop"]["sleep"]["seconds"] > 0  # no refused connection
    assert (
        deployment["terminationGracePeriodSeconds"]
        > server["lifecycle"]["preStop"]["sleep"]["seconds"]
    )
    # Rolled out without ever dropping below the ready replicas.
    assert documents["Deployment"]["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_the_job_alone_is_selected_by_its_component_label():
    """docs/scaling-out.md applies it first with `kubectl apply -l ...component=migration`."""
    migration = [
        kind
        for kind, document in manifests(scrape_interval="15s").items()
        if document["metadata"]["labels"]["app.kubernetes.io/component"] == "migration"
    ]
    assert migration == ["Job"]


def test_a_new_migration_job_whenever_what_it_runs_changes():
    def job_name(**options) -> str:
        return manifests(**options)["Job"]["metadata"]["name"]

    assert job_name() == job_name(replicas=3, workers=4)  # the same Job: nothing to re-run
    assert job_name() != job_name(image=IMAGE + "1")
    assert job_name() != job_name(stores=stores(store_uri=STORE + "2"))
    job = manifests()["Job"]
    assert job["metadata"]["name"] == migration_job_name("yard", job["spec"]["template"]["spec"])
    assert len(job["metadata"]["name"]) <= 63


def test_the_service_and_the_budget_count_server_pods_only():
    documents = manifests()
    server_labels = documents["Deployment"]["spec"]["template"]["metadata"]["labels"]
    job_labels = documents["Job"]["spec"]["template"]["metadata"]["labels"]
    for selector in (
        documents["Service"]["spec"]["selector"],
        documents["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"],
        documents["Deployment"]["spec"]["selector"]["matchLabels"],
    ):
        assert selector.items() <= server_labels.items()
        assert not selector.items() <= job_labels.items()
    assert documents["PodDisruptionBudget"]["spec"]["minAvailable"] == 1
    hpa = documents["HorizontalPodAutoscaler"]["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 6)
    assert hpa["metrics"][0]["resource"]["name"] == "cpu"


def test_pods_run_as_non_root_on_a_read_only_filesystem_with_a_tmp_volume():
    for document in manifests().values():
        if document["kind"] not in ("Job", "Deployment"):
            continue
        spec = pod_spec(document)
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["automountServiceAccountToken"] is False
        assert spec["volumes"] == [{"name": "tmp", "emptyDir": {"sizeLimit": "4Gi"}}]
        for container in spec["containers"] + spec.get("initContainers", []):
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            assert container["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]
            assert container["resources"]["requests"] and container["resources"]["limits"]


def test_credentials_are_read_from_secrets_by_reference():
    env = env_of(pod_spec(manifests()["Deployment"])["containers"][0])
    assert env["MODELYARD_STORE_URI"]["value"] == STORE
    assert env["PGCONNECT_TIMEOUT"]["value"] == "5"  # a dropped host fails fast
    assert env["PGPASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "modelyard-db",
        "key": "password",
    }
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert env[key]["valueFrom"]["secretKeyRef"] == {"name": "modelyard-s3", "key": key}

    whole = stores(
        store_uri=None,
        store_password_secret=None,
        store_uri_secret=SecretRef("yard-db", "uri"),
        artifacts_uri=None,
        artifacts_uri_secret=SecretRef("yard-s3", "artifacts-uri"),
        s3_secret=None,
        s3_endpoint_url="https://minio.internal:9000",
    )
    env = env_of(pod_spec(manifests(stores=whole)["Job"])["containers"][0])
    assert env["MODELYARD_STORE_URI"]["valueFrom"]["secretKeyRef"]["name"] == "yard-db"
    assert env["MODELYARD_ARTIFACTS_URI"]["valueFrom"]["secretKeyRef"]["key"] == "artifacts-uri"
    assert env["AWS_ENDPOINT_URL"]["value"] == "https://minio.internal:9000"
    assert "PGPASSWORD" not in env and "AWS_ACCESS_KEY_ID" not in env


@pytest.mark.parametrize(
    ("changes", "field", "says"),
    [
        ({"store_uri": "postgresql+psycopg://yard:hunter2@db/yard"}, "--store-uri", "password"),
        ({"store_uri": "postgresql://yard@db/yard?password=hunter2"}, "--store-uri", "password"),
        ({"store_uri": "sqlite:////data/yard.db"}, "--store-uri", "not PostgreSQL"),
        ({"store_uri": "not a url"}, "--store-uri", "not a database URL"),
        ({"store_uri": None}, "--store-uri", "exactly one"),
        ({"store_uri_secret": SecretRef("db", "uri")}, "--store-uri", "exactly one"),
        ({"artifacts_uri": "/srv/artifacts"}, "--artifacts-uri", "not s3://"),
        ({"artifacts_uri": "s3://AKIA:hunter2@bucket/p"}, "--artifacts-uri", "credentials"),
        ({"artifacts_uri": None}, "--artifacts-uri", "exactly one"),
        ({"s3_secret": "Not_A_Name"}, "--s3-secret", "not a Secret's name"),
        ({"s3_endpoint_url": "https://k:hunter2@minio"}, "--s3-endpoint-url", "credentials"),
        ({"s3_endpoint_url": "minio.internal:9000"}, "--s3-endpoint-url", "not http"),
        ({"artifacts_uri": "ftp://u:hunter2@host/p"}, "--artifacts-uri", "credentials"),
        ({"store_uri": "hunter2 is no url"}, "--store-uri", "not a database URL"),
        (
            {"store_uri": None, "store_uri_secret": SecretRef("db", "uri")},
            "--store-password-secret",
            "goes with --store-uri",
        ),
    ],
)
def test_a_store_in_clear_with_credentials_or_not_shared_is_refused(changes, field, says):
    with pytest.raises(InvalidParameter, match=says) as refused:
        stores(**changes)
    assert refused.value.field == field
    assert "hunter2" not in str(refused.value)


@pytest.mark.parametrize(
    ("text", "parsed"),
    [("modelyard-db:password", SecretRef("modelyard-db", "password")), ("a.b:K_1", None)],
)
def test_a_secret_reference_is_name_colon_key(text, parsed):
    assert SecretRef.parse(text, "--x") == (parsed or SecretRef("a.b", "K_1"))


@pytest.mark.parametrize("text", ["modelyard-db", "Modelyard:key", "db:", ":key", "db:k/ey"])
def test_a_malformed_secret_reference_is_refused(text):
    with pytest.raises(InvalidParameter, match="NAME:KEY") as refused:
        SecretRef.parse(text, "--store-uri-secret")
    assert refused.value.field == "--store-uri-secret"


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"replicas": 7, "max_replicas": 6}, "replicas"),
        ({"name": "Yard_Server"}, "--name"),
        ({"image": "two words"}, "--image"),
        ({"name": "y" * 41}, "--name"),
        ({"namespace": "ML"}, "--namespace"),
        ({"cpu": "one"}, "--cpu"),
        ({"memory": "1GB"}, "--memory"),
        ({"service_account": "ML_Role"}, "--service-account"),
    ],
)
def test_bad_shapes_are_refused(options, field):
    given = {"name": "yard", "image": IMAGE, **options}
    with pytest.raises(InvalidParameter) as refused:
        control_plane_manifests(given.pop("name"), stores=stores(), **given)
    assert refused.value.field == field


def k8s(tmp_path, *args: str):
    return CliRunner().invoke(app, ["--home", str(tmp_path / "yard"), "k8s", *args])


def test_the_cli_writes_the_control_planes_manifests(tmp_path):
    out = tmp_path / "server.yaml"
    result = k8s(
        tmp_path, "server", "--image", IMAGE, "--store-uri", STORE,
        "--store-password-secret", "modelyard-db:password", "--artifacts-uri", ARTIFACTS,
        "--s3-secret", "modelyard-s3", "--namespace", "ml", "--replicas", "3", "--workers",
        "4", "--auth", "--service-monitor", "--out", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    documents = {d["kind"]: d for d in yaml.safe_load_all(out.read_text())}
    assert {d["metadata"]["namespace"] for d in documents.values()} == {"ml"}
    assert documents["Deployment"]["spec"]["replicas"] == 3
    args = pod_spec(documents["Deployment"])["containers"][0]["args"]
    assert args[-3:] == ["--workers", "4", "--auth"]
    assert "ServiceMonitor" in documents


def test_the_cli_refuses_a_password_on_the_command_line_and_writes_nothing(tmp_path):
    out = tmp_path / "server.yaml"
    result = k8s(
        tmp_path, "server", "--image", IMAGE, "--store-uri",
        "postgresql+psycopg://yard:hunter2@db/yard", "--artifacts-uri", ARTIFACTS,
        "--out", str(out),
    )  # fmt: skip
    assert result.exit_code == 2
    assert "--store-password-secret" in result.output and "hunter2" not in result.output
    assert not out.exists()


def test_server_is_the_control_plane_and_a_deployment_of_that_name_has_the_long_form(tmp_path):
    result = k8s(tmp_path, "server", "--image", IMAGE)
    assert result.exit_code == 2
    assert "modelyard k8s serve server --image" in " ".join(result.output.split())
    # The long form reaches the data plane (which finds no such deployment here) ...
    result = k8s(tmp_path, "serve", "server", "--image", IMAGE)
    assert result.exit_code == 2 and "no deployment 'server'" in result.output
    # ... and so does the short form, for every other name.
    result = k8s(tmp_path, "web", "--image", IMAGE)
    assert result.exit_code == 2 and "no deployment 'web'" in result.output
