"""``distribution``: the requirements modelyard declares, per extra, read the same from
pyproject.toml and from installed metadata; and the declarations themselves kept honest
(every package pinned in constraints.txt, one version floor per package)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from modelyard import distribution
from modelyard.distribution import Requirement, normal_name, requirements_of

ROOT = Path(__file__).resolve().parents[1]


def test_an_extra_brings_the_extras_it_names_once_each_with_markers_and_package_extras():
    compile_ = {r.name: r for r in requirements_of("compile")}
    assert {"skl2onnx", "onnxmltools", "onnx", "onnxruntime", "scikit-learn", "skops"} == set(
        compile_
    )
    serving = requirements_of("serving")
    assert len({r.name for r in serving}) == len(serving)  # httptools: server's and its own
    uvloop = next(r for r in serving if r.name == "uvloop")
    assert uvloop.line("0.21.0") == "uvloop==0.21.0; sys_platform != 'win32'"
    (psycopg,) = requirements_of("postgres")
    assert psycopg.line("3.2.0") == "psycopg[binary]==3.2.0"
    base = requirements_of(base=True)
    assert [r.name for r in requirements_of("server", base=True)][: len(base)] == [
        r.name for r in base
    ]


def test_xgboost_comes_as_the_cpu_wheel_where_one_is_built_and_plain_on_macos():
    markers = {r.name: r.marker for r in requirements_of("xgboost")}
    assert markers == {
        "xgboost-cpu": "sys_platform != 'darwin'",
        "xgboost": "sys_platform == 'darwin'",
    }


@pytest.fixture
def from_metadata(monkeypatch, tmp_path):
    """Read as an installed wheel is: no pyproject.toml beside the package."""
    monkeypatch.setattr(distribution, "_PYPROJECT", tmp_path / "pyproject.toml")
    distribution._declared.cache_clear()
    yield
    distribution._declared.cache_clear()


def _comparable(requirements: list[Requirement]) -> set[tuple[str, str, str, str]]:
    """Quotes and the order of a range's clauses differ between pyproject and metadata."""
    return {
        (r.name, r.extras, r.marker.replace('"', "'"), ",".join(sorted(r.spec.split(","))))
        for r in requirements
    }


def test_installed_metadata_reads_as_pyproject_does(from_metadata):
    installed = {e: _comparable(requirements_of(e, base=True)) for e in distribution.extras()}
    distribution._PYPROJECT = ROOT / "pyproject.toml"  # restored by monkeypatch
    distribution._declared.cache_clear()
    declared = {e: _comparable(requirements_of(e, base=True)) for e in distribution.extras()}
    assert installed == declared, "stale metadata: pip install -e . (make install-dev)"


def test_metadata_markers_lose_only_their_extra_clause(from_metadata, monkeypatch):
    lines = [
        "numpy>=1.26",
        'uvloop>=0.19; sys_platform != "win32" and extra == "server"',
        'tomli>=2; (python_version < "3.11" or os_name == "nt") and extra == "server"',
        'orjson>=3.9; extra == "server"',
        'modelyard[server]; extra == "serving"',
    ]
    monkeypatch.setattr(distribution.metadata, "requires", lambda name: lines)
    assert [r.line() for r in requirements_of("serving", base=True)] == [
        "numpy>=1.26",
        'uvloop>=0.19; sys_platform != "win32"',
        'tomli>=2; (python_version < "3.11" or os_name == "nt")',
        "orjson>=3.9",
    ]
    assert distribution.extras() == ["server", "serving"]


def test_every_declared_package_is_pinned_in_constraints():
    pins = {
        normal_name(line.split("==")[0])
        for line in (ROOT / "constraints.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    }
    declared = {r.name for extra in distribution.extras() for r in requirements_of(extra)}
    declared |= {r.name for r in requirements_of(base=True)}
    assert declared - pins == set(), "make constraints (and check the diff)"


def test_a_package_declared_in_several_extras_has_one_version_range():
    specs: dict[str, set[str]] = {}
    for extra in distribution.extras():
        for r in requirements_of(extra):
            specs.setdefault(r.name, set()).add(",".join(sorted(r.spec.split(","))))
    assert {name: found for name, found in specs.items() if len(found) > 1} == {}


def test_plots_brings_only_what_modelyard_imports():
    """plotly figures are logged by duck typing; only matplotlib is imported (the demo)."""
    (matplotlib,) = requirements_of("plots")
    assert matplotlib.name == "matplotlib"
    sources = "\n".join(p.read_text() for p in (ROOT / "src").rglob("*.py"))
    assert re.search(r"^\s*(import|from) plotly", sources, re.M) is None
