"""Hand-made skops files that try to run code on load are refused before anything runs.

Each gadget is a ``schema.json`` written by hand, the way an attacker would: a node whose
type is a function that runs code, writes a file or imports a module. The model folder's
``MLmodel.json`` lists the gadget's types as recorded at save (the uploader writes that
file too), so the refusal must not depend on it. Every gadget aims at its own empty
folder: the folder staying empty is the proof that nothing ran.
"""

from __future__ import annotations

import io
import json
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.registry.conftest import log_sklearn_model

from modelyard.errors import InvalidParameter, PermissionDenied
from modelyard.registry.formats import sklearn_skops
from modelyard.registry.formats.flavors import MANIFEST_FILE, load_model, save_model

Node = dict[str, Any]


def json_node(value: Any) -> Node:
    content = json.dumps(value)
    return {"__class__": "str", "__module__": "builtins", "__loader__": "JsonNode",
            "content": content, "is_json": True}  # fmt: skip


def tuple_node(*items: Node) -> Node:
    return {"__class__": "tuple", "__module__": "builtins", "__loader__": "TupleNode",
            "content": list(items)}  # fmt: skip


def list_node(*items: Node) -> Node:
    return {"__class__": "list", "__module__": "builtins", "__loader__": "ListNode",
            "content": list(items)}  # fmt: skip


def dict_node(**content: Node) -> Node:
    key_types = list_node(*[type_node("builtins", "str") for _ in content])
    return {"__class__": "dict", "__module__": "builtins", "__loader__": "DictNode",
            "content": content, "key_types": key_types}  # fmt: skip


def type_node(module: str, name: str) -> Node:
    return {"__class__": name, "__module__": module, "__loader__": "TypeNode"}


def function_node(module: str, name: str) -> Node:
    return {"__class__": name, "__module__": module, "__loader__": "FunctionNode"}


def call_node(module: str, name: str, *args: Node) -> Node:
    """``module.name(*args)`` on load (skops' node for ``(type, args)`` reductions)."""
    return {"__class__": name, "__module__": module,
            "__loader__": "ConstructorFromReduceNode", "content": tuple_node(*args)}  # fmt: skip


def writes(path: Path) -> str:
    return f"open({str(path)!r}, 'w').write('ran')"


RUNSTRING = ("numpy.testing._private.utils", "runstring")

# name -> (build the schema aiming at ``target``, the type the refusal must name)
GADGETS: dict[str, tuple[Callable[[Path], Node], str]] = {
    "numpy runstring (exec) as a constructor": (
        lambda t: call_node(*RUNSTRING, json_node(writes(t)), dict_node()),
        "numpy.testing._private.utils.runstring",
    ),
    "numpy runstring as a loss object": (
        lambda t: {
            "__class__": RUNSTRING[1],
            "__module__": RUNSTRING[0],
            "__loader__": "LossNode",
            "__reduce__": {"args": tuple_node(json_node(writes(t)), dict_node())},
            "content": dict_node(),
        },
        "numpy.testing._private.utils.runstring",
    ),
    "numpy runstring inside functools.partial": (
        lambda t: {
            "__class__": "partial",
            "__module__": "functools",
            "__loader__": "PartialNode",
            "content": {
                "func": function_node(*RUNSTRING),
                "args": tuple_node(json_node(writes(t)), dict_node()),
                "kwds": dict_node(),
                "namespace": json_node(None),
            },
        },
        "numpy.testing._private.utils.runstring",
    ),
    "operator.call of numpy runstring": (
        lambda t: {
            "__class__": "call",
            "__module__": "operator",
            "__loader__": "OperatorFuncNode",
            "attrs": tuple_node(function_node(*RUNSTRING), json_node(writes(t)), dict_node()),
        },
        "numpy.testing._private.utils.runstring",
    ),
    "numpy.savetxt writes a file": (
        lambda t: call_node("numpy", "savetxt", json_node(str(t)), list_node(json_node(1.0))),
        "numpy.savetxt",
    ),
    "scipy.io.savemat writes a file": (
        lambda t: call_node("scipy.io", "savemat", json_node(str(t)), dict_node()),
        "scipy.io.savemat",
    ),
    "sklearn.datasets.dump_svmlight_file writes a file": (
        lambda t: call_node(
            "sklearn.datasets",
            "dump_svmlight_file",
            list_node(list_node(json_node(1.0))),
            list_node(json_node(1.0)),
            json_node(str(t)),
        ),
        "sklearn.datasets.dump_svmlight_file",
    ),
    "skops.io.dump writes a file": (
        lambda t: call_node("skops.io", "dump", dict_node(), json_node(str(t))),
        "skops.io.dump",
    ),
    "os.system": (
        lambda t: call_node("os", "system", json_node(f"touch {t}")),
        "os.system",
    ),
    "builtins.exec": (
        lambda t: call_node("builtins", "exec", json_node(writes(t))),
        "builtins.exec",
    ),
    "builtins.eval": (
        lambda t: call_node("builtins", "eval", json_node(writes(t))),
        "builtins.eval",
    ),
    "builtins.getattr": (
        lambda t: call_node("builtins", "getattr", json_node("x"), json_node("upper")),
        "builtins.getattr",
    ),
    "operator.methodcaller": (
        lambda t: {
            "__class__": "methodcaller",
            "__module__": "operator",
            "__loader__": "OperatorFuncNode",
            "attrs": tuple_node(json_node("write"), json_node("ran")),
        },
        "operator.methodcaller",
    ),
    "operator.attrgetter": (
        lambda t: {
            "__class__": "attrgetter",
            "__module__": "operator",
            "__loader__": "OperatorFuncNode",
            "attrs": tuple_node(json_node("system")),
        },
        "operator.attrgetter",
    ),
}


def write_skops(path: Path, root: Node, arrays: dict[str, bytes] | None = None) -> Path:
    import skops
    from skops.io._protocol import PROTOCOL

    schema = {**root, "protocol": PROTOCOL, "_skops_version": skops.__version__}
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("schema.json", json.dumps(schema))
        for name, data in (arrays or {}).items():
            zf.writestr(name, data)
    return path


def forged_model(
    folder: Path, root: Node, arrays: dict[str, bytes] | None = None
) -> dict[str, Any]:
    """A model folder whose manifest says the gadget's types were recorded at save."""
    import skops.io

    folder.mkdir(parents=True)
    path = write_skops(folder / "model.skops", root, arrays)
    manifest = {
        "flavor": "sklearn",
        "model_file": "model.skops",
        "serialization_format": "skops",
        "untrusted_types": skops.io.get_untrusted_types(file=path),
    }
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest))
    return manifest


@pytest.fixture
def sandbox(tmp_path) -> Path:
    """The folder a gadget writes into: it must stay empty."""
    (tmp_path / "sandbox").mkdir()
    return tmp_path / "sandbox"


@pytest.mark.parametrize("gadget", GADGETS)
def test_a_gadget_is_refused_through_load_model_and_nothing_runs(gadget, tmp_path, sandbox):
    build, refused = GADGETS[gadget]
    manifest = forged_model(tmp_path / "m", build(sandbox / "marker"))
    assert refused in manifest["untrusted_types"]  # the forged manifest "records" it

    with pytest.raises(PermissionDenied, match=refused.replace(".", r"\.")) as caught:
        load_model(tmp_path / "m")

    assert list(sandbox.iterdir()) == []
    assert caught.value.field == "trusted_types"


@pytest.mark.parametrize("gadget", GADGETS)
def test_a_gadget_is_refused_by_the_format_module_itself(gadget, tmp_path, sandbox):
    build, refused = GADGETS[gadget]
    manifest = forged_model(tmp_path / "m", build(sandbox / "marker"))

    with pytest.raises(PermissionDenied, match=refused.replace(".", r"\.")):
        sklearn_skops.load(tmp_path / "m", manifest)
    with pytest.raises(PermissionDenied, match=refused.replace(".", r"\.")):
        sklearn_skops.load(tmp_path / "m", manifest, trusted_types=manifest["untrusted_types"][:0])

    assert list(sandbox.iterdir()) == []


def test_a_gadget_hidden_in_a_genuine_model_is_refused(tmp_path, sandbox):
    """The attack of issue 18: a real fitted model with one parameter swapped for runstring."""
    import skops.io
    from sklearn.ensemble import RandomForestRegressor

    genuine = skops.io.dumps(RandomForestRegressor(n_estimators=2).fit([[0.0], [1.0]], [0, 1]))
    with zipfile.ZipFile(io.BytesIO(genuine)) as zf:
        schema = json.loads(zf.read("schema.json"))
        arrays = {name: zf.read(name) for name in zf.namelist() if name != "schema.json"}
    params = schema["content"]["content"]
    params["n_estimators"] = call_node(*RUNSTRING, json_node(writes(sandbox / "m")), dict_node())
    root = {k: v for k, v in schema.items() if k not in ("protocol", "_skops_version")}
    manifest = forged_model(tmp_path / "m", root, arrays)
    assert "sklearn.tree._tree.Tree" in manifest["untrusted_types"]

    with pytest.raises(PermissionDenied, match=r"numpy\.testing\._private\.utils\.runstring"):
        load_model(tmp_path / "m")
    assert list(sandbox.iterdir()) == []


def test_a_gadget_module_is_not_even_imported(tmp_path, sandbox, monkeypatch):
    """A type in a module that runs code when imported: refused before the import."""
    (tmp_path / "gadget_on_import.py").write_text(f"{writes(sandbox / 'imported')}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    forged_model(tmp_path / "m", type_node("gadget_on_import", "anything"))

    with pytest.raises(PermissionDenied, match=r"gadget_on_import\.anything"):
        load_model(tmp_path / "m")
    assert list(sandbox.iterdir()) == []
    assert "gadget_on_import" not in sys.modules


def test_only_the_caller_widens_trust(tmp_path, sandbox):
    """The refusal says how to trust the type; doing so is the caller's decision."""
    build, refused = GADGETS["builtins.getattr"]
    forged_model(tmp_path / "m", build(sandbox / "marker"))

    with pytest.raises(PermissionDenied, match=r"trusted_types=\['builtins\.getattr'\]"):
        load_model(tmp_path / "m")
    assert load_model(tmp_path / "m", trusted_types=[refused]).native() == "X"
    assert load_model(tmp_path / "m", trusted=True).native() == "X"


def test_a_gadget_is_refused_through_the_registry(local_yard, tmp_path, sandbox):
    build, refused = GADGETS["numpy runstring (exec) as a constructor"]
    forged_model(tmp_path / "m", build(sandbox / "marker"))
    run_id = log_sklearn_model(local_yard.tracking, tmp_path / "m")
    local_yard.registry.register_model(f"runs:/{run_id}/model", "gadget")

    with pytest.raises(PermissionDenied, match=refused.replace(".", r"\.")):
        local_yard.registry.load_model("models:/gadget/1")
    assert list(sandbox.iterdir()) == []


def test_a_manifest_cannot_point_at_a_model_file_elsewhere(tmp_path):
    from sklearn.linear_model import LinearRegression

    save_model(LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0]), tmp_path / "other")
    manifest = forged_model(tmp_path / "m", json_node(1))
    manifest["model_file"] = "../other/model.skops"
    (tmp_path / "m" / MANIFEST_FILE).write_text(json.dumps(manifest))

    with pytest.raises(InvalidParameter, match="outside the model folder"):
        load_model(tmp_path / "m")
