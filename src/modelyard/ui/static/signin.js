// The sign-in form shown when the API answers 401 (`modelyard server --auth`). The token
// (from `modelyard tokens create --user NAME`) is kept in this tab's sessionStorage only:
// closing the tab signs out, and other sites cannot read it.

import { api, token } from "./api.js";
import { errorBox, h } from "./dom.js";

export function signInForm(onDone, problem) {
  const input = h("input", { type: "password", name: "token", autocomplete: "off", placeholder: "API token", size: 48, required: true });
  const status = h("div");
  if (problem) status.append(errorBox(problem));
  async function submit(event) {
    event.preventDefault();
    token.set(input.value);
    status.replaceChildren(h("p", { class: "muted" }, "Checking…"));
    try {
      await api.get("/api/v1/experiments", { max_results: 1 });
      onDone();
    } catch (error) {
      token.clear();
      status.replaceChildren(errorBox(error));
    }
  }
  return h("section", { class: "card signin" },
    h("h2", {}, "Sign in"),
    h("p", {}, "This server requires an API token. An admin creates one with ",
      h("code", {}, "modelyard tokens create --user NAME"), "."),
    h("form", { onsubmit: submit }, input, " ", h("button", { type: "submit" }, "Sign in")),
    status,
    h("p", { class: "muted" }, "The token stays in this browser tab (sessionStorage) and is sent only to this server."));
}

export function sessionControl(onChange) {
  if (!token.get()) return h("span");
  return h("button", { class: "link", type: "button", onclick: () => { token.clear(); onChange(); } }, "Sign out");
}
