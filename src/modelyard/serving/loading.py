"""Loading one model version for serving, on the fastest path proven to give its answers.

Paths, fastest first, each used only when it reproduces the model's own predictions on
the version's input example:

* ``onnx``: the compiled graph recorded on the version (see ``compiled``);
* ``numpy``: the native model fed a float64 matrix in signature order, skipping the
  DataFrame (0.6 ms → 0.2 ms per call for a 50-tree scikit-learn ensemble);
* ``native``: the flavor's ``predict`` on a DataFrame — always correct, slowest.

The version's inputs are checked against its signature (``InputSpec``) before any path
runs, so a path never sees data the model was not built for.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modelyard.errors import InvalidState
from modelyard.registry.entities import ModelVersion
from modelyard.registry.formats.flavors import flavor_module
from modelyard.registry.reserved_tags import UNLOADABLE_TAG
from modelyard.serving.batching import MicroBatcher
from modelyard.serving.compiled import DEFAULT_ATOL, DEFAULT_RTOL, checked_here, load_compiled
from modelyard.serving.inputs import COLUMN_TYPES, Batch, InputSpec, numpy_to_oip

#: Flavors whose predict is vectorised: batching helps them, so it is on by default.
BATCHABLE_FLAVORS = frozenset({"sklearn", "lightgbm", "xgboost", "onnx"})
OUTPUT_NAME = "predict"


@dataclass
class BatchingOptions:
    max_batch_size: int = 64
    max_wait_ms: float = 1.0
    enabled: bool | None = None  # None: on for vectorised flavors


@dataclass
class LoadedVersion:
    """A model version ready to answer: its spec, its chosen path, and its batcher."""

    version: ModelVersion
    flavor: str
    spec: InputSpec
    path: str
    batcher: MicroBatcher
    load_seconds: float
    feature_service: str | None = None
    output_name: str = OUTPUT_NAME
    output_datatype: str = "FP64"
    notes: list[str] = field(default_factory=list)

    @property
    def model(self) -> str:
        return self.version.name

    @property
    def number(self) -> int:
        return self.version.version

    async def predict(self, batch: Batch) -> np.ndarray:
        """The model's output for ``batch`` (an array with one entry per row)."""
        fast = self.path != "native" and batch.matrix is not None
        x = batch.matrix if fast else batch.model_input(self.spec.names)
        return _as_array(await self.batcher.predict(x, batch.n_rows))

    def metadata(self, deployment: str) -> dict[str, Any]:
        """OIP model metadata (``GET /v2/models/{name}``)."""
        return {
            "name": deployment,
            "versions": [str(self.number)],
            "platform": f"modelyard-{self.flavor}",
            "inputs": self.spec.oip_inputs(),
            "outputs": [
                {"name": self.output_name, "datatype": self.output_datatype, "shape": [-1]}
            ],
            "parameters": {"model": self.model, "path": self.path},
        }

    def close(self) -> None:
        self.batcher.close()


def _as_array(out: Any) -> np.ndarray:
    if hasattr(out, "to_numpy"):
        out = out.to_numpy()
    return np.asarray(out)


def _same(a: Any, b: Any) -> bool:
    a, b = _as_array(a), _as_array(b)
    if a.shape != b.shape:
        return False
    if a.dtype.kind in "fc" and b.dtype.kind in "fc":
        return bool(np.allclose(a, b, rtol=1e-9, atol=1e-12, equal_nan=True))
    return bool(np.array_equal(a, b))


def _numpy_path(loaded: Any, spec: InputSpec, example: Any) -> Any | None:
    """A predict function over float64 matrices, if it matches the DataFrame path."""
    if not spec.numeric or loaded.flavor not in BATCHABLE_FLAVORS or example is None:
        return None
    import pandas as pd

    try:
        frame = (
            example[spec.names]
            if hasattr(example, "columns")
            else pd.DataFrame(example, columns=spec.names)
        )
        matrix = frame.to_numpy(dtype=np.float64)
        reference = loaded.predict(frame)
    except Exception:
        return None
    native, manifest = loaded.native, loaded.manifest
    module = flavor_module(loaded.flavor)
    fitted = getattr(native, "feature_names_in_", None)
    names = [] if fitted is None else [str(n) for n in fitted]
    if names and names == spec.names and "feature_names_in_" in getattr(native, "__dict__", {}):
        # Columns are put in this order by the spec; the model's own name check would only
        # warn on every matrix. The loaded object is ours alone.
        del native.feature_names_in_

    def predict(m: np.ndarray) -> Any:
        return module.predict(native, m, manifest)

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            candidate = predict(matrix)
    except Exception:
        return None
    return predict if _same(candidate, reference) else None


def check_loadable(version: ModelVersion) -> None:
    """Raise InvalidState (field ``saved_model``) when the registry flagged ``version`` as
    holding no saved model: loading it could only fail, at every retry."""
    problem = version.tags.get(UNLOADABLE_TAG)
    if problem:
        raise InvalidState(
            f"{version.name} version {version.version} cannot be served: {problem}",
            field="saved_model",
        )


def check_servable(registry: Any, target: Any) -> None:
    """Fail fast, before serving starts, when the target's current revision names a
    version flagged as holding no saved model (``check_loadable``)."""
    policy = target.policy(target.revision())
    for member in [*policy.variants, *policy.shadows]:
        check_loadable(registry.get_model_version(member.model, member.version))


def load_version(
    registry: Any,
    name: str,
    number: int,
    *,
    batching: BatchingOptions | None = None,
    compiled: bool = True,
    feature_service: str | None = None,
    on_batch: Any = None,
    trusted: bool = False,
) -> LoadedVersion:
    """Fetch, load and prepare version ``number`` of ``name`` (blocking: run it off the
    event loop)."""
    started = time.perf_counter()
    batching = batching or BatchingOptions()
    version = registry.get_model_version(name, number)
    check_loadable(version)
    notes: list[str] = []
    onnx = None
    if compiled:
        try:
            onnx = load_compiled(registry.artifacts, version.tags)
        except Exception as exc:  # a broken artifact must not stop serving the native model
            notes.append(f"compiled graph unusable: {exc}")
    spec = InputSpec.from_signature(version.signature)
    predict: Callable[[Any], Any] | None
    if onnx is not None and spec.numeric and checked_here(version.tags):
        # Checked against the original when it was compiled, on this onnxruntime: the
        # original model is not even loaded (start-up without scikit-learn).
        predict, path, flavor = onnx, "onnx", str(version.flavor)
        output_type = _output_datatype(version.signature)
    else:
        loaded = registry.load_model(version.uri, trusted=trusted)
        spec = InputSpec.from_signature(loaded.signature)
        example = loaded.input_example()
        flavor = loaded.flavor
        output_type = _output_datatype(loaded.manifest.get("signature"))
        predict, path = None, "native"
        if onnx is not None and spec.numeric and example is not None:
            if _agrees(loaded, onnx, spec, example):
                predict, path = onnx, "onnx"
            else:
                notes.append("compiled graph disagrees with the model on its input example")
        if predict is None:
            fast = _numpy_path(loaded, spec, example)
            predict, path = (fast, "numpy") if fast is not None else (loaded.predict, "native")
    enabled = batching.enabled
    if enabled is None:
        enabled = flavor in BATCHABLE_FLAVORS
    batcher = MicroBatcher(
        predict,
        max_batch_size=batching.max_batch_size if enabled else 1,
        max_wait_ms=batching.max_wait_ms,
        on_batch=on_batch,
        name=f"{name}-{number}",
    )
    return LoadedVersion(
        version=version,
        flavor=flavor,
        spec=spec,
        path=path,
        batcher=batcher,
        load_seconds=time.perf_counter() - started,
        feature_service=feature_service,
        output_datatype=output_type,
        notes=notes,
    )


def _agrees(loaded: Any, onnx: Any, spec: InputSpec, example: Any) -> bool:
    """Whether the compiled graph reproduces the model on its input example (run when the
    recorded check was made on another onnxruntime)."""
    import pandas as pd

    frame = (
        example[spec.names]
        if hasattr(example, "columns")
        else pd.DataFrame(example, columns=spec.names)
    )
    want = _as_array(loaded.predict(frame))
    got = onnx(frame.to_numpy(dtype=np.float64))
    if want.dtype.kind not in "fc":
        return bool(np.array_equal(want, got))
    return bool(np.allclose(got, want, rtol=DEFAULT_RTOL, atol=DEFAULT_ATOL))


def _output_datatype(signature: dict[str, Any] | None) -> str:
    outputs = (signature or {}).get("outputs") or []
    if outputs:
        first = outputs[0]
        if first.get("type") == "tensor":
            return numpy_to_oip(np.dtype((first.get("tensor-spec") or {}).get("dtype", "float64")))
        return COLUMN_TYPES.get(str(first.get("type")), ("FP64", ""))[0]
    return "FP64"
