"""Run a blocking handler (database, files) in a worker thread, cheaply.

Handlers call the tracking client, which blocks on SQLite or PostgreSQL, so they must
leave the event loop. Starlette's ``run_in_threadpool`` goes through anyio (a capacity
limiter, a cancel scope and task-local lookups) and cost ~60 µs a call on the per-call
logging path; this goes straight to an executor. The request's ``contextvars`` (the
authenticated principal among them) are copied into the thread, as anyio does.

The pool is one per process, as anyio's is (40 threads by default): each thread keeps its
own database connection for the hot write path, so the pool also bounds connections.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
MAX_THREADS = 40

_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None


def executor() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        with _lock:
            if _executor is None:
                _executor = ThreadPoolExecutor(MAX_THREADS, thread_name_prefix="modelyard-handler")
    return _executor


async def in_thread(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` in a worker thread, with this task's context variables."""
    context = contextvars.copy_context()
    call = functools.partial(context.run, fn, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(executor(), call)
