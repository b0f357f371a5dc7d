"""Memory of the process a benchmark runs in: the peak resident set while some code runs,
and freed heap pages handed back first, so a baseline is the data and the imports.

Imported by the benchmark scripts that measure memory (``python benchmarks/drift.py`` puts
this folder first on ``sys.path``); Linux only (``/proc/self/statm``, glibc's
``malloc_trim``), like the machines the numbers are recorded on.
"""

from __future__ import annotations

import os
import threading


class PeakRss:
    """Samples this process's resident set every 2 ms while active (Linux /proc)."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._page = os.sysconf("SC_PAGE_SIZE")

    def rss(self) -> int:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * self._page

    def __enter__(self) -> PeakRss:
        self.peak = self.rss()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, self.rss())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.rss())


def release_memory() -> None:
    """Return freed heap pages to the OS (glibc ``malloc_trim``), so that a measured peak
    is the data plus what the measured code allocates."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:  # not glibc
        pass
