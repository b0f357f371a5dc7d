// The page table: a URL fragment pattern and the module that renders it. Adding a page is
// one module in pages/ plus one entry here (and one in NAV to list it in the header).
// Patterns match "#/..." paths: ":name" is one segment (decoded), "*" the rest. The first
// match wins. The mlflow client prints links of these shapes ("View run at
// http://host/#/experiments/2/runs/<id>", "View experiment at .../#/experiments/2"), and
// MLflow's UI adds sub-pages (".../runs/<id>/artifacts", ".../overview").

const experiments = () => import("./pages/experiments.js");
const runs = () => import("./pages/runs.js");
const run = () => import("./pages/run.js");
const compare = () => import("./pages/compare.js");
const notYet = () => import("./pages/not_yet.js");
const models = () => import("./pages/models.js");
const model = () => import("./pages/model.js");
const modelVersion = () => import("./pages/model_version.js");
const deployments = () => import("./pages/deployments.js");
const deployment = () => import("./pages/deployment.js");
const review = () => import("./pages/review.js");

const monitoring = () => import("./pages/monitoring.js");
const data = () => import("./pages/data.js");
const feature = () => import("./pages/feature.js");
const lineage = () => import("./pages/lineage.js");

export const ROUTES = [
  { path: "/", page: experiments },
  { path: "/experiments", page: experiments },
  { path: "/experiments/:experimentId", page: runs },
  { path: "/experiments/:experimentId/runs/:runId", page: run },
  { path: "/experiments/:experimentId/runs/:runId/*", page: run },
  { path: "/experiments/:experimentId/*", page: runs },
  { path: "/runs/:runId", page: run },
  { path: "/compare", page: compare },
  { path: "/compare-runs", page: compare },
  { path: "/models", page: models },
  { path: "/models/:name", page: model },
  { path: "/models/:name/versions/:version", page: modelVersion },
  { path: "/models/:name/versions/:version/*", page: modelVersion },
  { path: "/models/:name/*", page: model },
  { path: "/deployments", page: deployments },
  { path: "/deployments/:name", page: deployment },
  { path: "/review", page: review },
  { path: "/review/:requestId", page: review },
  { path: "/monitoring", page: monitoring },
  { path: "/monitoring/:deployment", page: monitoring },
  { path: "/data", page: data },
  { path: "/data/datasets/:name/versions/:version", page: data },
  { path: "/data/features/:kind/:name", page: feature },
  { path: "/lineage", page: lineage },
];

// The header's links: label, target, and the first path segment that marks them current.
export const NAV = [
  { label: "Experiments", href: "#/experiments", section: "experiments" },
  { label: "Models", href: "#/models", section: "models" },
  { label: "Deployments", href: "#/deployments", section: "deployments" },
  { label: "Review", href: "#/review", section: "review" },
  { label: "Monitoring", href: "#/monitoring", section: "monitoring" },
  { label: "Data", href: "#/data", section: "data" },
  { label: "Lineage", href: "#/lineage", section: "lineage" },
];

export function matchRoute(path) {
  const parts = path.split("/").filter(Boolean);
  for (const route of ROUTES) {
    const params = matchParts(route.path.split("/").filter(Boolean), parts);
    if (params) return { route, params };
  }
  return null;
}

function matchParts(pattern, parts) {
  const params = {};
  for (let i = 0; i < pattern.length; i += 1) {
    if (pattern[i] === "*") {
      params.rest = parts.slice(i).join("/");
      return i < parts.length ? params : null;
    }
    if (i >= parts.length) return null;
    if (pattern[i].startsWith(":")) params[pattern[i].slice(1)] = safeDecode(parts[i]);
    else if (pattern[i] !== parts[i]) return null;
  }
  return pattern.length === parts.length ? params : null;
}

function safeDecode(part) {
  try { return decodeURIComponent(part); } catch { return part; }
}

// "#/experiments/2?filter=x" -> { path: "/experiments/2", query: URLSearchParams }
export function parseHash(hash) {
  const text = hash.replace(/^#!?/, "") || "/";
  const at = text.indexOf("?");
  const path = at < 0 ? text : text.slice(0, at);
  return { path: path.startsWith("/") ? path : `/${path}`, query: new URLSearchParams(at < 0 ? "" : text.slice(at + 1)) };
}
