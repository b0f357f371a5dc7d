"""Team conventions: required run tags and an experiment naming pattern.

Configured in settings (``MODELYARD_REQUIRED_RUN_TAGS=objective,team``,
``MODELYARD_EXPERIMENT_NAME_PATTERN``, ``MODELYARD_CONVENTION_MODE=warn|refuse``) so that a
team writes the rule once and every run, local or through the server, obeys it.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping

from modelyard.config import Settings
from modelyard.errors import ConventionViolation, ConventionWarning


def _breach(settings: Settings, message: str, field: str) -> None:
    if settings.convention_mode == "refuse":
        raise ConventionViolation(message, field=field)
    warnings.warn(message, ConventionWarning, stacklevel=4)


def check_run_tags(settings: Settings, tags: Mapping[str, str]) -> None:
    missing = [k for k in settings.required_run_tags if not str(tags.get(k, "")).strip()]
    if missing:
        _breach(
            settings,
            "this team requires every run to carry the tag(s) "
            + ", ".join(repr(k) for k in missing)
            + "; pass them as start_run(tags={...})",
            field="tags." + missing[0],
        )


def check_experiment_name(settings: Settings, name: str) -> None:
    pattern = settings.experiment_name_pattern
    if pattern and not re.fullmatch(pattern, name):
        _breach(
            settings,
            f"experiment name {name!r} does not match this team's pattern {pattern!r}",
            field="name",
        )
