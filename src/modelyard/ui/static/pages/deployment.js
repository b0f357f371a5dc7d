// One deployment: the traffic split per variant, switch / promote / roll back (editors),
// live requests, errors and latency from the prediction log, the A/B report, and the
// revision history (/api/v1/deployments/<name>...). The charts refresh every 15 s.
import { api, atLeast, session } from "../api.js";
import { lineChart } from "../charts.js";
import { errorBox, formatNumber, formatTime, h, route, section, table } from "../dom.js";
import { splitBar, variantLabel, versionLink } from "./deployment_parts.js";

const WINDOWS = ["15m", "1h", "6h", "1d", "7d"];
const REFRESH_MS = 15_000;

function trafficTable(policy) {
  return table(["Variant", "Version", "Traffic"], policy.variants.map((v) => [v.name, versionLink(v), `${+v.weight.toFixed(2)}%`]), { class: "list", id: "traffic" });
}

function actions(d, who, base, reload) {
  if (!who || !atLeast(who.role, "editor")) {
    return h("p", { class: "muted", id: "why-not" }, `Only editors change traffic; you are ${who ? `${who.user} (${who.role})` : "not signed in"}.`);
  }
  const status = h("div", { role: "status" });
  const reason = h("input", { type: "text", name: "reason", placeholder: "Reason (recorded in the revision)", size: 40 });
  const change = async (verb, body) => {
    status.replaceChildren(h("p", { class: "muted" }, "Changing…"));
    try {
      await api.post(`${base}/${verb}`, { ...body, reason: reason.value });
      reload();
    } catch (error) {
      status.replaceChildren(errorBox(error));
    }
  };
  const standby = d.policy.variants.filter((v) => v.weight === 0);
  const others = d.policy.variants.filter((v) => v.weight < 100);
  const pick = h("select", { name: "variant" }, others.map((v) => h("option", { value: v.name }, variantLabel(v))));
  return h("div", {},
    h("form", { class: "toolbar", onsubmit: (e) => e.preventDefault() },
      reason,
      h("button", { type: "button", name: "switch", disabled: !standby.length, title: standby.length ? `Give 100% to ${variantLabel(standby[0])}` : "No standby version", onclick: () => change("switch", {}) }, "Switch (blue-green)"),
      others.length ? [pick, h("button", { type: "button", name: "promote", onclick: () => change("promote", { variant: pick.value }) }, "Promote")] : null,
      h("button", { type: "button", name: "rollback", disabled: d.current_revision <= 1, onclick: () => change("rollback", {}) }, "Roll back")),
    status);
}

function historyTable(history, canChange, change) {
  return table(["Revision", "Action", "Traffic", "Reason", "By", "When", ""], history.map((r) => [
    String(r.revision), r.restores ? `${r.action} (to ${r.restores})` : r.action, splitBar(r.policy), r.reason || "", r.created_by, formatTime(r.created_at),
    canChange ? h("button", { type: "button", class: "link", onclick: () => change(r.revision) }, "Roll back to this") : "",
  ]), { class: "list", id: "history" });
}

async function drawCharts(box, answer) {
  const series = new Map();
  for (const b of answer.buckets) {
    const key = `${b.variant} v${b.version}`;
    if (!series.has(key)) series.set(key, []);
    series.get(key).push(b);
  }
  box.replaceChildren();
  if (!series.size) {
    box.append(h("p", { class: "muted" }, "No predictions logged in this window."));
    return [];
  }
  const charts = [];
  const metrics = [["Requests per bucket", (b) => b.requests], ["Error rate", (b) => b.error_rate], ["Latency p99 (ms)", (b) => b.latency_p99_ms], ["Latency p50 (ms)", (b) => b.latency_p50_ms]];
  for (const [title, pick] of metrics) {
    const holder = h("div", { class: "chart" });
    box.append(holder);
    charts.push(await lineChart(holder, {
      title, x: "timestamp", height: 180,
      // The window's ends (without values) keep the x axis on the window, however few buckets.
      series: [...series].map(([label, rows]) => ({
        label,
        x: [answer.start_ms / 1000, ...rows.map((b) => b.bucket_ms / 1000), answer.end_ms / 1000],
        y: [null, ...rows.map(pick), null],
      })),
    }));
  }
  return charts;
}

// The A/B report (serving/ab_report.py): overall and per slice, Holm-adjusted p-values.
function abReport(ab) {
  if (!ab.available) return h("p", { class: "muted", id: "ab" }, ab.reason);
  const n = (x) => (x === null || x === undefined ? "" : formatNumber(x));
  const rows = [ab.overall, ...ab.slices].filter(Boolean).map((c) => [
    c.slice === null ? "overall" : `${ab.slice_by}=${c.slice}`,
    `${n(c.control.mean)} (n=${c.control.n})`, `${n(c.treatment.mean)} (n=${c.treatment.n})`,
    `${c.difference >= 0 ? "+" : ""}${n(c.difference)}${c.relative === null ? "" : ` (${(100 * c.relative).toFixed(1)}%)`}`,
    `[${n(c.ci_low)}, ${n(c.ci_high)}]`, n(c.p_adjusted), c.test,
    h("span", { class: c.significant ? "badge good" : "badge" }, c.significant ? "significant" : "not significant"),
  ]);
  return h("div", { id: "ab" },
    h("p", {}, `${ab.treatment} against ${ab.control} on ${ab.metric}, alpha ${ab.alpha}.`),
    table(["Where", ab.control, ab.treatment, "Difference", "95% CI", "p (Holm)", "Test", ""], rows, { class: "list" }),
    ab.warnings.map((w) => h("p", { class: "warn" }, w)),
    ab.unmatched_feedback ? h("p", { class: "muted" }, `${ab.unmatched_feedback} feedback items matched no logged prediction.`) : null);
}

// The newest answers in the window, each linked to its review page.
function recentTable(name, answer) {
  if (!answer.predictions.length) return h("p", { class: "muted", id: "recent" }, "No predictions logged in this window.");
  return table(["Request", "When", "Variant", "Status", "Latency (ms)", "Output"], answer.predictions.map((p) => [
    h("a", { href: `${route("review", p.request_id)}?deployment=${encodeURIComponent(name)}` }, p.request_id),
    formatTime(p.ts_ms), `${p.variant} v${p.version}`, p.status, formatNumber(p.latency_ms),
    p.error ? h("span", { class: "warn" }, p.error) : h("code", {}, (p.outputs || "").slice(0, 80)),
  ]), { class: "list", id: "recent" });
}

export async function render(view, { params, query }) {
  const name = params.name;
  const base = `/api/v1/deployments/${encodeURIComponent(name)}`;
  const span = WINDOWS.includes(query.get("window")) ? query.get("window") : "1h";
  document.title = `${name} · Deployments · modelyard`;
  const [{ deployment: d, history }, who, ab, recent] = await Promise.all([
    api.get(base), session(), api.get(`${base}/ab-report`), api.get(`${base}/predictions`, { window: span, limit: 20 }),
  ]);
  let charts = [], timer = null, stopped = false;
  let cleanup = () => { stopped = true; clearInterval(timer); timer = null; charts.forEach((c) => c.destroy()); charts = []; };
  const reload = () => { cleanup(); view.replaceChildren(); render(view, { params, query }).then((c) => { cleanup = c; }, (error) => view.append(errorBox(error))); };
  const canChange = who && atLeast(who.role, "editor");
  const historyStatus = h("div");
  const rollbackTo = async (revision) => {
    try { await api.post(`${base}/rollback`, { revision }); reload(); } catch (error) { historyStatus.replaceChildren(errorBox(error)); }
  };
  const chartBox = h("div", { class: "charts", id: "live" });
  const windowPick = h("p", { class: "toolbar" }, "Window: ", WINDOWS.map((w) => w === span ? h("strong", {}, w) : h("a", { href: `${route("deployments", name)}?window=${w}` }, w)));
  const refresh = async () => {
    const answer = await api.get(`${base}/traffic`, { window: span });
    charts.forEach((c) => c.destroy());
    charts = await drawCharts(chartBox, answer);
    const total = answer.buckets.reduce((n, b) => n + b.requests, 0), errors = answer.buckets.reduce((n, b) => n + b.errors, 0);
    summary.replaceChildren(`${total} requests, ${errors} errors (${total ? (100 * errors / total).toFixed(1) : 0}%) in the last ${span}, in buckets of ${answer.step_ms / 1000} s.`);
  };
  const summary = h("p", { class: "muted", id: "live-summary" });
  view.append(
    h("p", { class: "crumbs" }, h("a", { href: "#/deployments" }, "Deployments"), " / "),
    h("h1", {}, d.name),
    h("p", { class: "muted" }, `Environment ${d.environment}; revision ${d.current_revision} (${d.policy.kind}); created by ${d.created_by} on ${formatTime(d.created_at)}.`),
    section("Traffic", splitBar(d.policy), trafficTable(d.policy),
      d.policy.shadows.length ? h("p", {}, "Shadows: ", d.policy.shadows.map((s) => `${s.name}: ${s.model} v${s.version}`).join(", ")) : null,
      d.policy.canary ? h("p", {}, `Canary ${d.policy.canary.candidate}: steps ${d.policy.canary.steps.join(", ")}%`) : null,
      actions(d, who, base, reload)),
    section("Live traffic", windowPick, summary, chartBox),
    section("Recent predictions (review one)", recentTable(name, recent)),
    section("A/B report", abReport(ab)),
    section("Revision history", historyStatus, historyTable(history, canChange, rollbackTo)));
  await refresh();
  if (stopped) return () => cleanup(); // reloaded (a change was made) while drawing
  timer = setInterval(() => refresh().catch((error) => chartBox.replaceChildren(errorBox(error))), REFRESH_MS);
  return () => cleanup();
}
