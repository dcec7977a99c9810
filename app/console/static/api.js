// The console's only way to the server: the public HTTP API, with the pasted key as the Authorization header.
// The key lives in sessionStorage (this tab only, gone when it closes): never in a URL, a cookie or storage that
// outlives the tab.

const KEY_ITEM = "stateset-console-api-key";

/** Where the API is: the directory above this page, so `/console/` → `/`, `/prefix/console/` → `/prefix/`. */
export const apiBase = new URL("../", document.baseURI);

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || `HTTP ${status}`);
    this.status = status;
    this.code = code || "";
  }
}

export function storedKey() {
  return sessionStorage.getItem(KEY_ITEM);
}

export function storeKey(key) {
  sessionStorage.setItem(KEY_ITEM, key);
}

export function forgetKey() {
  sessionStorage.removeItem(KEY_ITEM);
}

function urlOf(path, params) {
  const url = new URL(path, apiBase);
  for (const [name, value] of Object.entries(params || {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, String(value));
  }
  return url;
}

async function send(method, path, { params, body, signal, text } = {}) {
  const key = storedKey();
  const headers = { Accept: text ? "text/plain" : "application/json" };
  if (key) headers.Authorization = "ApiKey " + key;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(urlOf(path, params), {
    method, headers, signal, body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "omit", cache: "no-store", redirect: "error", referrerPolicy: "no-referrer",
  });
  if (!response.ok) {
    let code = "", message = "";
    try {
      const problem = await response.json();
      code = problem.code;
      message = problem.error;
    } catch (ignored) {
      message = `HTTP ${response.status}`;
    }
    throw new ApiError(response.status, code, message);
  }
  if (response.status === 204) return { body: null, headers: response.headers };
  return { body: text ? await response.text() : await response.json(), headers: response.headers };
}

export async function get(path, params, options = {}) {
  return (await send("GET", path, { params, ...options })).body;
}

export async function getWithHeaders(path, params, options = {}) {
  return send("GET", path, { params, ...options });
}

export async function post(path, body) {
  return (await send("POST", path, { body })).body;
}

export async function del(path, params) {
  return (await send("DELETE", path, { params })).body;
}
