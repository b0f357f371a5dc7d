// Review a logged prediction: find it by request id, see its inputs and outputs as the
// prediction log holds them, flag it as wrong and enter the right value. The value is
// stored as feedback on the answer users got, with you recorded as its reviewer
// (/api/v1/predictions/<request id> and .../review).
import { api, atLeast, session } from "../api.js";
import { errorBox, formatTime, h, route, section, table } from "../dom.js";

function json(value) {
  return h("pre", { class: "json" }, value === null || value === undefined ? "—" : typeof value === "string" ? value : JSON.stringify(value, null, 2));
}

function rowsOf(outputs) {
  return Array.isArray(outputs) ? outputs.length : 1;
}

// The logged inputs (columns of values, or a list of records) beside each row's output, as
// one table; anything else as JSON.
function rowsTable(inputs, outputs) {
  let columns = null, cell = null, n = 0;
  if (inputs && !Array.isArray(inputs) && typeof inputs === "object" && Object.values(inputs).every(Array.isArray)) {
    columns = Object.keys(inputs);
    n = Math.max(0, ...columns.map((c) => inputs[c].length));
    cell = (i, c) => inputs[c][i];
  } else if (Array.isArray(inputs) && inputs.every((r) => r && typeof r === "object" && !Array.isArray(r))) {
    columns = [...new Set(inputs.flatMap((r) => Object.keys(r)))];
    n = inputs.length;
    cell = (i, c) => inputs[i][c];
  }
  if (!columns) return null;
  const shown = (v) => (v === null || v === undefined ? "" : typeof v === "object" ? JSON.stringify(v) : String(v));
  const predicted = (i) => (Array.isArray(outputs) ? shown(outputs[i]) : i === 0 ? shown(outputs) : "");
  return table(["Row", ...columns, "Prediction"], Array.from({ length: n }, (_, i) => [String(i), ...columns.map((c) => shown(cell(i, c))), h("strong", {}, predicted(i))]), { class: "list rows" });
}

function reviewForm(requestId, primary, who, done) {
  if (!who || !atLeast(who.role, "editor")) {
    return h("p", { class: "muted", id: "why-not" }, `Only editors enter feedback; you are ${who ? `${who.user} (${who.role})` : "not signed in"}.`);
  }
  const rows = rowsOf(primary.outputs);
  const row = h("input", { type: "number", name: "row", min: 0, max: rows - 1, value: "0", size: 4 });
  const label = h("input", { type: "text", name: "label", placeholder: "The right label (a class)", size: 24 });
  const value = h("input", { type: "number", name: "value", step: "any", placeholder: "or the right number", size: 16 });
  const status = h("div", { role: "status" });
  async function submit(event) {
    event.preventDefault();
    status.replaceChildren(h("p", { class: "muted" }, "Saving…"));
    const body = { deployment: primary.deployment, row: Number(row.value || 0) };
    if (label.value !== "") body.label = label.value;
    if (value.value !== "") body.value = Number(value.value);
    try {
      done(await api.post(`/api/v1/predictions/${encodeURIComponent(requestId)}/review`, body));
      status.replaceChildren(h("p", { class: "muted" }, `Stored as feedback, reviewed by ${who.user}.`));
      label.value = "";
      value.value = "";
    } catch (error) {
      status.replaceChildren(errorBox(error));
    }
  }
  return h("form", { class: "review", onsubmit: submit },
    h("p", {}, "This prediction is wrong. The right value is:"),
    h("div", { class: "toolbar" }, rows > 1 ? ["Row ", row] : null, label, " or ", value,
      h("button", { type: "submit", name: "submit-review" }, "Submit as feedback")),
    status);
}

function feedbackTable(feedback) {
  if (!feedback.length) return h("p", { class: "muted", id: "feedback" }, "No feedback yet.");
  return table(["Row", "Label", "Value", "Correct", "Variant", "Version", "Reviewer", "When"], feedback.map((f) => [
    String(f.row), f.label ?? "", f.value ?? "", f.correct === null ? "unknown" : f.correct ? "yes" : "no",
    f.variant || "", f.model_version ?? "", f.reviewer || h("span", { class: "muted" }, "sent by a client"), formatTime(f.created_at),
  ]), { class: "list", id: "feedback" });
}

function draw(view, answer, who) {
  const primary = answer.answers.find((a) => a.role === "primary");
  const feedback = h("div", {}, feedbackTable(answer.feedback));
  view.append(
    section("Logged answers", table(["When", "Deployment", "Revision", "Variant", "Model", "Role", "Status", "Latency (ms)"], answer.answers.map((a) => [
      formatTime(a.ts_ms), h("a", { href: route("deployments", a.deployment) }, a.deployment), String(a.revision), a.variant,
      h("a", { href: route("models", a.model, "versions", a.version) }, `${a.model} v${a.version}`), a.role, a.status, String(a.latency_ms),
    ]), { class: "list", id: "answers" }),
    answer.answers.map((a) => {
      const rows = a.error ? null : rowsTable(a.inputs, a.outputs);
      return [h("h3", {}, `${a.role === "primary" ? "Answer" : "Shadow answer"} of ${a.variant} (${a.model} v${a.version})`),
        rows || h("div", { class: "io" },
          h("div", {}, h("h3", {}, "Inputs"), json(a.inputs)),
          h("div", {}, h("h3", {}, "Outputs"), a.error ? h("p", { class: "error" }, a.error) : json(a.outputs)))];
    })),
    section("Review", primary ? reviewForm(answer.request_id, primary, who, (next) => feedback.replaceChildren(feedbackTable(next.feedback))) : h("p", { class: "muted" }, "No primary answer to review.")),
    section("Feedback", feedback));
}

export async function render(view, { params, query }) {
  const requestId = params.requestId || query.get("request_id") || "";
  document.title = `${requestId ? `${requestId} · ` : ""}Review · modelyard`;
  const input = h("input", { type: "search", name: "request_id", value: requestId, placeholder: "Request id (the X-Request-Id a prediction answered with)", size: 50 });
  view.append(
    h("h1", {}, "Review a prediction"),
    h("form", { class: "toolbar", onsubmit: (e) => { e.preventDefault(); if (input.value.trim()) location.hash = route("review", input.value.trim()); } },
      input, h("button", { type: "submit" }, "Find")));
  if (!requestId) {
    view.append(h("p", { class: "muted" }, "Enter the request id of a served prediction: its inputs and outputs are read from the prediction log."));
    return;
  }
  const [answer, who] = await Promise.all([
    api.get(`/api/v1/predictions/${encodeURIComponent(requestId)}`, { deployment: query.get("deployment") }),
    session(),
  ]);
  draw(view, answer, who);
}
