// The API, as the page calls it: the session cookie authenticates; a change carries the
// CSRF token the server set in a readable cookie at login.

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

function csrf() {
  const pair = document.cookie.split("; ").find((c) => c.startsWith("lockstep_csrf="));
  return pair ? pair.slice("lockstep_csrf=".length) : "";
}

export async function call(url, { method = "GET", body } = {}) {
  const headers = { accept: "application/json" };
  if (body !== undefined) headers["content-type"] = "application/json";
  if (method !== "GET") headers["x-csrf-token"] = csrf();
  const resp = await fetch(url, {
    method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!resp.ok) {
    let detail = resp.statusText;
    try { detail = (await resp.json()).detail || detail; } catch { /* not JSON */ }
    if (resp.status === 401 && !url.startsWith("/ui/")) location.hash = "#/login";
    throw new ApiError(resp.status, String(detail));
  }
  return resp.status === 204 ? null : resp.json();
}

export const api = (path, options) => call("/api/v1" + path, options);
export const project = (name) => "/projects/" + encodeURIComponent(name);
