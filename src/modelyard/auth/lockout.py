"""Failed authentications, counted per key, and the lockouts they earn.

A key names who failed: a client address (``addr:203.0.113.7``) or the identity a
credential named (``token:3f9c0a1b2c3d``, ``user:alice``). A key may fail ``max_failures``
times within ``window_s``; the failure that reaches the limit locks the key for
``lockout_s``. Requests made during a lockout never extend it, so a client that honours
``Retry-After`` (the mlflow client does, for up to 7 retries) gets a real answer after one
wait, and an attacker gets at most ``max_failures`` guesses per ``lockout_s`` per key.
Successes are not counted and reset nothing: a caller holding one valid token cannot
clear the count of its guesses at another.

State lives in this process's memory only: each server worker counts on its own (N
workers allow N times the failures) and a restart forgets. The table holds at most
``max_keys`` keys (about 200 bytes each); past that, the key whose last failure is oldest
is forgotten first, so a flood of addresses or forged token ids costs bounded memory.

>>> lockout = FailureLockout(max_failures=2, lockout_s=30)
>>> lockout.fail("addr:203.0.113.7"), lockout.fail("addr:203.0.113.7")
(0.0, 0.0)
>>> lockout.locked_for("addr:203.0.113.7") > 29
True
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from modelyard.errors import InvalidParameter

log = logging.getLogger("modelyard.auth")

#: Failures a key may make within ``WINDOW_S`` before it is locked out.
MAX_FAILURES = 10
WINDOW_S = 60.0
#: Short enough that the mlflow client, which sleeps ``Retry-After`` and retries, ends
#: with the real 401 in half a minute instead of giving up after 7 retries.
LOCKOUT_S = 30.0
MAX_KEYS = 20_000


@dataclass(slots=True)
class _Record:
    started: float  # clock time of the window's first failure
    failures: int = 0
    locked_until: float = 0.0


class FailureLockout:
    """Counts failures per key; ``locked_for`` says how long a key is still refused."""

    def __init__(
        self,
        *,
        max_failures: int = MAX_FAILURES,
        window_s: float = WINDOW_S,
        lockout_s: float = LOCKOUT_S,
        max_keys: int = MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        for name, value in (
            ("max_failures", max_failures),
            ("window_s", window_s),
            ("lockout_s", lockout_s),
            ("max_keys", max_keys),
        ):
            if value <= 0:
                raise InvalidParameter(f"{name} must be positive, got {value!r}", field=name)
        self.max_failures = max_failures
        self.window_s = window_s
        self.lockout_s = lockout_s
        self.max_keys = max_keys
        self._clock = clock
        self._records: OrderedDict[str, _Record] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._records)

    def locked_for(self, key: str) -> float:
        """Seconds until ``key``'s lockout ends; 0.0 when it is not locked out.

        One dictionary lookup for a key that never failed: all a successful request pays.
        """
        record = self._records.get(key)
        if record is None or not record.locked_until:
            return 0.0
        return max(0.0, record.locked_until - self._clock())

    def fail(self, *keys: str) -> float:
        """Count one failure against each key that is not locked out.

        Returns the longest lockout that already stood among ``keys`` before this failure
        (seconds; 0.0 if none): the caller answers 429 for it, and 401 otherwise, even for
        the failure that starts a lockout.
        """
        now = self._clock()
        standing = 0.0
        with self._lock:
            for key in keys:
                record = self._records.get(key)
                if record is not None and record.locked_until > now:
                    standing = max(standing, record.locked_until - now)
                    continue
                if record is None or record.locked_until or now - record.started >= self.window_s:
                    record = self._records[key] = _Record(now)  # a new window
                self._records.move_to_end(key)
                record.failures += 1
                if record.failures >= self.max_failures:
                    record.locked_until = now + self.lockout_s
                    log.warning(
                        "%r failed to authenticate %d times in %.0f s: refused for %.0f s",
                        key,
                        record.failures,
                        now - record.started,
                        self.lockout_s,
                    )
            while len(self._records) > self.max_keys:
                self._records.popitem(last=False)
        return standing
