// SVG built like dom.js builds HTML: createElementNS, attributes from our code, every
// string a text node. Used for the drift histograms and the lineage graph.

const NS = "http://www.w3.org/2000/svg";

export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

const REFERENCE = "#7f96ad";
const CURRENT = "#e07b39";

// Reference against current shares on the same bins, side by side per bin:
// { labels, reference, current } (shares of the non-missing rows, null when unknown).
// A label is shown under every k-th bin so the axis stays readable; each bar's title
// tells its bin and share. `compact` leaves out the bin labels and the legend (a sparkline
// beside a table row, whose min and max the row already shows).
export function barChart({ labels, series, width = 720, height = 240, title = "", compact = false }) {
  const pad = compact ? { left: 36, right: 4, top: 6, bottom: 4 } : { left: 84, right: 8, top: 22, bottom: 64 };
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const values = series.flatMap((x) => x.values).filter((v) => Number.isFinite(v));
  const top = Math.max(1e-9, ...values);
  const slot = plotW / Math.max(1, labels.length);
  const bar = Math.max(1, (slot * 0.8) / series.length);
  const every = Math.max(1, Math.ceil(labels.length / 12));
  const y = (v) => pad.top + plotH - (v / top) * plotH;
  const parts = [
    s("text", { x: pad.left, y: 14, class: "chart-title" }, title),
    s("line", { x1: pad.left, y1: pad.top + plotH, x2: pad.left + plotW, y2: pad.top + plotH, stroke: "#888" }),
    s("text", { x: pad.left - 4, y: pad.top + 4, "text-anchor": "end", class: "axis" }, `${+(top * 100).toPrecision(3)}%`),
    s("text", { x: pad.left - 4, y: pad.top + plotH, "text-anchor": "end", class: "axis" }, "0"),
  ];
  labels.forEach((label, i) => {
    series.forEach((one, j) => {
      const v = one.values[i];
      if (!Number.isFinite(v)) return;
      const x = pad.left + i * slot + slot * 0.1 + j * bar;
      parts.push(s("rect", { x, y: y(v), width: bar, height: Math.max(0, pad.top + plotH - y(v)), fill: one.color, class: `bar ${one.name}` },
        s("title", {}, `${label}: ${one.name} ${(v * 100).toFixed(1)}%`)));
    });
    if (!compact && i % every === 0) {
      const x = pad.left + i * slot + slot / 2;
      parts.push(s("text", { x, y: pad.top + plotH + 12, "text-anchor": "end", transform: `rotate(-35 ${x} ${pad.top + plotH + 12})`, class: "axis" }, label.length > 18 ? `${label.slice(0, 17)}…` : label));
    }
  });
  if (!compact) series.forEach((one, j) => {
    const x = pad.left + plotW - 180 + j * 90;
    parts.push(s("rect", { x, y: 6, width: 10, height: 10, fill: one.color }), s("text", { x: x + 14, y: 15, class: "axis" }, one.name));
  });
  return s("svg", { width, height, viewBox: `0 0 ${width} ${height}`, class: "bars", role: "img" }, parts);
}

export function driftHistogram(histogram, title) {
  return barChart({
    title,
    labels: histogram.labels,
    series: [
      { name: "reference", color: REFERENCE, values: histogram.reference },
      { name: "current", color: CURRENT, values: histogram.current },
    ],
  });
}
