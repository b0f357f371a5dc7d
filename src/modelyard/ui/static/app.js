// The shell: header navigation, the hash router, sign-in on 401, and one error box for
// every page. A page module exports `render(view, { params, query })`: it fills `view`
// (a fresh element per navigation, so a slow page that finishes late draws nowhere) and
// may return a cleanup function, called when the user leaves the page.

import { ApiError } from "./api.js";
import { errorBox, h } from "./dom.js";
import { NAV, matchRoute, parseHash } from "./routes.js";
import { sessionControl, signInForm } from "./signin.js";

const main = document.getElementById("page");
let cleanup = null;
let current = 0;

function drawHeader(path) {
  const section = path.split("/").filter(Boolean)[0] || "experiments";
  document.getElementById("nav").replaceChildren(...NAV.map((item) =>
    h("a", { href: item.href, class: item.section === section ? "current" : "" }, item.label)));
  document.getElementById("session").replaceChildren(sessionControl(render));
}

export async function render() {
  const serial = ++current;
  if (typeof cleanup === "function") cleanup();
  cleanup = null;
  const { path, query } = parseHash(location.hash);
  drawHeader(path);
  const view = h("div", { class: "view" });
  main.replaceChildren(view);
  const found = matchRoute(path);
  if (!found) {
    document.title = "Not found · modelyard";
    view.append(h("h1", {}, "Page not found"), h("p", {}, "Nothing here for ", h("code", {}, location.hash), ". ", h("a", { href: "#/" }, "Back to the experiments")));
    return;
  }
  try {
    const page = await found.route.page();
    if (serial !== current) return;
    const done = await page.render(view, { params: found.params, query, route: found.route });
    if (serial === current) cleanup = done || null;
    else if (typeof done === "function") done();
  } catch (error) {
    if (serial !== current) return;
    if (error instanceof ApiError && error.status === 401) {
      view.replaceChildren(signInForm(render, error.message));
    } else {
      view.append(errorBox(error));
      if (!(error instanceof ApiError)) console.warn(error);
    }
  }
}

window.addEventListener("hashchange", render);
render();
