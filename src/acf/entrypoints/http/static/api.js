// The API key and calls to acf's /v1 API, shared by the chat and the console.
//
// The key comes from the address (?key=..., as `acf serve` prints it), is kept in
// localStorage and removed from the address bar; without one the page asks for it.

const KEY_STORAGE = "acf.apiKey";

/** The stored key, after taking a `?key=` from the address (and removing it from there). */
export function currentKey() {
  const url = new URL(window.location.href);
  const fromUrl = url.searchParams.get("key");
  if (fromUrl !== null) {
    url.searchParams.delete("key");
    window.history.replaceState(window.history.state, "", url.pathname + url.search + url.hash);
    if (fromUrl.trim()) localStorage.setItem(KEY_STORAGE, fromUrl.trim());
  }
  return localStorage.getItem(KEY_STORAGE);
}

export function forgetKey() {
  localStorage.removeItem(KEY_STORAGE);
}

/**
 * Show the key form (`<form>` with an `<input>` and a `.key-message`) and call `onKey`
 * with the key the user enters.
 */
export function askForKey(form, message, onKey) {
  form.hidden = false;
  form.querySelector(".key-message").textContent = message;
  const input = form.querySelector("input");
  input.value = "";
  input.focus();
  form.onsubmit = (event) => {
    event.preventDefault();
    const key = input.value.trim();
    if (!key) return;
    localStorage.setItem(KEY_STORAGE, key);
    form.hidden = true;
    onKey(key);
  };
}

/** A refused call: the HTTP status and acf's error body `{error, message, problems}`. */
export class ApiError extends Error {
  constructor(status, body, retryAfterS = null) {
    super(describe(status, body));
    this.name = "ApiError";
    this.status = status;
    this.code = body?.error ?? (status === 0 ? "network" : "error");
    this.problems = Array.isArray(body?.problems) ? body.problems : [];
    this.retryAfterS = retryAfterS;
  }
}

function describe(status, body) {
  if (status === 0) return body?.message ?? "acf cannot be reached";
  let text = body?.message ?? `acf answered HTTP ${status}`;
  const problems = Array.isArray(body?.problems) ? body.problems : [];
  if (problems.length && !text.includes(problems[0].message)) {
    text += ": " + problems.map((p) => (p.field ? `${p.field}: ${p.message}` : p.message)).join("; ");
  }
  return text;
}

function retryAfterSeconds(response) {
  const value = response.headers.get("Retry-After");
  if (value === null) return null;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds);
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, (date - Date.now()) / 1000);
}

export class Api {
  /** `onUnauthorized(error)` is called when acf refuses the key (401). */
  constructor(key, onUnauthorized = () => {}) {
    this.key = key;
    this.onUnauthorized = onUnauthorized;
  }

  headers(extra = {}) {
    return { Authorization: `Bearer ${this.key}`, ...extra };
  }

  async request(method, path, { query, body } = {}) {
    const url = new URL(path, window.location.origin);
    for (const [name, value] of Object.entries(query ?? {})) {
      if (value !== undefined && value !== null && value !== "") {
        url.searchParams.set(name, String(value));
      }
    }
    const init = { method, headers: this.headers({ Accept: "application/json" }), cache: "no-store" };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(url, init);
    } catch (err) {
      throw new ApiError(0, { message: `acf cannot be reached (${err.message})` });
    }
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    }
    if (!response.ok) {
      const error = new ApiError(response.status, data, retryAfterSeconds(response));
      if (response.status === 401) this.onUnauthorized(error);
      throw error;
    }
    return data;
  }

  get(path, query) {
    return this.request("GET", path, { query });
  }

  post(path, body) {
    return this.request("POST", path, { body });
  }
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A random id (for customers and client message ids); works outside secure contexts too. */
export function randomId(prefix = "") {
  if (window.crypto?.randomUUID) return prefix + window.crypto.randomUUID();
  const bytes = new Uint8Array(16);
  window.crypto.getRandomValues(bytes);
  return prefix + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Create an element: `el("li", {className: "x", dataset: {id: 1}}, "text", child)`. */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null) continue;
    if (name === "dataset") Object.assign(node.dataset, value);
    else if (name in node && !name.includes("-")) node[name] = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}
