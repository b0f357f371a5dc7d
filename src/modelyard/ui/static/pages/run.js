// One run: its summary and source, metrics (latest values and charts), params, tags,
// dataset inputs and the artifact browser.
import { api } from "../api.js";
import { artifactBrowser } from "../artifacts.js";
import { metricPanel } from "../charts.js";
import { formatDuration, formatTime, formatValue, h, keyValues, route, section, table } from "../dom.js";

const SYSTEM_TAG = /^(mlflow\.|modelyard\.)/;
const MAX_CHARTS = 24;
// While a run is RUNNING its charts are fetched again this often (304s while idle).
const REFRESH_MS = 10_000;

function source(tags) {
  const commit = tags["mlflow.source.git.commit"];
  const repo = tags["mlflow.source.git.repoURL"] || tags["mlflow.gitRepoURL"];
  const rows = [
    ["Source", tags["mlflow.source.name"]],
    ["Source type", tags["mlflow.source.type"]],
    ["Git commit", commit ? h("code", { class: "commit" }, commit) : null],
    ["Git branch", tags["mlflow.source.git.branch"]],
    ["Repository", repo],
  ].filter(([, v]) => v);
  return rows.length ? table(["", ""], rows, { class: "kv" }) : h("p", { class: "muted" }, "No source recorded.");
}

export async function render(view, { params }) {
  const run = await api.get(`/api/v1/runs/${encodeURIComponent(params.runId)}`);
  const name = run.name || run.run_id;
  document.title = `${name} · modelyard`;
  const tags = run.tags || {};
  const userTags = Object.fromEntries(Object.entries(tags).filter(([k]) => !SYSTEM_TAG.test(k)));
  const systemTags = Object.fromEntries(Object.entries(tags).filter(([k]) => SYSTEM_TAG.test(k)));
  const metricKeys = Object.keys(run.metrics || {}).sort();

  view.append(
    h("p", { class: "crumbs" }, h("a", { href: "#/experiments" }, "Experiments"), " / ",
      h("a", { href: route("experiments", run.experiment_id) }, `Experiment ${run.experiment_id}`), " /"),
    h("h1", { class: "run-name" }, name),
    table(["", ""], [
      ["Run ID", h("code", {}, run.run_id)],
      ["Status", h("span", { class: `status ${String(run.status).toLowerCase()}` }, run.status)],
      ["Started", formatTime(run.start_time)],
      ["Duration", formatDuration(run.start_time, run.end_time)],
      ["User", run.user_id || ""],
      ["Parent run", run.parent_run_id ? h("a", { href: route("experiments", run.experiment_id, "runs", run.parent_run_id) }, run.parent_run_id) : null],
    ].filter(([, v]) => v), { class: "kv summary" }),
    section("Source", source(tags)));

  const charts = metricPanel([{ run_id: run.run_id, name }], metricKeys.slice(0, MAX_CHARTS));
  view.append(section("Metrics",
    metricKeys.length
      ? table(["Metric", "Latest", "Step"], metricKeys.map((k) => [k, formatValue(run.metrics[k]), String(run.metrics[k].step)]), { class: "kv", id: "metrics" })
      : h("p", { class: "muted" }, "No metrics."),
    metricKeys.length > MAX_CHARTS ? h("p", { class: "muted" }, `Charts of the first ${MAX_CHARTS} metrics.`) : null,
    metricKeys.length ? charts.element : null));

  view.append(section("Parameters", keyValues(run.params, "No parameters.")));
  view.append(section("Tags", keyValues(userTags, "No tags."),
    Object.keys(systemTags).length ? h("details", {}, h("summary", {}, `System tags (${Object.keys(systemTags).length})`), keyValues(systemTags)) : null));

  const inputs = run.inputs || [];
  view.append(section("Dataset inputs", inputs.length
    ? table(["Name", "Digest", "Context", "Source", "Schema / profile"], inputs.map((d) => [
      d.name, h("code", {}, d.digest), d.context || "", [d.source_type, d.source].filter(Boolean).join(": "),
      d.schema || d.profile ? h("details", {}, h("summary", {}, "show"), h("pre", { class: "text" }, [d.schema, d.profile].filter(Boolean).join("\n\n"))) : "",
    ]), { class: "list", id: "datasets" })
    : h("p", { class: "muted" }, "No dataset inputs logged.")));

  const browser = artifactBrowser(run.run_id);
  view.append(section("Artifacts", browser.element));
  const timer = run.status === "RUNNING" ? setInterval(() => charts.refresh(), REFRESH_MS) : null;
  return () => { clearInterval(timer); charts.cleanup(); browser.cleanup(); };
}
