"""Every documented command on the base install (``pip install modelyard``, no extras):
its ``--help`` works, and a real invocation that needs an extra says in one line which to
install and exits 2 — never a traceback.

The base install is a real one: a fresh venv, ``pip install -c constraints.txt -e .``,
made once per test session. The stores the commands read are built here, with the dev
install, and handed to the base install's ``modelyard`` by ``--home``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
#: What pip says when it cannot reach the package index (the only reason to skip).
UNREACHABLE = (
    "Failed to establish a new connection",
    "Temporary failure in name resolution",
    "Name or service not known",
    "Network is unreachable",
    "Could not fetch URL",
    "ProxyError",
    "Read timed out",
)
MISSING_EXTRA = re.compile(
    r"error: .+ needs the '[A-Za-z0-9_.-]+' package: pip install 'modelyard\[([a-z-]+)\]'"
)


def documented_commands(readme: str) -> list[tuple[str, ...]]:
    """The commands of the README's "Command line" block: ``modelyard data snapshot|pull``
    gives ("data", "snapshot") and ("data", "pull"); a command with no subcommand listed
    (``modelyard users …``, ``modelyard gc [--older-than 7d]``) gives itself."""
    block = re.search(r"^## Command line\n+```text\n(.*?)^```", readme, re.S | re.M)
    assert block, "the README has no ```text block under ## Command line"
    found: list[tuple[str, ...]] = []
    for line in block.group(1).splitlines():
        for segment in re.split(r"\s;\s", line.split("#", 1)[0]):
            words = segment.split()
            if len(words) < 2 or words[0] != "modelyard":
                continue
            if not re.fullmatch(r"[a-z][a-z0-9-]*", words[1]):  # a placeholder: COMMAND
                continue
            subcommands = [
                piece
                for word in words[2:]
                for piece in word.split("|")
                if re.fullmatch(r"[a-z][a-z0-9-]*", piece)
            ]
            found += [(words[1], sub) for sub in subcommands] or [(words[1],)]
    return list(dict.fromkeys(found))


def test_the_readme_parser_reads_the_command_list():
    readme = textwrap.dedent("""
        ## Command line

        ```text
        modelyard runs list|show|compare RUN RUN…|delete
        modelyard gate --candidate models:/demand/4 \\
                       --data eval.parquet     # exit 0 pass
        modelyard serve DEPLOYMENT | models:/name@alias [--auth] # the inference server
        modelyard build models:/name/3 ; modelyard k8s DEPLOYMENT
        modelyard users … ; modelyard init ci --github
        modelyard gc [--older-than 7d]
        modelyard COMMAND --help
        ```
    """)
    assert documented_commands(readme) == [
        ("runs", "list"),
        ("runs", "show"),
        ("runs", "compare"),
        ("runs", "delete"),
        ("gate",),
        ("serve",),
        ("build",),
        ("k8s",),
        ("users",),
        ("init", "ci"),
        ("gc",),
    ]


@pytest.fixture(scope="session")
def modelyard_base(tmp_path_factory) -> Path:
    """``modelyard`` of a fresh venv holding only the base install."""
    venv = tmp_path_factory.mktemp("base-install") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    install = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    done = subprocess.run(
        [*install, "-c", str(ROOT / "constraints.txt"), "-e", str(ROOT)],
        capture_output=True,
        text=True,
        timeout=800,
    )
    if done.returncode != 0:
        output = done.stdout + done.stderr
        if any(sign in output for sign in UNREACHABLE):
            pytest.skip(f"pip cannot reach the package index for the base install: {output}")
        pytest.fail(f"the base install failed:\n{output}")
    return venv / "bin" / "modelyard"


def run(modelyard: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELYARD_")}
    return subprocess.run(
        [str(modelyard), *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=120
    )


def test_the_base_install_lacks_the_extras(modelyard_base):
    python = modelyard_base.parent / "python"
    probe = "import importlib.util as u; print([m for m in ('uvicorn', 'pyarrow', 'duckdb', " \
        "'sklearn', 'matplotlib') if u.find_spec(m)])"  # fmt: skip
    assert subprocess.run([str(python), "-c", probe], capture_output=True, text=True).stdout == (
        "[]\n"
    )


def test_every_documented_command_has_help(modelyard_base, tmp_path):
    commands = [(), *documented_commands(README.read_text())]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(
            pool.map(lambda c: run(modelyard_base, *c, "--help", cwd=tmp_path), commands)
        )
    failed = {
        " ".join(command): result.stdout + result.stderr
        for command, result in zip(commands, results, strict=True)
        if result.returncode != 0 or "Traceback" in result.stdout + result.stderr
    }
    assert failed == {}
    assert len(commands) > 40  # the parser found the command list


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """A folder with data, a contract, feature definitions and a gate policy, and a yard
    (built with the dev install) holding model demand/1 and deployment web."""
    from tests.serving.conftest import FEATURES, frame, make_yard

    folder = tmp_path_factory.mktemp("base-install-work")
    yard = make_yard(folder)
    version = yard.regressor()
    yard.deployments.create("web", version.uri)
    x, y = frame(50)
    x.assign(y=y, store_id=range(50), event_ts="2024-01-01T00:00:00Z").to_csv(
        folder / "eval.csv", index=False
    )
    (folder / "contract.yaml").write_text("contract: eval\ncolumns:\n  x0: {type: float}\n")
    (folder / "gate.yaml").write_text(
        f"gate: g\ntarget: y\nfeatures: {FEATURES}\nrules:\n  - rmse <= 10\n"
    )
    (folder / "features.py").write_text(
        textwrap.dedent(f"""
        from modelyard.features.definitions import *

        store = Entity("store", join_keys=["store_id"])
        sales = FeatureView(
            "sales", entities=[store], ttl="1h",
            source=FileSource({str(folder / "eval.csv")!r}, timestamp_field="event_ts"),
            schema=[Field("x0")],
        )
        demand = FeatureService("demand", features=[sales])
        """)
    )
    return folder


#: A real invocation of each documented command that needs an extra → the extra it must
#: name (None: whichever it meets first, e.g. the demo needs sklearn and plots).
NEEDS_AN_EXTRA = [
    (("server", "--port", "0"), "server"),
    (("serve", "web", "--port", "0"), "serving"),
    (("serve", "models:/demand/1", "--port", "0"), "serving"),
    (("demo", "--rows", "1000"), None),
    (("data", "snapshot", "eval.csv", "--name", "eval"), "data"),
    (("data", "check", "eval.csv", "--contract", "contract.yaml"), "data"),
    (("features", "materialize"), "features"),
    (("features", "training-set", "eval.csv", "--service", "demand", "--out", "t.csv"), None),
    (("features", "skew", "--service", "demand"), "features"),
    (("deploy", "compile", "models:/demand/1"), "compile"),
    (("drift", "eval.csv", "eval.csv"), None),
    (
        ("gate", "--candidate", "models:/demand/1", "--data", "eval.csv", "--policy", "gate.yaml"),
        None,
    ),
]


@pytest.mark.parametrize(
    ("args", "extra"), NEEDS_AN_EXTRA, ids=[" ".join(a) for a, _ in NEEDS_AN_EXTRA]
)
def test_a_command_that_needs_an_extra_says_which_in_one_line_and_exits_2(
    modelyard_base, work, args, extra
):
    home = ("--home", str(work / "yard"))
    if args[0] == "features":
        applied = run(modelyard_base, "features", "apply", "features.py", *home, cwd=work)
        assert applied.returncode == 0, applied.stdout + applied.stderr
    result = run(modelyard_base, *args, *home, cwd=work)
    assert "Traceback" not in result.stdout + result.stderr
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    named = MISSING_EXTRA.fullmatch(lines[0])
    assert named, lines[0]
    if extra is not None:
        assert named.group(1) == extra
