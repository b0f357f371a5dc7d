// The experiments list (native API, paged by the server's page tokens).
import { api } from "../api.js";
import { formatTime, h, route, table, withQuery } from "../dom.js";

export async function render(view, { query }) {
  document.title = "Experiments · modelyard";
  const name = query.get("name") || "";
  const page = query.get("page") || "";
  const answer = await api.get("/api/v1/experiments", {
    max_results: 100, page_token: page, name_like: name ? `%${name}%` : "",
  });
  const search = h("input", { type: "search", name: "name", value: name, placeholder: "Name contains…" });
  const form = h("form", { class: "toolbar", onsubmit: (e) => { e.preventDefault(); location.hash = withQuery("#/experiments", { name: search.value }); } },
    search, " ", h("button", { type: "submit" }, "Search"));
  const rows = answer.experiments.map((x) => [
    h("a", { href: route("experiments", x.experiment_id) }, x.name),
    x.experiment_id,
    formatTime(x.creation_time),
    formatTime(x.last_update_time),
  ]);
  view.append(
    h("h1", {}, "Experiments"),
    form,
    rows.length ? table(["Name", "ID", "Created", "Last update"], rows, { class: "list", id: "experiments" })
      : h("p", { class: "muted" }, name ? "No experiment matches." : "No experiments yet."),
    answer.next_page_token
      ? h("p", {}, h("a", { href: withQuery("#/experiments", { name, page: answer.next_page_token }) }, "Next page →"))
      : null);
}
