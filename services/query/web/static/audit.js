/* Audit log (/settings/audit): the project's changes newest first, a page at a time, narrowed
 * by who, action, target and time (kept in the page's URL, so a filtered view can be shared);
 * each entry opens to a diff of the thing before and after; the same filters export as CSV or
 * JSON lines. Admins only: anyone else is told so. */
"use strict";

(() => {
  const {el, $, api} = P;
  const FILTERS = ["actor", "action", "target_kind", "target_id", "from", "to"];
  const ACTIONS = ["heartbeat", "heartbeat.create", "heartbeat.update", "heartbeat.delete", "heartbeat.pause",
    "heartbeat.resume", "heartbeat.rotate_token", "channel", "maintenance", "key", "key.create", "key.revoke",
    "project", "project.update", "project.rotate_ping_key", "project.rotate_badge_key", "status_page", "member",
    "invitation", "user", "instance.remove", "delivery.resend"];
  let cursors = [];  // the "next" of each page shown so far (the last: the page after them)

  // --- filters ---------------------------------------------------------------------
  /** The filters as the URL holds them (from/to as ISO instants). */
  function filters() {
    const params = P.params();
    const out = {};
    for (const name of FILTERS) {
      const value = (params.get(name) || "").trim();
      if (value) out[name] = value;
    }
    return out;
  }

  /** An ISO instant -> "2026-12-07T09:30" on the browser's clock (a datetime-local's value). */
  function localInput(iso) {
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return "";
    const pad = (n) => String(n).padStart(2, "0");
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + "T" + pad(d.getHours()) + ":" +
      pad(d.getMinutes());
  }

  function fillForm(f) {
    $("#f-actor").value = f.actor || "";
    $("#f-action").value = f.action || "";
    $("#f-target-kind").value = f.target_kind || "";
    $("#f-target-id").value = f.target_id || "";
    $("#f-from").value = f.from ? localInput(f.from) : "";
    $("#f-to").value = f.to ? localInput(f.to) : "";
    P.show($("#clear-filters"), Object.keys(f).length > 0);
  }

  function readForm() {
    const out = {
      actor: $("#f-actor").value.trim(), action: $("#f-action").value.trim().toLowerCase(),
      target_kind: $("#f-target-kind").value, target_id: $("#f-target-id").value.trim(),
    };
    for (const [name, id] of [["from", "#f-from"], ["to", "#f-to"]]) {
      const value = $(id).value;
      out[name] = value ? new Date(value).toISOString() : "";
    }
    return out;
  }

  function exportLinks(f) {
    for (const [id, format] of [["#export-csv", "csv"], ["#export-jsonl", "jsonl"]]) {
      const url = new URL("/api/v1/audit/export", location.origin);
      for (const [k, v] of Object.entries(f)) url.searchParams.set(k, v);
      url.searchParams.set("format", format);
      $(id).href = url.pathname + url.search;
    }
  }

  // --- one entry ---------------------------------------------------------------------
  function who(e) {
    const kind = e.actor_kind === "key" ? "API key" : e.actor_kind === "user" ? "" : "Pingura";
    return el("div", {},
      el("span", {title: e.actor_id || null}, e.actor_name || e.actor_id || "—"),
      kind ? el("div", {class: "muted audit-actor-kind"}, kind) : null);
  }

  /** {"a": {"b": 1}, "tags": ["x"]} -> {"a.b": "1", "tags": "[\"x\"]"}: objects opened, the rest as JSON. */
  function flatten(value, prefix, out) {
    if (value !== null && typeof value === "object" && !Array.isArray(value)) {
      const keys = Object.keys(value);
      if (keys.length === 0 && prefix) out[prefix] = "{}";
      for (const k of keys) flatten(value[k], prefix ? prefix + "." + k : k, out);
    } else if (prefix) {
      out[prefix] = typeof value === "string" ? value : JSON.stringify(value);
    }
    return out;
  }

  /** A field's value as shown: a time in ms (``updated_ms``) as the instant it is, the rest as recorded. */
  function shown(field, text) {
    if (/(^|\.)[a-z_]*_ms$/.test(field) && /^\d{10,15}$/.test(text)) return P.timeExact(new Date(Number(text)).toISOString());
    return text;
  }

  function cell(field, text, cls) {
    if (text === undefined) return el("td", {class: "audit-absent"}, "—");
    return el("td", {class: cls}, shown(field, text));
  }

  function diffTable(rows, withClasses) {
    return el("table", {class: "audit-diff"},
      el("thead", {}, el("tr", {}, el("th", {scope: "col"}, "Field"), el("th", {scope: "col"}, "Before"),
        el("th", {scope: "col"}, "After"))),
      el("tbody", {}, rows.map(([field, before, after]) => el("tr", {"data-field": field},
        el("th", {scope: "row"}, field),
        cell(field, before, withClasses ? "audit-before" : null),
        cell(field, after, withClasses ? "audit-after" : null)))));
  }

  /** The fields that changed (before in red, after in green), then the rest folded away. */
  function diff(e) {
    const before = e.before ? flatten(e.before, "", {}) : {};
    const after = e.after ? flatten(e.after, "", {}) : {};
    const fields = Array.from(new Set([...Object.keys(before), ...Object.keys(after)])).sort();
    const changed = [], same = [];
    for (const f of fields) (before[f] === after[f] ? same : changed).push([f, before[f], after[f]]);
    const said = e.before === null && e.after === null ? "Nothing recorded before or after."
      : e.before === null ? "Created." : e.after === null ? "Removed." : null;
    return el("div", {class: "audit-diff-box"},
      said ? el("p", {class: "muted small"}, said) : null,
      changed.length ? diffTable(changed, true) : el("p", {class: "muted small"}, "No field changed."),
      same.length ? el("details", {class: "audit-unchanged"},
        el("summary", {}, same.length + (same.length === 1 ? " field" : " fields") + " unchanged"),
        diffTable(same, false)) : null);
  }

  function entryRows(e) {
    const detailId = "diff-" + e.id;
    const detail = el("tr", {class: "audit-diff-row", id: detailId, hidden: true},
      el("td", {colspan: "6"}, diff(e)));
    const toggle = el("button", {type: "button", class: "small quiet", "aria-expanded": "false",
      "aria-controls": detailId, onclick: () => {
        const open = toggle.getAttribute("aria-expanded") !== "true";
        toggle.setAttribute("aria-expanded", String(open));
        toggle.textContent = open ? "Hide changes" : "Show changes";
        detail.hidden = !open;
      }}, "Show changes");
    const row = el("tr", {"data-entry": e.id, "data-action": e.action},
      el("td", {class: "nowrap"}, P.timeExact(e.at, true)),
      el("td", {}, who(e)),
      el("td", {class: "audit-action"}, el("code", {}, e.action)),
      el("td", {class: "audit-target"}, el("span", {class: "muted audit-target-kind"}, e.target_kind), " ", e.target_id),
      el("td", {class: "nowrap"}, e.address || el("span", {class: "muted"}, "—")),
      el("td", {class: "row-actions"}, toggle));
    return [row, detail];
  }

  // --- pages -----------------------------------------------------------------------
  async function load(append) {
    const f = filters();
    const before = append ? cursors[cursors.length - 1] : null;
    let page;
    try {
      page = await api("GET", "/audit", {query: {...f, before, limit: 50}});
    } catch (e) {
      if (e.status === 401) return;
      if (e.status === 403) {
        P.note($("#page-note"), "The audit log is for the project's admins and owners.", "error");
        P.show($("#filters"), false);
        P.show($(".audit-export"), false);
        P.show($("#entries").parentNode, false);
        return;
      }
      P.note($("#list-note"), "Could not load the audit log: " + e.message, "error");
      return;
    }
    P.note($("#list-note"), "");
    const rows = page.entries.flatMap(entryRows);
    if (append) $("#rows").append(...rows);
    else $("#rows").replaceChildren(...rows);
    cursors = append ? [...cursors, page.next] : [page.next];
    P.show($("#empty"), !append && page.entries.length === 0);
    P.show($("#older"), Boolean(page.next));
    P.show($("#newest"), cursors.length > 1);
  }

  async function main() {
    await P.frame();
    $("#actions").replaceChildren(...ACTIONS.map((a) => el("option", {value: a})));
    const f = filters();
    fillForm(f);
    exportLinks(f);
    $("#filters").addEventListener("submit", (event) => {
      event.preventDefault();
      const url = new URL(location.href);
      url.search = "";
      for (const [k, v] of Object.entries(readForm())) if (v) url.searchParams.set(k, v);
      history.pushState(null, "", url);
      const now = filters();
      fillForm(now);
      exportLinks(now);
      load(false);
    });
    window.addEventListener("popstate", () => { const now = filters(); fillForm(now); exportLinks(now); load(false); });
    $("#older").addEventListener("click", () => load(true));
    $("#newest").addEventListener("click", () => load(false));
    load(false);
  }

  main();
})();
