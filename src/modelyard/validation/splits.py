"""Cross-validation splits: k-fold, stratified k-fold, and time-aware splits.

A time-aware split never trains on the future: every training row is strictly earlier
than every validation row of its fold, by more than ``gap`` (a property-based test checks
it on random timestamps, gaps and windows). Rows with the same timestamp always land on
the same side. ``window="expanding"`` trains on all the past; ``"sliding"`` on the last
``train_size`` of it.

>>> import pandas as pd
>>> days = pd.DataFrame({"day": pd.date_range("2024-01-01", periods=10, freq="D")})
>>> for fold in TimeSeriesSplit("day", n_splits=2, gap="1d").split(days, None):
...     print(fold.train.tolist(), fold.test.tolist())
[0, 1, 2] [4, 5, 6]
[0, 1, 2, 3, 4, 5] [7, 8, 9]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

from modelyard.durations import parse_duration
from modelyard.errors import InvalidParameter


@dataclass(frozen=True, slots=True)
class Fold:
    """One fold: row positions to train on and to validate on, and (for time splits) the
    periods they cover as ISO strings."""

    index: int
    train: Any  # NumPy int array of row positions
    test: Any
    train_period: tuple[str, str] | None = None
    test_period: tuple[str, str] | None = None


class Splitter(Protocol):
    def split(self, data: Any, y: Any) -> list[Fold]: ...


@dataclass(frozen=True, slots=True)
class KFold:
    """Shuffled k-fold: every row is validated exactly once."""

    n_splits: int = 5
    shuffle: bool = True
    seed: int = 0

    def split(self, data: Any, y: Any) -> list[Fold]:
        import numpy as np

        n = len(data)
        _check_splits(self.n_splits, n)
        order = np.random.default_rng(self.seed).permutation(n) if self.shuffle else np.arange(n)
        parts = np.array_split(order, self.n_splits)
        return [
            Fold(i, np.sort(np.concatenate(parts[:i] + parts[i + 1 :])), np.sort(part))
            for i, part in enumerate(parts)
        ]


@dataclass(frozen=True, slots=True)
class StratifiedKFold:
    """k-fold that keeps each class's share in every fold (``column`` defaults to the
    target)."""

    n_splits: int = 5
    seed: int = 0
    column: str | None = None

    def split(self, data: Any, y: Any) -> list[Fold]:
        import numpy as np
        import pandas as pd

        labels = data[self.column].to_numpy() if self.column else np.asarray(y)
        n = len(labels)
        _check_splits(self.n_splits, n)
        codes, _ = pd.factorize(labels, use_na_sentinel=False)
        rng = np.random.default_rng(self.seed)
        fold_of = np.empty(n, dtype=np.int64)
        offset = 0
        for code in range(codes.max() + 1 if n else 0):
            members = np.flatnonzero(codes == code)
            rng.shuffle(members)
            # Round-robin, continuing where the previous class stopped, keeps folds equal.
            fold_of[members] = (np.arange(len(members)) + offset) % self.n_splits
            offset += len(members)
        positions = np.arange(n)
        return [
            Fold(i, positions[fold_of != i], positions[fold_of == i]) for i in range(self.n_splits)
        ]


@dataclass(frozen=True, slots=True)
class TimeSeriesSplit:
    """Folds along a time column: the distinct times are cut into ``n_splits + 1`` blocks
    (``test_size`` overrides the validation block's length, as a duration); fold *k*
    validates on block *k+1* and trains on rows earlier than its start minus ``gap``."""

    column: str
    n_splits: int = 5
    window: Literal["expanding", "sliding"] = "expanding"
    gap: str | int | Any = 0
    train_size: str | Any = None
    test_size: str | Any = None

    def __post_init__(self) -> None:
        if self.window not in ("expanding", "sliding"):
            raise InvalidParameter(
                f"window must be 'expanding' or 'sliding', got {self.window!r}", field="window"
            )
        if self.window == "sliding" and self.train_size is None:
            raise InvalidParameter(
                "a sliding window needs train_size, a duration such as '90d'", field="train_size"
            )
        _check_splits(self.n_splits, None)
        for name in ("gap", "train_size", "test_size"):
            value = getattr(self, name)
            if value is not None:
                to_timedelta(value, name)

    def split(self, data: Any, y: Any) -> list[Fold]:
        import numpy as np

        times = time_values(data, self.column)
        distinct = np.unique(times)
        if len(distinct) < self.n_splits + 1:
            raise InvalidParameter(
                f"time column {self.column!r} has {len(distinct)} distinct times; "
                f"{self.n_splits} time-aware folds need at least {self.n_splits + 1}",
                field="n_splits",
            )
        gap = _ns(to_timedelta(self.gap or 0, "gap"))
        starts = self._test_starts(distinct)
        folds = []
        for i, (start, end) in enumerate(starts):
            test = np.flatnonzero((times >= start) & (times <= end))
            train_mask = times < start - gap
            if self.window == "sliding":
                train_mask &= times >= start - gap - _ns(
                    to_timedelta(self.train_size, "train_size")
                )
            train = np.flatnonzero(train_mask)
            if not len(train):
                raise InvalidParameter(
                    f"fold {i + 1} has no training rows: the gap {self.gap!r} or the window "
                    "leaves nothing before its validation period; use fewer splits or a "
                    "smaller gap",
                    field="gap",
                )
            folds.append(
                Fold(
                    i,
                    train,
                    test,
                    (_iso(times[train].min()), _iso(times[train].max())),
                    (_iso(start), _iso(end)),
                )
            )
        return folds

    def _test_starts(self, distinct: Any) -> list[tuple[Any, Any]]:

        if self.test_size is None:
            size = len(distinct) // (self.n_splits + 1)
            first = len(distinct) - size * self.n_splits
            return [
                (distinct[first + k * size], distinct[first + (k + 1) * size - 1])
                for k in range(self.n_splits)
            ]
        length = _ns(to_timedelta(self.test_size, "test_size"))
        last = int(distinct[-1])
        out = []
        for k in range(self.n_splits, 0, -1):  # blocks of `length` ending at the last time
            after, end = last - k * length, last - (k - 1) * length
            inside = distinct[(distinct > after) & (distinct <= end)]
            if len(inside):
                out.append((inside[0], inside[-1]))
        if not out:  # pragma: no cover - guarded by the distinct-count check
            raise InvalidParameter("test_size leaves no validation rows", field="test_size")
        return out


def time_values(data: Any, column: str) -> Any:
    """The time column as int64 nanoseconds; InvalidParameter when it is not a time."""
    import numpy as np
    import pandas as pd

    if column not in data.columns:
        raise InvalidParameter(
            f"time column {column!r} is not in the data "
            f"(columns: {', '.join(map(str, data.columns))})",
            field="time_column",
        )
    series = data[column]
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        if getattr(series.dtype, "tz", None) is not None:
            series = series.dt.tz_convert("UTC").dt.tz_localize(None)
        values = series.to_numpy(dtype="datetime64[ns]").view(np.int64)
    elif pd.api.types.infer_dtype(series, skipna=True) == "date":
        values = pd.to_datetime(series).to_numpy(dtype="datetime64[ns]").view(np.int64)
    else:
        raise InvalidParameter(
            f"time column {column!r} holds {series.dtype} values, not times; convert it with "
            f"pd.to_datetime(data[{column!r}]) first",
            field="time_column",
        )
    if series.isna().any():
        raise InvalidParameter(
            f"time column {column!r} has {int(series.isna().sum())} missing values; a row "
            "without a time cannot be placed in a time-aware fold",
            field="time_column",
        )
    return values


def to_timedelta(value: Any, name: str) -> Any:
    """A ``pd.Timedelta`` from any duration ``modelyard.durations`` reads (``"7d"``,
    ``"12h"``, ``"90min"``, ``"P1DT2H"``, a timedelta, seconds as a number, 0)."""
    import pandas as pd

    return pd.Timedelta(parse_duration(value, name))


def _ns(delta: Any) -> int:
    return int(delta.value)


def _iso(ns: Any) -> str:
    import numpy as np

    return str(np.datetime64(int(ns), "ns").astype("datetime64[s]"))


def _check_splits(n_splits: object, n: int | None) -> None:
    if isinstance(n_splits, bool) or not isinstance(n_splits, int) or n_splits < 2:
        raise InvalidParameter(f"n_splits must be an integer >= 2, got {n_splits!r}", field="cv")
    if n is not None and n < n_splits:
        raise InvalidParameter(
            f"{n_splits} folds need at least {n_splits} rows, got {n}", field="cv"
        )


def make_splitter(cv: Any, task: str) -> Splitter | None:
    """The splitter ``cv`` describes: None (evaluate a fitted model), an int k (stratified
    for classification), ``"kfold"``/``"stratified"``, a mapping such as
    ``{"kind": "time", "column": "day", "n_splits": 4, "gap": "7d"}``, a splitter, or a
    scikit-learn splitter object."""
    if cv is None:
        return None
    if isinstance(cv, bool):
        raise InvalidParameter(
            f"cv must be a number of folds or a splitter, got {cv!r}", field="cv"
        )
    if isinstance(cv, int):
        return StratifiedKFold(cv) if task == "classification" else KFold(cv)
    if isinstance(cv, str):
        kinds = {"kfold": KFold, "stratified": StratifiedKFold}
        if cv not in kinds:
            raise InvalidParameter(
                f"cv {cv!r} is unknown; use an int, 'kfold', 'stratified' or "
                "{'kind': 'time', 'column': ...}",
                field="cv",
            )
        return kinds[cv]()
    if isinstance(cv, dict):
        spec = dict(cv)
        kind = spec.pop("kind", None)
        try:
            if kind == "time":
                return TimeSeriesSplit(**spec)
            if kind in ("kfold", "stratified"):
                return (KFold if kind == "kfold" else StratifiedKFold)(**spec)
        except TypeError as exc:
            raise InvalidParameter(f"cv {cv!r} has an unknown option: {exc}", field="cv") from None
        raise InvalidParameter(
            f"cv kind {kind!r} is unknown; use 'time', 'kfold' or 'stratified'", field="cv"
        )
    if isinstance(cv, (KFold, StratifiedKFold, TimeSeriesSplit)):
        return cv
    if hasattr(cv, "split"):
        return _SklearnSplitter(cv)
    raise InvalidParameter(f"cv {cv!r} is not a splitter", field="cv")


@dataclass(frozen=True, slots=True)
class _SklearnSplitter:
    inner: Any

    def split(self, data: Any, y: Any) -> list[Fold]:
        import numpy as np

        return [
            Fold(i, np.asarray(train), np.asarray(test))
            for i, (train, test) in enumerate(self.inner.split(data, y))
        ]
