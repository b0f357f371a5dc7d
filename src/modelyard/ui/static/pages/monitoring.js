// Monitoring: the monitors and open alerts of every deployment (#/monitoring), and one
// deployment's report (#/monitoring/<deployment>?window=7d): drift per feature over time
// (from the stored evaluations), the latest window's reference-vs-current histograms, live
// metrics per slice, alerts with their history, and the evaluated windows.
import { api } from "../api.js";
import { lineChart } from "../charts.js";
import { errorBox, formatValue, formatTime, h, route, section, table, withQuery } from "../dom.js";
import { driftHistogram } from "../svg.js";

const WINDOWS = ["1h", "6h", "1d", "7d", "30d"];

export async function render(view, { params, query }) {
  if (!params.deployment) return renderIndex(view);
  return renderDeployment(view, params.deployment, query);
}

async function renderIndex(view) {
  document.title = "Monitoring · modelyard";
  const [found, deployed] = await Promise.all([
    api.get("/api/v1/monitoring/monitors"),
    api.get("/api/v1/deployments"),
  ]);
  const monitored = new Set(found.monitors.map((m) => m.deployment));
  view.append(
    h("h1", {}, "Monitoring"),
    section("Monitors", found.monitors.length
      ? table(["Monitor", "Deployment", "Schedule", "Window", "Last run", "Open alerts"],
        found.monitors.map((m) => [
          m.name,
          h("a", { href: route("monitoring", m.deployment) }, m.deployment),
          h("code", {}, m.schedule),
          span(m.window_s),
          formatTime(m.last_run_at) || "never",
          m.open_alerts.length ? h("span", { class: "badge bad" }, `${m.open_alerts.length} open`) : h("span", { class: "muted" }, "none"),
        ]), { class: "list", id: "monitors" })
      : h("p", { class: "muted", id: "monitors" }, "No monitors yet: create one with `modelyard monitor create`.")),
    section("Deployments", deployed.deployments.length
      ? table(["Deployment", "Monitored"], deployed.deployments.map((d) => [
        h("a", { href: route("monitoring", d.name) }, d.name), monitored.has(d.name) ? "yes" : "no"]), { class: "list", id: "deployments" })
      : h("p", { class: "muted" }, "No deployments yet.")),
  );
}

async function renderDeployment(view, name, query) {
  document.title = `Monitoring ${name} · modelyard`;
  const window_ = WINDOWS.includes(query.get("window")) ? query.get("window") : "7d";
  const [report, evaluated] = await Promise.all([
    api.get(`/api/v1/monitoring/deployments/${encodeURIComponent(name)}`, { window: window_ }),
    api.get(`/api/v1/monitoring/deployments/${encodeURIComponent(name)}/evaluations`, { limit: 50 }),
  ]);
  const charts = [];
  const picker = h("select", { name: "window", onchange: () => { location.hash = withQuery(route("monitoring", name), { window: picker.value }); } },
    WINDOWS.map((w) => h("option", { value: w, selected: w === window_ }, `last ${w}`)));
  const driftBox = h("div", { class: "charts", id: "drift" });
  const liveBox = h("div", { class: "charts", id: "live" });
  view.append(
    h("p", { class: "crumbs" }, h("a", { href: "#/monitoring" }, "Monitoring"), " / ",
      h("a", { href: route("deployments", name) }, "deployment")),
    h("h1", {}, name),
    h("div", { class: "toolbar" }, h("label", {}, "Window ", picker),
      h("span", { class: "muted" }, `${formatTime(report.start_ms)} – ${formatTime(report.end_ms)}`),
      h("a", { href: withQuery("#/lineage", { node: `deployment:${name}` }) }, "lineage")),
    section("Monitors", monitorsTable(report.monitors)),
    section("Drift per feature over time", report.drift_over_time.length ? driftBox
      : h("p", { class: "muted", id: "drift" }, "No evaluated windows in this period: the monitors' drift appears here once they run.")),
    section("Latest window: reference against current", latestDrift(report.latest_drift)),
    section("Live metrics", report.metrics_over_time.length ? liveBox
      : h("p", { class: "muted", id: "live" }, "No predictions logged in this period.")),
    section("Alerts", alertsTable(report.alerts)),
    section("Evaluated windows", evaluationsTable(evaluated.evaluations)),
  );
  const draws = [
    ...report.drift_over_time.map((c) => drawChart(driftBox, c, charts, report)),
    ...report.metrics_over_time.map((c) => drawChart(liveBox, c, charts, null)),
  ];
  await Promise.all(draws);
  return () => charts.forEach((c) => c.destroy());
}

// 3600 -> "1 h", 900 -> "15 min", 86400 -> "1 d".
function span(seconds) {
  for (const [unit, size] of [["d", 86400], ["h", 3600], ["min", 60]]) if (seconds >= size && seconds % size === 0) return `${seconds / size} ${unit}`;
  return `${seconds} s`;
}

function monitorsTable(monitors) {
  if (!monitors.length) return h("p", { class: "muted" }, "This deployment has no monitors.");
  return table(["Monitor", "Schedule", "Window", "Last run", "Rules"], monitors.map((m) => [
    m.name, h("code", {}, m.schedule), span(m.window_s), formatTime(m.last_run_at) || "never",
    h("details", {}, h("summary", {}, "rules"), h("pre", { class: "report" }, m.rules)),
  ]), { class: "list" });
}

// One chart: a line per series. Drift charts draw the rule's threshold as a flat line
// across the whole period (so a single evaluated window still sits on a time axis).
async function drawChart(container, chart, charts, period) {
  const box = h("div", { class: "chart", dataset: { chart: chart.title } });
  container.append(box);
  const series = chart.lines.map((line) => ({
    label: line.name,
    x: line.points.map((p) => p[0] / 1000),
    y: line.points.map((p) => p[1]),
  })).filter((s) => s.x.length);
  if (period && chart.threshold !== null && series.length) {
    series.push({ label: "threshold", x: [period.start_ms / 1000, period.end_ms / 1000], y: [chart.threshold, chart.threshold] });
  }
  if (!series.length) { box.append(h("p", { class: "muted" }, `${chart.title}: no values`)); return; }
  try {
    charts.push(await lineChart(box, { title: chart.title, series, x: "timestamp", height: 200 }));
  } catch (error) {
    box.append(errorBox(error));
  }
}

function latestDrift(drift) {
  if (!drift) return h("p", { class: "muted", id: "latest" }, "No reference profile or no predictions in the latest window: nothing to compare.");
  const shown = h("div", { id: "histogram", class: "histogram" }, h("p", { class: "muted" }, "Choose a feature to see its histograms."));
  const open = (name, column) => {
    shown.replaceChildren(
      h("h3", {}, `${name}: ${column.verdict}`),
      column.histogram ? driftHistogram(column.histogram, name) : h("p", { class: "muted" }, "No histogram for this column."));
  };
  const names = Object.keys(drift.columns).sort();
  const rows = names.map((name) => {
    const c = drift.columns[name];
    return [
      name, c.method, formatValue(c.score), formatValue(c.threshold),
      h("span", { class: c.drifted ? "badge bad" : "badge good" }, c.drifted ? "drifted" : "stable"),
      `${c.current_rows} / ${c.reference_rows}`,
      h("button", { type: "button", name: "histogram", dataset: { column: name }, onclick: () => open(name, c) }, "Histogram"),
    ];
  });
  const errors = Object.entries(drift.errors || {});
  return h("div", { id: "latest" },
    h("p", {}, `${(100 * drift.share_drifted).toFixed(0)}% of the features drifted (threshold ${(100 * drift.share_threshold).toFixed(0)}%): `,
      h("span", { class: drift.dataset_drifted ? "badge bad" : "badge good" }, drift.dataset_drifted ? "dataset drifted" : "dataset stable")),
    table(["Feature", "Method", "Score", "Threshold", "Verdict", "Rows (current / reference)", ""], rows, { class: "list", id: "columns" }),
    errors.length ? h("ul", { class: "warn" }, errors.map(([k, why]) => h("li", {}, `${k}: ${why}`))) : null,
    shown);
}

function alertsTable(alerts) {
  if (!alerts.length) return h("p", { class: "muted", id: "alerts" }, "No alerts.");
  const history = h("div", { id: "alert-history" });
  const show = async (alert) => {
    history.replaceChildren(h("p", { class: "muted" }, "Loading…"));
    try {
      const { events } = await api.get(`/api/v1/monitoring/alerts/${alert.id}/events`);
      history.replaceChildren(h("h3", {}, `History of ${alert.rule}`),
        table(["At", "From", "To", "Value", "Detail"], events.map((e) => [formatTime(e.at), e.previous || "", e.state, formatValue(e.value), e.detail || ""]), { class: "list" }));
    } catch (error) {
      history.replaceChildren(errorBox(error));
    }
  };
  const labels = (map) => Object.entries(map || {}).map(([k, v]) => h("span", { class: "tag" }, `${k}=${v}`));
  return h("div", {},
    table(["Rule", "Monitor", "State", "Severity", "Labels", "Value", "Since", ""], alerts.map((a) => [
      a.rule, a.monitor, h("span", { class: a.state === "resolved" ? "badge good" : "badge bad" }, a.state), a.severity,
      labels(a.labels), formatValue(a.value), formatTime(a.since),
      h("button", { type: "button", name: "alert-history", onclick: () => show(a) }, "History"),
    ]), { class: "list", id: "alerts" }),
    history);
}

function evaluationsTable(evaluations) {
  if (!evaluations.length) return h("p", { class: "muted" }, "No windows evaluated yet.");
  return table(["Window end", "Monitor", "Status", "Rows", "Detail"], evaluations.map((e) => [
    formatTime(e.window_end), e.monitor, e.status, e.rows ?? "", e.detail || "",
  ]), { class: "list", id: "evaluations" });
}
