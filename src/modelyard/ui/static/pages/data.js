// Data and features: dataset versions and feature definitions (#/data), one dataset
// version with its schema and stored profile (#/data/datasets/<name>/versions/<v>).
import { api } from "../api.js";
import { formatBytes, formatTime, formatValue, h, keyValues, route, section, table, withQuery } from "../dom.js";
import { barChart } from "../svg.js";

export async function render(view, { params, query }) {
  if (params.name) return renderVersion(view, params.name, params.version);
  return renderIndex(view, query.get("page") || "");
}

// Dataset versions a page at a time (the API's page tokens), feature definitions all.
async function renderIndex(view, page) {
  document.title = "Data and features · modelyard";
  const [datasets, features] = await Promise.all([api.get("/api/v1/datasets", { page_token: page }), api.get("/api/v1/features")]);
  view.append(
    h("h1", {}, "Data and features"),
    section("Dataset versions", datasets.versions.length
      ? table(["Dataset", "Version", "Rows", "Columns", "Size", "Format", "Created", "By", "Source"], datasets.versions.map((v) => [
        v.name, h("a", { href: route("data", "datasets", v.name, "versions", v.version) }, `v${v.version}`),
        formatValue(v.num_rows), v.num_columns, formatBytes(v.num_bytes), v.format, formatTime(v.created_at), v.created_by, v.source,
      ]), { class: "list", id: "datasets" })
      : h("p", { class: "muted", id: "datasets" }, "No dataset versions yet: make one with `modelyard data snapshot`."),
      datasets.next_page_token
        ? h("p", {}, h("a", { href: withQuery("#/data", { page: datasets.next_page_token }) }, "Next page →"))
        : null),
    section("Feature definitions", features.definitions.length
      ? table(["Kind", "Name", "Version", "Created", "By", "Freshness"], features.definitions.map((d) => [
        d.kind.replaceAll("_", " "), h("a", { href: route("data", "features", d.kind, d.name) }, d.name), `v${d.version}`,
        formatTime(d.created_at), d.created_by, d.materializations ? freshnessText(d.materializations) : "",
      ]), { class: "list", id: "features" })
      : h("p", { class: "muted", id: "features" }, "No feature definitions yet: register them with `modelyard features apply`.")),
  );
}

// "up to 2024-01-02 00:00:00 (3 days ago)" from the newest watermark of any online store.
export function freshnessText(materializations) {
  if (!materializations.length) return "never materialised";
  const newest = Math.max(...materializations.map((m) => m.watermark_us));
  const ms = Math.floor(newest / 1000);
  return `up to ${formatTime(ms)} (${age(Date.now() - ms)} ago)`;
}

function age(ms) {
  const s = Math.max(0, ms / 1000);
  if (s < 120) return `${Math.round(s)} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} days`;
}

async function renderVersion(view, name, version) {
  document.title = `${name}@${version} · modelyard`;
  const { version: v } = await api.get(`/api/v1/datasets/${encodeURIComponent(name)}/versions/${encodeURIComponent(version)}`);
  const profile = v.profile || {};
  const columns = profile.columns || {};
  view.append(
    h("p", { class: "crumbs" }, h("a", { href: "#/data" }, "Data"), ` / ${name}`),
    h("h1", {}, v.ref),
    h("p", {}, h("a", { href: withQuery("#/lineage", { node: v.lineage_node }) }, "lineage"), v.description ? ` · ${v.description}` : ""),
    section("Version", keyValues({
      rows: v.num_rows, bytes: formatBytes(v.num_bytes), format: v.format, source: v.source, digest: v.digest,
      created: formatTime(v.created_at), "created by": v.created_by, storage: v.storage_location,
      profile: profile.exact === false ? "sampled (quantiles and distinct counts approximate)" : "exact",
    })),
    section("Contract results", v.contract_results.length
      ? table(["Contract", "Verdict", "Checks", "Failed", "Warnings", "Checked", "By"], v.contract_results.map((c) => [
        c.contract, h("strong", { class: c.passed ? "ok" : "bad" }, c.passed ? "passed" : "FAILED"), String(c.checks),
        String(c.failed), String(c.warnings), formatTime(c.checked_at), c.checked_by,
      ]), { class: "list", id: "contracts" })
      : h("p", { class: "muted", id: "contracts" }, `No contract check on ${v.ref} yet: modelyard data check ${v.ref} --contract FILE records one.`)),
    section("Columns", table(["Column", "Type", "Nulls", "Distinct", "Min", "Max", "Mean", "Std", "Distribution"], v.schema.map((c) => {
      const p = columns[c.name] || {};
      return [h("strong", {}, c.name), c.type, p.null_fraction === undefined ? "" : `${(100 * p.null_fraction).toFixed(1)}%`,
        formatValue(p.distinct), formatValue(p.min), formatValue(p.max), formatValue(p.mean), formatValue(p.std), distribution(c.name, p)];
    }), { class: "list", id: "profile" })),
    section("Files", table(["Path", "Size", "sha256"], v.files.map((f) => [f.path, formatBytes(f.size), h("code", {}, f.sha256.slice(0, 16))]), { class: "list" })),
  );
}

// A numeric column's histogram, or a categorical column's top values, as small bars.
function distribution(name, p) {
  if (p.histogram && p.histogram.counts.length) {
    const total = p.histogram.counts.reduce((a, b) => a + b, 0) || 1;
    const e = p.histogram.edges;
    return barChart({ width: 240, height: 64, compact: true, labels: p.histogram.counts.map((_, i) => `[${formatValue(e[i])}, ${formatValue(e[i + 1])})`),
      series: [{ name: "rows", color: "#1f77b4", values: p.histogram.counts.map((n) => n / total) }] });
  }
  if (p.top && p.top.length) {
    const total = p.count || p.top.reduce((a, t) => a + t[1], 0) || 1;
    return barChart({ width: 240, height: 64, compact: true, labels: p.top.map((t) => String(t[0])),
      series: [{ name: "rows", color: "#1f77b4", values: p.top.map((t) => t[1] / total) }] });
  }
  return "";
}
