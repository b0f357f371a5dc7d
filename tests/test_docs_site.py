"""The documentation site (mkdocs.yml over docs/): it builds under ``--strict`` with nothing
fetched from another host, and every example on its pages runs as written.

A page's ```python blocks run in order, each in a fresh interpreter, in one temporary
folder per page with ``MODELYARD_HOME`` pointing into it: a later block may read what an
earlier one stored (a reader runs them as scripts, one after another), never a variable
it defined. The ``modelyard …`` lines of ```bash blocks name commands that exist (their
``--help`` answers).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))
PYTHON = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
BASH = re.compile(r"^```bash\n(.*?)^```", re.S | re.M)
#: src/href attributes and CSS url()s that would make a browser fetch from another host.
FETCHED = re.compile(
    r"""(?:<(?:script|link|img|iframe|source|video|audio)\b[^>]*?\b(?:src|href)\s*=\s*["']?"""
    r"""|@import\s+(?:url\()?["']?|url\(\s*["']?)(https?:)?//""",
    re.I,
)


def python_blocks(page: Path) -> list[str]:
    return PYTHON.findall(page.read_text(encoding="utf-8"))


def commands(page: Path) -> list[list[str]]:
    """The ``modelyard …`` commands of a page's bash blocks, as argument lists (a line
    continued with ``\\`` is one command; ``a ; b`` are two)."""
    found = []
    for block in BASH.findall(page.read_text(encoding="utf-8")):
        text = re.sub(r"\\\n", " ", block)
        for line in text.splitlines():
            line = line.split(" #", 1)[0].strip().removeprefix("$ ")
            for part in re.split(r"\s+(?:;|&&|\|\|)\s+", line):
                words = shlex.split(part) if part else []
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


EXAMPLES = [page for page in PAGES if python_blocks(page)]


@pytest.mark.slow
@pytest.mark.parametrize("page", EXAMPLES, ids=lambda p: p.name)
def test_the_examples_on_a_page_run_in_order(page: Path, tmp_path: Path) -> None:
    # `modelyard` on PATH as a reader's venv has it (the tutorial starts `modelyard serve`);
    # one OpenMP thread per process: on a shared, loaded machine spinning threads make a
    # seconds-long fit take minutes.
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "MODELYARD_HOME": str(tmp_path / "yard"),
        "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
        "OMP_NUM_THREADS": "1",
    }
    for key in ("MODELYARD_STORE_URI", "MODELYARD_ARTIFACTS_URI", "MODELYARD_TRACKING_URI"):
        env.pop(key, None)
    for index, code in enumerate(python_blocks(page), start=1):
        proc = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=env,
            timeout=300,
        )
        assert proc.returncode == 0, f"{page.name}, python block {index}:\n{proc.stderr}"


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
