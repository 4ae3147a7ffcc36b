/* Create (/heartbeats/new) or edit (/heartbeats/{id}/edit) a heartbeat. The API
 * validates; a 400 names the field, and its message is shown beside that field.
 *
 * A heartbeat expects its check-ins every period (interval) or on a cron schedule in a
 * time zone: the body carries the fields of the mode chosen only (the API refuses a body
 * with both, and an interval given to a schedule heartbeat switches it to period mode).
 * An empty interval is sent as "": the API's rule (an interval is required, there is no
 * default period) and its message, which says what to type, are the form's.
 *
 * Dependencies are picked by name from a search of the project's heartbeats (a project may
 * have 100,000: the list is the API's, a page at a time), or given as tags; the API refuses
 * a cycle, naming the field that closes it. Flapping settings left empty are the defaults.
 *
 * The rules that catch subtler failures (fleet, run time, cadence, failure rate, keywords) are
 * one section each, switched on by its checkbox (its fields hidden while off). A rule that is
 * off is sent as null on an edit (which switches it off) and left out of a new heartbeat; a
 * field left empty is left out of its rule (the API's default). The API names a rule's field
 * as "rule.field": its message goes beside that field, else beside the rule's switch. */
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
    recovery_threshold: "#f-recovery", reminder_interval: "#f-reminder", slug: "#f-slug", description: "#f-description",
    depends_on: "#f-depends-search", depends_on_tags: "#f-depends-tags", flap_changes: "#f-flap-changes",
    flap_window: "#f-flap-window", flap_stable: "#f-flap-stable",
    "fleet": "#fleet-on", "fleet.min_instances": "#f-fleet-min", "fleet.min_percent": "#f-fleet-percent",
    "fleet.instances": "#f-fleet-instances", "fleet.expiry": "#f-fleet-expiry",
    "run_time": "#run_time-on", "run_time.min": "#f-rt-min", "run_time.max": "#f-rt-max",
    "run_time.limits": "#f-rt-limits", "run_time.baseline": "#f-rt-baseline",
    "cadence": "#cadence-on", "cadence.early_tolerance": "#f-early", "cadence.max_runs_per_interval": "#f-max-runs",
    "failure_rate": "#failure_rate-on", "failure_rate.percent": "#f-rate-percent", "failure_rate.runs": "#f-rate-runs",
    "failure_rate.window": "#f-rate-window", "failure_rate.recover_percent": "#f-rate-recover",
    "keywords": "#keywords-on", "keywords.success": "#f-kw-success", "keywords.failure": "#f-kw-failure",
    "keywords.start": "#f-kw-start", "keywords.unmatched": "#f-kw-unmatched",
  };
  const RULES = ["fleet", "run_time", "cadence", "failure_rate", "keywords"];
  const SEARCH_RESULTS = 10;
  /** The heartbeats it depends on, in the order picked: id -> name (null: no longer exists). */
  const dependencies = new Map();
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

  /** The field the API names, or the nearest enclosing one the form has a slot for:
   *  "keywords.failure[2]" -> "keywords.failure"; "channels.0" -> "channels". */
  function errorSlot(field) {
    const parts = (field || "").split(/[.[\]]+/).filter(Boolean);
    for (let n = parts.length; n > 0; n--) {
      const name = parts.slice(0, n).join(".");
      const slot = document.getElementById("err-" + name);
      if (slot) return {name, slot};
    }
    return null;
  }

  function showError(field, message) {
    // A rule's part is named in its message ("fleet", "min_percent: must be ..."): shown beside the part.
    const part = RULES.includes(field) && /^([a-z_]+): (.+)$/.exec(message || "");
    if (part && document.getElementById("err-" + field + "." + part[1])) {
      field = field + "." + part[1];
      message = part[2];
    }
    const found = errorSlot(field);
    if (!found) {
      P.note(formNote, (field ? field + ": " : "") + message, "error");
      return;
    }
    found.slot.textContent = message;
    found.slot.hidden = false;
    const rule = found.name.split(".")[0];
    if (RULES.includes(rule)) showRule(rule, true);  // its fields are where the message is
    const input = $(FIELD_INPUTS[found.name], form);
    if (input) {
      input.setAttribute("aria-invalid", "true");
      input.focus();
    }
  }

  // --- the rules: a section each, its fields shown while it is on ---------------------------------
  function showRule(rule, on) {
    const toggle = $("#" + rule + "-on");
    toggle.checked = on;
    P.show($("#" + rule + "-fields"), on);
  }

  RULES.forEach((rule) => $("#" + rule + "-on").addEventListener("change", (e) => showRule(rule, e.target.checked)));

  /** Lines of a textarea, trimmed, empty ones dropped. */
  function lines(selector) {
    return $(selector).value.split("\n").map((t) => t.trim()).filter(Boolean);
  }

  /** A rule's object from its fields: empty ones are left out (the API's defaults). */
  function ruleBody(rule) {
    const text = (selector) => $(selector).value.trim();
    const number = (selector) => (text(selector) ? wholeOrText($(selector).value) : undefined);
    const fields = {
      fleet: () => ({min_instances: number("#f-fleet-min"), min_percent: number("#f-fleet-percent"),
        instances: lines("#f-fleet-instances"), expiry: text("#f-fleet-expiry") || undefined}),
      run_time: () => ({min: text("#f-rt-min") || undefined, max: text("#f-rt-max") || undefined,
        limits: $("#f-rt-limits").value, baseline: $("#f-rt-baseline").value}),
      cadence: () => ({early_tolerance: text("#f-early") || undefined, max_runs_per_interval: number("#f-max-runs")}),
      failure_rate: () => ({percent: number("#f-rate-percent"), runs: number("#f-rate-runs"),
        window: text("#f-rate-window") || undefined, recover_percent: number("#f-rate-recover")}),
      keywords: () => ({success: lines("#f-kw-success"), failure: lines("#f-kw-failure"), start: lines("#f-kw-start"),
        unmatched: $("#f-kw-unmatched").value}),
    }[rule]();
    return Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined));
  }

  /** Seconds as the duration fields show them ("5m"; "2.5s" for a fraction). */
  function durationField(seconds) {
    if (seconds === null || seconds === undefined) return "";
    return Number.isInteger(seconds) ? P.durationInput(seconds) : seconds + "s";
  }

  function fillRules(h) {
    const value = (selector, v) => { $(selector).value = v === null || v === undefined ? "" : v; };
    const f = h.fleet, r = h.run_time, c = h.cadence, fr = h.failure_rate, k = h.keywords;
    if (f) {
      value("#f-fleet-min", f.min_instances);
      value("#f-fleet-percent", f.min_percent);
      value("#f-fleet-instances", (f.instances || []).join("\n"));
      value("#f-fleet-expiry", durationField(f.expiry));
    }
    if (r) {
      value("#f-rt-min", durationField(r.min));
      value("#f-rt-max", durationField(r.max));
      value("#f-rt-limits", r.limits || "alert");
      value("#f-rt-baseline", r.baseline || "off");
    }
    if (c) {
      value("#f-early", durationField(c.early_tolerance));
      value("#f-max-runs", c.max_runs_per_interval);
    }
    if (fr) {
      value("#f-rate-percent", fr.percent);
      value("#f-rate-runs", fr.runs);
      value("#f-rate-window", durationField(fr.window));
      value("#f-rate-recover", fr.recover_percent);
    }
    if (k) {
      value("#f-kw-success", (k.success || []).join("\n"));
      value("#f-kw-failure", (k.failure || []).join("\n"));
      value("#f-kw-start", (k.start || []).join("\n"));
      value("#f-kw-unmatched", k.unmatched || "keep");
    }
    RULES.forEach((rule) => showRule(rule, !!h[rule]));
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

  // --- dependencies ----------------------------------------------------------
  function renderDependencies() {
    const list = $("#depends-selected");
    if (!dependencies.size) {
      list.replaceChildren(el("li", {class: "muted"}, "None."));
      return;
    }
    list.replaceChildren(...[...dependencies].map(([depId, name]) => {
      const shown = name === null ? "a deleted heartbeat (" + depId + ")" : name;
      return el("li", {class: "choice", dataset: {id: depId}}, shown, " ",
        el("button", {type: "button", class: "quiet", "aria-label": "Remove dependency on " + shown, onclick: () => {
          dependencies.delete(depId);
          renderDependencies();
          search();
          $("#f-depends-search").focus();
        }}, "Remove"));
    }));
  }

  let searchTurn = 0;
  let searchTimer = null;

  /** The heartbeats whose name holds what is typed, but itself and those picked already. */
  async function search() {
    const turn = ++searchTurn;
    const box = $("#depends-results");
    const q = $("#f-depends-search").value.trim();
    if (!q) {
      box.replaceChildren();
      return;
    }
    let found = [];
    try {
      found = (await api("GET", "/heartbeats", {query: {q, limit: SEARCH_RESULTS + 1 + dependencies.size}})).heartbeats;
    } catch (e) {
      if (turn === searchTurn) box.replaceChildren(el("li", {class: "note note-error"}, "Could not search: " + e.message));
      return;
    }
    if (turn !== searchTurn) return;  // a later search answers
    const offered = found.filter((h) => h.id !== id && !dependencies.has(h.id)).slice(0, SEARCH_RESULTS);
    if (!offered.length) {
      box.replaceChildren(el("li", {class: "muted"}, "No other heartbeat's name holds “" + q + "”."));
      return;
    }
    box.replaceChildren(...offered.map((h) => el("li", {class: "choice"},
      el("button", {type: "button", "aria-label": "Add dependency on " + h.name, onclick: () => {
        dependencies.set(h.id, h.name);
        renderDependencies();
        search();
        $("#f-depends-search").focus();
      }}, "Add"), " ", h.name, " ", el("span", {class: "muted"}, "(" + (P.STATUS_LABELS[h.status] || h.status) + ")"))));
  }

  $("#f-depends-search").addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(search, 200);
  });
  $("#f-depends-search").addEventListener("keydown", (event) => {
    if (event.key === "Enter") event.preventDefault();  // Enter searches, it does not save the form
  });

  async function loadDependencies(ids) {
    const names = await Promise.all(ids.map((depId) => api("GET", "/heartbeats/" + encodeURIComponent(depId))
      .then((h) => h.name, (e) => (e.status === 404 ? null : depId))));
    ids.forEach((depId, n) => dependencies.set(depId, names[n]));
    renderDependencies();
  }

  function tagList(selector) {
    return $(selector).value.split(",").map((t) => t.trim()).filter(Boolean);
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
      tags: tagList("#f-tags"),
      // As typed (its lines and tabs kept); the browser gives a textarea's line ends as "\n".
      description: $("#f-description").value,
      depends_on: [...dependencies.keys()],
      depends_on_tags: tagList("#f-depends-tags"),
      // Empty: the default (null also puts the default back on an edit).
      flap_changes: $("#f-flap-changes").value.trim() ? wholeOrText($("#f-flap-changes").value) : null,
      flap_window: $("#f-flap-window").value.trim() || null,
      flap_stable: $("#f-flap-stable").value.trim() || null,
    });
    const slug = $("#f-slug").value.trim();
    if (slug || (original && original.slug)) out.slug = slug || null;
    for (const rule of RULES) {
      // Off: null switches it off on an edit; a new heartbeat is sent without it.
      if ($("#" + rule + "-on").checked) out[rule] = ruleBody(rule);
      else if (original && original[rule]) out[rule] = null;
    }
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
      $("#f-description").value = original.description || "";
      $("#f-depends-tags").value = (original.depends_on_tags || []).join(", ");
      $("#f-flap-changes").value = original.flap_changes === null || original.flap_changes === undefined ? "" : original.flap_changes;
      $("#f-flap-window").value = P.durationInput(original.flap_window);
      $("#f-flap-stable").value = P.durationInput(original.flap_stable);
      selected = original.channels || [];
      fillRules(original);
    }
    showMode();
    await Promise.all([loadChannels(selected), loadDependencies(id ? original.depends_on || [] : [])]);
  }

  start();
})();
