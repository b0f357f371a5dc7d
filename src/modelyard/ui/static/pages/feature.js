// One feature definition (#/data/features/<kind>/<name>): its spec, code, versions and, for a
// feature view, how fresh each online store's copy is (materialisation watermarks).
import { api } from "../api.js";
import { formatTime, formatValue, h, section, table, withQuery } from "../dom.js";
import { freshnessText } from "./data.js";

export async function render(view, { params }) {
  const { kind, name } = params;
  document.title = `${name} · modelyard`;
  const { definition: d, versions } = await api.get(`/api/v1/features/${encodeURIComponent(kind)}/${encodeURIComponent(name)}`);
  view.append(
    h("p", { class: "crumbs" }, h("a", { href: "#/data" }, "Data and features"), ` / ${kind.replaceAll("_", " ")}`),
    h("h1", {}, `${d.name} v${d.version}`),
    h("p", {}, h("a", { href: withQuery("#/lineage", { node: d.lineage_node }) }, "lineage"),
      ` · registered ${formatTime(d.created_at)}${d.created_by ? ` by ${d.created_by}` : ""}`),
    d.materializations ? section("Freshness", h("p", { id: "freshness" }, freshnessText(d.materializations)),
      d.materializations.length ? table(["Online store", "From", "Up to (watermark)", "Rows", "Updated"], d.materializations.map((m) => [
        h("code", {}, m.store.slice(0, 12)), formatTime(Math.floor(m.start_us / 1000)), formatTime(Math.floor(m.watermark_us / 1000)),
        formatValue(m.rows), formatTime(m.updated_at)]), { class: "list" }) : null) : null,
    section("Definition", h("pre", { class: "json", id: "spec" }, JSON.stringify(d.spec, null, 2))),
    section("Code", d.code ? h("pre", { class: "report", id: "code" }, d.code) : h("p", { class: "muted" }, "No transformation code.")),
    section("Versions", table(["Version", "Digest", "Registered", "By", "Origin"], versions.map((v) => [
      `v${v.version}`, h("code", {}, v.digest.slice(0, 12)), formatTime(v.created_at), v.created_by, v.origin]), { class: "list", id: "versions" })),
  );
}
