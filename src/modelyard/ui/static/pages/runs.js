// An experiment's runs: MLflow's filter language (the server's runs/search), sorting by any
// column, a choice of param/metric/tag columns, server-side pages, and a selection to
// compare. The state lives in the URL fragment (filter, order, page), so a view can be
// shared and Back works; the column choice is remembered per experiment in localStorage.

import { api, flatRun } from "../api.js";
import { errorBox, formatDuration, formatTime, formatValue, h, route, withQuery } from "../dom.js";

const PAGE_SIZES = [25, 50, 100, 500];
const DEFAULT_COLUMNS = 8;
// Per experiment and query: each page token seen -> { n: its page number, prev: the token
// of the page before it }, so "Previous" and the page number survive Back and Forward.
const pagesSeen = new Map();
let pickerOpen = false;

const ATTRIBUTES = [
  { label: "Run", order: "attributes.run_name", cell: (r) => h("a", { href: route("experiments", r.experiment_id, "runs", r.run_id), class: "run-link" }, r.name || r.run_id) },
  { label: "Status", order: "attributes.status", cell: (r) => h("span", { class: `status ${String(r.status).toLowerCase()}` }, r.status) },
  { label: "Started", order: "attributes.start_time", cell: (r) => formatTime(r.start_time) },
  { label: "Duration", order: null, cell: (r) => formatDuration(r.start_time, r.end_time) },
  { label: "User", order: "attributes.user_id", cell: (r) => r.user_id || "" },
];

// "metrics.`a b`" for the order_by grammar; the key is quoted whatever it holds.
function orderKey(kind, key) {
  return `${kind}.\`${key.replaceAll("`", "")}\``;
}

function columnId(kind, key) { return `${kind}\u0000${key}`; }
function splitColumn(id) { const [kind, key] = id.split("\u0000"); return { kind, key }; }

function storedColumns(experimentId) {
  try { return JSON.parse(localStorage.getItem(`modelyard.columns.${experimentId}`)); } catch { return null; }
}

function saveColumns(experimentId, ids) {
  localStorage.setItem(`modelyard.columns.${experimentId}`, JSON.stringify(ids));
}

export async function render(view, { params, query }) {
  const experimentId = params.experimentId;
  const filter = query.get("filter") || "";
  const order = query.get("order") || "";
  const page = query.get("page") || "";
  const size = PAGE_SIZES.includes(Number(query.get("size"))) ? Number(query.get("size")) : 50;
  const base = route("experiments", experimentId);
  const stateKey = `${experimentId}|${filter}|${order}|${size}`;
  const go = (changes) => { location.hash = withQuery(base, { filter, order, size: size === 50 ? "" : size, ...changes }); };

  // Both requests at once; a bad filter is answered below the search box.
  const search = api.post("/api/2.0/mlflow/runs/search", {
    experiment_ids: [experimentId], filter, order_by: order ? [order] : [],
    max_results: size, page_token: page || undefined,
  });
  search.catch(() => {}); // handled where it is awaited
  const experiment = await api.get(`/api/v1/experiments/${encodeURIComponent(experimentId)}`);
  document.title = `${experiment.name} · modelyard`;
  view.append(h("p", { class: "crumbs" }, h("a", { href: "#/experiments" }, "Experiments"), " / "),
    h("h1", {}, experiment.name), h("p", { class: "muted" }, `Experiment ${experiment.experiment_id}`));

  const filterInput = h("input", { type: "search", name: "filter", value: filter, size: 60, placeholder: "metrics.rmse < 0.5 and params.model = 'lgbm'" });
  view.append(h("form", { class: "toolbar", id: "run-filter", onsubmit: (e) => { e.preventDefault(); go({ filter: filterInput.value.trim() }); } },
    filterInput, " ", h("button", { type: "submit" }, "Search"),
    filter ? h("button", { type: "button", class: "link", onclick: () => go({ filter: "" }) }, "Clear") : null));

  let answer;
  try {
    answer = await search;
  } catch (error) {
    if (error.status === 400) { view.append(errorBox(error)); return; } // a bad filter: say why
    throw error;
  }
  const runs = (answer.runs || []).map(flatRun);

  // Columns: every key seen on this page; chosen ones stored, else the first few.
  const available = [];
  for (const kind of ["metrics", "params", "tags"]) {
    const keys = new Set();
    for (const r of runs) for (const k of Object.keys(r[kind] || {})) if (kind !== "tags" || !k.startsWith("mlflow.")) keys.add(k);
    for (const k of [...keys].sort()) available.push(columnId(kind, k));
  }
  // A chosen key missing from this page shows as blank cells.
  const columns = storedColumns(experimentId) || available.filter((id) => !id.startsWith("tags")).slice(0, DEFAULT_COLUMNS);

  const selected = new Set();
  const compareButton = h("button", { type: "button", id: "compare", disabled: true, onclick: () => {
    location.hash = withQuery("#/compare", { runs: [...selected].join(","), experiment: experimentId });
  } }, "Compare selected");

  const picker = h("details", { class: "columns", open: pickerOpen, ontoggle: (e) => { pickerOpen = e.target.open; } }, h("summary", {}, "Columns"),
    h("div", { class: "column-list" }, available.length ? available.map((id) => {
      const { kind, key } = splitColumn(id);
      return h("label", {}, h("input", { type: "checkbox", name: "column", value: `${kind}.${key}`, checked: columns.includes(id), onchange: (e) => {
        const next = e.target.checked ? [...columns, id] : columns.filter((c) => c !== id);
        saveColumns(experimentId, next);
        window.dispatchEvent(new HashChangeEvent("hashchange")); // draw again with them
      } }), ` ${kind}.${key}`);
    }) : h("span", { class: "muted" }, "No params, metrics or tags on this page.")));

  const sizeSelect = h("select", { name: "page-size", onchange: () => go({ size: sizeSelect.value }) },
    PAGE_SIZES.map((n) => h("option", { value: n, selected: n === size }, `${n} per page`)));
  view.append(h("div", { class: "toolbar" }, picker, " ", sizeSelect, " ", compareButton));

  function sortHeader(label, key) {
    if (!key) return h("th", {}, label);
    const [current, direction] = order.split(" ");
    const active = current === key;
    const next = active && direction === "ASC" ? `${key} DESC` : active ? `${key} ASC` : `${key} DESC`;
    return h("th", { class: active ? "sorted" : "" },
      h("button", { type: "button", class: "link sort", dataset: { order: key }, onclick: () => go({ order: next }) },
        label, active ? (direction === "ASC" ? " ▲" : " ▼") : ""));
  }

  const head = h("tr", {}, h("th", {}, ""),
    ATTRIBUTES.map((a) => sortHeader(a.label, a.order)),
    columns.map((id) => { const { kind, key } = splitColumn(id); return sortHeader(`${kind.slice(0, -1)}: ${key}`, orderKey(kind, key)); }));
  const body = runs.map((r) => h("tr", { dataset: { runId: r.run_id } },
    h("td", {}, h("input", { type: "checkbox", name: "select-run", value: r.run_id, "aria-label": "Select run", onchange: (e) => {
      if (e.target.checked) selected.add(r.run_id); else selected.delete(r.run_id);
      compareButton.disabled = selected.size < 1;
      compareButton.textContent = selected.size ? `Compare ${selected.size} selected` : "Compare selected";
    } })),
    ATTRIBUTES.map((a) => h("td", {}, a.cell(r))),
    columns.map((id) => { const { kind, key } = splitColumn(id); return h("td", { class: kind === "metrics" ? "num" : "" }, formatValue((r[kind] || {})[key])); })));

  view.append(runs.length
    ? h("div", { class: "scroll" }, h("table", { class: "list runs", id: "runs" }, h("thead", {}, head), h("tbody", {}, body)))
    : h("p", { class: "muted" }, filter ? "No run matches this filter." : "No runs yet."));

  // Pages: the server's tokens forward, the remembered ones back (a page opened from a
  // link without that memory goes back to the first).
  if (!pagesSeen.has(stateKey)) pagesSeen.set(stateKey, new Map([["", { n: 1, prev: "" }]]));
  const seen = pagesSeen.get(stateKey);
  const here = seen.get(page);
  const nav = h("div", { class: "pager" },
    h("button", { type: "button", id: "prev-page", disabled: !page, onclick: () => go({ page: here ? here.prev : "" }) }, "← Previous"),
    h("span", { class: "muted" }, ` ${here ? `Page ${here.n}` : "A later page"} · ${runs.length} runs `),
    h("button", { type: "button", id: "next-page", disabled: !answer.next_page_token, onclick: () => {
      seen.set(answer.next_page_token, { n: here ? here.n + 1 : 2, prev: page });
      go({ page: answer.next_page_token });
    } }, "Next →"));
  view.append(nav);
}
