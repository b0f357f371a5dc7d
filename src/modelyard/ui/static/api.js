// Every call the pages make to the server. With `modelyard server --auth` the API needs a
// token: the user pastes it once (signin.js); it is kept in this tab's sessionStorage and
// sent as "Authorization: Bearer <token>". Nothing is sent anywhere but this origin.

const TOKEN_KEY = "modelyard.token";

export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY),
  set: (value) => sessionStorage.setItem(TOKEN_KEY, value.trim()),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

export function url(path, query = {}) {
  const out = new URL(path, location.origin);
  for (const [key, value] of Object.entries(query)) {
    if (value === null || value === undefined || value === "") continue;
    for (const item of Array.isArray(value) ? value : [value]) out.searchParams.append(key, item);
  }
  return out;
}

// as: "json" (default), "text", "blob" or "response".
export async function request(method, path, { query, body, as = "json" } = {}) {
  const headers = { Accept: as === "json" ? "application/json" : "*/*" };
  const secret = token.get();
  if (secret) headers.Authorization = `Bearer ${secret}`;
  // "omit": no cookies or HTTP-auth cache; the 401's Basic challenge then opens no browser prompt.
  const init = { method, headers, cache: "no-cache", credentials: "omit" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(url(path, query), init);
  if (!response.ok) throw await apiError(response);
  if (as === "response") return response;
  if (as === "text") return response.text();
  if (as === "blob") return response.blob();
  return response.status === 204 ? null : response.json();
}

async function apiError(response) {
  let code = "", message = `${response.status} ${response.statusText}`, field;
  try {
    const body = await response.json();
    code = body.error_code || "";
    message = body.message || message;
    field = body.field;
  } catch { /* not JSON: keep the status line */ }
  return new ApiError(response.status, code, message, field);
}

export const api = {
  get: (path, query, options = {}) => request("GET", path, { query, ...options }),
  post: (path, body, options = {}) => request("POST", path, { body, ...options }),
};

// An MLflow REST run ({info, data: {metrics: [...], params: [...], tags: [...]}}) in the
// native API's flat shape ({run_id, name, ..., metrics: {key: {value, step}}, params: {}}).
// The runs table reads MLflow's runs/search: the server keeps its answers rendered.
export function flatRun({ info, data = {} }) {
  const pairs = (items) => Object.fromEntries((items || []).map((x) => [x.key, x.value]));
  return {
    ...info,
    name: info.run_name,
    metrics: Object.fromEntries((data.metrics || []).map((m) => [m.key, { value: m.value, step: m.step, timestamp: m.timestamp }])),
    params: pairs(data.params),
    tags: pairs(data.tags),
  };
}

// A run's artifact as the server serves it for the UI (never executed as a page).
export function artifact(runId, path, as) {
  return api.get(`/api/v1/runs/${encodeURIComponent(runId)}/artifact-content`, { path }, { as });
}
