// The registered models (MLflow's registered-models/search, paged by its page tokens).
import { api } from "../api.js";
import { formatTime, h, route, table, withQuery } from "../dom.js";

export async function render(view, { query }) {
  document.title = "Models · modelyard";
  const name = query.get("name") || "";
  const page = query.get("page") || "";
  const answer = await api.get("/api/2.0/mlflow/registered-models/search", {
    max_results: 100, page_token: page,
    filter: name ? `name ILIKE '%${name.replaceAll("'", "''")}%'` : "",
  });
  const models = answer.registered_models || [];
  const search = h("input", { type: "search", name: "name", value: name, placeholder: "Name contains…" });
  const form = h("form", { class: "toolbar", onsubmit: (e) => { e.preventDefault(); location.hash = withQuery("#/models", { name: search.value }); } },
    search, " ", h("button", { type: "submit" }, "Search"));
  const rows = models.map((m) => [
    h("a", { href: route("models", m.name) }, m.name),
    (m.latest_versions || []).map((v) => h("a", { class: "tag", href: route("models", m.name, "versions", v.version) }, `v${v.version} ${v.current_stage}`)),
    (m.aliases || []).map((a) => h("a", { class: "tag", href: route("models", m.name, "versions", a.version) }, `@${a.alias} → v${a.version}`)),
    m.description || "",
    m.user_id || "",
    formatTime(m.last_updated_timestamp),
  ]);
  view.append(
    h("h1", {}, "Registered models"),
    form,
    rows.length ? table(["Name", "Latest versions", "Aliases", "Description", "Created by", "Last update"], rows, { class: "list", id: "models" })
      : h("p", { class: "muted" }, name ? "No model matches." : "No registered models yet."),
    answer.next_page_token
      ? h("p", {}, h("a", { href: withQuery("#/models", { name, page: answer.next_page_token }) }, "Next page →"))
      : null);
}
