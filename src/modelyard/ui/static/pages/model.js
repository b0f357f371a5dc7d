// One registered model: its aliases, its versions (MLflow's registry API) and its audit
// history (/api/v1/models/<name>/audit).
import { api } from "../api.js";
import { formatTime, h, route, section, table } from "../dom.js";
import { auditTable } from "./registry_parts.js";

export async function render(view, { params }) {
  const name = params.name;
  document.title = `${name} · Models · modelyard`;
  const [model, versions, trail] = await Promise.all([
    api.get("/api/2.0/mlflow/registered-models/get", { name }),
    api.get("/api/2.0/mlflow/model-versions/search", {
      filter: `name = '${name.replaceAll("'", "''")}'`, max_results: 1000, order_by: "version_number DESC",
    }),
    api.get(`/api/v1/models/${encodeURIComponent(name)}/audit`, { limit: 200 }),
  ]);
  const m = model.registered_model;
  const aliases = m.aliases || [];
  const rows = (versions.model_versions || []).map((v) => [
    h("a", { href: route("models", name, "versions", v.version) }, `Version ${v.version}`),
    v.current_stage,
    (v.aliases || []).map((a) => h("span", { class: "tag" }, `@${a}`)),
    v.user_id || "",
    formatTime(v.creation_timestamp),
    v.run_id ? h("a", { href: route("runs", v.run_id) }, v.run_id.slice(0, 12)) : "",
    v.description || "",
  ]);
  view.append(
    h("p", { class: "crumbs" }, h("a", { href: "#/models" }, "Models"), " / "),
    h("h1", {}, m.name),
    m.description ? h("p", {}, m.description) : null,
    h("p", { class: "muted" }, `Created by ${m.user_id || "unknown"} on ${formatTime(m.creation_timestamp)}; last update ${formatTime(m.last_updated_timestamp)}.`),
    section("Aliases", aliases.length
      ? table(["Alias", "Version"], aliases.map((a) => [`@${a.alias}`, h("a", { href: route("models", name, "versions", a.version) }, `Version ${a.version}`)]), { id: "aliases" })
      : h("p", { class: "muted" }, "No aliases.")),
    section("Versions", rows.length
      ? table(["Version", "Stage", "Aliases", "Registered by", "Registered", "Source run", "Description"], rows, { class: "list", id: "versions" })
      : h("p", { class: "muted" }, "No versions.")),
    section("Audit history", auditTable(trail.events)));
}
