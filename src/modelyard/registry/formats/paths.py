"""Files a model's manifest names, found inside the model's folder only.

The manifest (``MLmodel.json``, ``MLmodel``) is written by whoever uploaded the model, so
a name such as ``../../../etc/passwd`` or an absolute path must not make a loader read
outside the folder: every flavor resolves the names it reads through ``inside``.
"""

from __future__ import annotations

from pathlib import Path

from modelyard.errors import InvalidParameter


def inside(folder: Path, name: object, field: str) -> Path:
    """``folder / name`` resolved, refused unless it stays inside ``folder``."""
    path = (folder / str(name)).resolve()
    if not path.is_relative_to(folder.resolve()):
        raise InvalidParameter(
            f"the manifest's {field} {name!r} is outside the model folder", field=field
        )
    return path
