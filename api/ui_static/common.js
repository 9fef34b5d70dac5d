/* Shared by the pages: the access token, JSON requests, small DOM helpers. No dependencies. */
"use strict";

const UI = (() => {
  const TOKEN_KEY = "orchestrator.token";

  // A token given in the page address as #token=… is kept for this tab, then taken out of the
  // address bar. A fragment never reaches the server, so the token stays out of access logs.
  function adoptTokenFromUrl() {
    const hash = new URLSearchParams(location.hash.slice(1));
    const token = hash.get("token");
    if (token !== null) {
      setToken(token);
      hash.delete("token");
      const rest = hash.toString();
      history.replaceState(null, "", location.pathname + location.search + (rest ? `#${rest}` : ""));
    }
  }

  function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }
  function setToken(value) {
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    else sessionStorage.removeItem(TOKEN_KEY);
  }

  class ApiError extends Error {
    constructor(status, body) {
      super((body && body.message) || `HTTP ${status}`);
      this.status = status;
      this.body = body;
    }
  }

  async function api(path, { method = "GET", body, headers = {} } = {}) {
    const h = { Accept: "application/json", ...headers };
    if (body !== undefined) h["Content-Type"] = "application/json";
    if (token()) h.Authorization = `Bearer ${token()}`;
    const resp = await fetch(path, {
      method, headers: h, body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    const text = await resp.text();
    if (text) {
      try { data = JSON.parse(text); } catch (e) { data = { message: text.slice(0, 200) }; }
    }
    if (!resp.ok) throw new ApiError(resp.status, data);
    return data;
  }

  // The WebSocket address for a path on this origin, with the token as ?access_token= (browsers
  // cannot set an Authorization header on a WebSocket; the service redacts it from its logs).
  function wsUrl(path, params = {}) {
    const url = new URL(path, location.href);
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    for (const [k, v] of Object.entries(params)) if (v) url.searchParams.set(k, v);
    if (token()) url.searchParams.set("access_token", token());
    return url.toString();
  }

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k.startsWith("data-")) node.setAttribute(k, v);
      else if (k in node) node[k] = v;
      else node.setAttribute(k, v);
    }
    for (const c of children) if (c !== null && c !== undefined) node.append(c);
    return node;
  }

  function when(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    return isNaN(d) ? iso : d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }

  // What is left until a deadline: "4:32 left", "1:02:05 left", or "passed".
  function countdown(iso, now = Date.now()) {
    const ms = new Date(iso) - now;
    if (isNaN(ms)) return "";
    if (ms <= 0) return "passed";
    const t = Math.ceil(ms / 1000), h = Math.floor(t / 3600), m = Math.floor((t % 3600) / 60);
    const ss = String(t % 60).padStart(2, "0");
    return (h ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`) + " left";
  }

  // Elements with data-until show their countdown, refreshed every second.
  setInterval(() => {
    for (const node of document.querySelectorAll("[data-until]")) {
      node.textContent = countdown(node.dataset.until);
    }
  }, 1000);

  function bindTokenForm() {
    const form = document.getElementById("token-form");
    if (!form) return;
    const input = document.getElementById("token");
    input.value = token();
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      setToken(input.value.trim());
      location.reload();
    });
  }

  adoptTokenFromUrl();
  document.addEventListener("DOMContentLoaded", bindTokenForm);
  return { api, ApiError, wsUrl, el, when, countdown, token };
})();
