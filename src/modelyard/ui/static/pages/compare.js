// Selected runs side by side: a params diff (rows that differ marked, optionally alone),
// the latest metrics, and every metric overlaid on one chart per key.
// Reached as #/compare?runs=<id>,<id> (and MLflow's #/compare-runs?runs=["<id>",...]).
import { api } from "../api.js";
import { metricPanel } from "../charts.js";
import { formatValue, h, route, section } from "../dom.js";

const MAX_RUNS = 20;

function runIds(query) {
  const raw = query.get("runs") || "";
  if (raw.startsWith("[")) {
    try { return JSON.parse(raw).map(String); } catch { return []; }
  }
  return raw.split(",").map((s) => s.trim()).filter(Boolean);
}

function diffTable(runs, kind, { onlyDiffs, id }) {
  const keys = [...new Set(runs.flatMap((r) => Object.keys(r[kind] || {})))].sort();
  const rows = [];
  for (const key of keys) {
    const values = runs.map((r) => formatValue((r[kind] || {})[key]));
    const differs = new Set(values).size > 1;
    if (onlyDiffs && !differs) continue;
    rows.push(h("tr", { class: differs ? "differs" : "" }, h("th", {}, key), values.map((v) => h("td", {}, v))));
  }
  if (!rows.length) return h("p", { class: "muted" }, keys.length ? "No differences." : "None.");
  return h("div", { class: "scroll" }, h("table", { class: "list diff", id },
    h("thead", {}, h("tr", {}, h("th", {}, ""), runs.map((r) => h("th", {}, h("a", { href: route("experiments", r.experiment_id, "runs", r.run_id) }, r.name || r.run_id))))),
    h("tbody", {}, rows)));
}

export async function render(view, { query }) {
  document.title = "Compare runs · modelyard";
  const ids = runIds(query).slice(0, MAX_RUNS);
  view.append(h("h1", {}, `Comparing ${ids.length} run${ids.length === 1 ? "" : "s"}`));
  if (!ids.length) {
    view.append(h("p", { class: "muted" }, "No runs chosen: select runs in an experiment's table."));
    return undefined;
  }
  const runs = await Promise.all(ids.map((id) => api.get(`/api/v1/runs/${encodeURIComponent(id)}`)));
  const experiment = query.get("experiment") || runs[0].experiment_id;
  view.prepend(h("p", { class: "crumbs" }, h("a", { href: route("experiments", experiment) }, "Back to the runs")));

  let onlyDiffs = true;
  const params = h("div");
  const drawParams = () => params.replaceChildren(diffTable(runs, "params", { onlyDiffs, id: "params-diff" }));
  drawParams();
  const toggle = h("label", {}, h("input", { type: "checkbox", name: "only-differences", checked: onlyDiffs, onchange: (e) => { onlyDiffs = e.target.checked; drawParams(); } }), " Only differences");
  view.append(section("Parameters", toggle, params));
  view.append(section("Latest metrics", diffTable(runs, "metrics", { onlyDiffs: false, id: "metrics-diff" })));

  const keys = [...new Set(runs.flatMap((r) => Object.keys(r.metrics || {})))].sort();
  const charts = metricPanel(runs.map((r) => ({ run_id: r.run_id, name: r.name })), keys);
  view.append(section("Metric charts", charts.element));
  return charts.cleanup;
}
