"""``modelyard server --auth``: tokens, roles, and who a run is recorded as.

The end-to-end tests drive a real server process started with ``--auth`` and the
unmodified mlflow client; users and tokens are made in the server's store, as an
administrator's ``modelyard users`` / ``tokens`` commands would. The middleware's routing
of roles (declared on endpoints, inside mounts) is checked in process.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from tests.server.conftest import LiveServer, start_server, stop_server

from modelyard.auth.roles import Role
from modelyard.auth.service import AuthService
from modelyard.config import Settings
from modelyard.server.control.auth import DEFAULT_RULES, OPEN_PATHS, actor_of
from modelyard.server.http.auth_middleware import (
    DEFAULT_CACHE_TTL_S,
    AuthMiddleware,
    current_principal,
    declare_roles,
    principal_of,
    requires,
)
from modelyard.tracking.backends import database_for

mlflow = pytest.importorskip("mlflow")

from mlflow import MlflowClient  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402

API = "/api/2.0/mlflow"


@dataclass(frozen=True)
class AuthServer:
    server: LiveServer
    auth: AuthService  # the same store, as `modelyard users|tokens` would open it
    editor: str  # alice's token
    viewer: str  # victor's token


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthServer]:
    home = tmp_path_factory.mktemp("auth-server") / "yard"
    url, log, process = start_server(home, "--auth")
    try:
        auth = AuthService(database_for(Settings(home=home)))
        auth.create_user("alice", "editor")
        auth.create_user("victor", "viewer")
        editor = auth.create_token("alice").token
        viewer = auth.create_token("victor").token
        yield AuthServer(LiveServer(url, home, log, process), auth, editor, viewer)
    finally:
        stop_server(process)


@pytest.fixture
def as_user(auth_server, monkeypatch):
    """Point the mlflow client at the server, authenticated with the token given."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", auth_server.server.url)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("DO_NOT_TRACK", "true")
    monkeypatch.setenv("LOGNAME", "mallory")  # who the client claims to be; the token decides
    monkeypatch.setenv("USER", "mallory")

    def use(token: str) -> MlflowClient:
        monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token)
        return MlflowClient()

    yield use
    while mlflow.active_run() is not None:
        mlflow.end_run()


def test_without_a_token_the_api_answers_401_and_says_how(auth_server):
    response = httpx.post(f"{auth_server.server.url}{API}/runs/search", json={})
    assert response.status_code == 401
    body = response.json()
    assert body["error_code"] == "UNAUTHENTICATED" and "Bearer" in body["message"]
    challenges = response.headers.get_list("www-authenticate")
    assert 'Bearer realm="modelyard"' in challenges
    assert any(c.startswith("Basic") for c in challenges)


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer myd_000000000000_" + "x" * 43,
        "Bearer not-a-token",
        "Bearer",
        "Token abc",
        "Basic %%%",
        "Basic " + base64.b64encode(b"alice").decode(),
    ],
)
def test_bad_credentials_are_401_json(auth_server, authorization):
    response = httpx.get(
        f"{auth_server.server.url}{API}/experiments/get",
        params={"experiment_id": "0"},
        headers={"Authorization": authorization},
    )
    assert response.status_code == 401
    assert response.json()["error_code"] == "UNAUTHENTICATED"


def test_the_server_says_at_start_up_that_auth_is_on(auth_server):
    log = auth_server.server.log_text()
    assert "authentication on" in log and "anyone who can reach" not in log


def test_health_and_metrics_stay_open(auth_server):
    assert httpx.get(f"{auth_server.server.url}/health").text == "OK"
    assert httpx.get(f"{auth_server.server.url}/metrics").status_code == 200


def test_an_editor_uses_the_unmodified_mlflow_client_end_to_end(auth_server, as_user, tmp_path):
    client = as_user(auth_server.editor)
    experiment_id = mlflow.set_experiment("auth-e2e").experiment_id
    with mlflow.start_run(run_name="trained") as run:
        mlflow.log_param("depth", 6)
        for step in range(3):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.set_tag("team", "retail")
        (tmp_path / "notes.txt").write_text("hello")
        mlflow.log_artifact(str(tmp_path / "notes.txt"))
    found = client.search_runs([experiment_id], "params.depth = '6'")
    assert [r.info.run_id for r in found] == [run.info.run_id]
    assert [m.step for m in client.get_metric_history(run.info.run_id, "loss")] == [0, 1, 2]
    assert [a.path for a in client.list_artifacts(run.info.run_id)] == ["notes.txt"]
    stored = client.get_run(run.info.run_id)
    # recorded as the token's user, not the OS user the client claimed (USER=mallory)
    assert stored.info.user_id == "alice"
    assert stored.data.tags["mlflow.user"] == "alice"
    assert stored.data.tags["modelyard.user"] == "alice"


def test_basic_auth_with_the_token_as_password_works_for_its_own_user(auth_server, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", auth_server.server.url)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "victor")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", auth_server.viewer)
    assert MlflowClient().search_experiments()  # the Default experiment at least
    wrong_user = base64.b64encode(f"alice:{auth_server.viewer}".encode()).decode()
    response = httpx.get(
        f"{auth_server.server.url}{API}/experiments/search",
        headers={"Authorization": f"Basic {wrong_user}"},
    )
    assert response.status_code == 401 and "does not belong" in response.json()["message"]


def test_a_viewer_can_read_and_search_but_writes_are_403_naming_the_role(auth_server, as_user):
    editor = as_user(auth_server.editor)
    experiment_id = editor.create_experiment("auth-viewer")
    run_id = editor.create_run(experiment_id).info.run_id

    viewer = as_user(auth_server.viewer)
    assert viewer.get_run(run_id).info.run_id == run_id
    assert [r.info.run_id for r in viewer.search_runs([experiment_id])] == [run_id]
    assert viewer.get_experiment_by_name("auth-viewer").experiment_id == experiment_id
    with pytest.raises(MlflowException, match="needs the editor role; victor is a viewer"):
        viewer.log_metric(run_id, "loss", 1.0)
    with pytest.raises(MlflowException, match="PERMISSION_DENIED"):
        viewer.create_experiment("auth-viewer-2")

    response = httpx.post(
        f"{auth_server.server.url}{API}/runs/create",
        json={"experiment_id": experiment_id},
        headers={"Authorization": f"Bearer {auth_server.viewer}"},
    )
    assert response.status_code == 403
    assert response.json() == {
        "error_code": "PERMISSION_DENIED",
        "message": f"POST {API}/runs/create needs the editor role; victor is a viewer",
    }
    assert editor.get_run(run_id).data.metrics == {}  # nothing was written


def test_the_native_api_lets_a_viewer_search_but_not_write(auth_server):
    url = auth_server.server.url
    viewer = {"Authorization": f"Bearer {auth_server.viewer}"}
    search = httpx.post(f"{url}/api/v1/runs/search", json={"experiment_ids": ["0"]}, headers=viewer)
    assert search.status_code == 200, search.text
    create = httpx.post(f"{url}/api/v1/experiments", json={"name": "nope"}, headers=viewer)
    assert create.status_code == 403 and "needs the editor role" in create.json()["message"]
    assert httpx.get(f"{url}/api/v1/openapi.json").status_code == 401


def test_a_revoked_token_is_refused_within_the_cache_ttl(auth_server):
    auth = auth_server.auth
    token = auth.create_token("alice", label="short-lived")
    headers = {"Authorization": f"Bearer {token.token}"}
    url = f"{auth_server.server.url}{API}/experiments/search"
    assert httpx.get(url, headers=headers).status_code == 200
    auth.revoke_token(token.info.token_id)  # from another process, as the CLI does
    deadline = time.monotonic() + DEFAULT_CACHE_TTL_S + 3
    while (response := httpx.get(url, headers=headers)).status_code == 200:
        assert time.monotonic() < deadline, "the revoked token still works"
        time.sleep(0.2)
    assert response.status_code == 401 and "revoked" in response.json()["message"]


# -- the command line ---------------------------------------------------------------------------


def test_auth_on_the_command_line_installs_the_middleware_and_says_so(server_cli):
    result, calls = server_cli("--auth", "--host", "0.0.0.0")
    assert result.exit_code == 0, result.output
    assert "authentication on" in result.output and "no users yet" in result.output
    assert "anyone who can reach" not in result.output
    ((args, _),) = calls
    assert [m.cls for m in args[0].user_middleware][-1] is AuthMiddleware


def test_auth_workers_build_their_apps_with_the_middleware(server_cli):
    from modelyard.cli.server import AUTH_APP_FACTORY

    result, calls = server_cli("--auth", "--workers", "2")
    assert result.exit_code == 0, result.output
    assert calls[0][0] == (AUTH_APP_FACTORY,) and calls[0][1]["workers"] == 2
    from uvicorn.importer import import_from_string

    worker_app = import_from_string(AUTH_APP_FACTORY)()  # what each worker process runs
    assert AuthMiddleware in [m.cls for m in worker_app.user_middleware]


def test_without_auth_another_host_is_told_how_to_turn_it_on(server_cli):
    result, _ = server_cli("--host", "0.0.0.0")
    assert "no authentication: pass --auth" in result.output


# -- the middleware in process ----------------------------------------------------------------


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def app_with_auth(settings):
    """A small app behind the middleware: an approver-only route inside a mount, and a
    handler that reports who it runs as from a worker thread."""
    auth = AuthService(database_for(settings))

    @requires(Role.APPROVER)
    async def approve(request: Request) -> Response:
        return JSONResponse({"approved_by": principal_of(request).user})

    async def versions(request: Request) -> Response:
        return JSONResponse({"method": request.method})

    declare_roles(versions, {"POST": Role.VIEWER, "DELETE": Role.ADMIN})

    async def whoami(request: Request) -> Response:
        in_thread = await run_in_threadpool(lambda: current_principal())
        actor = actor_of(request)
        return JSONResponse(
            {"thread": in_thread.user, "actor": actor.name, "roles": sorted(actor.roles)}
        )

    app = Starlette(
        routes=[
            Mount(
                "/api/v1",
                routes=[
                    Route("/versions/{v}/approve", approve, methods=["POST"]),
                    Route("/versions", versions, methods=["GET", "POST", "PUT", "DELETE"]),
                ],
            ),
            Route("/whoami", whoami, methods=["GET", "POST"]),
        ],
        middleware=[
            Middleware(AuthMiddleware, service=auth, open_paths=OPEN_PATHS, rules=DEFAULT_RULES)
        ],
    )
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://yard")
    return auth, http


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.anyio
async def test_a_role_declared_on_an_endpoint_applies_inside_a_mount(app_with_auth):
    auth, http = app_with_auth
    auth.create_user("ed", "editor")
    auth.create_user("ana", "approver")
    async with http:
        path = "/api/v1/versions/3/approve"
        denied = await http.post(path, headers=bearer(auth.create_token("ed").token))
        assert denied.status_code == 403
        assert "needs the approver role; ed is an editor" in denied.json()["message"]
        ok = await http.post(path, headers=bearer(auth.create_token("ana").token))
        assert ok.json() == {"approved_by": "ana"}


@pytest.mark.anyio
async def test_handlers_see_the_principal_in_threads_and_as_a_registry_actor(app_with_auth):
    auth, http = app_with_auth
    auth.create_user("ed", "editor")
    token = auth.create_token("ed").token
    async with http:
        assert (await http.get("/whoami", headers=bearer(token))).json() == {
            "thread": "ed",
            "actor": "ed",
            "roles": ["editor", "viewer"],
        }
        assert (await http.post("/whoami", headers=bearer(token))).status_code == 200
    assert current_principal() is None  # nothing leaks out of the request


@pytest.mark.anyio
async def test_roles_declared_per_method_fall_back_to_the_method_default(app_with_auth):
    auth, http = app_with_auth
    auth.create_user("vi", "viewer")
    auth.create_user("ed", "editor")
    vi, ed = bearer(auth.create_token("vi").token), bearer(auth.create_token("ed").token)
    async with http:
        assert (await http.post("/api/v1/versions", headers=vi)).status_code == 200  # declared
        assert (await http.put("/api/v1/versions", headers=vi)).status_code == 403  # default
        assert (await http.put("/api/v1/versions", headers=ed)).status_code == 200
        denied = await http.delete("/api/v1/versions", headers=ed)
        assert denied.status_code == 403 and "needs the admin role" in denied.json()["message"]
