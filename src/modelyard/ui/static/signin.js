// The sign-in form shown when the API answers 401 (`modelyard server --auth`). The token
// (from `modelyard tokens create --user NAME`) is sent once, to POST /api/v1/session,
// which checks it and answers with an HttpOnly, SameSite=Strict session cookie: the page
// never keeps the token, and no script can read the cookie. Signing out clears it.

import { api, session } from "./api.js";
import { errorBox, h } from "./dom.js";

export function signInForm(onDone, problem) {
  const input = h("input", { type: "password", name: "token", autocomplete: "off", placeholder: "API token", size: 48, required: true });
  const status = h("div");
  if (problem) status.append(errorBox(problem));
  async function submit(event) {
    event.preventDefault();
    status.replaceChildren(h("p", { class: "muted" }, "Checking…"));
    try {
      await api.post("/api/v1/session", {}, { bearer: input.value.trim() });
      input.value = "";
      await session(true);
      onDone();
    } catch (error) {
      status.replaceChildren(errorBox(error));
    }
  }
  return h("section", { class: "card signin" },
    h("h2", {}, "Sign in"),
    h("p", {}, "This server requires an API token. An admin creates one with ",
      h("code", {}, "modelyard tokens create --user NAME"), "."),
    h("form", { onsubmit: submit }, input, " ", h("button", { type: "submit" }, "Sign in")),
    status,
    h("p", { class: "muted" }, "The token becomes a session cookie of this server (HttpOnly: no script reads it), gone when the browser closes."));
}

// The header's "user (role) · Sign out", filled in when the session is known.
export function sessionControl(onChange) {
  const box = h("span", { class: "who" });
  session().then((who) => {
    if (!who.auth) return;
    box.replaceChildren(h("span", { class: "muted-light" }, `${who.user} (${who.role})`), " ",
      h("button", { class: "link", type: "button", onclick: async () => {
        await api.delete("/api/v1/session").catch(() => {});
        await session(true).catch(() => {});
        onChange();
      } }, "Sign out"));
  }, () => { /* signed out: the page shows the form */ });
  return box;
}
