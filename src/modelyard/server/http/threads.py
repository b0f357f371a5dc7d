"""Run a blocking handler (database, files) in a worker thread, cheaply.

Handlers call the tracking client, which blocks on SQLite or PostgreSQL, so they must
leave the event loop. Starlette's ``run_in_threadpool`` goes through anyio (a capacity
limiter, a cancel scope and task-local lookups) and cost ~60 µs a call on the per-call
logging path; this goes straight to an executor. The request's ``contextvars`` (the
authenticated principal among them) are copied into the thread, as anyio does.

The pool is one per process, as anyio's is (40 threads by default): each thread keeps its
own database connection for the hot write path, so the pool also bounds connections.

``inline()`` runs a short write on the event loop instead (``mlflow_api.MlflowEndpoint``:
SQLite writes of tens of microseconds, where the two thread switches cost more), but
only while no handler of this process is in a thread, so it never waits on a
transaction of this process. It never waits for another *process*'s write lock either:
the write starts without waiting (``writes_do_not_wait``) and, when the lock is taken,
goes to a thread instead; and a write that still took long on the loop sends the writes
of the next ``INLINE_PAUSE_S`` to threads, so the loop keeps serving reads meanwhile.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from modelyard.errors import StoreBusy
from modelyard.store.engine import writes_do_not_wait

T = TypeVar("T")
MAX_THREADS = 40

_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None
#: Seconds an inline write may take before the next ones go to threads for a while.
SLOW_INLINE_S = 0.1
INLINE_PAUSE_S = 10.0

_running = 0  # handlers sent to a thread and not yet returned (changed on the loop only)
_inline_paused_until = 0.0


def executor() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        with _lock:
            if _executor is None:
                _executor = ThreadPoolExecutor(MAX_THREADS, thread_name_prefix="modelyard-handler")
    return _executor


async def in_thread(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` in a worker thread, with this task's context variables."""
    global _running
    context = contextvars.copy_context()
    call = functools.partial(context.run, fn, *args, **kwargs)
    _running += 1
    try:
        return await asyncio.get_running_loop().run_in_executor(executor(), call)
    finally:
        _running -= 1


async def inline(fn: Callable[..., T], /, *args: Any) -> T:
    """``fn(*args)`` on the event loop when that is safe and has been quick (see the
    module's docstring), else in a worker thread like ``in_thread``."""
    global _inline_paused_until
    if _running or time.monotonic() < _inline_paused_until:
        return await in_thread(fn, *args)
    started = time.monotonic()
    try:
        with writes_do_not_wait():  # another process holds the lock: go to a thread
            return fn(*args)
    except StoreBusy:
        return await in_thread(fn, *args)
    finally:
        if time.monotonic() - started > SLOW_INLINE_S:
            _inline_paused_until = time.monotonic() + INLINE_PAUSE_S
