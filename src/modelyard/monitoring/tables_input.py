"""What ``drift`` and ``modelyard drift`` accept as reference and current, opened.

* a table in memory (pandas or polars DataFrame, Arrow table or batch, dict of arrays):
  used as it is;
* a CSV or Parquet file, or a folder of them: read with ``data.sources`` (one reader of
  files for all of modelyard);
* a stored reference profile (``ReferenceProfile.to_bytes``, conventionally ``*.profile``):
  recognised by its content, read as untrusted bytes (``profile_codec``);
* a dataset version (``sales``, ``sales@3``, ``sales@latest``): resolved and read through a
  ``DataClient``, as validation gates do.

A file that does not parse is an ``InvalidParameter`` naming the file and what the reader
said; a path that does not exist and is not a dataset reference is ``NotFound``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from modelyard.errors import InvalidParameter, NotFound
from modelyard.monitoring.profiles import ReferenceProfile

PROFILE_SUFFIX = ".profile"
_ZIP_MAGIC = b"PK\x03\x04"


def load_reference(
    ref: Any,
    *,
    data_client: Any = None,
    columns: Iterable[str] | None = None,
    sample_size: int | None = None,
) -> ReferenceProfile:
    """A ``ReferenceProfile`` for ``ref``: a profile as it is, a stored profile file read, a
    table / file / dataset version profiled (on ``columns``, default all)."""
    if isinstance(ref, ReferenceProfile):
        return ref
    if isinstance(ref, (bytes, bytearray)):
        return ReferenceProfile.from_bytes(bytes(ref))
    if _is_path(ref) and _is_profile_file(Path(ref)):
        return _read_profile(Path(ref))
    table, label = _table(ref, data_client, role="reference")
    extra = {} if sample_size is None else {"sample_size": sample_size}
    return ReferenceProfile.from_table(table, source=label, columns=columns, **extra)


def load_current(ref: Any, *, data_client: Any = None) -> Any:
    """The current data as a table ``CurrentSummary.update`` reads."""
    if isinstance(ref, (bytes, bytearray, ReferenceProfile)) or (
        _is_path(ref) and _is_profile_file(Path(ref))
    ):
        raise InvalidParameter(
            "the current data is a reference profile; compare against data (a table, CSV, "
            "Parquet or dataset version)",
            field="current",
        )
    return _table(ref, data_client, role="current")[0]


def _is_path(ref: Any) -> bool:
    import os

    return isinstance(ref, (str, os.PathLike))


def _is_profile_file(path: Path) -> bool:
    if not path.is_file():
        return False
    if path.name.lower().endswith(PROFILE_SUFFIX):
        return True
    from modelyard.data.sources import file_format

    if file_format(path) is not None:
        return False
    with path.open("rb") as handle:
        return handle.read(4) == _ZIP_MAGIC


def _read_profile(path: Path) -> ReferenceProfile:
    from modelyard.monitoring.profiles import MAX_STORED_BYTES

    size = path.stat().st_size
    if size > MAX_STORED_BYTES:
        raise InvalidParameter(
            f"{path} is {size:,} bytes, over the {MAX_STORED_BYTES:,}-byte limit of a stored "
            "reference profile",
            field="reference",
        )
    try:
        return ReferenceProfile.from_bytes(path.read_bytes())
    except InvalidParameter as exc:
        raise InvalidParameter(f"{path}: {exc.message}", field="reference") from None


def _table(ref: Any, data_client: Any, *, role: str) -> tuple[Any, str]:
    """(table, label) for a table in memory, a file path or a dataset version."""
    if not _is_path(ref):
        return ref, type(ref).__name__
    path = Path(ref)
    if path.exists():
        return _read_file(path, role), str(ref)
    text = str(ref)
    if data_client is None:
        if "@" in text or ("/" not in text and "." not in text):
            raise InvalidParameter(
                f"{role} {text!r} is not a file; to read it as a dataset version pass "
                "data_client= (the modelyard CLI does)",
                field=role,
            )
        raise NotFound(f"{role} file {text!r} does not exist", field=role)
    version = data_client.resolve(text)

    path = data_client.download(version)
    return _read_file(path, role), version.ref


def _read_file(path: Path, role: str) -> Any:
    from modelyard.data.sources import file_format, open_source

    if path.is_file() and file_format(path) is None:
        raise InvalidParameter(
            f"{role} {str(path)!r} is neither CSV, Parquet nor a stored reference profile "
            "(name CSV files *.csv, Parquet files *.parquet, profiles *.profile)",
            field=role,
        )
    try:
        return open_source(path).read_all()
    except (InvalidParameter, NotFound):
        raise
    except Exception as exc:  # pyarrow's readers raise their own error types per format
        raise InvalidParameter(
            f"{role} {str(path)!r} cannot be read: {type(exc).__name__}: {exc}", field=role
        ) from None
