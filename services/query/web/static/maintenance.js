/* Maintenance windows: list (with the occurrence on now and the next), plan one (once, or on a
 * cron schedule, in a time zone), end the one on now early, delete. Refreshed every 5 s. */
"use strict";

(() => {
  const {el, $, api} = P;
  const browserZone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  let readOnly = false;
  let heartbeatNames = {};

  // --- time zones ------------------------------------------------------------------
  /** Minutes ``zone`` is ahead of UTC at the instant ``ms``. */
  function offsetMinutes(zone, ms) {
    const parts = new Intl.DateTimeFormat("en-US", {timeZone: zone, hourCycle: "h23", year: "numeric", month: "2-digit",
      day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit"}).formatToParts(new Date(ms));
    const n = Object.fromEntries(parts.filter((p) => p.type !== "literal").map((p) => [p.type, Number(p.value)]));
    return (Date.UTC(n.year, n.month - 1, n.day, n.hour, n.minute, n.second) - Math.floor(ms / 1000) * 1000) / 60000;
  }

  /** "2026-03-29T02:30" on the clocks of ``zone`` -> an ISO instant (UTC). Throws on a bad zone. */
  function zonedToIso(local, zone) {
    const [date, time] = local.split("T");
    const [y, mo, d] = date.split("-").map(Number);
    const [h, mi] = time.split(":").map(Number);
    const wall = Date.UTC(y, mo - 1, d, h, mi);
    let ms = wall - offsetMinutes(zone, wall) * 60000;
    ms = wall - offsetMinutes(zone, ms) * 60000;  // again at the instant found: right across a DST change
    return new Date(ms).toISOString();
  }

  function zoneLabel(iso, zone) {
    const fmt = new Intl.DateTimeFormat(undefined, {timeZone: zone, dateStyle: "medium", timeStyle: "short"});
    return fmt.format(new Date(iso)) + " " + zone;
  }

  // --- list ------------------------------------------------------------------------
  function when(w) {
    if (!w.schedule) {
      return el("div", {class: "window-when"}, zoneLabel(w.starts_at, w.timezone), " – ", zoneLabel(w.ends_at, w.timezone));
    }
    return el("div", {class: "window-when"}, el("code", {class: "schedule"}, w.schedule), " (", w.timezone, ") for ",
      P.durationInput(w.duration),
      w.ends_at ? el("div", {class: "muted small"}, "until ", zoneLabel(w.ends_at, w.timezone)) : null);
  }

  function covers(w) {
    const c = w.covering;
    if (c.whole_project) return el("span", {}, "every heartbeat");
    return [
      ...c.heartbeats.map((id) => el("a", {class: "chip", href: "/heartbeats/" + encodeURIComponent(id)}, heartbeatNames[id] || id)),
      ...c.tags.map((t) => el("a", {class: "tag", href: "/?tag=" + encodeURIComponent(t)}, t)),
    ];
  }

  function now(w) {
    if (w.active_until) return el("span", {class: "window-active"}, "on until ", P.timeExact(w.active_until, true));
    if (w.next_start) return el("span", {}, "next ", P.timeRelative(w.next_start));
    return el("span", {class: "muted"}, w.ended_at ? "ended early" : "over");
  }

  function row(w) {
    return el("tr", {"data-window": w.id},
      el("th", {scope: "row"}, w.name),
      el("td", {}, when(w)),
      el("td", {}, covers(w)),
      el("td", {}, now(w)),
      el("td", {class: "row-actions"},
        readOnly || !w.active_until ? null
          : el("button", {type: "button", class: "small", onclick: () => endNow(w)}, "End now"),
        readOnly ? null : el("button", {type: "button", class: "small danger", onclick: () => remove(w)}, "Delete")),
    );
  }

  async function load() {
    let data;
    try {
      data = await api("GET", "/maintenance");
    } catch (e) {
      if (e.status !== 401) P.note($("#list-note"), "Could not load maintenance windows: " + e.message, "error");
      return;
    }
    const windows = data.windows || [];
    P.render($("#rows"), JSON.stringify([windows, heartbeatNames]), () => windows.map(row));
    P.show($("#empty"), windows.length === 0);
    P.refreshRelativeTimes();
  }

  async function endNow(w) {
    try {
      await api("POST", "/maintenance/" + encodeURIComponent(w.id) + "/end");
      P.note($("#list-note"), "Ended “" + w.name + "”" + (w.schedule ? " until its next start." : "."), "ok");
    } catch (e) {
      if (e.status !== 401) P.note($("#list-note"), "Could not end it: " + e.message, "error");
    }
    load();
  }

  async function remove(w) {
    const yes = await P.confirmDialog("Delete this window?",
      "“" + w.name + "” stops holding alerts; one it holds now goes out at once if still true.", "Delete");
    if (!yes) return;
    try {
      await api("DELETE", "/maintenance/" + encodeURIComponent(w.id));
      P.note($("#list-note"), "Deleted “" + w.name + "”.", "ok");
    } catch (e) {
      if (e.status !== 401) P.note($("#list-note"), "Could not delete: " + e.message, "error");
    }
    load();
  }

  // --- form ------------------------------------------------------------------------
  const recurring = () => $("#kind-recurring").checked;

  function syncKind() {
    P.show($("#once-fields"), !recurring());
    P.show($("#recurring-fields"), recurring());
  }

  function clearErrors() {
    P.$$("#window-form .field-error").forEach((n) => { n.hidden = true; n.textContent = ""; });
    P.$$("#window-form [aria-invalid]").forEach((n) => n.removeAttribute("aria-invalid"));
    P.note($("#form-note"), "");
  }

  const INPUTS = {name: "w-name", timezone: "w-timezone", starts_at: "w-starts", ends_at: "w-ends", schedule: "w-schedule",
    duration: "w-duration", covering: "w-whole"};

  function showError(field, message) {
    const slot = document.getElementById("err-" + field);
    if (!slot) { P.note($("#form-note"), (field ? field + ": " : "") + message, "error"); return; }
    slot.textContent = message;
    slot.hidden = false;
    const input = document.getElementById(INPUTS[field]);
    if (input) { input.setAttribute("aria-invalid", "true"); input.focus(); }
  }

  function body() {
    const zone = $("#w-timezone").value.trim() || "UTC";
    const tags = $("#w-tags").value.split(",").map((t) => t.trim()).filter(Boolean);
    const heartbeats = Array.from($("#w-heartbeats").selectedOptions).map((o) => o.value);
    const out = {name: $("#w-name").value.trim(), timezone: zone,
      covering: $("#w-whole").checked ? {whole_project: true} : {heartbeats, tags}};
    if (recurring()) {
      out.schedule = $("#w-schedule").value.trim();
      out.duration = $("#w-duration").value.trim();
      return out;
    }
    for (const [field, id] of [["starts_at", "#w-starts"], ["ends_at", "#w-ends"]]) {
      const value = $(id).value;
      if (!value) throw new P.ApiError(400, "required", field);
      try { out[field] = zonedToIso(value, zone); } catch (e) { throw new P.ApiError(400, "not a time zone this browser knows", "timezone"); }
    }
    return out;
  }

  $("#window-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors();
    const button = $("#add");
    button.disabled = true;
    try {
      const made = await api("POST", "/maintenance", {body: body()});
      P.note($("#form-note"), "Planned “" + made.name + "”.", "ok");
      $("#w-name").value = "";
      load();
    } catch (e) {
      if (e.status === 400) showError(e.field, e.message);
      else if (e.status !== 401) P.note($("#form-note"), "Could not plan the window: " + e.message, "error");
    } finally {
      button.disabled = false;
    }
  });
  P.$$("input[name=kind]").forEach((r) => r.addEventListener("change", () => { clearErrors(); syncKind(); }));
  $("#w-whole").addEventListener("change", () => P.show($("#cover-some"), !$("#w-whole").checked));

  function fillZones() {
    let all = [];
    try { all = Intl.supportedValuesOf("timeZone"); } catch (e) { all = ["UTC", browserZone]; }
    $("#timezones").replaceChildren(...all.map((z) => el("option", {value: z})));
    $("#w-timezone").value = browserZone;
  }

  async function loadHeartbeats() {
    try {
      const data = await api("GET", "/heartbeats", {query: {limit: 1000, sort: "name"}});
      const list = data.heartbeats || [];
      heartbeatNames = Object.fromEntries(list.map((h) => [h.id, h.name]));
      $("#w-heartbeats").replaceChildren(...list.map((h) => el("option", {value: h.id}, h.name)));
    } catch (e) { /* ids are shown instead; tags and the whole project still work */ }
  }

  fillZones();
  syncKind();
  P.frame().then(async (s) => {
    readOnly = !!s.read_only;
    await loadHeartbeats();
    P.poll(load, 5000);
  });
})();
