// Building the page from data without ever parsing HTML: every string becomes a text node,
// so a run named "<img src=x onerror=alert(1)>" shows as those characters. Attribute names
// come from our code; attribute values are set as properties or plain attributes, and
// links are limited to safe schemes.

const PROPERTIES = new Set(["value", "checked", "disabled", "selected", "indeterminate"]);
const SAFE_HREF = /^(#|\/(?!\/)|https?:|blob:)/i;

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), value);
    } else if (name === "class") {
      el.className = value;
    } else if (name === "dataset") {
      Object.assign(el.dataset, value);
    } else if (name === "href" || name === "src") {
      el.setAttribute(name, safeUrl(value));
    } else if (PROPERTIES.has(name)) {
      el[name] = value;
    } else {
      el.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function safeUrl(url) {
  const text = String(url);
  return SAFE_HREF.test(text) ? text : "#";
}

// A link inside the app: "#/experiments/2" from ["experiments", "2"], each part encoded.
export function route(...parts) {
  return "#/" + parts.map((p) => encodeURIComponent(String(p))).join("/");
}

export function withQuery(hash, query) {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v !== null && v !== undefined && v !== "") params.set(k, v);
  }
  const text = params.toString();
  return text ? `${hash}?${text}` : hash;
}

// A table from column names and rows of cells (strings, numbers or nodes).
export function table(columns, rows, attrs = {}) {
  const labelled = columns.some((c) => c !== "");
  return h("table", attrs,
    labelled ? h("thead", {}, h("tr", {}, columns.map((c) => h("th", {}, c)))) : null,
    h("tbody", {}, rows.map((row) => h("tr", {}, row.map((cell) => h("td", {}, cell))))));
}

// Key/value pairs as a two-column table; an empty map says so.
export function keyValues(map, empty = "None.") {
  const keys = Object.keys(map || {}).sort();
  if (!keys.length) return h("p", { class: "muted" }, empty);
  return table(["Key", "Value"], keys.map((k) => [k, formatValue(map[k])]), { class: "kv" });
}

export function section(title, ...children) {
  return h("section", { class: "card" }, h("h2", {}, title), ...children);
}

export function errorBox(error) {
  return h("div", { class: "error", role: "alert" }, error && error.message ? error.message : String(error));
}

export function formatValue(value) {
  if (value === null || value === undefined) return "";
  if (typeof value === "number") return formatNumber(value);
  if (typeof value === "object" && "value" in value) return formatNumber(value.value);
  return String(value);
}

export function formatNumber(value) {
  if (typeof value !== "number") return String(value);
  if (Number.isInteger(value)) return String(value);
  const abs = Math.abs(value);
  return abs !== 0 && (abs < 1e-4 || abs >= 1e6) ? value.toExponential(4) : String(+value.toPrecision(6));
}

export function formatTime(ms) {
  if (!ms) return "";
  const d = new Date(ms);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function formatDuration(start, end) {
  if (!start || !end) return "";
  const s = Math.max(0, (end - start) / 1000);
  if (s < 60) return `${s.toFixed(1)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}

export function formatBytes(n) {
  if (n === null || n === undefined) return "";
  const units = ["B", "KB", "MB", "GB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return `${i ? n.toFixed(1) : n} ${units[i]}`;
}
