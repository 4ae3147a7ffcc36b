/* Pingura dashboard: what every page shares.
 *
 * - P.api(): the only way a page talks to the server. Same-origin fetch with the
 *   session cookie; every non-GET carries X-CSRF-Token from /api/v1/me; a 401
 *   sends the browser to /login.
 * - P.el(): builds DOM from data with textContent only (never innerHTML), so no user
 *   string is ever parsed as HTML.
 * - Formatting of times (relative, local, UTC on hover), durations and statuses.
 */
"use strict";

const P = (() => {
  const STATUS_LABELS = {
    up: "Up", down: "Down", late: "Late", new: "New", paused: "Paused", running: "Running", unknown: "Unknown",
  };
  const STATUS_ORDER = ["down", "unknown", "late", "up", "running", "new", "paused"];

  // --- DOM -------------------------------------------------------------------
  /** el("a", {href: "/x", class: "y"}, "text", child, ...): attributes are set with
   *  setAttribute (or as properties for on* handlers); children are nodes or text. */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name.startsWith("on") && typeof value === "function") {
        node.addEventListener(name.slice(2), value);
      } else if (name === "dataset") {
        Object.assign(node.dataset, value);
      } else {
        node.setAttribute(name, value === true ? "" : String(value));
      }
    }
    append(node, children);
    return node;
  }

  function append(node, children) {
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function $(selector, root) { return (root || document).querySelector(selector); }
  function $$(selector, root) { return Array.from((root || document).querySelectorAll(selector)); }

  /** Replace the children of ``node``, keeping focus/scroll when nothing changed:
   *  ``key`` is compared with the previous render's key. */
  function render(node, key, build) {
    if (key !== undefined && node.dataset.renderKey === key) return false;
    node.replaceChildren(...[build()].flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
    if (key !== undefined) node.dataset.renderKey = key;
    return true;
  }

  function show(node, visible) { if (node) node.hidden = !visible; }

  function note(node, text, kind) {
    if (!node) return;
    node.textContent = text || "";
    node.className = "note" + (kind ? " note-" + kind : "");
    node.hidden = !text;
  }

  // --- API -------------------------------------------------------------------
  class ApiError extends Error {
    constructor(status, message, field) {
      super(message);
      this.status = status;
      this.field = field || null;
    }
  }

  let sessionPromise = null;
  let sessionRefused = false;

  /** Who is signed in (GET /api/v1/me: {user, key_name, project: {id, name, role}, projects,
   *  read_only, csrf_token}; user is null for a key's session); null when signed out. */
  function session() {
    if (!sessionPromise) {
      sessionPromise = fetch("/api/v1/me", {credentials: "same-origin", headers: {Accept: "application/json"}})
        .then(async (r) => {
          sessionRefused = r.status === 403;  // a person removed from the project, or disabled
          return r.ok ? r.json() : null;
        })
        .catch(() => null);
    }
    return sessionPromise;
  }

  function toLogin() {
    if (location.pathname !== "/login") location.assign("/login");
  }

  /** api("GET", "/heartbeats", {query: {...}}) -> parsed JSON (or null for 204).
   *  Throws ApiError(status, message, field); on 401 it first sends the browser to /login. */
  async function api(method, path, options) {
    const opts = options || {};
    const url = new URL(path.startsWith("/api/") ? path : "/api/v1" + path, location.origin);
    for (const [k, v] of Object.entries(opts.query || {})) {
      if (v !== null && v !== undefined && v !== "") url.searchParams.set(k, v);
    }
    const headers = {Accept: "application/json"};
    if (method !== "GET" && method !== "HEAD") {
      const s = await session();
      if (s && s.csrf_token) headers["X-CSRF-Token"] = s.csrf_token;
    }
    let body;
    if (opts.body !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(opts.body);
    }
    let response;
    try {
      response = await fetch(url, {method, headers, body, credentials: "same-origin"});
    } catch (e) {
      throw new ApiError(0, "Cannot reach the server (" + e.message + ")");
    }
    if (response.status === 401 && !opts.noRedirect) {
      toLogin();
      throw new ApiError(401, "Signed out");
    }
    const text = await response.text();
    let data = null;
    if (text) {
      try { data = JSON.parse(text); } catch (e) { data = null; }
    }
    if (!response.ok) {
      let message = (data && data.error) || text.trim() || response.statusText || "Request failed";
      let field = data && data.field;
      // Errors read "field: problem": shown beside the field, the prefix would say it twice;
      // and an API that does not name the field names it there.
      const m = /^([a-z_][a-z0-9_.]*): (.+)$/i.exec(message);
      if (m && (!field || field === m[1])) { field = m[1]; message = m[2]; }
      throw new ApiError(response.status, message, field);
    }
    return data;
  }

  /** Sign out, then go to the sign-in page whatever the answer. */
  async function signOut() {
    const s = await session();
    const headers = s && s.csrf_token ? {"X-CSRF-Token": s.csrf_token} : {};
    try {
      await fetch("/logout", {method: "POST", headers, credentials: "same-origin", redirect: "manual"});
    } catch (e) { /* the cookie may remain; /login says so if it does */ }
    location.assign("/login");
  }

  // --- Page frame ------------------------------------------------------------
  /** Everything each signed-in page does first: who is signed in, the Sign out button,
   *  write controls shown only to read-write keys. Resolves to the session. */
  async function frame() {
    const signOutButton = $("#sign-out");
    if (signOutButton) signOutButton.addEventListener("click", signOut);
    const s = await session();
    if (!s && sessionRefused) {
      location.assign("/login?refused=1");  // signing in again opens a project one still has
      return {project: null, read_only: true, csrf_token: null, key_name: null};
    }
    if (!s) {
      // Not signed in (or no session endpoint): ask an API that exists today before redirecting.
      try { await api("GET", "/heartbeats", {query: {limit: 1}}); } catch (e) { /* 401 went to /login */ }
      return {project: null, read_only: false, csrf_token: null, key_name: null};
    }
    const who = $("#who");
    if (who) who.replaceChildren(...whoParts(s));
    if (!s.read_only) $$("[data-write]").forEach((n) => { n.hidden = false; });
    document.body.classList.toggle("read-only", !!s.read_only);
    poll(ingestBanner, INGEST_POLL_MS);
    return s;
  }

  /** The header's "who": a person's project (a switcher when they have more than one), their
   *  role and their name (a link to /account); a key's project and whether it only reads. */
  function whoParts(s) {
    const parts = [];
    const projects = s.projects || [];
    if (s.user && projects.length > 1) {
      const select = el("select", {id: "project-switch", class: "who-project", title: "Switch project"},
        ...projects.map((p) => el("option", {value: p.id, selected: p.id === s.project.id}, p.name)));
      select.addEventListener("change", () => switchProject(select));
      parts.push(el("label", {for: "project-switch", class: "visually-hidden"}, "Project"), select);
    } else {
      parts.push(el("span", {class: "who-project", title: s.key_name ? "Signed in with key " + s.key_name : null},
        s.project ? s.project.name : ""));
    }
    if (s.user) {
      parts.push(el("span", {class: "badge badge-role", title: "Your role in this project"}, s.project.role));
      parts.push(el("a", {href: "/account", class: "who-user", title: s.user.email + " (your account)"},
        s.user.name || s.user.email));
    } else if (s.read_only) {
      parts.push(el("span", {class: "badge badge-readonly", title: "This key can only read"}, "read-only"));
    }
    return parts;
  }

  /** Re-issue the session in the chosen project, then start over on its heartbeats (a page
   *  of the old project, such as a heartbeat's, does not exist in the new one). */
  async function switchProject(select) {
    select.disabled = true;
    try {
      const answer = await api("POST", "/auth/switch-project", {body: {project_id: select.value}});
      location.assign((answer && answer.redirect) || "/");
    } catch (e) {
      select.disabled = false;
      alert("Could not switch project: " + e.message);
    }
  }

  // --- Ingest incidents: a banner on every page while one is open ---------------------
  const INGEST_POLL_MS = 10000;

  /** Pingura's own open ingest incidents and the project's (GET /ingest-incidents), as a banner
   *  under the header: "Ingestion collapsed since …: misses are held as unknown". */
  async function ingestBanner() {
    let incidents = [];
    try {
      incidents = (await api("GET", "/ingest-incidents", {noRedirect: true})).incidents || [];
    } catch (e) { return; }  // keep what is shown; the next poll tries again
    let banner = $("#ingest-banner");
    if (!banner) {
      banner = el("div", {id: "ingest-banner", class: "banner banner-ingest", role: "status", hidden: true});
      const header = $("header.top");
      if (header) header.after(banner); else document.body.prepend(banner);
    }
    const since = incidents.map((i) => i.since).sort()[0];
    const held = incidents.reduce((n, i) => n + i.held, 0);
    const own = incidents.length && incidents.every((i) => i.scope !== "");
    render(banner, JSON.stringify(incidents), () => since ? [
      el("strong", {}, own ? "Ingestion collapsed for this project since " : "Ingestion collapsed since "),
      el("strong", {}, timeExact(since, true)), ": misses are held as unknown",
      held ? el("span", {class: "muted"}, " (" + held + " heartbeat" + (held === 1 ? "" : "s") + " held so far)") : null,
      ". Pings are not reaching Pingura; heartbeats that stay silent alert once it recovers.",
    ] : []);
    show(banner, !!since);
  }

  /** Run ``tick`` now and every ``interval_ms`` while the page is visible; never two at once. */
  function poll(tick, interval_ms) {
    let running = false;
    let again = false;
    const run = async () => {
      if (document.hidden) return;
      if (running) { again = true; return; }  // asked while busy (a filter changed): once more after
      running = true;
      try { await tick(); } catch (e) { console.error(e); } finally { running = false; }
      if (again) { again = false; run(); }
    };
    run();
    const id = setInterval(run, interval_ms);
    document.addEventListener("visibilitychange", () => { if (!document.hidden) run(); });
    return {stop: () => clearInterval(id), now: run};
  }

  // --- Formatting ------------------------------------------------------------
  // Every time shown carries its zone (the browser's, as it names it: "CET", "GMT+1", "UTC"):
  // "08:59" alone does not say whose 08:59 it is.
  const localFormat = new Intl.DateTimeFormat(undefined, {dateStyle: "medium", timeStyle: "long"});
  const localShort = new Intl.DateTimeFormat(undefined, {month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
    second: "2-digit", timeZoneName: "short"});
  const localMinute = new Intl.DateTimeFormat(undefined, {month: "short", day: "numeric", hour: "2-digit", minute: "2-digit"});
  const localClock = new Intl.DateTimeFormat(undefined, {hour: "2-digit", minute: "2-digit"});

  function utcText(date) {
    return date.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
  }

  /** "3 min ago", "in 2 h", "just now". */
  function relative(iso, now) {
    if (!iso) return "—";
    const seconds = Math.round(((now || Date.now()) - new Date(iso).getTime()) / 1000);
    const future = seconds < 0;
    const s = Math.abs(seconds);
    let text;
    if (s < 5) return future ? "now" : "just now";
    if (s < 60) text = s + " s";
    else if (s < 3600) text = Math.floor(s / 60) + " min";
    else if (s < 86400) text = Math.floor(s / 3600) + " h";
    else text = Math.floor(s / 86400) + " d";
    return future ? "in " + text : text + " ago";
  }

  /** <time> with a relative text, the local time and the UTC time on hover. */
  function timeRelative(iso) {
    if (!iso) return el("span", {class: "muted"}, "—");
    const d = new Date(iso);
    return el("time", {datetime: iso, title: localFormat.format(d) + "\n" + utcText(d), "data-relative": "1"},
      relative(iso));
  }

  /** <time> with the local time and the UTC time on hover. */
  function timeExact(iso, short) {
    if (!iso) return el("span", {class: "muted"}, "—");
    const d = new Date(iso);
    return el("time", {datetime: iso, title: utcText(d)}, (short ? localShort : localFormat).format(d));
  }

  /** "Dec 6, 08:55 – 09:00 CET": a span of time (a graph's bucket), in the browser's zone. */
  function spanText(fromMs, toMs) {
    const from = new Date(fromMs), to = new Date(toMs);
    const sameDay = from.toDateString() === new Date(toMs - 1).toDateString();
    return localMinute.format(from) + " – " + (sameDay ? localClock : localMinute).format(to) + " " + zoneName(from);
  }

  /** The browser's name for its zone at that moment ("CET" in winter, "CEST" in summer). */
  function zoneName(date) {
    const part = new Intl.DateTimeFormat(undefined, {timeZoneName: "short"}).formatToParts(date).find((p) => p.type === "timeZoneName");
    return part ? part.value : "";
  }

  /** Refresh every relative time on the page (called by the pollers). */
  function refreshRelativeTimes() {
    $$("time[data-relative]").forEach((t) => { t.textContent = relative(t.getAttribute("datetime")); });
  }

  /** Seconds as people write an interval: 300 -> "5m", 5400 -> "1h30m", 2 -> "2s". */
  function durationInput(seconds) {
    if (seconds === null || seconds === undefined) return "";
    let s = Math.round(seconds);
    if (s === 0) return "0s";
    const parts = [];
    for (const [unit, size] of [["d", 86400], ["h", 3600], ["m", 60], ["s", 1]]) {
      if (s >= size) { parts.push(Math.floor(s / size) + unit); s %= size; }
    }
    return parts.join("");
  }

  /** A measured duration: 12.5 -> "12.5 s", 90 -> "1 min 30 s", 0.35 -> "350 ms". */
  function durationText(seconds) {
    if (seconds === null || seconds === undefined) return "—";
    if (seconds < 1) return Math.round(seconds * 1000) + " ms";
    if (seconds < 60) return (Math.round(seconds * 10) / 10) + " s";
    const m = Math.floor(seconds / 60);
    const s = Math.round(seconds % 60);
    if (m < 60) return m + " min" + (s ? " " + s + " s" : "");
    const h = Math.floor(m / 60);
    return h + " h" + (m % 60 ? " " + (m % 60) + " min" : "");
  }

  function percent(value) {
    if (value === null || value === undefined) return "—";
    if (value >= 99.995 && value < 100) return "99.99%";
    return (Math.round(value * 100) / 100) + "%";
  }

  /** A status badge: coloured, and always with its word (never colour alone). */
  function statusBadge(status) {
    const known = STATUS_LABELS[status] ? status : "new";
    return el("span", {class: "status status-" + known}, el("span", {class: "status-dot", "aria-hidden": "true"}),
      STATUS_LABELS[status] || String(status || "unknown"));
  }

  /** What holds a heartbeat's alerts now, as chips: "in maintenance until …", "muted until …",
   *  "flapping since …", "alerts held: …" (empty when nothing does). */
  function holdNotes(h) {
    const chip = (kind, ...text) => el("span", {class: "hold hold-" + kind}, ...text);
    const notes = [];
    if (h.maintenance_until) notes.push(chip("maintenance", "in maintenance until ", timeExact(h.maintenance_until, true)));
    if (h.muted_until === "forever") notes.push(chip("muted", "muted until unmuted"));
    else if (h.muted_until && new Date(h.muted_until).getTime() > Date.now()) {
      notes.push(chip("muted", "muted until ", timeExact(h.muted_until, true)));
    }
    if (h.flapping_since) notes.push(chip("flapping", "flapping since ", timeExact(h.flapping_since, true)));
    if (h.held) notes.push(chip("held", "alerts held: ", textWithTimes(h.held)));
    return notes.length ? el("div", {class: "holds"}, notes) : null;
  }

  function kindText(row) {
    if (row.exit_code !== null && row.exit_code !== undefined) return "exit code " + row.exit_code;
    return {success: "success", fail: "fail", missed: "missed", start: "start", log: "log"}[row.kind] || String(row.kind);
  }

  function kindClass(row) {
    if (row.kind === "fail" || row.kind === "missed") return "kind kind-bad";
    if (row.kind === "success") return "kind kind-good";
    return "kind";
  }

  /** Text in which ISO-8601 UTC times (as the evaluator writes reasons) become local <time>s. */
  function textWithTimes(text) {
    const parts = [];
    const iso = /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z/g;
    let last = 0;
    for (const m of String(text).matchAll(iso)) {
      parts.push(text.slice(last, m.index), timeExact(m[0], true));
      last = m.index + m[0].length;
    }
    parts.push(String(text).slice(last));
    return parts.filter((p) => p !== "");
  }

  function params() { return new URLSearchParams(location.search); }

  /** The heartbeat id in /heartbeats/{id}[/edit]; null on /heartbeats/new. */
  function heartbeatId() {
    const m = /^\/heartbeats\/([A-Za-z0-9_-]+)(?:\/edit)?\/?$/.exec(location.pathname);
    return m && m[1] !== "new" ? m[1] : null;
  }

  /** Copy text; falls back to selecting ``selectNode`` when the clipboard is unavailable. */
  async function copy(text, button, selectNode) {
    const old = button.textContent;
    try {
      await navigator.clipboard.writeText(text);
      button.textContent = "Copied";
    } catch (e) {
      if (selectNode) {
        const range = document.createRange();
        range.selectNodeContents(selectNode);
        const selection = getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
      }
      button.textContent = "Press Ctrl+C";
    }
    setTimeout(() => { button.textContent = old; }, 1500);
  }

  /** A modal yes/no question in the page's <dialog id="confirm">; resolves true on yes. */
  function confirmDialog(title, text, yesLabel) {
    const dialog = $("#confirm");
    if (!dialog || typeof dialog.showModal !== "function") return Promise.resolve(window.confirm(text));
    $("#confirm-title", dialog).textContent = title;
    $("#confirm-text", dialog).textContent = text;
    $("#confirm-yes", dialog).textContent = yesLabel || "Delete";
    dialog.returnValue = "";
    dialog.showModal();
    return new Promise((resolve) => {
      dialog.addEventListener("close", () => resolve(dialog.returnValue === "yes"), {once: true});
    });
  }

  return {
    STATUS_LABELS, STATUS_ORDER, ApiError, el, append, $, $$, render, show, note, api, session, frame, poll,
    signOut, relative, timeRelative, timeExact, refreshRelativeTimes, durationInput, durationText, percent,
    statusBadge, holdNotes, kindText, kindClass, textWithTimes, params, heartbeatId, copy, confirmDialog, utcText, spanText, zoneName,
  };
})();
