// Sections whose pages are not in this UI yet: say so instead of showing nothing.
import { h } from "../dom.js";

export async function render(view, { route }) {
  document.title = "Not available yet · modelyard";
  view.append(
    h("h1", {}, "Not in the web UI yet"),
    h("p", {}, `The ${route.room || "requested"} pages are not part of this version of the web UI. `,
      "The same data is available from the command line (", h("code", {}, "modelyard --help"), ") and the API (",
      h("a", { href: "/api/v1/openapi.json" }, "/api/v1/openapi.json"), ")."),
    h("p", {}, h("a", { href: "#/experiments" }, "Back to the experiments")));
}
