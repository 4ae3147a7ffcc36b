/* Create (/heartbeats/new) or edit (/heartbeats/{id}/edit) a heartbeat. The API
 * validates; a 400 names the field, and its message is shown beside that field.
 *
 * A heartbeat expects its check-ins every period (interval) or on a cron schedule in a
 * time zone: the body carries the fields of the mode chosen only (the API refuses a body
 * with both, and an interval given to a schedule heartbeat switches it to period mode).
 * An empty interval is sent as "": the API's rule (an interval is required, there is no
 * default period) and its message, which says what to type, are the form's. */
"use strict";

(() => {
  const {el, $, api} = P;
  const id = P.heartbeatId();
  const form = $("#heartbeat-form");
  const formNote = $("#form-note");
  const FIELD_INPUTS = {
    name: "#f-name", interval: "#f-interval", grace: "#f-grace",
    max_consecutive_misses: "#f-misses", channels: "#channel-choices input", tags: "#f-tags",
    schedule: "#f-schedule", timezone: "#f-timezone", max_runtime: "#f-max-runtime",
    recovery_threshold: "#f-recovery", reminder_interval: "#f-reminder", slug: "#f-slug",
  };
  // Offered first in the time-zone list; the browser's own zone is the default.
  const COMMON_ZONES = [
    "UTC", "Europe/London", "Europe/Berlin", "Europe/Paris", "Europe/Madrid", "Europe/Moscow",
    "America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles", "America/Sao_Paulo",
    "Asia/Kolkata", "Asia/Shanghai", "Asia/Tokyo", "Asia/Singapore", "Asia/Dubai",
    "Australia/Sydney", "Pacific/Auckland", "Africa/Johannesburg",
  ];
  const browserZone = (() => {
    try { return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC"; } catch (e) { return "UTC"; }
  })();
  let original = null;

  function clearErrors() {
    P.$$(".field-error", form).forEach((n) => { n.hidden = true; n.textContent = ""; });
    P.$$("[aria-invalid]", form).forEach((n) => n.removeAttribute("aria-invalid"));
    P.note(formNote, "");
  }

  function mode() {
    return $("#mode-schedule").checked ? "schedule" : "interval";
  }

  function showMode() {
    const schedule = mode() === "schedule";
    P.show($("#schedule-fields"), schedule);
    P.show($("#period-fields"), !schedule);
  }

  P.$$("input[name=mode]", form).forEach((radio) => radio.addEventListener("change", showMode));

  function fillZones() {
    let all = [];
    try { all = Intl.supportedValuesOf("timeZone"); } catch (e) { /* the common ones only */ }
    const zones = [...new Set([browserZone, ...COMMON_ZONES, ...all])];
    $("#timezones").replaceChildren(...zones.map((z) => el("option", {value: z})));
  }

  /** A whole number as a number (so that the API says what is wrong with anything else). */
  function wholeOrText(value) {
    const text = value.trim();
    return /^\d+$/.test(text) ? Number(text) : text;
  }

  function showError(field, message) {
    const base = (field || "").split(".")[0];
    const slot = $("#err-" + base);
    if (!slot) {
      P.note(formNote, (field ? field + ": " : "") + message, "error");
      return;
    }
    slot.textContent = message;
    slot.hidden = false;
    const input = $(FIELD_INPUTS[base], form);
    if (input) {
      input.setAttribute("aria-invalid", "true");
      input.focus();
    }
  }

  async function loadChannels(selected) {
    const box = $("#channel-choices");
    let channels = [];
    try {
      channels = (await api("GET", "/channels")).channels || [];
    } catch (e) {
      box.replaceChildren(el("p", {class: "note note-error"}, "Could not load channels: " + e.message));
      return;
    }
    if (!channels.length) {
      box.replaceChildren(el("p", {class: "muted"}, "No channels yet. ", el("a", {href: "/channels"}, "Add a channel"),
        " to be alerted."));
      return;
    }
    box.replaceChildren(...channels.map((c) => el("label", {class: "choice"},
      el("input", {type: "checkbox", name: "channels", value: c.id, checked: selected.includes(c.id)}),
      " ", c.name, " ", el("span", {class: "muted"}, "(" + c.kind + ")"))));
  }

  function body() {
    const out = {name: $("#f-name").value.trim()};
    if (mode() === "schedule") {
      out.schedule = $("#f-schedule").value.trim();
      out.timezone = $("#f-timezone").value.trim() || "UTC";
    } else {
      out.interval = $("#f-interval").value.trim();
    }
    const grace = $("#f-grace").value.trim();
    if (grace || id) out.grace = grace || "0s";
    Object.assign(out, {
      max_consecutive_misses: wholeOrText($("#f-misses").value),
      recovery_threshold: wholeOrText($("#f-recovery").value),
      // Empty: none (null also takes one away on an edit).
      max_runtime: $("#f-max-runtime").value.trim() || null,
      reminder_interval: $("#f-reminder").value.trim() || null,
      channels: P.$$("#channel-choices input:checked").map((i) => i.value),
      tags: $("#f-tags").value.split(",").map((t) => t.trim()).filter(Boolean),
    });
    const slug = $("#f-slug").value.trim();
    if (slug || (original && original.slug)) out.slug = slug || null;
    return out;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors();
    const button = $("#submit");
    button.disabled = true;
    try {
      const saved = id
        ? await api("PATCH", "/heartbeats/" + encodeURIComponent(id), {body: body()})
        : await api("POST", "/heartbeats", {body: body()});
      location.assign("/heartbeats/" + encodeURIComponent(saved.id));
    } catch (e) {
      if (e.status === 400) showError(e.field, e.message);
      else if (e.status !== 401) P.note(formNote, "Could not save: " + e.message, "error");
    } finally {
      button.disabled = false;
    }
  });

  async function start() {
    const session = await P.frame();
    if (session.read_only) {
      P.note(formNote, "This key is read-only: it cannot create or change heartbeats.", "error");
      $("#submit").disabled = true;
    }
    fillZones();
    $("#f-timezone").value = browserZone;
    let selected = [];
    if (id) {
      document.title = "Edit heartbeat · Pingura";
      $("#form-title").textContent = "Edit heartbeat";
      $("#submit").textContent = "Save changes";
      $("#cancel").href = "/heartbeats/" + encodeURIComponent(id);
      try {
        original = await api("GET", "/heartbeats/" + encodeURIComponent(id));
      } catch (e) {
        P.note(formNote, e.status === 404 ? "This heartbeat does not exist (or was deleted)." : "Could not load: " + e.message, "error");
        form.hidden = true;
        return;
      }
      const crumb = $("#crumb");
      crumb.replaceChildren(el("a", {href: "/heartbeats/" + encodeURIComponent(id)}, original.name), " / Edit");
      $("#f-name").value = original.name;
      if (original.schedule) {
        $("#mode-schedule").checked = true;
        $("#f-schedule").value = original.schedule;
        $("#f-timezone").value = original.timezone || "UTC";
      } else {
        $("#f-interval").value = P.durationInput(original.interval);
      }
      $("#f-grace").value = P.durationInput(original.grace);
      $("#f-misses").value = original.max_consecutive_misses;
      $("#f-recovery").value = original.recovery_threshold || 1;
      $("#f-max-runtime").value = P.durationInput(original.max_runtime);
      $("#f-reminder").value = P.durationInput(original.reminder_interval);
      $("#f-slug").value = original.slug || "";
      $("#f-tags").value = (original.tags || []).join(", ");
      selected = original.channels || [];
    }
    showMode();
    await loadChannels(selected);
  }

  start();
})();
