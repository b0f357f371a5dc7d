// The deployments: each one's environment, revision and traffic split (/api/v1/deployments).
import { api } from "../api.js";
import { formatTime, h, route, table } from "../dom.js";
import { splitBar } from "./deployment_parts.js";

export async function render(view) {
  document.title = "Deployments · modelyard";
  const { deployments } = await api.get("/api/v1/deployments");
  const rows = deployments.map((d) => [
    h("a", { href: route("deployments", d.name) }, d.name),
    d.environment,
    String(d.current_revision),
    d.policy.kind,
    splitBar(d.policy),
    formatTime(d.updated_at),
  ]);
  view.append(
    h("h1", {}, "Deployments"),
    rows.length ? table(["Name", "Environment", "Revision", "Kind", "Traffic", "Last change"], rows, { class: "list", id: "deployments" })
      : h("p", { class: "muted" }, "No deployments yet (", h("code", {}, "modelyard deploy create NAME models:/MODEL/VERSION"), ")."));
}
