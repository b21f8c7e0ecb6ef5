/* Talking to this server: fetch with login redirect and API errors, JSON, server-sent events. */
import { t } from "./i18n.js";

export class ApiError extends Error {
  constructor(status, detail, hint) {
    super(detail || `HTTP ${status}`);
    this.status = status;
    this.hint = hint;
  }
  toString() { return this.hint ? `${this.message} ${this.hint}` : this.message; }
}

/* Every API call goes through here.  The session is an HttpOnly cookie set by POST /v1/session
   (the key itself is never kept by the browser); a 401 sends the user to the login form and
   comes back afterwards. */
export async function api(path, options = {}) {
  const headers = new Headers(options.headers || {});
  let response;
  try {
    response = await fetch(path, { ...options, headers });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, t("error.network"));
  }
  if (response.status === 401 && !options.noLoginRedirect) {
    const back = location.pathname + location.search;
    location.assign(`/login?next=${encodeURIComponent(back)}`);
    throw new ApiError(401, "Unauthorized");
  }
  if (!response.ok) {
    let body = {};
    try { body = await response.json(); } catch (_) { /* not JSON */ }
    throw new ApiError(response.status, body.detail, body.hint);
  }
  return response;
}

export async function apiJson(path, options) {
  const response = await api(path, options);
  return response.status === 204 ? null : response.json();
}

/* Server-sent events over fetch (EventSource cannot POST): { event, data } with data parsed as JSON. */
export async function* sseEvents(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true }).replace(/\r\n/g, "\n");
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) yield { event, data: JSON.parse(data.join("\n")) };
    }
  }
}
