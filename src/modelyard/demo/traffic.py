"""Live traffic through the real data plane: ``modelyard serve`` started as a process, a
shop asking for each store's forecasts once per simulated day over HTTP (MLflow scoring,
``/invocations``), and the units actually sold sent back a simulated day later
(``POST /feedback``, by request id and row).

Time: the prediction log records real timestamps, so a simulated day lasts
``seconds_per_day`` real seconds; the monitor's windows are over those real minutes.
"""

from __future__ import annotations

import math
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from modelyard.demo.data import TARGET

if TYPE_CHECKING:
    import pandas as pd

    from modelyard.http_transport import HttpTransport

START_TIMEOUT_S = 120.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def modelyard_command(*args: str) -> list[str]:
    """This installation's ``modelyard`` with ``args``, run by this interpreter."""
    code = "import sys; from modelyard.cli.main import main; sys.argv[0] = 'modelyard'; main()"
    return [sys.executable, "-c", code, *args]


@contextmanager
def process(args: list[str], env: dict[str, str], log: Any, probe: str, port: int) -> Iterator[str]:
    """Start ``modelyard ARGS`` and yield its base URL once ``probe`` answers 200; the
    process is stopped (SIGTERM, then SIGKILL) when the block ends."""
    import os

    from modelyard.errors import StoreUnavailable
    from modelyard.http_transport import HttpTransport

    url = f"http://127.0.0.1:{port}"
    child = subprocess.Popen(
        modelyard_command(*args), env={**os.environ, **env}, stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        with HttpTransport(url, max_retries=0) as http:
            while True:
                if child.poll() is not None:
                    raise StoreUnavailable(
                        f"`modelyard {' '.join(args)}` exited ({child.returncode})"
                    )
                try:
                    http.request("GET", probe)
                    break
                except Exception:
                    if time.monotonic() > deadline:
                        raise StoreUnavailable(f"{url}{probe} did not answer in time") from None
                    time.sleep(0.3)
        yield url
    finally:
        child.terminate()
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


@dataclass
class Served:
    """What the shop saw: per simulated day and variant, the errors of what it was told."""

    requests: int = 0
    rows: int = 0
    feedback: int = 0
    errors: int = 0
    by_variant: dict[str, list[float]] = field(default_factory=dict)
    by_version: dict[int, list[float]] = field(default_factory=dict)
    daily: list[dict[str, Any]] = field(default_factory=list)

    def mae(self, version: int | None = None) -> float:
        import numpy as np

        values = (
            [e for v in self.by_version.values() for e in v]
            if version is None
            else self.by_version.get(version, [])
        )
        return float(np.mean(np.abs(values))) if values else math.nan


class Shop:
    """Sends each store's rows of a day to the data plane, and the truth a day later."""

    def __init__(self, http: HttpTransport, names: list[str], seconds_per_day: float) -> None:
        self.http = http
        self.names = names
        self.seconds_per_day = seconds_per_day
        self.served = Served()
        self._pending: list[tuple[str, pd.DataFrame, Any, str, int]] = []

    def day(self, rows: pd.DataFrame) -> None:
        """Forecast one day (one request per store), then send yesterday's outcomes."""
        began = time.monotonic()
        owed, self._pending = self._pending, []
        for _, store_rows in rows.groupby("store_id", sort=True):
            self._forecast(store_rows)
        self._send_feedback(owed)
        self.served.daily.append({"date": str(rows["date"].iloc[0].date()), "rows": len(rows)})
        rest = self.seconds_per_day - (time.monotonic() - began)
        if rest > 0:
            time.sleep(rest)

    def flush(self) -> None:
        """The outcomes still owed (the last day's)."""
        owed, self._pending = self._pending, []
        self._send_feedback(owed)

    def _forecast(self, rows: pd.DataFrame) -> None:
        from modelyard.errors import ModelyardError

        values = rows[self.names].astype(float).to_numpy()
        data = [[None if math.isnan(x) else x for x in row] for row in values.tolist()]
        body = {"dataframe_split": {"columns": self.names, "data": data}}
        try:
            response = self.http.request(
                "POST",
                "/invocations",
                body=_json(body),
                headers={"Content-Type": "application/json"},
            )
        except ModelyardError:
            self.served.errors += 1
            return
        answer = response.json()
        predictions = answer["predictions"] if isinstance(answer, dict) else answer
        rid = response.headers["x-request-id"]
        variant = response.headers.get("x-modelyard-variant", "")
        version = int(response.headers.get("x-modelyard-version", "0"))
        self.served.requests += 1
        self.served.rows += len(rows)
        self._pending.append((rid, rows, predictions, variant, version))

    def _send_feedback(self, owed: list[tuple[str, pd.DataFrame, Any, str, int]]) -> None:
        if not owed:
            return
        items = []
        for rid, rows, predictions, variant, version in owed:
            actual = rows[TARGET].to_numpy()
            for row, (truth, predicted) in enumerate(zip(actual, predictions, strict=True)):
                items.append({"request_id": rid, "row": row, "value": float(truth)})
                error = float(predicted) - float(truth)
                self.served.by_variant.setdefault(variant, []).append(error)
                self.served.by_version.setdefault(version, []).append(error)
        self.http.request(
            "POST", "/feedback", body=_json(items), headers={"Content-Type": "application/json"}
        )
        self.served.feedback += len(items)


def _json(value: Any) -> bytes:
    import json

    return json.dumps(value, separators=(",", ":")).encode()
