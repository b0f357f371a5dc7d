// Line charts over uPlot (vendor/uplot-1.6.32, MIT), loaded on first use. Histories come
// down-sampled by the server (LTTB, /api/v1/runs/<id>/metric-samples), so a chart holds
// about a thousand points per run whatever the history's length.

import { api } from "./api.js";
import { h } from "./dom.js";

const UPLOT = "/static/vendor/uplot-1.6.32/";
const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"];
// The x axes: [setting, label]. "relative" is seconds since each run's first point.
const X_AXES = [["step", "Step"], ["relative", "Relative time (s)"], ["timestamp", "Wall time"]];
let loading = null;

// What the server samples along, and the x values to draw, for an axis setting.
export function sampledAlong(x) {
  return x === "step" ? "step" : "timestamp";
}

function xValues(sample, x) {
  if (x === "step") return sample.step;
  if (x === "relative") {
    const first = sample.timestamp.length ? Math.min(...sample.timestamp) : 0;
    return sample.timestamp.map((t) => (t - first) / 1000);
  }
  return sample.timestamp.map((t) => t / 1000);
}

export function loadUplot() {
  if (window.uPlot) return Promise.resolve(window.uPlot);
  if (!loading) {
    document.head.append(h("link", { rel: "stylesheet", href: `${UPLOT}uPlot.min.css` }));
    loading = new Promise((resolve, reject) => {
      const script = h("script", { src: `${UPLOT}uPlot.iife.min.js` });
      script.addEventListener("load", () => resolve(window.uPlot));
      script.addEventListener("error", () => reject(new Error("could not load the chart library")));
      document.head.append(script);
    });
  }
  return loading;
}

export function color(i) {
  return COLORS[i % COLORS.length];
}

// One metric of one run, down-sampled along `x` ("step" or "timestamp"); answers are
// kept until `forget(runId)` (then the browser revalidates them by ETag: a 304 when the
// run has not changed).
const samples = new Map();

export function forget(runId) {
  for (const id of [...samples.keys()]) if (id.startsWith(`${runId}\u0000`)) samples.delete(id);
}

export function metricSamples(runId, key, x = "step", maxPoints = 1000) {
  const id = `${runId}\u0000${key}\u0000${x}\u0000${maxPoints}`;
  if (!samples.has(id)) {
    const pending = api.get(`/api/v1/runs/${encodeURIComponent(runId)}/metric-samples`, { key, x, max_points: maxPoints });
    pending.catch(() => samples.delete(id));
    samples.set(id, pending);
  }
  return samples.get(id);
}

// TensorBoard's smoothing: an exponential moving average, de-biased at the start.
export function smooth(values, weight) {
  if (!weight) return values;
  const out = new Array(values.length);
  let last = 0, count = 0;
  for (let i = 0; i < values.length; i += 1) {
    const v = values[i];
    if (v === null || !Number.isFinite(v)) { out[i] = v; continue; }
    last = last * weight + (1 - weight) * v;
    count += 1;
    out[i] = last / (1 - weight ** count);
  }
  return out;
}

// The controls every chart group shares: x axis, smoothing, log scale.
export function chartControls(settings, onChange) {
  const axis = h("select", { name: "x-axis", onchange: () => { settings.x = axis.value; onChange("x"); } },
    X_AXES.map(([value, label]) => h("option", { value, selected: settings.x === value }, label)));
  const weight = h("input", { type: "range", name: "smoothing", min: 0, max: 0.99, step: 0.01, value: settings.smoothing });
  const shown = h("span", { class: "muted" }, String(settings.smoothing));
  weight.addEventListener("input", () => { settings.smoothing = Number(weight.value); shown.textContent = weight.value; onChange("smoothing"); });
  const log = h("input", { type: "checkbox", name: "log-scale", checked: settings.log, onchange: () => { settings.log = log.checked; onChange("log"); } });
  return h("div", { class: "controls" },
    h("label", {}, "X axis ", axis), h("label", {}, "Smoothing ", weight, " ", shown), h("label", {}, log, " Log scale"));
}

// A chart of several series ({label, x, y}) that may have different x values.
export async function lineChart(container, { title, series, x = "step", smoothing = 0, log = false, height = 220 }) {
  const uPlot = await loadUplot();
  const time = x === "timestamp"; // uPlot's time axis, in seconds
  const tables = series.map((s) => [s.x, s.y]);
  const data = tables.length === 1 ? tables[0].slice() : uPlot.join(tables);
  for (let i = 1; i < data.length; i += 1) {
    let ys = smooth(Array.from(data[i]), smoothing);
    if (log) ys = ys.map((v) => (v > 0 ? v : null));
    data[i] = ys;
  }
  const width = Math.max(240, container.clientWidth || 480);
  const options = {
    title,
    width,
    height,
    scales: { x: { time }, y: log ? { distr: 3 } : {} },
    axes: [{}, { size: 60 }],
    legend: { show: true },
    series: [{ label: x === "step" ? "step" : time ? "time" : "seconds" }, ...series.map((s, i) => ({ label: s.label, stroke: color(i), width: 1.5, spanGaps: true }))],
  };
  return new uPlot(options, data, container);
}

// Charts of `keys` for `runs` ([{run_id, name}]), one chart per key with one series per
// run, under shared controls. `refresh()` fetches again (a 304 when the run did not
// change) and redraws only the charts whose data moved. Returns { element, ready,
// refresh, cleanup }.
export function metricPanel(runs, keys, settings = { x: "step", smoothing: 0, log: false }) {
  const grid = h("div", { class: "charts" });
  const boxes = new Map(keys.map((key) => [key, h("div", { class: "chart", dataset: { metric: key } })]));
  const charts = new Map();
  const drawn = new Map(); // key -> signature of the data drawn
  let work = Promise.resolve();

  async function seriesOf(key) {
    const got = await Promise.all(runs.map((r) => metricSamples(r.run_id, key, sampledAlong(settings.x)).catch(() => null)));
    const series = [];
    got.forEach((s, i) => {
      if (s && s.value.length) series.push({ label: runs[i].name || runs[i].run_id, x: xValues(s, settings.x), y: s.value, total: s.total });
    });
    return series;
  }

  async function drawKey(key, force) {
    const box = boxes.get(key);
    try {
      const series = await seriesOf(key);
      const signature = JSON.stringify([settings, series.map((s) => [s.total, s.x.at(-1), s.y.at(-1)])]);
      if (!force && drawn.get(key) === signature) return;
      drawn.set(key, signature);
      box.dataset.points = String(series.reduce((n, s) => n + s.total, 0));
      charts.get(key)?.destroy();
      charts.delete(key);
      box.replaceChildren();
      if (!series.length) { box.append(h("p", { class: "muted" }, `${key}: no points`)); return; }
      charts.set(key, await lineChart(box, { title: key, series, x: settings.x, smoothing: settings.smoothing, log: settings.log }));
      if (series.some((s) => s.total > s.y.length)) {
        const kept = Math.max(...series.map((s) => s.y.length)), total = Math.max(...series.map((s) => s.total));
        box.append(h("p", { class: "muted note" }, `Down-sampled on the server to ${kept} of ${total} points (LTTB).`));
      }
    } catch (error) {
      box.replaceChildren(h("p", { class: "error" }, `${key}: ${error.message}`));
    }
  }

  const drawAll = (force) => Promise.all(keys.map((key) => drawKey(key, force)));
  const queue = (task) => { work = work.then(task); return work; };
  const controls = chartControls(settings, () => queue(() => drawAll(true)));
  grid.append(...boxes.values());
  const element = h("div", { class: "metric-panel" }, keys.length ? controls : null,
    keys.length ? grid : h("p", { class: "muted" }, "No metrics."));
  queue(() => drawAll(true));
  return {
    element,
    ready: () => work,
    refresh: () => queue(() => { for (const r of runs) forget(r.run_id); return drawAll(false); }),
    cleanup: () => { for (const chart of charts.values()) chart.destroy(); charts.clear(); },
  };
}
