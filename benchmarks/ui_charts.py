"""The web UI's charts: drawing a 100,000-point metric in headless Chromium, raw and after
the server's LTTB down-sampling, and the server's time to sample it.

1. the size the UI ships (raw and gzipped, as served);
2. ``lttb`` on 100,000 points to 1,000 (the server's work per chart, median of repeats);
3. uPlot (the vendored 1.6.32) drawing 100,000 points, and the 1,000 kept: the time from
   ``new uPlot`` to its first ``draw`` hook, in Debian's /usr/bin/chromium (median of
   repeats, fresh chart each time).

    python benchmarks/ui_charts.py
"""

from __future__ import annotations

import gzip
import statistics
import time
from pathlib import Path

import numpy as np

from modelyard.server.control.ui_routes import load_assets, ui_root
from modelyard.tracking.downsample import lttb

POINTS = 100_000
KEPT = 1000
REPEATS = 7
CHROMIUM = "/usr/bin/chromium"
DRAW = """async ([n, repeats]) => {
  const xs = Array.from({length: n}, (_, i) => i);
  const ys = xs.map((i) => Math.sin(i / 500) + (i % 97) / 200);
  const times = [];
  for (let r = 0; r < repeats; r += 1) {
    const box = document.createElement("div");
    document.body.append(box);
    const drawn = new Promise((resolve) => {
      const t0 = performance.now();
      const chart = new uPlot({width: 800, height: 240, series: [{}, {stroke: "red"}],
        hooks: {draw: [() => resolve([performance.now() - t0, chart])]}}, [xs, ys], box);
    });
    const [ms, chart] = await drawn;
    times.push(ms);
    chart.destroy();
    box.remove();
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}"""


def shipped_size() -> tuple[int, int]:
    assets = load_assets()
    raw = sum(len(a.body) for a in assets.values())
    packed = sum(len(a.gzipped or a.body) for a in assets.values())
    return raw, packed


def lttb_ms() -> float:
    x = np.arange(POINTS, dtype=np.float64)
    y = np.sin(x / 500) + np.random.default_rng(0).normal(0, 0.1, POINTS)
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        lttb(x, y, KEPT)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def draw_ms() -> dict[int, float]:
    from playwright.sync_api import sync_playwright

    script = ui_root() / "static" / "vendor" / "uplot-1.6.32" / "uPlot.iife.min.js"
    out = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page()
            page.set_content("<!doctype html><body></body>")
            page.add_script_tag(path=str(script))
            for n in (POINTS, KEPT):
                out[n] = page.evaluate(DRAW, [n, REPEATS])
        finally:
            browser.close()
    return out


def main() -> None:
    raw, packed = shipped_size()
    uplot = Path(ui_root() / "static" / "vendor" / "uplot-1.6.32" / "uPlot.iife.min.js")
    print(f"UI files: {raw / 1024:.0f} KB raw, {packed / 1024:.0f} KB gzipped as served")
    uplot_gz = len(gzip.compress(uplot.read_bytes(), 9))
    print(f"  of which uPlot: {uplot.stat().st_size / 1024:.0f} KB, {uplot_gz / 1024:.0f} KB gzip")
    print(f"lttb {POINTS:,} -> {KEPT:,} points: {lttb_ms():.1f} ms (median of {REPEATS})")
    for n, ms in draw_ms().items():
        print(f"uPlot draws {n:,} points in {ms:.1f} ms (Chromium headless, median of {REPEATS})")


if __name__ == "__main__":
    main()
