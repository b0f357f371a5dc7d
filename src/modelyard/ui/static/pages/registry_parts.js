// Pieces the registry pages share: the audit table and a changes summary.
import { formatTime, h, table } from "../dom.js";

function changes(event) {
  const keys = new Set([...Object.keys(event.before || {}), ...Object.keys(event.after || {})]);
  return [...keys].sort().map((k) => {
    const before = event.before && k in event.before ? JSON.stringify(event.before[k]) : "—";
    const after = event.after && k in event.after ? JSON.stringify(event.after[k]) : "—";
    return h("div", { class: "change" }, h("code", {}, k), ": ", before, " → ", after);
  });
}

export function auditTable(events) {
  if (!events.length) return h("p", { class: "muted" }, "No events.");
  return table(["#", "When", "Who", "Action", "Entity", "Changes"], events.map((e) => [
    String(e.seq), formatTime(e.ts), e.actor, e.action, e.entity, h("div", { class: "changes" }, changes(e)),
  ]), { class: "list audit", id: "audit" });
}
