// One model version (the link MLflow's UI prints: #/models/<name>/versions/<v>): its
// stage and aliases (MLflow's model-versions/get), the model card, the quality gate's
// recorded verdict and report, approvals with Approve/Reject buttons, and its audit
// history (/api/v1/models/<name>/versions/<v>/governance and .../audit).
//
// The buttons work only for someone the server would accept: an approver who did not
// register the version (four-eyes). Others see why not; the server refuses them anyway.
import { api, atLeast, session } from "../api.js";
import { errorBox, formatTime, h, keyValues, route, section, table } from "../dom.js";
import { auditTable } from "./registry_parts.js";

function cardSection(card) {
  const text = (label, value) => [h("h3", {}, label), value ? h("p", { class: "prose" }, value) : h("p", { class: "muted" }, "Not written yet.")];
  const data = card.training_data || [];
  return section("Model card",
    table(["", ""], [
      ["Flavor", card.flavor || "unknown"],
      ["Source run", card.source_run_id ? h("a", { href: route("runs", card.source_run_id) }, card.source_run_id) : "none"],
      ["Registered by", card.created_by || "unknown"],
      ["Owners", (card.owners || []).join(", ") || "none"],
      ["Inputs", card.signature && card.signature.inputs ? card.signature.inputs.map((s) => s.name || s.type).join(", ") : "not recorded"],
    ], { class: "kv", id: "card-facts" }),
    text("Intended use", card.intended_use),
    text("Limitations", card.limitations),
    text("Known biases", card.known_biases),
    text("Validation methodology", card.validation_methodology),
    h("h3", {}, "Validation results"), keyValues(card.validation_results, "None recorded."),
    h("h3", {}, "Training data"),
    data.length ? table(["Name", "Digest", "Context", "Source"], data.map((d) => [d.name, d.digest.slice(0, 16), d.context, d.source])) : h("p", { class: "muted" }, "None recorded."));
}

// Every verdict recorded on the version, from the audit trail (the newest is the one above).
function verdictHistory(events) {
  const verdicts = events.filter((e) => e.action === "version.gate" && e.after);
  if (verdicts.length < 2) return null;
  return h("details", {}, h("summary", {}, `All ${verdicts.length} recorded verdicts`),
    table(["When", "By", "Verdict", "Policy", "Files"], verdicts.map((e) => [
      formatTime(e.ts), e.actor, h("span", { class: e.after.passed ? "badge good" : "badge bad" }, e.after.passed ? "passed" : "failed"),
      e.after.policy || "", h("code", {}, (e.after.files_digest || "").slice(0, 12)),
    ]), { class: "list", id: "verdicts" }));
}

function gateSection(gate, events) {
  const verdict = gate.verdict;
  const parts = [];
  if (!verdict) {
    parts.push(h("p", { class: "muted" }, "No quality gate recorded for this version."));
  } else {
    parts.push(h("p", {},
      h("span", { class: verdict.passed ? "badge good" : "badge bad", id: "gate-verdict" }, verdict.passed ? "passed" : "failed"),
      ` ${verdict.policy} — judged by ${verdict.created_by} on ${formatTime(verdict.created_at)}`),
      h("p", {}, verdict.summary));
  }
  parts.push(h("p", { class: gate.counts ? "muted" : "warn" },
    gate.counts ? "The promotion policy accepts this verdict (it judged the files the version holds)." : `Promotion would not count it: ${gate.detail}`,
    gate.required ? " This registry requires a passing gate for Production." : ""));
  if (gate.report && gate.report.markdown) {
    parts.push(h("details", {}, h("summary", {}, `Report (${gate.report.folder}/report.md)`), h("pre", { class: "report" }, gate.report.markdown)));
  }
  parts.push(verdictHistory(events));
  return section("Quality gate", ...parts);
}

function approvalsSection(gov, who, reload) {
  const rows = gov.approvals.map((a) => [a.actor, h("span", { class: a.decision === "approved" ? "badge good" : "badge bad" }, a.decision), a.reason || "", formatTime(a.created_at)]);
  const policy = gov.policy;
  const status = h("div", { role: "status" });
  const comment = h("input", { type: "text", name: "comment", placeholder: "Comment (a reason is required to reject)", size: 50 });
  const decide = async (verb) => {
    status.replaceChildren(h("p", { class: "muted" }, "Saving…"));
    const body = verb === "approve" ? { comment: comment.value } : { reason: comment.value };
    try {
      await api.post(`/api/v1/models/${encodeURIComponent(gov.name)}/versions/${gov.version}/${verb}`, body);
      reload();
    } catch (error) {
      status.replaceChildren(errorBox(error));
    }
  };
  const allowed = who && atLeast(who.role, "approver") && gov.you.decision.allowed;
  const why = !who || !atLeast(who.role, "approver")
    ? `Only approvers decide; you are ${who ? `${who.user} (${who.role})` : "not signed in"}.`
    : gov.you.decision.reason;
  return section("Approvals",
    h("p", { class: "muted" }, `Policy: ${policy.required_approvals} approval${policy.required_approvals === 1 ? "" : "s"} needed for Production or ${policy.gated_aliases.map((a) => `@${a}`).join(", ")}`,
      policy.four_eyes ? `; four-eyes: ${gov.created_by}, who registered it, cannot approve` : "",
      policy.approvers ? `; approvers: ${policy.approvers.join(", ")}` : "", "."),
    rows.length ? table(["Who", "Decision", "Comment", "When"], rows, { class: "list", id: "approvals" }) : h("p", { class: "muted", id: "approvals" }, "No decisions yet."),
    h("form", { class: "toolbar decide", onsubmit: (e) => e.preventDefault() },
      comment,
      h("button", { type: "button", name: "approve", disabled: !allowed, onclick: () => decide("approve") }, "Approve"),
      h("button", { type: "button", name: "reject", disabled: !allowed, onclick: () => decide("reject") }, "Reject")),
    allowed ? null : h("p", { class: "muted", id: "why-not" }, why),
    status);
}

const STAGES = ["None", "Staging", "Production", "Archived"];
const MLFLOW = "/api/2.0/mlflow";

// Aliases and the stage, with controls for editors (MLflow's registry API). A gated alias
// (@champion) or Production needs what the policy asks (approvals, a passing gate): the
// server says what is missing.
function promotionSection(v, gov, who, reload) {
  const status = h("div", { role: "status" });
  const change = async (method, path, body) => {
    status.replaceChildren(h("p", { class: "muted" }, "Saving…"));
    try {
      await (method === "DELETE" ? api.delete(path, { body }) : api.post(path, body));
      reload();
    } catch (error) {
      status.replaceChildren(errorBox(error));
    }
  };
  const editor = who && atLeast(who.role, "editor");
  const aliases = (v.aliases || []).map((a) => h("span", { class: "tag" }, `@${a}`,
    editor ? h("button", { type: "button", class: "link", name: `drop-${a}`, title: `Remove @${a}`, onclick: () => change("DELETE", `${MLFLOW}/registered-models/alias`, { name: v.name, alias: a }) }, " ×") : null));
  const parts = [
    table(["", ""], [["Stage", h("span", { id: "stage" }, v.current_stage)], ["Aliases", aliases.length ? aliases : h("span", { class: "muted" }, "none")]], { class: "kv" }),
  ];
  if (editor) {
    const alias = h("input", { type: "text", name: "alias", placeholder: "alias (champion, challenger…)", size: 24 });
    const stage = h("select", { name: "stage" }, STAGES.map((x) => h("option", { value: x, selected: x === v.current_stage }, x)));
    parts.push(h("form", { class: "toolbar", onsubmit: (e) => e.preventDefault() },
      alias, h("button", { type: "button", name: "set-alias", onclick: () => change("POST", `${MLFLOW}/registered-models/alias`, { name: v.name, alias: alias.value.trim(), version: String(v.version) }) }, "Set alias"),
      " ", stage, h("button", { type: "button", name: "set-stage", onclick: () => change("POST", `${MLFLOW}/model-versions/transition-stage`, { name: v.name, version: String(v.version), stage: stage.value, archive_existing_versions: false }) }, "Move to stage")),
    h("p", { class: "muted" }, `Production and ${gov.policy.gated_aliases.map((a) => `@${a}`).join(", ")} need the policy's approvals${gov.gate.required ? " and a passing quality gate" : ""}.`));
  } else {
    parts.push(h("p", { class: "muted" }, `Only editors move versions; you are ${who ? `${who.user} (${who.role})` : "not signed in"}.`));
  }
  parts.push(status);
  return section("Stage and aliases", ...parts);
}

export async function render(view, { params }) {
  const { name, version } = params;
  document.title = `${name} v${version} · Models · modelyard`;
  const base = `/api/v1/models/${encodeURIComponent(name)}`;
  const [answer, gov, trail, who] = await Promise.all([
    api.get("/api/2.0/mlflow/model-versions/get", { name, version }),
    api.get(`${base}/versions/${encodeURIComponent(version)}/governance`),
    api.get(`${base}/audit`, { limit: 500 }),
    session(),
  ]);
  const v = answer.model_version;
  // The version's own events, and the model's alias events that point at or away from it.
  const about = (side) => side && String(side.version) === String(version);
  const mine = trail.events.filter((e) => e.entity === `model:${name}/${version}`
    || (e.action.startsWith("alias.") && (about(e.before) || about(e.after))));
  const reload = () => { view.replaceChildren(); render(view, { params }).catch((error) => view.append(errorBox(error))); };
  view.append(
    h("p", { class: "crumbs" }, h("a", { href: "#/models" }, "Models"), " / ", h("a", { href: route("models", name) }, name), " / "),
    h("h1", {}, `${name} — version ${v.version}`),
    section("Version", table(["", ""], [
      ["Registered by", v.user_id || ""],
      ["Registered", formatTime(v.creation_timestamp)],
      ["Source", h("code", {}, v.source || "")],
      ["Run", v.run_id ? h("a", { href: route("runs", v.run_id) }, v.run_id) : "none"],
      ["Files digest", h("code", {}, gov.files_digest || "")],
      ["Status", v.status],
      ["Tags", keyValues(Object.fromEntries((v.tags || []).map((t) => [t.key, t.value])), "None.")],
      ["Description", v.description || ""],
    ], { class: "kv" })),
    promotionSection(v, gov, who, reload),
    approvalsSection(gov, who, reload),
    gateSection(gov.gate, mine),
    cardSection(gov.card),
    section("Audit history of this version", auditTable(mine)));
  return null;
}

