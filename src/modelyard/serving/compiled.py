"""The compiled path: tree ensembles and linear models converted to ONNX, used only when the
converted model predicts what the original does.

Conversion (skl2onnx for scikit-learn, onnxmltools for LightGBM and XGBoost) runs once,
at deploy time, never at serve start-up. The ONNX graph computes in float32, so it is
checked against the original on the version's input example plus held-out rows (given,
or drawn from the example's columns independently, so they are rows the example did not
contain), with a stated tolerance:

* regressors: ``|onnx − original| ≤ atol + rtol·|original|`` on every row;
* classifiers: identical labels on every row.

The outcome is recorded on the version as tags (``modelyard.compiled`` = ``onnx`` or
``off``, the reason, the tolerance, the rows checked, the largest error, and the artifact
path of the graph), so every data plane reads the same decision and an operator can see
why a version runs natively.

>>> check = compile_version(registry, "churn", 3)           # doctest: +SKIP
>>> check.enabled, check.max_abs_error                       # doctest: +SKIP
(True, 9.5e-07)
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from modelyard.artifacts import namespaces
from modelyard.errors import MissingExtra

TAG = "modelyard.compiled"
TAG_DETAIL = "modelyard.compiled.detail"
TAG_PATH = "modelyard.compiled.path"
DEFAULT_RTOL = 1e-4
DEFAULT_ATOL = 1e-4
HELD_OUT_ROWS = 500
COMPILED_PREFIX = f"{namespaces.SERVING}/compiled"
#: Estimators the converters handle well (trees and linear models); others stay native.
SUPPORTED = (
    "GradientBoosting", "HistGradientBoosting", "RandomForest", "ExtraTrees", "DecisionTree",
    "LinearRegression", "LogisticRegression", "Ridge", "Lasso", "ElasticNet", "SGD",
    "LinearSVC", "LinearSVR", "LGBM", "Booster", "XGB",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class CompileCheck:
    """What the comparison found. ``enabled`` is the decision; ``reason`` explains it."""

    enabled: bool
    reason: str
    rows_checked: int = 0
    max_abs_error: float | None = None
    rtol: float = DEFAULT_RTOL
    atol: float = DEFAULT_ATOL
    classifier: bool = False
    path: str | None = None
    onnxruntime: str = ""  # the version that ran the check: another one is checked again

    def tags(self) -> dict[str, str]:
        detail = {k: v for k, v in asdict(self).items() if k not in ("enabled", "path")}
        tags = {TAG: "onnx" if self.enabled else "off", TAG_DETAIL: json.dumps(detail)}
        if self.path:
            tags[TAG_PATH] = self.path
        return tags


def supported(native: Any) -> bool:
    name = type(native).__name__
    return any(name.startswith(prefix) for prefix in SUPPORTED)


def convert(native: Any, n_features: int) -> Any:
    """An ONNX ``ModelProto`` for ``native`` taking a float32 ``[-1, n_features]`` tensor."""
    module = type(native).__module__.split(".", 1)[0]
    try:
        if module == "sklearn":
            from skl2onnx import to_onnx

            options = {id(native): {"zipmap": False}} if hasattr(native, "predict_proba") else None
            sample = np.zeros((1, n_features), dtype=np.float32)
            return to_onnx(native, sample, options=options, target_opset={"": 17, "ai.onnx.ml": 3})
        import onnxmltools
        from onnxmltools.convert.common.data_types import FloatTensorType

        initial = [("input", FloatTensorType([None, n_features]))]
        if module == "lightgbm":
            return onnxmltools.convert_lightgbm(native, initial_types=initial, zipmap=False)
        if module == "xgboost":
            return onnxmltools.convert_xgboost(native, initial_types=initial)
    except ImportError as exc:
        raise MissingExtra(exc.name or "skl2onnx", "compile", "Compiling models to ONNX") from exc
    raise ValueError(f"no ONNX converter for {type(native).__name__}")


class OnnxPredictor:
    """Runs a converted graph: float32 matrix in, the first output (labels or values) out."""

    def __init__(self, model_bytes: bytes) -> None:
        try:
            import onnxruntime
        except ImportError as exc:
            raise MissingExtra("onnxruntime", "onnx", "Running compiled models") from exc
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1  # one request's rows are few; threads cost more
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(
            model_bytes, options, providers=["CPUExecutionProvider"]
        )
        self.input_name = self.session.get_inputs()[0].name
        self.output_name = self.session.get_outputs()[0].name

    def __call__(self, matrix: np.ndarray) -> np.ndarray:
        out = self.session.run(
            [self.output_name], {self.input_name: np.asarray(matrix, dtype=np.float32)}
        )[0]
        return out.ravel() if out.ndim == 2 and out.shape[1] == 1 else out


def held_out_rows(example: np.ndarray, n: int = HELD_OUT_ROWS, seed: int = 0) -> np.ndarray:
    """Rows drawn column by column from the example's values, plus values between them:
    combinations the example does not contain, covering each feature's observed range."""
    rng = np.random.default_rng(seed)
    rows = np.empty((n, example.shape[1]), dtype=np.float64)
    for j in range(example.shape[1]):
        column = example[:, j]
        low, high = float(np.nanmin(column)), float(np.nanmax(column))
        picked = rng.choice(column, size=n)
        between = rng.uniform(low, high, size=n) if high > low else picked
        rows[:, j] = np.where(rng.random(n) < 0.5, picked, between)
    return rows


def check_against(
    original: Any,
    compiled: Any,
    rows: np.ndarray,
    *,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
) -> CompileCheck:
    """Compare two predict functions on ``rows`` (float64 matrix) within the tolerance."""
    want = np.asarray(original(rows))
    got = np.asarray(compiled(rows))
    if want.shape != got.shape and want.size == got.size:
        got = got.reshape(want.shape)
    if want.shape != got.shape:
        return CompileCheck(False, f"output shape {got.shape} != original {want.shape}")
    classifier = want.dtype.kind not in "fc"
    if classifier:
        mismatched = int(np.count_nonzero(want != got))
        if mismatched:
            return CompileCheck(
                False,
                f"{mismatched} of {len(rows)} labels differ from the original",
                len(rows), None, rtol, atol, True,
            )  # fmt: skip
        return CompileCheck(True, "labels identical", len(rows), 0.0, rtol, atol, True)
    error = np.abs(got.astype(np.float64) - want.astype(np.float64))
    worst = float(np.max(error)) if error.size else 0.0
    limit = atol + rtol * np.abs(want.astype(np.float64))
    over = int(np.count_nonzero(error > limit))
    if over:
        return CompileCheck(
            False,
            f"{over} of {len(rows)} predictions differ by more than {atol:g} + {rtol:g}·|y| "
            f"(largest {worst:.3g})",
            len(rows), worst, rtol, atol,
        )  # fmt: skip
    return CompileCheck(True, f"within {atol:g} + {rtol:g}·|y|", len(rows), worst, rtol, atol)


def compile_version(
    registry: Any,
    name: str,
    version: int,
    *,
    holdout: Any = None,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
) -> CompileCheck:
    """Convert version ``version`` of ``name`` to ONNX, check it, store it, record the
    outcome on the version (tags) and return it. Models that cannot be converted or that
    disagree are recorded as ``off``, with the reason."""
    from modelyard.serving.inputs import InputSpec

    loaded = registry.load_model(f"models:/{name}/{version}")
    spec = InputSpec.from_signature(loaded.signature)
    result, model_bytes = _compile(loaded, spec, holdout, rtol, atol)
    if result.enabled and model_bytes is not None:
        path = f"{COMPILED_PREFIX}/{name}/{version}/model.onnx"
        registry.artifacts.log_bytes(path, model_bytes)
        result = replace(result, path=path, onnxruntime=onnxruntime_version())
    for key, value in result.tags().items():
        registry.set_model_version_tag(name, version, key, value)
    return result


def _as_matrix(data: Any, names: list[str]) -> np.ndarray:
    if hasattr(data, "columns"):
        return data[names].to_numpy(dtype=np.float64)
    return np.asarray(data, dtype=np.float64)


def _compile(
    loaded: Any, spec: Any, holdout: Any, rtol: float, atol: float
) -> tuple[CompileCheck, bytes | None]:
    native = loaded.native
    if not spec.numeric:
        return CompileCheck(False, "the signature has non-numeric or no named columns"), None
    if not supported(native):
        return CompileCheck(False, f"{type(native).__name__} has no trusted converter"), None
    example = loaded.input_example()
    if example is None:
        return CompileCheck(False, "the version has no input example to check against"), None
    matrix = _as_matrix(example, spec.names)
    rows = [matrix, held_out_rows(matrix)]
    if holdout is not None:
        rows.append(_as_matrix(holdout, spec.names))
    checked = np.concatenate(rows, axis=0)
    try:
        model_bytes = convert(native, len(spec.names)).SerializeToString()
        compiled = OnnxPredictor(model_bytes)
    except MissingExtra:
        raise
    except Exception as exc:  # a converter's refusal is a decision, not a failure
        reason = f"conversion failed: {type(exc).__name__}: {exc}"[:500]
        return CompileCheck(False, reason), None
    import pandas as pd

    def original(m: np.ndarray) -> Any:
        return loaded.predict(pd.DataFrame(m, columns=spec.names))

    result = check_against(original, compiled, checked, rtol=rtol, atol=atol)
    return result, model_bytes if result.enabled else None


def onnxruntime_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("onnxruntime")
    except metadata.PackageNotFoundError:
        return ""


def load_compiled(artifacts: Any, tags: dict[str, str]) -> OnnxPredictor | None:
    """The compiled predictor a version's tags name, or None (native path)."""
    if artifacts is None or tags.get(TAG) != "onnx" or not tags.get(TAG_PATH):
        return None
    return OnnxPredictor(artifacts.read_bytes(tags[TAG_PATH]))


def checked_here(tags: dict[str, str]) -> bool:
    """Whether the recorded check ran on the onnxruntime installed here: then serving can
    trust it without loading the original model (fast start-up)."""
    try:
        detail = json.loads(tags.get(TAG_DETAIL) or "{}")
    except ValueError:
        return False
    return bool(detail.get("onnxruntime")) and detail["onnxruntime"] == onnxruntime_version()
