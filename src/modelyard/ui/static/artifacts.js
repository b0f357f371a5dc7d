// A run's artifact browser: a lazily expanded tree and a preview of the chosen file.
// Previews: images (as blob: URLs, since <img> cannot send the token), text, CSV and
// Parquet heads as tables, HTML in an iframe sandboxed without scripts. Everything else
// (and anything over PREVIEW_LIMIT) gets a download button.

import { api, artifact } from "./api.js";
import { errorBox, formatBytes, h, table } from "./dom.js";

const PREVIEW_LIMIT = 10 * 1024 * 1024;
const TEXT_LIMIT = 512 * 1024;
const HEAD_ROWS = 100;
const IMAGE = new Set(["png", "jpg", "jpeg", "gif", "webp", "bmp", "svg"]);
const TEXT = new Set(["txt", "log", "json", "yaml", "yml", "md", "py", "cfg", "ini", "toml", "xml", "sql", "sh", "r", "ipynb", "jsonl"]);
const TEXT_NAMES = new Set(["MLmodel", "requirements.txt", "conda.yaml", "python_env.yaml", "LICENSE"]);

function kind(path) {
  const name = path.split("/").pop();
  const dot = name.lastIndexOf(".");
  const ext = dot > 0 ? name.slice(dot + 1).toLowerCase() : "";
  if (IMAGE.has(ext)) return "image";
  if (ext === "html" || ext === "htm") return "html";
  if (ext === "csv" || ext === "tsv") return "csv";
  if (ext === "parquet") return "parquet";
  if (TEXT.has(ext) || TEXT_NAMES.has(name) || !ext) return "text";
  return "binary";
}

export function artifactBrowser(runId) {
  const preview = h("div", { class: "preview", "aria-live": "polite" }, h("p", { class: "muted" }, "Choose a file to preview it."));
  const tree = h("ul", { class: "tree" });
  let objectUrl = null;

  function release() {
    if (objectUrl) URL.revokeObjectURL(objectUrl);
    objectUrl = null;
  }

  async function list(path, into) {
    const answer = await api.get(`/api/v1/runs/${encodeURIComponent(runId)}/artifacts`, { path });
    if (!answer.files.length && !path) into.append(h("li", { class: "muted" }, "No artifacts."));
    for (const file of answer.files) {
      const name = file.path.split("/").pop();
      if (file.is_dir) {
        const children = h("ul", { class: "tree", hidden: true });
        let loaded = false;
        const toggle = h("button", { type: "button", class: "link dir", onclick: async () => {
          children.hidden = !children.hidden;
          if (!loaded) { loaded = true; await list(file.path, children).catch((e) => children.append(h("li", {}, errorBox(e)))); }
        } }, `${name}/`);
        into.append(h("li", {}, toggle, children));
      } else {
        const open = h("button", { type: "button", class: "link file", dataset: { path: file.path }, onclick: () => show(file) }, name);
        into.append(h("li", {}, open, " ", h("span", { class: "muted" }, formatBytes(file.file_size))));
      }
    }
  }

  async function download(path) {
    const blob = await artifact(runId, path, "blob");
    const link = h("a", { href: URL.createObjectURL(blob), download: path.split("/").pop() });
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 1000);
  }

  async function show(file) {
    release();
    const what = kind(file.path);
    const header = h("div", { class: "preview-head" }, h("strong", {}, file.path), " ",
      h("button", { type: "button", onclick: () => download(file.path).catch((e) => preview.append(errorBox(e))) }, "Download"));
    preview.replaceChildren(header, h("p", { class: "muted" }, "Loading…"));
    let body;
    try {
      if (file.file_size > PREVIEW_LIMIT || what === "binary") {
        body = h("p", { class: "muted" }, what === "binary" ? "No preview for this type of file." : `Too large to preview (${formatBytes(file.file_size)}).`);
      } else if (what === "image") {
        objectUrl = URL.createObjectURL(await artifact(runId, file.path, "blob"));
        body = h("img", { src: objectUrl, alt: file.path, class: "artifact-image" });
      } else if (what === "html") {
        // No allow-scripts and no allow-same-origin: the page cannot run code or reach ours.
        body = h("iframe", { sandbox: "", title: file.path, class: "artifact-html", referrerpolicy: "no-referrer" });
        body.srcdoc = await artifact(runId, file.path, "text");
      } else if (what === "csv") {
        const text = await artifact(runId, file.path, "text");
        body = csvTable(text, file.path.toLowerCase().endsWith(".tsv") ? "\t" : ",");
      } else if (what === "parquet") {
        const head = await api.get(`/api/v1/runs/${encodeURIComponent(runId)}/artifact-table`, { path: file.path, rows: HEAD_ROWS });
        body = h("div", {}, h("p", { class: "muted" }, `First ${head.rows.length} of ${head.total_rows} rows.`),
          h("div", { class: "scroll" }, table(head.columns, head.rows.map((r) => r.map((c) => (c === null ? "" : String(c)))), { class: "data" })));
      } else {
        const text = await artifact(runId, file.path, "text");
        const cut = text.length > TEXT_LIMIT;
        body = h("div", {}, h("pre", { class: "text" }, cut ? text.slice(0, TEXT_LIMIT) : text), cut ? h("p", { class: "muted" }, "Truncated: download the file for the rest.") : null);
      }
    } catch (error) {
      body = errorBox(error);
    }
    preview.replaceChildren(header, body);
  }

  const root = h("div", { class: "artifacts" }, h("div", { class: "tree-pane" }, tree), preview);
  const ready = list("", tree).catch((e) => tree.append(h("li", {}, errorBox(e))));
  return { element: root, ready, cleanup: release };
}

// The first HEAD_ROWS rows of a CSV text (RFC 4180 quotes), as a table.
export function csvTable(text, separator = ",") {
  const rows = parseCsv(text, separator, HEAD_ROWS + 1);
  if (!rows.length) return h("p", { class: "muted" }, "Empty file.");
  const [columns, ...data] = rows;
  return h("div", {}, h("p", { class: "muted" }, `First ${data.length} rows.`),
    h("div", { class: "scroll" }, table(columns, data, { class: "data" })));
}

export function parseCsv(text, separator, limit) {
  const rows = [];
  let row = [], cell = "", quoted = false;
  for (let i = 0; i < text.length && rows.length < limit; i += 1) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { cell += '"'; i += 1; }
      else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === separator) { row.push(cell); cell = ""; }
    else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i += 1;
      row.push(cell); rows.push(row); row = []; cell = "";
    } else cell += c;
  }
  if ((cell || row.length) && rows.length < limit) { row.push(cell); rows.push(row); }
  return rows;
}
