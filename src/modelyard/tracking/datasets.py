"""Identify the data a run read: a name, a content digest and a schema summary.

The digest depends only on content (values, column names and dtypes), not on the object
or file it came from, so the same data logged twice is recognised as the same version.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from modelyard.errors import InvalidParameter
from modelyard.tracking.entities import DatasetInput

_CHUNK = 1 << 20


def _file_digest(path: Path, h: Any) -> None:
    with path.open("rb") as fh:
        while block := fh.read(_CHUNK):
            h.update(block)


def path_digest(path: Path) -> str:
    """sha256 over a file's bytes, or over a folder's relative paths and file bytes."""
    h = hashlib.sha256()
    if path.is_dir():
        for child in sorted(p for p in path.rglob("*") if p.is_file()):
            h.update(child.relative_to(path).as_posix().encode() + b"\0")
            _file_digest(child, h)
    elif path.is_file():
        _file_digest(path, h)
    else:
        raise InvalidParameter(f"dataset path {str(path)!r} does not exist", field="dataset")
    return h.hexdigest()


def frame_digest(frame: Any) -> str:
    import pandas as pd

    h = hashlib.sha256()
    h.update(json.dumps([[str(c), str(t)] for c, t in frame.dtypes.items()]).encode())
    h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return h.hexdigest()


def describe(dataset: Any, name: str | None = None, context: str = "training") -> DatasetInput:
    """Turn a DataFrame, a path or a ``DatasetInput`` into a ``DatasetInput``."""
    if isinstance(dataset, DatasetInput):
        return dataset
    if isinstance(dataset, (str, Path)):
        path = Path(dataset)
        return DatasetInput(
            name=name or path.stem,
            digest=path_digest(path),
            context=context,
            source_type="local",
            source=str(path.resolve()),
        )
    if hasattr(dataset, "dtypes") and hasattr(dataset, "columns"):
        schema = json.dumps({str(c): str(t) for c, t in dataset.dtypes.items()})
        profile = json.dumps({"num_rows": len(dataset), "num_columns": len(dataset.columns)})
        return DatasetInput(
            name=name or "dataframe",
            digest=frame_digest(dataset),
            context=context,
            source_type="dataframe",
            source="",
            schema=schema,
            profile=profile,
        )
    raise InvalidParameter(
        f"cannot log {type(dataset).__name__} as a dataset input; pass a pandas DataFrame, "
        "a file or folder path, or a DatasetInput",
        field="dataset",
    )
