"""``cli/extras.py``: a missing optional package becomes one line naming the extra to install."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import pytest

from modelyard.cli.extras import (
    OPTIONAL_MODULES,
    missing_extra,
    needs_extra,
    optional_module,
    packages_of,
)
from modelyard.errors import MissingExtra

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def extra_packages() -> dict[str, set[str]]:
    """Each extra of pyproject.toml → the packages it installs (``modelyard[a,b]`` expanded)."""
    extras = tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]

    def packages(extra: str) -> set[str]:
        found: set[str] = set()
        for requirement in extras[extra]:
            name = re.match(r"[A-Za-z0-9_.-]+", requirement).group(0).lower()
            if name == "modelyard":
                for inner in re.search(r"\[(.*)\]", requirement).group(1).split(","):
                    found |= packages(inner.strip())
            else:
                found.add(name)
        return found

    return {extra: packages(extra) for extra in extras}


@pytest.mark.parametrize("module", sorted(OPTIONAL_MODULES))
def test_each_optional_module_names_an_extra_that_installs_its_package(module):
    package, extra = OPTIONAL_MODULES[module]
    assert package in extra_packages()[extra]


def test_the_module_comes_from_the_error_or_from_the_message():
    assert optional_module(ModuleNotFoundError("x", name="uvicorn")) == "uvicorn"
    assert optional_module(ModuleNotFoundError("x", name="sklearn.linear_model")) == "sklearn"
    pandas_says = ImportError(
        "Unable to find a usable engine; tried using: 'pyarrow', 'fastparquet'."
    )
    assert optional_module(pandas_says) == "pyarrow"


@pytest.mark.parametrize(
    "error",
    [
        ModuleNotFoundError("x", name="modelyard.nothing"),  # our own bug: shown in full
        ModuleNotFoundError("x", name="yaml"),  # a required package: a broken install
        ImportError("cannot import name 'thing' from 'somewhere'"),
    ],
)
def test_anything_else_is_not_a_missing_extra(error):
    assert missing_extra(error, "modelyard x") is None


def test_the_message_says_what_to_install():
    found = missing_extra(ModuleNotFoundError("x", name="sklearn"), "modelyard gate")
    assert str(found) == (
        "modelyard gate needs the 'scikit-learn' package: pip install 'modelyard[sklearn]'"
    )
    # a command may ask for the extra it needs as a whole
    wider = missing_extra(ModuleNotFoundError("x", name="starlette"), "modelyard serve", "serving")
    assert wider.extra == "serving" and "modelyard[serving]" in str(wider)


def test_needs_extra_names_the_commands_extra_when_it_brings_the_package():
    wanted = r"pip install 'modelyard\[serving\]'"
    with pytest.raises(MissingExtra, match=wanted), needs_extra("serving", "modelyard serve"):
        raise ModuleNotFoundError("No module named 'uvicorn'", name="uvicorn")
    # sklearn comes with compile: install compile, not sklearn and then skl2onnx
    with pytest.raises(MissingExtra) as raised, needs_extra("compile", "modelyard deploy compile"):
        raise MissingExtra("skops", "sklearn", "Saving scikit-learn models safely")
    assert str(raised.value) == (
        "modelyard deploy compile needs the 'skops' package: pip install 'modelyard[compile]'"
    )


def test_needs_extra_keeps_errors_the_extra_would_not_fix():
    own = MissingExtra("lightgbm", "lightgbm", "Loading LightGBM models")
    with pytest.raises(MissingExtra) as raised, needs_extra("serving", "modelyard serve"):
        raise own
    assert raised.value is own
    with pytest.raises(ModuleNotFoundError), needs_extra("serving", "modelyard serve"):
        raise ModuleNotFoundError("x", name="modelyard.nothing")


@pytest.mark.parametrize("extra", ["server", "serving", "compile", "data", "features", "sklearn"])
def test_packages_of_an_extra_agree_with_pyproject(extra):
    assert packages_of(extra) == extra_packages()[extra]


def named_extras(path: Path) -> set[str]:
    """The extras ``MissingExtra(package, extra, …)`` and ``needs_extra(extra, …)`` calls
    in ``path`` name as string literals, directly or through a local variable."""
    tree = ast.parse(path.read_text())
    assigned: dict[str, list[ast.expr]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    assigned.setdefault(target.id, []).append(node.value)
    found: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
            continue
        position = {"MissingExtra": 1, "needs_extra": 0}.get(node.func.id)
        if position is None or len(node.args) <= position:
            continue
        argument = node.args[position]
        values = assigned.get(argument.id, []) if isinstance(argument, ast.Name) else [argument]
        for value in values:
            found |= literals(value)
    return found


def literals(node: ast.expr) -> set[str]:
    """The strings an expression can take: ``"a"``, ``"a" if x == "b" else "c"`` → a, c."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.IfExp):
        return literals(node.body) | literals(node.orelse)
    return set()


def test_every_extra_an_error_names_exists_in_pyproject():
    sources = sorted((PYPROJECT.parent / "src" / "modelyard").rglob("*.py"))
    named = {extra: str(path) for path in sources for extra in named_extras(path)}
    named |= {extra: "cli/extras.py: OPTIONAL_MODULES" for _, extra in OPTIONAL_MODULES.values()}
    assert {"compile", "onnx", "serving", "plots", "sklearn", "data"} <= set(named)
    unknown = {extra: where for extra, where in named.items() if extra not in extra_packages()}
    assert unknown == {}


def test_make_install_brings_the_extras_the_documented_commands_name():
    """``make install`` (and so ``make demo``) installs what the README's commands need."""
    from tests.cli.test_base_install import NEEDS_AN_EXTRA

    makefile = (PYPROJECT.parent / "Makefile").read_text()
    runtime = set(re.search(r"^RUNTIME_EXTRAS := (.+)$", makefile, re.M).group(1).split(","))
    needed = {extra for _, extra in NEEDS_AN_EXTRA if extra} | {"sklearn", "plots"}  # demo
    assert needed <= runtime
