"""Model cards: what a version is for, what it was trained on, how it was validated.

A card is created with every version, pre-filled from the facts the registry knows:
training-data provenance (each dataset the run read, with its content digest), the run's
metrics as validation results, the flavor and signature, and the creator as owner. People
then fill in the rest (intended use, limitations, known biases, methodology) with
``RegistryClient.update_card`` — each edit is an audit event with old and new values.
It renders to Markdown and to self-contained HTML.

>>> card = ModelCard("churn", 3, intended_use="Rank accounts for retention calls")
>>> card.to_markdown().splitlines()[0]
'# Model card: churn version 3'
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from modelyard.errors import InvalidParameter
from modelyard.tracking.entities import Run

TEXT_FIELDS = (
    "intended_use",
    "limitations",
    "known_biases",
    "validation_methodology",
)
#: What ``update_card`` may change; the rest are facts recorded at registration.
EDITABLE_FIELDS = (*TEXT_FIELDS, "owners", "validation_results", "training_data")
MAX_TEXT_LENGTH = 20_000


@dataclass(frozen=True, slots=True)
class DatasetProvenance:
    """One dataset version a model was trained or evaluated on."""

    name: str
    digest: str
    context: str = "training"
    source: str = ""
    source_type: str = ""


@dataclass(frozen=True, slots=True)
class ModelCard:
    model_name: str
    version: int
    intended_use: str = ""
    limitations: str = ""
    known_biases: str = ""
    validation_methodology: str = ""
    validation_results: dict[str, Any] = field(default_factory=dict)
    training_data: tuple[DatasetProvenance, ...] = ()
    owners: tuple[str, ...] = ()
    flavor: str | None = None
    signature: dict[str, Any] | None = None
    source_run_id: str | None = None
    created_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["training_data"] = [asdict(d) for d in self.training_data]
        data["owners"] = list(self.owners)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelCard:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["training_data"] = tuple(
            DatasetProvenance(**d) for d in values.get("training_data") or ()
        )
        values["owners"] = tuple(values.get("owners") or ())
        return cls(**values)

    # -- rendering ------------------------------------------------------------------------

    def _sections(self) -> list[tuple[str, Any]]:
        return [
            ("Intended use", self.intended_use),
            ("Limitations", self.limitations),
            ("Training data", self.training_data),
            ("Known biases", self.known_biases),
            ("Validation methodology", self.validation_methodology),
            ("Validation results", self.validation_results),
            ("Owners", self.owners),
        ]

    def _facts(self) -> list[tuple[str, str]]:
        columns = ""
        if self.signature:
            names = [s.get("name") or s.get("type", "?") for s in self.signature.get("inputs", [])]
            columns = ", ".join(str(n) for n in names)
        return [
            ("Flavor", self.flavor or "unknown"),
            ("Source run", self.source_run_id or "none"),
            ("Registered by", self.created_by or "unknown"),
            ("Inputs", columns or "not recorded"),
        ]

    def to_markdown(self) -> str:
        lines = [f"# Model card: {self.model_name} version {self.version}", ""]
        lines += [f"- **{label}:** {value}" for label, value in self._facts()]
        for title, value in self._sections():
            lines += ["", f"## {title}", ""]
            if title == "Training data":
                lines += _markdown_datasets(self.training_data)
            elif isinstance(value, dict):
                lines += [f"- {k}: {_number(v)}" for k, v in value.items()] or ["_Not recorded._"]
            elif isinstance(value, tuple):
                lines += [f"- {v}" for v in value] or ["_Not recorded._"]
            else:
                lines.append(value.strip() or "_Not written yet._")
        return "\n".join(lines) + "\n"

    def to_html(self) -> str:
        """A standalone page; every value is escaped (cards hold user-written text)."""
        e = html.escape
        title = f"Model card: {self.model_name} version {self.version}"
        parts = [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{e(title)}</title>",
            "<style>body{font-family:system-ui,sans-serif;max-width:52rem;margin:2rem auto;"
            "line-height:1.5}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
            "padding:.25rem .5rem;text-align:left}.empty{color:#888}</style>",
            f"</head><body><h1>{e(title)}</h1><ul>",
        ]
        parts += [f"<li><strong>{e(k)}:</strong> {e(v)}</li>" for k, v in self._facts()]
        parts.append("</ul>")
        for heading, value in self._sections():
            parts.append(f"<h2>{e(heading)}</h2>")
            if heading == "Training data":
                parts.append(_html_datasets(self.training_data))
            elif isinstance(value, dict):
                rows = "".join(
                    f"<tr><td>{e(str(k))}</td><td>{e(_number(v))}</td></tr>"
                    for k, v in value.items()
                )
                parts.append(f"<table>{rows}</table>" if rows else _empty("Not recorded."))
            elif isinstance(value, tuple):
                items = "".join(f"<li>{e(str(v))}</li>" for v in value)
                parts.append(f"<ul>{items}</ul>" if items else _empty("Not recorded."))
            else:
                text = value.strip()
                parts.append(
                    "".join(f"<p>{e(p)}</p>" for p in text.split("\n\n"))
                    if text
                    else _empty("Not written yet.")
                )
        parts.append("</body></html>")
        return "\n".join(parts) + "\n"


def _empty(text: str) -> str:
    return f'<p class="empty">{html.escape(text)}</p>'


def _number(value: Any) -> str:
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:.6g}"
    return str(value)


def _markdown_datasets(datasets: tuple[DatasetProvenance, ...]) -> list[str]:
    if not datasets:
        return ["_No dataset inputs were logged by the source run._"]
    lines = ["| name | context | digest | source |", "|---|---|---|---|"]
    for d in datasets:
        lines.append(f"| {d.name} | {d.context} | `{d.digest}` | {d.source or '—'} |")
    return lines


def _html_datasets(datasets: tuple[DatasetProvenance, ...]) -> str:
    if not datasets:
        return _empty("No dataset inputs were logged by the source run.")
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(d.name)}</td><td>{e(d.context)}</td><td><code>{e(d.digest)}</code></td>"
        f"<td>{e(d.source or '—')}</td></tr>"
        for d in datasets
    )
    return (
        f"<table><tr><th>name</th><th>context</th><th>digest</th><th>source</th></tr>{rows}</table>"
    )


def card_for_version(
    name: str,
    version: int,
    *,
    run: Run | None,
    flavor: str | None,
    signature: dict[str, Any] | None,
    created_by: str,
) -> ModelCard:
    """The initial card of a new version, with what the source run recorded."""
    datasets: tuple[DatasetProvenance, ...] = ()
    results: dict[str, Any] = {}
    if run is not None:
        datasets = tuple(
            DatasetProvenance(d.name, d.digest, d.context, d.source, d.source_type)
            for d in run.inputs
        )
        results = {k: v for k, v in sorted(run.data.metrics.items()) if math.isfinite(v)}
    return ModelCard(
        name,
        version,
        validation_results=results,
        training_data=datasets,
        owners=(created_by,),
        flavor=flavor,
        signature=signature,
        source_run_id=run.info.run_id if run else None,
        created_by=created_by,
    )


def check_changes(changes: Mapping[str, Any]) -> dict[str, Any]:
    """Validate an edit: known fields only, with the right shapes. Returns JSON-ready values."""
    if not changes:
        raise InvalidParameter(
            f"nothing to change; give one of {', '.join(EDITABLE_FIELDS)}", field="card"
        )
    clean: dict[str, Any] = {}
    for key, value in changes.items():
        if key not in EDITABLE_FIELDS:
            raise InvalidParameter(
                f"card field {key!r} cannot be edited; editable fields: "
                f"{', '.join(EDITABLE_FIELDS)}",
                field=key,
            )
        if key in TEXT_FIELDS:
            if not isinstance(value, str) or len(value) > MAX_TEXT_LENGTH:
                raise InvalidParameter(
                    f"card field {key!r} must be text of at most {MAX_TEXT_LENGTH} characters",
                    field=key,
                )
            clean[key] = value
        elif key == "owners":
            if isinstance(value, str) or not all(isinstance(v, str) and v for v in value):
                raise InvalidParameter("owners must be a list of user names", field=key)
            clean[key] = list(value)
        elif key == "validation_results":
            if not isinstance(value, Mapping):
                raise InvalidParameter(
                    "validation_results must map metric names to values", field=key
                )
            clean[key] = dict(value)
        else:
            try:
                clean[key] = [asdict(DatasetProvenance(**dict(d))) for d in value]
            except TypeError as exc:
                raise InvalidParameter(
                    f"training_data must be a list of {{name, digest, context, source}}: {exc}",
                    field=key,
                ) from None
    return clean
