"""The data contract: what a table must look like, declared in YAML or in Python.

A contract file::

    contract: sales                 # a name, used in reports
    description: Daily sales per store and product.
    rows: {min: 1000}               # row-count bounds (min and/or max)
    freshness: {column: day, max_age: 2d}   # the newest row is at most 2 days old
    strict: false                   # true: columns not declared here are an error
    reference: sales@3              # default reference version for distribution checks
    columns:
      store_id: {type: int, nullable: false, min: 1}
      region:   {type: string, allowed: [north, south, east, west]}
      sku:      {type: string, pattern: "SKU-[0-9]{6}", unique: true}
      price:    {type: float, min: 0, max: 10000, max_null_fraction: 0.01,
                 distribution: {max_psi: 0.2}}
      day:      {type: datetime}
    unique: [[store_id, sku, day]]  # compound keys
    rules:                          # cross-column rules (see expressions.py)
      - discount <= price
      - {name: promo_has_discount, expr: "promo == 0 or discount > 0", severity: warning}

Column rules: ``type`` (int, float, number, string, bool, datetime, date, category),
``nullable`` (default true), ``max_null_fraction``, ``min``/``max`` (numbers, or ISO
dates for datetime columns), ``allowed`` (a list), ``pattern`` (a regular expression the
whole value must match), ``unique``, ``min_length``/``max_length`` (strings),
``distribution`` (``{reference: NAME@VERSION, max_psi: 0.2}``), ``severity`` (``error``, the
default, or ``warning``: reported but not failing), ``description``.

Every key is checked when the contract is loaded: an unknown rule or a value of the wrong
type is an error naming its path (``columns.price.maxx``) and, for a typo, the rule meant.
Nothing here imports pandas: loading a contract is cheap.

>>> contract = Contract.from_yaml("columns: {price: {type: float, min: 0}}")
>>> try:
...     Contract.from_yaml("columns: {price: {type: float, maxx: 0}}")
... except ContractError as exc:
...     print(exc)
columns.price.maxx: unknown rule 'maxx'; did you mean 'max'?
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from pydantic import ValidationInfo, field_validator

from modelyard.data.contracts import expressions
from modelyard.data.contracts.result import ContractError, ValidationResult
from modelyard.durations import parse_duration
from modelyard.errors import InvalidParameter
from modelyard.specs import Spec, parse_spec, unknown_key

TYPES = ("int", "float", "number", "string", "bool", "datetime", "date", "category")
_TYPE_ALIASES = {
    "integer": "int",
    "int64": "int",
    "float64": "float",
    "double": "float",
    "numeric": "number",
    "str": "string",
    "text": "string",
    "boolean": "bool",
    "timestamp": "datetime",
    "categorical": "category",
}
SEVERITIES = ("error", "warning")


@dataclass(frozen=True, slots=True)
class Distribution:
    """The column's distribution must stay close to a reference version's: PSI between
    the reference profile's bins (histogram, or top categories) and the data's."""

    reference: str | None = None
    max_psi: float = 0.2


@dataclass(frozen=True, slots=True)
class Column:
    type: str | None = None
    nullable: bool = True
    max_null_fraction: float | None = None
    min: Any = None
    max: Any = None
    allowed: tuple[Any, ...] | None = None
    pattern: str | None = None
    unique: bool = False
    min_length: int | None = None
    max_length: int | None = None
    distribution: Distribution | None = None
    severity: str = "error"
    description: str | None = None


@dataclass(frozen=True, slots=True)
class RowCount:
    min: int | None = None
    max: int | None = None


@dataclass(frozen=True, slots=True)
class Freshness:
    """The newest value of ``column`` is at most ``max_age_s`` seconds old."""

    column: str
    max_age_s: float
    text: str = ""


@dataclass(frozen=True, slots=True)
class Rule:
    expr: str
    name: str | None = None
    severity: str = "error"

    @property
    def label(self) -> str:
        return self.name or self.expr


@dataclass(frozen=True)
class Contract:
    """A data contract. Build it in Python or load it with ``from_yaml``/``from_dict``."""

    name: str = "contract"
    columns: Mapping[str, Column] = field(default_factory=dict)
    rows: RowCount | None = None
    freshness: Freshness | None = None
    unique: tuple[tuple[str, ...], ...] = ()
    rules: tuple[Rule, ...] = ()
    strict: bool = False
    reference: str | None = None
    description: str | None = None

    def __post_init__(self) -> None:
        # Objects built in Python get the same checks as files.
        self.to_dict()
        for rule in self.rules:
            expressions.parse(rule.expr, f"rules.{rule.label}")

    # -- loading -----------------------------------------------------------------------

    @classmethod
    def from_yaml(cls, source: str | Path) -> Contract:
        """Load a contract from a YAML file path, or from YAML text."""
        import yaml

        text, where = _read(source)
        try:
            body = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ContractError(f"contract {where} is not valid YAML: {exc}") from None
        return cls.from_dict(body, where=where)

    @classmethod
    def from_dict(cls, body: object, *, where: str = "contract") -> Contract:
        """Build a contract from the parsed YAML shape; errors name the key path."""
        if not isinstance(body, Mapping):
            raise ContractError(
                f"{where} must be a mapping of contract keys, got {type(body).__name__}"
            )
        spec = parse_spec(ContractSpec, body, label=None, noun="rule", error=ContractError)
        return cls(
            name=spec.contract or spec.name or "contract",
            columns=spec.columns,
            rows=spec.rows,
            freshness=spec.freshness,
            unique=spec.unique,
            rules=spec.rules,
            strict=spec.strict,
            reference=spec.reference,
            description=spec.description,
        )

    # -- writing -----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The YAML shape (only what is set), validating every value on the way."""
        out: dict[str, Any] = {"contract": _string(self.name, "contract")}
        if self.description:
            out["description"] = self.description
        if self.rows is not None:
            out["rows"] = {
                k: v for k, v in (("min", self.rows.min), ("max", self.rows.max)) if v is not None
            }
        if self.freshness is not None:
            out["freshness"] = {
                "column": self.freshness.column,
                "max_age": self.freshness.text or f"{self.freshness.max_age_s:g}s",
            }
        if self.strict:
            out["strict"] = True
        if self.reference:
            out["reference"] = self.reference
        columns: dict[str, Any] = {}
        for name, col in self.columns.items():
            if not isinstance(col, Column):
                raise ContractError(
                    f"columns.{name} must be a Column, got {type(col).__name__}",
                    field=f"columns.{name}",
                )
            columns[name] = _column_dict(name, col)
        out["columns"] = columns
        if self.unique:
            out["unique"] = [list(key) for key in self.unique]
        if self.rules:
            out["rules"] = [
                r.expr
                if (r.name is None and r.severity == "error")
                else {
                    k: v
                    for k, v in (("name", r.name), ("expr", r.expr), ("severity", r.severity))
                    if v
                }
                for r in self.rules
            ]
        return out

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    # -- using -------------------------------------------------------------------------

    def validate(
        self,
        data: Any,
        *,
        reference: Any = None,
        sample: int = 5,
        now: Any = None,
    ) -> ValidationResult:
        """Check ``data`` (pandas, polars, Arrow, or a CSV/Parquet path) against the contract.

        ``reference`` serves distribution checks: a profile dict, a table, or a callable
        that maps a reference name such as ``sales@3`` to a profile (``DataClient.check``
        passes one). ``now`` fixes the clock for freshness. Returns a ``ValidationResult``.
        """
        from modelyard.data.contracts.checks import run_contract

        return run_contract(self, data, reference=reference, sample=sample, now=now)

    def to_pandera(self) -> Any:
        """The equivalent ``pandera`` schema, for teams that already run pandera."""
        from modelyard.data.contracts.pandera_export import to_pandera

        return to_pandera(self)


class ContractSpec(Spec):
    """A contract file's keys. Each section is read by its parser below, which names the
    path of a bad key or value (``columns.price.max``, ``rules[2].severity``)."""

    contract: str | None = None
    name: str | None = None
    columns: dict[str, Column] = {}
    rows: RowCount | None = None
    freshness: Freshness | None = None
    unique: tuple[tuple[str, ...], ...] = ()
    rules: tuple[Rule, ...] = ()
    strict: bool = False
    reference: str | None = None
    description: str | None = None

    @field_validator("contract", "name", mode="before")
    @classmethod
    def _name(cls, value: object) -> str:
        return _string(value, "contract")

    @field_validator("columns", mode="before")
    @classmethod
    def _columns_section(cls, value: object) -> dict[str, Column]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise ContractError(
                "columns must be a mapping of column name to rules", field="columns"
            )
        return {str(col): _column(col, rules) for col, rules in value.items()}

    @field_validator("rows", mode="before")
    @classmethod
    def _rows_section(cls, value: object) -> RowCount | None:
        return _rows(value)

    @field_validator("freshness", mode="before")
    @classmethod
    def _freshness_section(cls, value: object) -> Freshness | None:
        return _freshness(value)

    @field_validator("unique", mode="before")
    @classmethod
    def _unique_section(cls, value: object) -> tuple[tuple[str, ...], ...]:
        return _unique(value)

    @field_validator("rules", mode="before")
    @classmethod
    def _rules_section(cls, value: object) -> tuple[Rule, ...]:
        return _rules(value)

    @field_validator("strict", mode="before")
    @classmethod
    def _strict(cls, value: object) -> bool:
        return _bool(value, "strict")

    @field_validator("reference", "description", mode="before")
    @classmethod
    def _text(cls, value: object, info: ValidationInfo) -> str | None:
        return _optional_string(value, str(info.field_name))


_COLUMN_KEYS = tuple(f.name for f in fields(Column))


def _read(source: str | Path) -> tuple[str, str]:
    if isinstance(source, Path) or (
        isinstance(source, str) and "\n" not in source and source.endswith((".yaml", ".yml"))
    ):
        path = Path(source)
        if not path.is_file():
            raise ContractError(f"contract file {str(path)!r} does not exist", field="contract")
        return path.read_text(encoding="utf-8"), repr(str(path))
    if not isinstance(source, str):
        raise ContractError(f"a contract is YAML text or a path, got {type(source).__name__}")
    return source, "text"


def _check_keys(body: Mapping[str, Any], allowed: tuple[str, ...], prefix: str) -> None:
    for key in body:
        if key not in allowed:
            path = f"{prefix}{key}"
            raise unknown_key(
                key, allowed, label=path, field=path, noun="rule", error=ContractError
            )


def _column(name: object, rules: object) -> Column:
    where = f"columns.{name}"
    if rules is None:
        return Column()
    if isinstance(rules, str):  # shorthand: `price: float`
        rules = {"type": rules}
    if not isinstance(rules, Mapping):
        raise ContractError(
            f"{where} must be a mapping of rules (or a type name), got {rules!r}", field=where
        )
    _check_keys(rules, _COLUMN_KEYS, f"{where}.")
    kind = _type(rules.get("type"), f"{where}.type")
    col = Column(
        type=kind,
        nullable=_bool(rules.get("nullable", True), f"{where}.nullable"),
        max_null_fraction=_fraction(rules.get("max_null_fraction"), f"{where}.max_null_fraction"),
        min=_bound(rules.get("min"), kind, f"{where}.min"),
        max=_bound(rules.get("max"), kind, f"{where}.max"),
        allowed=_allowed(rules.get("allowed"), f"{where}.allowed"),
        pattern=_pattern(rules.get("pattern"), f"{where}.pattern"),
        unique=_bool(rules.get("unique", False), f"{where}.unique"),
        min_length=_count(rules.get("min_length"), f"{where}.min_length"),
        max_length=_count(rules.get("max_length"), f"{where}.max_length"),
        distribution=_distribution(rules.get("distribution"), f"{where}.distribution"),
        severity=_severity(rules.get("severity", "error"), f"{where}.severity"),
        description=_optional_string(rules.get("description"), f"{where}.description"),
    )
    _column_dict(str(name), col)
    return col


def _column_dict(name: str, col: Column) -> dict[str, Any]:
    """A column's YAML shape; also re-checks a Column built in Python."""
    where = f"columns.{name}"
    kind = _type(col.type, f"{where}.type")
    out: dict[str, Any] = {}
    if kind:
        out["type"] = kind
    if not _bool(col.nullable, f"{where}.nullable"):
        out["nullable"] = False
    if col.max_null_fraction is not None:
        out["max_null_fraction"] = _fraction(col.max_null_fraction, f"{where}.max_null_fraction")
    for key in ("min", "max"):
        value = getattr(col, key)
        if value is not None:
            _bound(value, kind, f"{where}.{key}")
            out[key] = value
    if col.min is not None and col.max is not None and _comparable(col.min) > _comparable(col.max):
        raise ContractError(
            f"{where}: min {col.min!r} is greater than max {col.max!r}", field=f"{where}.min"
        )
    if col.allowed is not None:
        out["allowed"] = list(_allowed(col.allowed, f"{where}.allowed") or ())
    if col.pattern is not None:
        out["pattern"] = _pattern(col.pattern, f"{where}.pattern")
    if _bool(col.unique, f"{where}.unique"):
        out["unique"] = True
    for key in ("min_length", "max_length"):
        value = getattr(col, key)
        if value is not None:
            out[key] = _count(value, f"{where}.{key}")
    if col.distribution is not None:
        dist = col.distribution
        if not isinstance(dist, Distribution):
            raise ContractError(f"{where}.distribution must be a Distribution", field=where)
        out["distribution"] = {"max_psi": _positive(dist.max_psi, f"{where}.distribution.max_psi")}
        if dist.reference:
            out["distribution"]["reference"] = dist.reference
    if _severity(col.severity, f"{where}.severity") != "error":
        out["severity"] = col.severity
    if col.description:
        out["description"] = col.description
    return out


def _type(value: object, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ContractError(f"{where} must be a type name, got {value!r}", field=where)
    kind = _TYPE_ALIASES.get(value.lower(), value.lower())
    if kind not in TYPES:
        hint = difflib.get_close_matches(kind, TYPES, n=1)
        also = f"; did you mean {hint[0]!r}?" if hint else ""
        raise ContractError(
            f"{where}: unknown type {value!r}{also} (use one of {', '.join(TYPES)})", field=where
        )
    return kind


def _bound(value: object, kind: str | None, where: str) -> Any:
    if value is None:
        return None
    if kind in ("datetime", "date"):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            raise ContractError(
                f"{where} of a {kind} column must be an ISO date such as 2024-01-31, got {value!r}",
                field=where,
            )
        import datetime as dt

        if isinstance(value, (dt.date, dt.datetime)):
            return value
        try:
            return dt.datetime.fromisoformat(str(value))
        except ValueError:
            raise ContractError(
                f"{where} must be an ISO date or time, got {value!r}", field=where
            ) from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ContractError(f"{where} must be a number, got {value!r}", field=where)
    return value


def _comparable(value: Any) -> Any:
    import datetime as dt

    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return dt.datetime(value.year, value.month, value.day)
    return value


def _allowed(value: object, where: str) -> tuple[Any, ...] | None:
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple, set, frozenset)):
        raise ContractError(f"{where} must be a list of values, got {value!r}", field=where)
    if not value:
        raise ContractError(f"{where} is empty: no value could pass", field=where)
    return tuple(value)


def _pattern(value: object, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ContractError(f"{where} must be a regular expression string", field=where)
    try:
        re.compile(value)
    except re.error as exc:
        raise ContractError(
            f"{where} {value!r} is not a valid regular expression: {exc}", field=where
        ) from None
    return value


def _distribution(value: object, where: str) -> Distribution | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ContractError(
            f"{where} must be a mapping such as {{reference: sales@3, max_psi: 0.2}}", field=where
        )
    _check_keys(value, ("reference", "max_psi"), f"{where}.")
    return Distribution(
        reference=_optional_string(value.get("reference"), f"{where}.reference"),
        max_psi=_positive(value.get("max_psi", 0.2), f"{where}.max_psi"),
    )


def _rows(value: object) -> RowCount | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ContractError(
            "rows must be a mapping such as {min: 1000, max: 5000000}", field="rows"
        )
    _check_keys(value, ("min", "max"), "rows.")
    low, high = _count(value.get("min"), "rows.min"), _count(value.get("max"), "rows.max")
    if low is not None and high is not None and low > high:
        raise ContractError(f"rows.min {low} is greater than rows.max {high}", field="rows.min")
    return RowCount(low, high)


def _freshness(value: object) -> Freshness | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ContractError(
            "freshness must be a mapping such as {column: day, max_age: 2d}", field="freshness"
        )
    _check_keys(value, ("column", "max_age"), "freshness.")
    column = _string(value.get("column"), "freshness.column")
    text = value.get("max_age")
    try:
        max_age = parse_duration(text, "freshness.max_age")
    except InvalidParameter as exc:
        raise ContractError(exc.message, field=exc.field) from None
    return Freshness(column, max_age.total_seconds(), str(text))


def _unique(value: object) -> tuple[tuple[str, ...], ...]:
    if value is None:
        return ()
    if not isinstance(value, (list, tuple)):
        raise ContractError(
            "unique must be a list of column lists, e.g. [[store, day]]", field="unique"
        )
    keys = []
    for i, key in enumerate(value):
        if isinstance(key, str):
            key = [key]
        if (
            not isinstance(key, (list, tuple))
            or not key
            or not all(isinstance(c, str) for c in key)
        ):
            raise ContractError(
                f"unique[{i}] must be a list of column names, got {key!r}", field="unique"
            )
        keys.append(tuple(key))
    return tuple(keys)


def _rules(value: object) -> tuple[Rule, ...]:
    if value is None:
        return ()
    if not isinstance(value, (list, tuple)):
        raise ContractError("rules must be a list of expressions", field="rules")
    out = []
    for i, item in enumerate(value):
        where = f"rules[{i}]"
        if isinstance(item, str):
            rule = Rule(item)
        elif isinstance(item, Mapping):
            _check_keys(item, ("name", "expr", "severity"), f"{where}.")
            rule = Rule(
                _string(item.get("expr"), f"{where}.expr"),
                _optional_string(item.get("name"), f"{where}.name"),
                _severity(item.get("severity", "error"), f"{where}.severity"),
            )
        else:
            raise ContractError(
                f"{where} must be an expression or a mapping, got {item!r}", field=where
            )
        expressions.parse(rule.expr, where)
        out.append(rule)
    return tuple(out)


def _string(value: object, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ContractError(f"{where} must be a non-empty string, got {value!r}", field=where)
    return value


def _optional_string(value: object, where: str) -> str | None:
    return None if value is None else _string(value, where)


def _bool(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise ContractError(f"{where} must be true or false, got {value!r}", field=where)
    return value


def _count(value: object, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ContractError(f"{where} must be a non-negative integer, got {value!r}", field=where)
    return value


def _fraction(value: object, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ContractError(f"{where} must be a number between 0 and 1, got {value!r}", field=where)
    return float(value)


def _positive(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ContractError(f"{where} must be a positive number, got {value!r}", field=where)
    return float(value)


def _severity(value: object, where: str) -> str:
    if value not in SEVERITIES:
        raise ContractError(f"{where} must be 'error' or 'warning', got {value!r}", field=where)
    return str(value)
