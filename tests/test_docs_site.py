"""The documentation site (mkdocs.yml over docs/): it builds under ``--strict`` with nothing
fetched from another host, and every example on its pages runs as written.

A page's ```python and ```bash blocks run in order in one temporary folder per page, with
``MODELYARD_HOME`` pointing into it and ``modelyard`` on ``PATH``, as a reader runs them:
each python block in a fresh interpreter (a later block may read what an earlier one
stored, never a variable it defined), each shell command in bash, ``export`` lines kept
for the page's later commands. What a page takes for granted (a ``flows.py``, a model
with four versions, a git repository) is scripted in ``tests/docs/setups.py``, with the
placeholders a reader fills in (``RUN``, a port). A server runs in the background until
its page ends. Each command must exit 0 (or the code ``EXIT_CODES`` gives, with why), and
print what its page says it prints (``OUTPUTS``); the few that cannot run here are in
``UNRUNNABLE`` with the reason. Every ``modelyard …`` command on a page also answers
``--help``.
"""

from __future__ import annotations

import contextlib
import os
import re
import resource
import shlex
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.docs.setups import SETUPS, PageSetup

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))
PYTHON = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
FENCED = re.compile(r"^```(python|bash)\n(.*?)^```", re.S | re.M)
YAML = re.compile(r"^```yaml\n(.*?)^```", re.S | re.M)
#: src/href attributes and CSS url()s that would make a browser fetch from another host.
FETCHED = re.compile(
    r"""(?:<(?:script|link|img|iframe|source|video|audio)\b[^>]*?\b(?:src|href)\s*=\s*["']?"""
    r"""|@import\s+(?:url\()?["']?|url\(\s*["']?)(https?:)?//""",
    re.I,
)


def python_blocks(page: Path) -> list[str]:
    return PYTHON.findall(page.read_text(encoding="utf-8"))


def commands(page: Path) -> list[list[str]]:
    """The ``modelyard …`` commands of a page's bash blocks, as argument lists (after any
    ``NAME=value`` the command runs with, or the ``kubectl exec … --`` it runs in)."""
    found = []
    for language, block in blocks(page):
        for line in shell_lines(block) if language == "bash" else []:
            words = shlex.split(line)
            while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):
                words.pop(0)
            if words[:1] == ["kubectl"] and "--" in words:
                words = words[words.index("--") + 1 :]
            if words[:1] == ["modelyard"]:
                found.append(words[1:])
    return found


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return out


def test_no_example_writes_to_a_fixed_temporary_path() -> None:
    fixed = [p.name for p in PAGES for code in python_blocks(p) if re.search(r"['\"]/tmp/", code)]
    assert not fixed, f"examples write to /tmp/… (use a relative folder): {fixed}"


def test_the_site_builds_strictly_with_every_page_in_it(site: Path) -> None:
    built = {p.relative_to(site).with_suffix(".md") for p in site.rglob("*.html")}
    assert {p.relative_to(DOCS) for p in PAGES} <= built


def test_no_page_makes_a_browser_fetch_from_another_host(site: Path) -> None:
    offenders = {}
    for path in [*site.rglob("*.html"), *site.rglob("*.css"), *site.rglob("*.js")]:
        if "/search/" in str(path) and path.suffix == ".js":  # the index holds page text
            continue
        hits = FETCHED.findall(path.read_text(encoding="utf-8", errors="replace"))
        if hits:
            offenders[str(path.relative_to(site))] = len(hits)
    assert not offenders, offenders


def test_the_fetch_check_catches_what_a_browser_would_fetch() -> None:
    assert FETCHED.search('<link rel="stylesheet" href="https://fonts.googleapis.com/css">')
    assert FETCHED.search("<script src=//cdn.example/x.js></script>")
    assert FETCHED.search("@font-face{src:url(https://fonts.gstatic.com/a.woff2)}")
    assert not FETCHED.search('<a href="https://mlflow.org">MLflow</a>')
    assert not FETCHED.search('<script src="assets/javascripts/bundle.js"></script>')


#: Commands no test can run, by the text they start with, and why. Each still gets the
#: ``--help`` check below. Keep it short: a server runs in the background instead (BACKGROUND).
UNRUNNABLE: dict[str, str] = {
    "make demo": "the whole demo (minutes); tests/cli/test_demo.py runs it scaled down",
    "make test": "the whole suite, this test in it",
    "pip install": "installs into the reader's environment (the test's has every extra)",
    "kubectl": "a Kubernetes cluster (tests/serving and tests/server/control validate the YAML)",
    "modelyard scheduler\n": "serves until stopped; `modelyard scheduler --once` runs here",
    "modelyard ui\n": "opens a browser, holds port 5000 (ui.md runs `ui --port … --no-browser`)",
    "export MODELYARD_STORE_URI=postgresql": "the reader's database host",
    "export MODELYARD_ARTIFACTS_URI=s3": "the reader's bucket",
    "export AWS_ENDPOINT_URL": "the reader's S3 endpoint",
    "export MODELYARD_ONLINE_STORE_URI=": "the reader's Redis host",
    "export MODELYARD_RAY_ADDRESS": "the reader's Ray cluster",
    "modelyard pipelines run flows.py:forecast --executor ray": "a Ray cluster (tests/pipelines)",
    "export MODELYARD_TRACKING_URI=https://ml.internal": "the reader's server's host",
    "export MODELYARD_TRACKING_TOKEN=...": "a token the reader creates",
}
#: Commands that serve until stopped (by their sub-command): run in the background, stopped
#: at the end of their page; the next command runs once this path on ``--port`` answers.
BACKGROUND = {"server": "/health", "serve": "/v2/health/ready", "ui": "/health"}
#: Commands that exit non-zero on the state their page builds, and why that is right.
EXIT_CODES: dict[tuple[str, str], tuple[int, str]] = {
    ("monitoring.md", "modelyard drift train.parquet"): (1, "today has drifted, as shown above"),
    ("monitoring.md", "modelyard drift ref.profile"): (1, "today has drifted from the profile"),
    ("pipelines.md", "modelyard pipelines resume"): (2, "RUN finished: nothing to resume"),
}
#: What a command prints, where its page says so (a key line, as a regular expression).
OUTPUTS: dict[tuple[str, str], str] = {
    ("coming-from-mlflow.md", "python train.py"): r"logged run [0-9a-f]{32}",
    ("data.md", "modelyard data snapshot"): r"sales@1",
    ("features.md", "modelyard features get"): r"\b7\W+9\b",  # store 7: units 9
    ("monitoring.md", "modelyard drift train.parquet"): r"(?s)price.*region",
    ("monitoring.md", "modelyard drift sales@3"): r'"dataset_drifted": false',
    ("pipelines.md", "modelyard pipelines show"): r"(?s)load.*weekly_mean",  # the steps
    ("pipelines.md", "modelyard pipelines resume"): r"already finished: nothing to resume",
    ("registry.md", "modelyard audit verify"): r"audit trail intact",
    ("validation.md", "modelyard init ci --github"): r"wrote \.github/workflows/\S+\.yml",
    ("serving.md", "curl"): r'"predictions": ?\[ ?-?\d',
}


def blocks(page: Path) -> list[tuple[str, str]]:
    """A page's ```python and ```bash blocks, in order, as (language, code)."""
    return FENCED.findall(page.read_text(encoding="utf-8"))


def shell_lines(block: str) -> list[str]:
    """A bash block's commands as a reader types them: a line continued with ``\\`` is
    one command, ``a ; b`` two, a ``#`` comment outside quotes dropped."""
    found = []
    for line in re.sub(r"\s*\\\n\s*", " ", block).splitlines():
        quote, cut = "", len(line)
        for i, char in enumerate(line):
            if quote:
                quote = "" if char == quote else quote
            elif char in "'\"":
                quote = char
            elif char == "#" and (i == 0 or line[i - 1].isspace()):
                cut = i
                break
        found += [part.strip() for part in re.split(r"\s;\s", line[:cut]) if part.strip()]
    return found


def _listed(page: str, command: str, table: dict[tuple[str, str], Any]) -> Any:
    return next(
        (v for (p, start), v in table.items() if p == page and command.startswith(start)), None
    )


def _unrunnable(command: str) -> str | None:
    return next(
        (why for start, why in UNRUNNABLE.items() if (command + "\n").startswith(start)), None
    )


def _wait_until_ready(port: int, path: str, server: subprocess.Popen[bytes], log: Path) -> None:
    """Until ``path`` answers 200 ten times in a row (with ``--workers 2`` each worker
    loads on its own, and a request may reach either)."""
    deadline, answered = time.monotonic() + 90, 0
    while answered < 10:
        if server.poll() is not None:
            pytest.fail(f"{server.args} exited {server.returncode}:\n{log.read_text()[-2000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"{server.args}: {path} not ready after 90 s:\n{log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
                answered = answered + 1 if answer.status == 200 else 0
        except (OSError, urllib.error.HTTPError):
            answered = 0
        time.sleep(0.1 if answered else 0.3)


class PageRun:
    """One page's blocks, run in order in one folder and yard; what it started in the
    background is stopped by `close`."""

    def __init__(self, page: Path, folder: Path) -> None:
        self.page, self.folder = page, folder
        self.setup = SETUPS.get(page.name, PageSetup())
        self.values: dict[str, str] = {}
        self.servers: list[subprocess.Popen[bytes]] = []
        #: (what ran, wall s, CPU s): printed with ``-s`` to see where a page's time goes.
        self.timings: list[tuple[str, float, float]] = []
        # `modelyard` on PATH as a reader's venv has it (the tutorial starts `modelyard
        # serve`); one OpenMP thread per process: on a shared, loaded machine spinning
        # threads make a seconds-long fit take minutes. No other MODELYARD_* setting: the
        # page starts from the defaults, as a new reader does.
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("MODELYARD_")},
            "MODELYARD_HOME": str(folder / "yard"),
            "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
            "OMP_NUM_THREADS": "1",
            "PWD": str(folder),
        }

    def python(self, code: str, what: str) -> None:
        proc = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            cwd=self.folder,
            env=self.env,
            timeout=300,
        )
        assert proc.returncode == 0, f"{self.page.name}, {what}:\n{proc.stderr}"

    def _fill(self, command: str) -> str:
        for word, resolve in self.setup.words.items():
            if re.search(rf"\b{re.escape(word)}\b", command):
                if word not in self.values:
                    self.values[word] = resolve(self.folder)
                command = re.sub(rf"\b{re.escape(word)}\b", self.values[word], command)
        return command

    def shell(self, written: str) -> str:
        """Run one command as written (placeholders filled); return what it printed."""
        command = self._fill(written)
        if command.startswith("export "):
            name, _, value = command.removeprefix("export ").partition("=")
            value = " ".join(shlex.split(value))  # $NAME from the page's environment
            self.env[name] = re.sub(r"\$(\w+)", lambda m: self.env.get(m[1], ""), value)
            return ""
        if command.startswith(tuple(f"modelyard {name} " for name in BACKGROUND)):
            log = self.folder / f"background-{len(self.servers) + 1}.log"
            with log.open("wb") as out:
                server = subprocess.Popen(
                    ["bash", "-c", f"exec {command}"],
                    cwd=self.folder,
                    env=self.env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            self.servers.append(server)
            port = re.search(r"--port (\d+)", command)
            assert port, f"{self.page.name}: {written}: a background command needs --port"
            _wait_until_ready(int(port[1]), BACKGROUND[command.split(" ", 2)[1]], server, log)
            return ""
        proc = subprocess.run(
            ["bash", "-c", command],
            capture_output=True,
            text=True,
            cwd=self.folder,
            env=self.env,
            timeout=300,
        )
        code, why = _listed(self.page.name, written, EXIT_CODES) or (0, "")
        assert proc.returncode == code, (
            f"{self.page.name}: `{command}` exited {proc.returncode}, not {code} {why}\n"
            f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        )
        shown = _listed(self.page.name, written, OUTPUTS)
        if shown:
            printed = proc.stdout + proc.stderr
            assert re.search(shown, printed), f"{self.page.name}: `{command}` printed {printed}"
        return proc.stdout

    @contextlib.contextmanager
    def timed(self, what: str) -> Iterator[None]:
        """Record wall and CPU seconds (of the processes it waited for) spent on ``what``."""
        wall, cpu = time.monotonic(), _children_cpu()
        yield
        self.timings.append((what, time.monotonic() - wall, _children_cpu() - cpu))

    def run(self) -> tuple[int, int]:
        """Run the page; return how many commands ran and how many are unrunnable."""
        ran = skipped = 0
        if self.setup.script:
            with self.timed("setup"):
                self.python(self.setup.script, "its setup (tests/docs/setups.py)")
        if self.setup.yaml_block_as:
            (yaml_block,) = YAML.findall(self.page.read_text(encoding="utf-8"))
            (self.folder / self.setup.yaml_block_as).write_text(yaml_block, encoding="utf-8")
        for index, (language, code) in enumerate(blocks(self.page), start=1):
            if language == "python":
                with self.timed(f"python block {index}"):
                    self.python(code, f"block {index}")
                continue
            for command in shell_lines(code):
                if _unrunnable(command):
                    skipped += 1
                    continue
                with self.timed(command):
                    self.shell(command)
                ran += 1
        return ran, skipped

    def close(self) -> None:
        with self.timed("the background servers, stopped"):
            for server in self.servers:
                server.terminate()
            for server in self.servers:
                try:
                    server.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    server.kill()
                    server.wait()


def _children_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


EXAMPLES = [page for page in PAGES if blocks(page)]


@pytest.mark.slow
@pytest.mark.parametrize("page", EXAMPLES, ids=lambda p: p.name)
def test_the_code_blocks_on_a_page_run_in_order(page: Path, tmp_path: Path) -> None:
    run = PageRun(page, tmp_path)
    try:
        ran, skipped = run.run()
    finally:
        run.close()
    print(f"\n{page.name}: {ran} commands ran, {skipped} listed unrunnable")
    for what, wall, cpu in run.timings:
        print(f"  {wall:6.2f} s {cpu:6.2f} s CPU  {what[:80]}")


def test_the_shell_parser_reads_commands_as_a_reader_types_them() -> None:
    block = (
        'modelyard schedule create x --cron "0 3 * * *"  # UTC\n'
        "modelyard a ; modelyard b '#1' \\\n    --c d\n"
        "# a comment\n"
    )
    assert shell_lines(block) == [
        'modelyard schedule create x --cron "0 3 * * *"',
        "modelyard a",
        "modelyard b '#1' --c d",
    ]


def test_every_unrunnable_command_is_on_a_page() -> None:
    written = [
        c + "\n" for p in PAGES for lang, b in blocks(p) if lang == "bash" for c in shell_lines(b)
    ]
    unused = [start for start in UNRUNNABLE if not any(c.startswith(start) for c in written)]
    assert not unused, f"UNRUNNABLE lists commands no page has: {unused}"


COMMANDS = sorted({(page.name, *words[:2]) for page in PAGES for words in commands(page)})


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_the_commands_on_a_page_exist(command: tuple[str, ...]) -> None:
    from typer.testing import CliRunner

    from modelyard.cli.main import COMMANDS as KNOWN
    from modelyard.cli.main import app

    words = [w for w in command[1:] if re.fullmatch(r"[a-z][a-z0-9-]*", w)]
    if words[:1] and words[0] not in KNOWN:
        pytest.fail(f"{command[0]}: modelyard {words[0]} is not a command")
    result = CliRunner().invoke(app, [*words, "--help"])
    assert result.exit_code == 0, f"{command[0]}: modelyard {' '.join(words)}: {result.output}"


def test_every_setting_is_on_the_scaling_out_page() -> None:
    from modelyard.config import Settings

    page = (DOCS / "scaling-out.md").read_text(encoding="utf-8")
    missing = [n for n in Settings.model_fields if f"`MODELYARD_{n.upper()}`" not in page]
    assert not missing, f"add these settings to docs/scaling-out.md: {missing}"
