/* One heartbeat: status (since when, why), its instances (a fleet), ping URL and snippets,
 * actions, uptime, timing graph (with the usual run time and the runs far from it), check-in
 * history (with what the rules found in each), status changes with the alerts sent, export.
 *
 * Every 5 s it re-reads the heartbeat and the newest check-ins; the heavier reads
 * (uptime, timings, status changes) follow when either changed, or once a minute. */
"use strict";

(() => {
  const {el, $, api} = P;
  const id = P.heartbeatId();
  const base = "/heartbeats/" + encodeURIComponent(id);
  const DAY_MS = 86400000;
  const PRESETS_MS = {"24h": DAY_MS, "7d": 7 * DAY_MS, "30d": 30 * DAY_MS, "90d": 90 * DAY_MS};
  const PRESET_TEXT = {"24h": "the last 24 hours", "7d": "the last 7 days", "30d": "the last 30 days", "90d": "the last 90 days"};
  // Bucket sizes offered to the timings API (a hint: the server may pick its own).
  const BUCKETS = [["1m", 60], ["5m", 300], ["15m", 900], ["1h", 3600], ["6h", 21600], ["1d", 86400], ["7d", 604800]];
  const STATUS_EXPLAINED = {
    up: "Checking in on time.",
    down: "Missed or failed check-ins.",
    late: "The expected check-in has not arrived yet; the grace period is running.",
    new: "No check-in yet. Send the first ping to start monitoring.",
    paused: "Paused: missed check-ins raise no alerts until it is resumed.",
    running: "A job has started and not reported its end yet.",
    unknown: "Its check-in was due while pings were not reaching Pingura: whether it ran is not known, and no alert was sent.",
  };

  let heartbeat = null;
  let readOnly = false;
  let channelNames = {};
  const dependencyNames = {};  // heartbeat id -> name (null: not found), for "Depends on"
  let checkinCursor = "";      // "" = newest page
  let nextCheckinCursor = null;
  let newestCheckins = [];
  let lastStatusKey = "";
  let lastTopCheckin = "";
  let lastSlowAt = 0;
  let forceSlow = true;
  let chart = null;

  // --- range -----------------------------------------------------------------
  const range = {preset: "24h", from: "", to: ""};

  function readRangeFromUrl() {
    const p = P.params();
    const r = p.get("range");
    if (r === "custom" && p.get("from") && p.get("to")) Object.assign(range, {preset: "custom", from: p.get("from"), to: p.get("to")});
    else if (PRESETS_MS[r]) range.preset = r;
  }

  function writeRangeToUrl() {
    const p = new URLSearchParams();
    if (range.preset !== "24h") p.set("range", range.preset);
    if (range.preset === "custom") { p.set("from", range.from); p.set("to", range.to); }
    history.replaceState(null, "", location.pathname + (p.toString() ? "?" + p : ""));
  }

  /** The chosen window as epoch ms [from, to). */
  function windowMs() {
    if (range.preset === "custom") {
      const from = new Date(range.from + "T00:00:00").getTime();
      const to = new Date(range.to + "T00:00:00").getTime() + DAY_MS;  // the whole "to" day
      return {from, to};
    }
    const to = Date.now();
    return {from: to - PRESETS_MS[range.preset], to};
  }

  function windowQuery() {
    const w = windowMs();
    return {from: new Date(w.from).toISOString(), to: new Date(w.to).toISOString()};
  }

  function bucketHint() {
    const w = windowMs();
    const span_s = (w.to - w.from) / 1000;
    const found = BUCKETS.find(([, s]) => span_s / s <= 400);
    return (found || BUCKETS[BUCKETS.length - 1])[0];
  }

  function renderRange() {
    P.$$("[data-range]").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.range === range.preset)));
    P.show($("#custom-range"), range.preset === "custom");
    $("[data-range=custom]").setAttribute("aria-expanded", String(range.preset === "custom"));
    const w = windowMs();
    $("#range-text").textContent = range.preset === "custom"
      ? "Showing " + new Date(w.from).toLocaleDateString() + " to " + new Date(w.to - 1).toLocaleDateString()
        + " (days in " + P.zoneName(new Date(w.from)) + ")."
      : "Showing " + PRESET_TEXT[range.preset] + ".";
    updateExportLinks();
  }

  function updateExportLinks() {
    const q = windowQuery();
    for (const format of ["csv", "json"]) {
      const url = new URL("/api/v1" + base + "/export", location.origin);
      url.searchParams.set("format", format);
      url.searchParams.set("from", q.from);
      // "The last 7 days" ends when the link is followed: no "to", the server takes now.
      if (range.preset === "custom") url.searchParams.set("to", q.to);
      $("#export-" + format).href = url.pathname + url.search;
    }
  }

  function rangeChanged() {
    writeRangeToUrl();
    renderRange();
    checkinCursor = "";
    forceSlow = true;
    poller.now();
  }

  P.$$("[data-range]").forEach((button) => button.addEventListener("click", () => {
    const preset = button.dataset.range;
    if (preset === "custom") {
      // Only opens the date inputs: the range changes when they are applied.
      const w = windowMs();
      if (!$("#range-from").value) {
        $("#range-from").value = localDate(new Date(w.from));
        $("#range-to").value = localDate(new Date(w.to));
      }
      P.show($("#custom-range"), true);
      button.setAttribute("aria-expanded", "true");
      $("#range-from").focus();
      return;
    }
    range.preset = preset;
    rangeChanged();
  }));

  $("#range-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const from = $("#range-from").value;
    const to = $("#range-to").value;
    if (!from || !to || from > to) {
      $("#range-text").textContent = "Pick a From date on or before the To date.";
      return;
    }
    Object.assign(range, {preset: "custom", from, to});
    rangeChanged();
  });

  function localDate(d) {
    const pad = (n) => String(n).padStart(2, "0");
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate());
  }

  // --- heartbeat, status, actions ---------------------------------------------
  function renderHeartbeat(h) {
    heartbeat = h;
    document.title = h.name + " · Pingura";
    $("#hb-name").textContent = h.name;
    $("#crumb").textContent = h.name;
    $("#edit").href = base + "/edit";
    $("#pause").textContent = h.paused ? "Resume" : "Pause";
    // Plain text as written (its lines kept by the <pre>), never read as HTML.
    const description = $("#hb-description");
    if (description.textContent !== (h.description || "")) description.textContent = h.description || "";
    P.show(description, Boolean(h.description));

    const panel = $("#status-panel");
    panel.className = "status-panel status-panel-" + (P.STATUS_LABELS[h.status] ? h.status : "new");
    // Running: since its /start ping (the run's start), with the time it may take.
    const since = h.status_since && h.status !== "new"
      ? el("span", {class: "since"}, h.status === "running" ? " started at " : " since ", P.timeExact(h.status_since),
        " (", P.timeRelative(h.status_since), ")",
        h.status === "running" && h.max_runtime ? "; may take up to " + P.durationText(h.max_runtime) : null)
      : null;
    P.render($("#status-line"), JSON.stringify([h.status, h.status_since]), () => [P.statusBadge(h.status), since]);
    P.render($("#status-reason"), JSON.stringify([h.status, h.status_reason]),
      () => (h.status_reason ? P.textWithTimes(h.status_reason) : STATUS_EXPLAINED[h.status] || ""));
    P.render($("#holds"), JSON.stringify([h.maintenance_until, h.muted_until, h.flapping_since, h.held]), () => P.holdNotes(h));
    P.show($("#unmute"), isMuted(h));

    const misses = h.max_consecutive_misses;
    const lastCheckin = h.last_checkin_at || (newestCheckins.find((c) => c.kind !== "missed") || {}).received_at;
    const fact = (label, ...value) => el("div", {class: "fact"}, el("dt", {}, label), el("dd", {}, ...value));
    const recovery = h.recovery_threshold || 1;
    P.render($("#facts"), JSON.stringify([h, lastCheckin, channelNames, dependencyNames]), () => [
      h.schedule
        ? [fact("Schedule", el("code", {class: "schedule"}, h.schedule)), fact("Time zone", h.timezone || "UTC")]
        : fact("Expected interval", "every " + P.durationInput(h.interval)),
      fact("Grace period", P.durationInput(h.grace)),
      fact("Max run time", h.max_runtime ? P.durationInput(h.max_runtime) : el("span", {class: "muted"}, "none")),
      fact("Goes down after", misses + " consecutive " + (misses === 1 ? "miss" : "misses")),
      recovery > 1 ? fact("Up again after", recovery + " good check-ins") : null,
      fact("Reminders", h.reminder_interval ? "every " + P.durationInput(h.reminder_interval)
        : el("span", {class: "muted"}, "none")),
      fact("Last check-in", P.timeRelative(lastCheckin)),
      fact("Next expected", h.paused ? "paused" : P.timeRelative(h.next_expected_at),
        !h.paused && h.next_expected_at && new Date(h.next_expected_at).getTime() < Date.now()
          ? el("span", {class: "overdue"}, " (overdue)") : null),
      fact("Channels", (h.channels || []).length
        ? (h.channels || []).map((c) => el("span", {class: "chip"}, channelNames[c] || c))
        : el("span", {class: "muted"}, "none (no alerts)")),
      fact("Tags", (h.tags || []).length
        ? h.tags.map((t) => el("a", {class: "tag", href: "/?tag=" + encodeURIComponent(t)}, t))
        : el("span", {class: "muted"}, "none")),
      h.slug ? fact("Slug", el("code", {}, h.slug)) : null,
      fact("Depends on", dependencies(h)),
      ruleFacts(h, fact),
    ]);
    renderPing(h);
    renderFleet(h);
  }

  /** The rules that catch subtler failures, those switched on, in a few words each. */
  function ruleFacts(h, fact) {
    const does = (action) => (action === "alert" ? "alerts" : "marks");
    const words = (list) => (list || []).map((w) => el("code", {class: "chip"}, w));
    const out = [];
    const f = h.fleet;
    if (f) {
      const need = [f.min_instances ? "at least " + f.min_instances : null, f.min_percent ? f.min_percent + "%" : null]
        .filter(Boolean).join(" and ");
      out.push(fact("Fleet", need + " of its instances each time",
        el("div", {class: "muted small"}, "forgets one silent for " + P.durationInput(f.expiry || 7 * 86400))));
    }
    const r = h.run_time;
    if (r) {
      const limits = r.min || r.max
        ? [r.min ? "at least " + P.durationText(r.min) : null, r.max ? "at most " + P.durationText(r.max) : null]
          .filter(Boolean).join(", ") + " (" + does(r.limits) + ")" : null;
      const baseline = r.baseline !== "off" ? "far from usual " + does(r.baseline) : null;
      out.push(fact("Run duration", [limits, baseline].filter(Boolean).join("; ")));
    }
    const c = h.cadence;
    if (c) {
      out.push(fact("Too early or often", [c.early_tolerance ? "early by " + P.durationInput(c.early_tolerance) : null,
        c.max_runs_per_interval ? "over " + c.max_runs_per_interval + " per period" : null].filter(Boolean).join("; ")));
    }
    const fr = h.failure_rate;
    if (fr) {
      const now = h.failure_rate_now;
      out.push(fact("Failure rate", "down at " + fr.percent + "% of the last " + fr.runs + " runs"
        + (fr.window ? " in " + P.durationInput(fr.window) : ""),
      el("div", {class: "muted small"}, now ? "now " + now.failed + " of " + now.runs + " failed (" + now.percent + "%)"
        : "not enough runs yet")));
    }
    const k = h.keywords;
    if (k) {
      out.push(fact("Keywords", k.failure.length ? ["failure: ", ...words(k.failure)] : null,
        k.success.length ? [" success: ", ...words(k.success)] : null, k.start.length ? [" start: ", ...words(k.start)] : null,
        el("div", {class: "muted small"}, {keep: "no match: kept", ignore: "no match: ignored", fail: "no match: a failure"}[k.unmatched])));
    }
    return out;
  }

  /** Heartbeats by id (linked, by name once known) and tags it depends on; read-only here. */
  function dependencies(h) {
    const ids = h.depends_on || [], tags = h.depends_on_tags || [];
    if (!ids.length && !tags.length) return el("span", {class: "muted"}, "nothing");
    return [
      ...ids.map((d) => (dependencyNames[d] === null ? el("span", {class: "chip muted"}, d + " (not found)")
        : el("a", {class: "chip", href: "/heartbeats/" + encodeURIComponent(d)}, dependencyNames[d] || d))),
      ...tags.map((t) => el("a", {class: "tag", href: "/?tag=" + encodeURIComponent(t), title: "Every heartbeat tagged " + t},
        "tag: " + t)),
    ];
  }

  async function loadDependencyNames(h) {
    const missing = (h.depends_on || []).filter((d) => !(d in dependencyNames));
    await Promise.all(missing.map(async (d) => {
      try { dependencyNames[d] = (await api("GET", "/heartbeats/" + encodeURIComponent(d))).name; }
      catch (e) { if (e.status === 404) dependencyNames[d] = null; }
    }));
    return missing.length > 0;
  }

  function isMuted(h) {
    return h.muted_until === "forever" || (!!h.muted_until && new Date(h.muted_until).getTime() > Date.now());
  }

  async function mute(until) {
    const body = {muted_until: until};
    P.note($("#action-note"), "");
    try {
      const h = await api("PATCH", base, {body});
      renderHeartbeat(h);
      P.note($("#action-note"), until === null ? "Unmuted: alerts go out again (one held now is sent)."
        : "Muted. It is still checked and recorded.", "ok");
    } catch (e) {
      if (e.status !== 401) P.note($("#action-note"), "That did not work: " + e.message, "error");
    }
  }

  P.$$("[data-mute]").forEach((button) => button.addEventListener("click", () => {
    const value = button.dataset.mute;
    mute(value === "forever" ? "forever" : new Date(Date.now() + Number(value) * 1000).toISOString());
  }));
  $("#unmute").addEventListener("click", () => mute(null));

  async function action(method, path, done) {
    P.note($("#action-note"), "");
    try {
      const result = await api(method, path);
      done(result);
    } catch (e) {
      if (e.status !== 401) P.note($("#action-note"), "That did not work: " + e.message, "error");
    }
  }

  $("#pause").addEventListener("click", () => {
    const verb = heartbeat.paused ? "resume" : "pause";
    action("POST", base + "/" + verb, (h) => {
      renderHeartbeat(h);
      P.note($("#action-note"), verb === "pause" ? "Paused." : "Resumed.", "ok");
      forceSlow = true;
    });
  });

  $("#rotate").addEventListener("click", async () => {
    const yes = await P.confirmDialog("Rotate the token?",
      "The current ping URL stops working at once. Every job using it must be given the new URL.", "Rotate token");
    if (!yes) return;
    action("POST", base + "/rotate-token", (h) => {
      renderHeartbeat(h);
      P.note($("#action-note"), "Token rotated. Update your jobs with the new ping URL.", "ok");
    });
  });

  $("#delete").addEventListener("click", async () => {
    const yes = await P.confirmDialog("Delete this heartbeat?",
      "“" + heartbeat.name + "” and its ping URL go away; pings to it are refused from now on.", "Delete");
    if (!yes) return;
    action("DELETE", base, () => location.assign("/"));
  });

  // --- instances (a heartbeat with a fleet rule) ------------------------------------------
  // The figures are the evaluator's as of the last deadline it judged (instances_summary). The
  // API lists the instances by name, a status at a time: "All" reads the missing ones first, then
  // those never reported, then the rest, a page of 50 at a time ("More"). A removal is applied by
  // the evaluator: the row goes at once, and the next refresh no longer has it. A declared
  // instance is taken out by editing the fleet rule, not here.
  const INSTANCE_PAGE = 50;
  const MISSING_NAMED = 10;
  const INSTANCE_STATUS = {
    missing: ["Missing", "down"], never_reported: ["Never reported", "new"], reporting: ["Reporting", "up"],
  };
  const STATUS_FIRST = ["missing", "never_reported", "reporting"];
  /** What is shown, and where the next page starts: the status read now (its index) and the cursor in it. */
  const fleet = {items: [], phase: 0, cursor: "", pages: 0, loaded: false};
  const removing = new Set();

  function isFleet(h) {
    return !!(h && (h.fleet || h.instances_summary));
  }

  function renderFleet(h) {
    P.show($("#instances-section"), isFleet(h));
    if (!isFleet(h)) return;
    const s = h.instances_summary;
    P.render($("#fleet-summary"), JSON.stringify(s), () => {
      if (!s) return el("span", {class: "muted"}, "No deadline judged yet: after the first, this says how many instances reported.");
      const short = s.reported < s.required;
      const named = (s.missing || []).slice(0, MISSING_NAMED);
      const more = s.members - s.reported - named.length;  // the answer names the first 20 only
      return [
        el("strong", {class: "fleet-count" + (short ? " fleet-short" : "")}, s.reported + " of " + s.members + " reported"),
        el("span", {class: "muted"}, " (at least " + s.required + " needed) as of ", P.timeExact(s.judged_at, true)),
        named.length ? el("span", {class: "fleet-missing"}, el("br"), "Missing: ",
          named.flatMap((name, i) => [i ? ", " : "", el("code", {}, name)]),
          more > 0 ? " and " + more + " more" : "") : null,
      ];
    });
  }

  function instanceFilter() { return $("#instance-filter").value; }

  function statusesRead() {
    return instanceFilter() ? [instanceFilter()] : STATUS_FIRST;
  }

  /** The next page (up to 50), moving on to the next status when one is read to its end. */
  async function nextInstances(state) {
    const statuses = statusesRead();
    let items = [];
    while (items.length < INSTANCE_PAGE && state.phase < statuses.length) {
      const data = await api("GET", base + "/instances",
        {query: {limit: INSTANCE_PAGE - items.length, cursor: state.cursor, status: statuses[state.phase]}});
      items = items.concat(data.items || []);
      if (data.next_cursor) state.cursor = data.next_cursor;
      else Object.assign(state, {phase: state.phase + 1, cursor: ""});
    }
    return items;
  }

  function hasMoreInstances(state) {
    return state.phase < statusesRead().length;
  }

  /** Reads again as many pages as are shown (the statuses move with every deadline). */
  async function loadInstances() {
    if (!isFleet(heartbeat)) return;
    const state = {phase: 0, cursor: ""};
    let items = [];
    try {
      for (let page = 0; page < Math.max(fleet.pages, 1) && hasMoreInstances(state); page++) {
        items = items.concat(await nextInstances(state));
      }
    } catch (e) {
      if (e.status !== 401) P.note($("#instances-note"), "Could not load the instances: " + e.message, "error");
      return;
    }
    for (const name of removing) if (!items.some((i) => i.name === name)) removing.delete(name);
    Object.assign(fleet, state, {items, pages: Math.max(fleet.pages, 1), loaded: true});
    renderInstances();
  }

  function renderInstances() {
    const shown = fleet.items.filter((i) => !removing.has(i.name));
    P.render($("#instance-rows"), JSON.stringify([shown, readOnly]), () => shown.map(instanceRow));
    const empty = $("#instances-empty");
    if (instanceFilter() && !shown.length) {
      P.render(empty, instanceFilter(), () => "No instance is " + INSTANCE_STATUS[instanceFilter()][0].toLowerCase() + ".");
    } else if (empty.dataset.renderKey) {
      delete empty.dataset.renderKey;
      empty.replaceChildren("No instance has pinged yet: name it in each ping with ",
        el("code", {}, "?instance=<host>"), " or the ", el("code", {}, "X-Pingura-Instance"), " header.");
    }
    P.show(empty, fleet.loaded && !shown.length);
    $("#instances").closest(".table-wrap").hidden = !shown.length;
    P.show($("#more-instances"), hasMoreInstances(fleet));
  }

  function instanceRow(i) {
    const [label, look] = INSTANCE_STATUS[i.status] || [String(i.status), "new"];
    return el("tr", {dataset: {instance: i.name}},
      el("th", {scope: "row"}, el("code", {class: "instance-name"}, i.name),
        i.declared ? el("span", {class: "chip chip-declared", title: "Declared in the heartbeat's fleet rule: edit the heartbeat to take it out"},
          "declared") : null),
      el("td", {}, el("span", {class: "status status-" + look}, el("span", {class: "status-dot", "aria-hidden": "true"}), label)),
      el("td", {class: "nowrap"}, i.last_ping
        ? [P.timeExact(i.last_ping, true), " ", el("span", {class: "muted small"}, "(", P.timeRelative(i.last_ping), ")")]
        : el("span", {class: "muted"}, "never")),
      readOnly ? null : el("td", {class: "row-actions"}, i.declared ? null : el("button", {
        type: "button", class: "small danger", "aria-label": "Remove instance " + i.name,
        onclick: () => removeInstance(i.name),
      }, "Remove")),
    );
  }

  async function removeInstance(name) {
    const yes = await P.confirmDialog("Remove instance " + name + "?",
      "It leaves the fleet now, without an alert, and is no longer expected. If it pings again, it joins again.", "Remove");
    if (!yes) return;
    try {
      await api("DELETE", base + "/instances/" + encodeURIComponent(name));
    } catch (e) {
      if (e.status !== 401) P.note($("#instances-note"), "Could not remove " + name + ": " + e.message, "error");
      return;
    }
    removing.add(name);
    P.note($("#instances-note"), "Removed " + name + ". The counts follow at the next deadline.", "ok");
    renderInstances();
  }

  $("#instance-filter").addEventListener("change", () => {
    Object.assign(fleet, {items: [], phase: 0, cursor: "", pages: 1, loaded: false});
    loadInstances();
  });

  $("#more-instances").addEventListener("click", async () => {
    if (!hasMoreInstances(fleet)) return;
    try {
      fleet.items = fleet.items.concat(await nextInstances(fleet));
      fleet.pages += 1;
    } catch (e) {
      if (e.status !== 401) P.note($("#instances-note"), "Could not load more instances: " + e.message, "error");
      return;
    }
    renderInstances();
  });

  // --- ping URL and snippets ---------------------------------------------------
  function snippets(url) {
    const meta = '{"status": "completed", "message": "Processed 1247 records", "duration": "12.5s"}';
    return {
      curl: [
        "# When the job starts (its run time is measured from here; optional)",
        "curl -X POST " + url + "/start",
        "",
        "# Success",
        "curl -X POST " + url,
        "",
        "# Failure",
        "curl -X POST " + url + "/fail",
        "",
        "# Exit code of the previous command (0 is success, anything else a failure)",
        "curl -X POST " + url + "/$?",
        "",
        "# With metadata, as query parameters",
        'curl -X POST "' + url + '?status=completed&message=Processed+1247+records&duration=12.5s"',
        "",
        "# With metadata, as a JSON body",
        "curl -X POST " + url + " \\",
        '  -H "Content-Type: application/json" \\',
        "  -d '" + meta + "'",
      ].join("\n"),
      python: [
        "import requests",
        "",
        'URL = "' + url + '"',
        "",
        "requests.post(URL, timeout=10)                     # success",
        'requests.post(URL + "/fail", timeout=10)           # failure',
        'requests.post(f"{URL}/{exit_code}", timeout=10)    # exit code (0 is success)',
        "",
        "# With metadata",
        "requests.post(URL, json={",
        '    "status": "completed",',
        '    "message": "Processed 1247 records",',
        '    "duration": "12.5s",',
        "}, timeout=10)",
      ].join("\n"),
      php: [
        "<?php",
        '$url = "' + url + '";',
        '$post = stream_context_create(["http" => ["method" => "POST", "timeout" => 10]]);',
        "",
        "file_get_contents($url, false, $post);                // success",
        'file_get_contents("$url/fail", false, $post);         // failure',
        'file_get_contents("$url/$exitCode", false, $post);    // exit code (0 is success)',
        "",
        "// With metadata",
        "file_get_contents($url, false, stream_context_create([\"http\" => [",
        '    "method" => "POST",',
        '    "header" => "Content-Type: application/json",',
        '    "content" => json_encode(["status" => "completed", "message" => "Processed 1247 records", "duration" => "12.5s"]),',
        '    "timeout" => 10,',
        "]]));",
      ].join("\n"),
      node: [
        'const url = "' + url + '";',
        "",
        'await fetch(url, { method: "POST" });                  // success',
        'await fetch(`${url}/fail`, { method: "POST" });        // failure',
        'await fetch(`${url}/${exitCode}`, { method: "POST" }); // exit code (0 is success)',
        "",
        "// With metadata",
        "await fetch(url, {",
        '  method: "POST",',
        '  headers: { "Content-Type": "application/json" },',
        '  body: JSON.stringify({ status: "completed", message: "Processed 1247 records", duration: "12.5s" }),',
        "});",
      ].join("\n"),
    };
  }
  const SNIPPET_TABS = [["curl", "curl"], ["python", "Python"], ["php", "PHP"], ["node", "Node.js"]];
  let selectedSnippet = "curl";

  function renderPing(h) {
    const shown = !!h.ping_url && !readOnly;
    P.show($("#ping-shown"), shown);
    P.show($("#ping-hidden"), !shown);
    if (!shown) return;
    if ($("#ping-url").textContent === h.ping_url) return;
    $("#ping-url").textContent = h.ping_url;
    // The same heartbeat under Healthchecks' URL scheme, for tools that speak it.
    $("#hc-url").textContent = h.ping_url.replace(/\/api\/heartbeat\/([^/]+)$/, "/ping/$1");
    const code = snippets(h.ping_url);
    const tabs = $("#snippet-tabs");
    tabs.replaceChildren(...SNIPPET_TABS.map(([key, label]) => el("button", {
      type: "button", role: "tab", id: "tab-" + key, "aria-controls": "panel-" + key,
      "aria-selected": String(key === selectedSnippet), tabindex: key === selectedSnippet ? "0" : "-1",
      onclick: () => selectSnippet(key),
    }, label)));
    $("#snippet-panels").replaceChildren(...SNIPPET_TABS.map(([key]) => {
      const pre = el("pre", {class: "snippet"}, el("code", {}, code[key]));
      return el("div", {role: "tabpanel", id: "panel-" + key, "aria-labelledby": "tab-" + key, hidden: key !== selectedSnippet},
        el("button", {type: "button", class: "small copy-snippet", onclick: (e) => P.copy(code[key], e.currentTarget, pre)}, "Copy"),
        pre);
    }));
  }

  function selectSnippet(key) {
    selectedSnippet = key;
    for (const [k] of SNIPPET_TABS) {
      const tab = $("#tab-" + k);
      tab.setAttribute("aria-selected", String(k === key));
      tab.tabIndex = k === key ? 0 : -1;
      $("#panel-" + k).hidden = k !== key;
    }
    $("#tab-" + key).focus();
  }

  $("#snippet-tabs").addEventListener("keydown", (event) => {
    const keys = SNIPPET_TABS.map(([k]) => k);
    const i = keys.indexOf(selectedSnippet);
    if (event.key === "ArrowRight") selectSnippet(keys[(i + 1) % keys.length]);
    else if (event.key === "ArrowLeft") selectSnippet(keys[(i + keys.length - 1) % keys.length]);
    else return;
    event.preventDefault();
  });

  $("#copy-url").addEventListener("click", (e) => P.copy($("#ping-url").textContent, e.currentTarget, $("#ping-url")));

  // --- uptime --------------------------------------------------------------------
  async function loadUptime() {
    let data;
    // A preset ends now, as the fixed windows do: no "to", so the server's now ends both.
    const q = windowQuery();
    try {
      data = await api("GET", base + "/uptime", {query: range.preset === "custom" ? q : {from: q.from}});
    } catch (e) {
      P.note($("#uptime-note"), "Uptime is unavailable: " + e.message, "error");
      return;
    }
    const u = data.uptime || {};
    const card = (label, value, extra) => el("div", {class: "uptime-card"},
      el("span", {class: "uptime-label"}, label), el("strong", {class: "uptime-value"}, P.percent(value)), extra || null);
    const r = data.range;
    let extra = null;
    if (r) {
      const parts = [];
      if (typeof r.outages === "number") parts.push(r.outages + (r.outages === 1 ? " outage" : " outages"));
      if (r.downtime_s) parts.push("down " + P.durationText(r.downtime_s));
      extra = parts.length ? el("span", {class: "uptime-extra"}, parts.join(", ")) : null;
    }
    // A preset range is one of the fixed windows: that card is the selected range (one figure,
    // not a second one computed over a span a few milliseconds apart); a custom range has its own.
    const fixed = [["24h", "24 hours"], ["7d", "7 days"], ["30d", "30 days"], ["90d", "90 days"]];
    P.render($("#uptime"), JSON.stringify([data, range.preset]), () => {
      const cards = fixed.map(([key, label]) => {
        if (key !== range.preset) return card(label, u[key]);
        const selected = card(label + " (selected range)", u[key], extra);
        selected.classList.add("uptime-range");
        return selected;
      });
      if (r && !(range.preset in PRESETS_MS)) {
        const custom = card("Selected range", r.uptime, extra);
        custom.classList.add("uptime-range");
        cards.push(custom);
      }
      return cards;
    });
    P.note($("#uptime-note"), r ? "" : "Uptime for a chosen range is not available from this server yet.");
  }

  // --- timing graph ----------------------------------------------------------------
  // What the graph shows: every bucket of the chosen range, empty ones too (x is each
  // bucket's middle), so the axis spans the range and a bar covers its own bucket. The axis
  // is the range rounded out to whole buckets: the current bucket (now) is drawn, and
  // hovered, whole.
  // With a run-time rule it also shades the usual run time learned now (usual_run_time: low to
  // high, across the whole range) and rings each run a rule found too fast or too slow (the
  // timings' ``outliers``) at its own time and duration; the legend names those of the hovered
  // bucket, and a list under the graph says them in words.
  let graph = {from: 0, to: 0, bucketMs: 0, points: [], band: null, outliers: [], byBucket: []};
  const BAND_FILL = "rgba(26, 127, 55, 0.13)";
  const BAND_EDGE = "rgba(26, 127, 55, 0.45)";
  const OUTLIER = "#bc4c00";
  const OUTLIER_FILL = "rgba(188, 76, 0, 0.15)";
  const SLOW = ["too_slow", "over_max"];
  const FAST = ["too_fast", "under_min"];

  /** The band's edges in CSS px from the plot's top (for the tests and screen readers too). */
  function drawBand(u) {
    const band = graph.band;
    if (!band) return;
    const top = u.valToPos(band.high_s, "s", true);
    const bottom = u.valToPos(band.low_s, "s", true);
    const {left, width} = u.bbox;
    const ctx = u.ctx;
    ctx.save();
    ctx.fillStyle = BAND_FILL;
    ctx.fillRect(left, top, width, bottom - top);
    ctx.strokeStyle = BAND_EDGE;
    ctx.lineWidth = 1;
    ctx.setLineDash([2, 3]);
    const median = Math.round(u.valToPos(band.median_s, "s", true)) + 0.5;
    ctx.beginPath();
    ctx.moveTo(left, median);
    ctx.lineTo(left + width, median);
    ctx.stroke();
    ctx.restore();
  }

  function describeBand(u) {
    const box = $("#chart");
    const band = graph.band;
    if (!band) {
      for (const key of ["bandLowS", "bandHighS", "bandTop", "bandBottom"]) delete box.dataset[key];
      return;
    }
    Object.assign(box.dataset, {
      bandLowS: String(band.low_s), bandHighS: String(band.high_s),
      bandTop: u.valToPos(band.high_s, "s").toFixed(1), bandBottom: u.valToPos(band.low_s, "s").toFixed(1),
    });
  }

  const isOutlier = (o) => typeof o.duration_s === "number";

  function outlierWords(o) {
    const words = (o.verdicts || []).filter((v) => SLOW.includes(v) || FAST.includes(v)).map((v) => VERDICT_TEXT[v]);
    return (words.length ? [...new Set(words)].join(", ") : "far from usual") + " (" + P.durationText(o.duration_s) + ")";
  }

  /** A ring per outlier run, drawn over the series; each one's place (CSS px from the plot's corner)
   *  kept on its item of the list under the graph. */
  function drawOutliers(u) {
    const ctx = u.ctx;
    const radius = 6 * devicePixelRatio;
    const items = $("#chart-outliers").children;
    ctx.save();
    ctx.lineWidth = 2.5 * devicePixelRatio;
    ctx.strokeStyle = OUTLIER;
    ctx.fillStyle = OUTLIER_FILL;
    graph.outliers.forEach((o, n) => {
      const x = u.valToPos(o.at_ms / 1000, "x", true);
      const y = u.valToPos(o.duration_s, "s", true);
      ctx.beginPath();
      ctx.arc(x, y, radius, 0, 2 * Math.PI);
      ctx.fill();
      ctx.stroke();
      if (items[n]) {
        Object.assign(items[n].dataset,
          {x: u.valToPos(o.at_ms / 1000, "x").toFixed(1), y: u.valToPos(o.duration_s, "s").toFixed(1)});
      }
    });
    ctx.restore();
  }

  /** Wide enough for its longest label ("1 min 20 s" as well as "40 s"). */
  function durationAxisSize(u, values) {
    const longest = Math.max(0, ...(values || []).map((v) => String(v || "").length));
    return Math.max(64, Math.ceil(longest * 7 + 22));
  }

  function chartOptions(width) {
    // Each bar as wide as its bucket (the x values are evenly spaced), 2 px at the least.
    const bars = uPlot.paths.bars({size: [1, Infinity, 2], gap: 1, align: 0});
    const total = (key) => graph.points.reduce((sum, p) => sum + (p[key] || 0), 0);
    const count = (key) => (u, v, si, idx) => String(idx === null ? total(key) : (v || 0));
    const seconds = (u, v, si, idx) => (idx === null ? "—" : v === null ? "none" : P.durationText(v));
    return {
      width, height: 240,
      cursor: {drag: {x: false, y: false}},
      hooks: {drawAxes: [drawBand], draw: [drawOutliers, describeBand]},
      scales: {
        x: {time: true, range: () => [graph.from / 1000, graph.to / 1000]},
        // Room for the usual band as well as the runs.
        s: {range: (u, min, max) => [0, (Math.max(max || 0, graph.band ? graph.band.high_s : 0) || 1) * 1.15]},
        n: {range: (u, min, max) => [0, Math.max(max || 0, 1) * 3]},  // bars keep to the bottom third
      },
      axes: [
        {stroke: "#57606a", grid: {stroke: "#eaeef2"}, ticks: {stroke: "#d0d7de"},
          label: "Time (" + P.zoneName(new Date()) + ")", labelSize: 20, labelFont: "12px system-ui, sans-serif"},
        {scale: "s", stroke: "#57606a", size: durationAxisSize, grid: {stroke: "#eaeef2"}, ticks: {stroke: "#d0d7de"},
          values: (u, vals) => vals.map((v) => (v === null ? "" : P.durationText(v)))},
        {scale: "n", side: 1, stroke: "#a40e26", size: 36, grid: {show: false}, ticks: {show: false},
          values: (u, vals) => vals.map((v) => (Number.isInteger(v) && v <= (u.scales.n.max || 0) / 3 ? v : ""))},
      ],
      series: [
        // The legend: the hovered bucket's figures; otherwise the whole range's counts.
        {label: "Bucket", value: (u, v, si, idx) => (idx === null ? "whole range (hover for one bucket)"
          : P.spanText(v * 1000 - graph.bucketMs / 2, v * 1000 + graph.bucketMs / 2))},
        {label: "Average", scale: "s", stroke: "#0969da", width: 2, points: {show: true, size: 6}, spanGaps: true,
          value: seconds},
        {label: "p95", scale: "s", stroke: "#8250df", width: 1.5, dash: [6, 4], points: {show: true, size: 5}, spanGaps: true,
          value: seconds},
        {label: "Failed", scale: "n", stroke: "#cf222e", fill: "rgba(207, 34, 46, 0.45)", paths: bars, points: {show: false},
          value: count("fails")},
        {label: "Missed", scale: "n", stroke: "#82071e", fill: "rgba(130, 7, 30, 0.75)", paths: bars, points: {show: false},
          value: count("misses")},
        // Legend only (the rings are drawn at each run's own time): the hovered bucket's runs too
        // fast or slow, or how many the range has.
        {label: "Too fast or slow", scale: "s", stroke: OUTLIER, fill: OUTLIER_FILL, width: 2.5, paths: () => null,
          points: {show: false},
          value: (u, v, si, idx) => (idx === null ? String(graph.outliers.length)
            : !graph.byBucket[idx].length ? "none" : graph.byBucket[idx].map(outlierWords).join("; "))},
      ],
    };
  }

  /** The series of every bucket in [from, to) (whole buckets): ``points`` are the API's (non-empty ones). */
  function bucketSeries(points, from, to, bucketMs) {
    const byStart = new Map(points.map((p) => [p.bucket_ms, p]));
    const series = [[], [], [], [], [], []];
    graph.byBucket = [];
    for (let start = from; start < to; start += bucketMs) {
      const p = byStart.get(start);
      const runs = graph.outliers.filter((o) => o.at_ms >= start && o.at_ms < start + bucketMs);
      graph.byBucket.push(runs);
      series[0].push((start + bucketMs / 2) / 1000);
      series[1].push(p ? p.avg_duration_s : null);
      series[2].push(p ? p.p95_duration_s : null);
      series[3].push(p && p.fails ? p.fails : null);
      series[4].push(p && p.misses ? p.misses : null);
      // Its slowest outlier run: the scale makes room for it.
      series[5].push(runs.length ? Math.max(...runs.map((o) => o.duration_s)) : null);
    }
    return series;
  }

  function describeGraph(box) {
    // What the axis spans, for screen readers (and the tests): the range and the bucket size.
    box.dataset.from = new Date(graph.from).toISOString();
    box.dataset.to = new Date(graph.to).toISOString();
    box.dataset.bucketS = String(graph.bucketMs / 1000);
    box.setAttribute("role", "img");
    const band = graph.band;
    box.setAttribute("aria-label", "Run times, failures and misses from " + P.spanText(graph.from, graph.to)
      + ", in buckets of " + P.durationText(graph.bucketMs / 1000)
      + (band ? "; usual run time " + P.durationText(band.low_s) + " to " + P.durationText(band.high_s) : "")
      + (graph.outliers.length ? "; " + graph.outliers.length + " runs too fast or too slow, listed below" : ""));
    // The rings, in words: when and what (the canvas alone says nothing to a screen reader).
    P.render($("#chart-outliers"), JSON.stringify(graph.outliers), () => graph.outliers.map((o) => el("li",
      {dataset: {atMs: String(o.at_ms), seconds: String(o.duration_s), pingId: o.ping_id || ""}},
      P.timeExact(o.at, true), ": ", outlierWords(o), o.instance ? " on " + o.instance : "",
      o.alerted ? ", alerted" : ", marked")));
    P.show($("#band-legend"), !!band);
    if (band) {
      $("#band-text").textContent = "the usual run time now, " + P.durationText(band.low_s) + " to " + P.durationText(band.high_s)
        + " (median " + P.durationText(band.median_s) + ", from its last " + band.runs + " runs)";
    }
    P.show($("#outlier-legend"), graph.outliers.length > 0);
  }

  async function loadTimings() {
    const note = $("#chart-note");
    if (typeof uPlot === "undefined") { P.note(note, "The graph library did not load.", "error"); return; }
    let data;
    try {
      data = await api("GET", base + "/timings", {query: {...windowQuery(), bucket: bucketHint()}});
    } catch (e) {
      P.note(note, "Timings are unavailable: " + e.message, "error");
      return;
    }
    const points = data.points || [];
    const w = windowMs();
    const bucketMs = (data.bucket_s || 300) * 1000;
    const from = Math.floor(w.from / bucketMs) * bucketMs;
    const to = Math.ceil(w.to / bucketMs) * bucketMs;
    const band = heartbeat && heartbeat.usual_run_time;
    const outliers = (data.outliers || []).filter(isOutlier);
    graph = {from, to, bucketMs, points, band: band || null, outliers, byBucket: []};
    const series = bucketSeries(points, from, to, bucketMs);
    const box = $("#chart");
    describeGraph(box);
    if (!chart) {
      chart = new uPlot(chartOptions(Math.max(box.clientWidth, 280)), series, box);
      new ResizeObserver(() => chart.setSize({width: Math.max(box.clientWidth, 280), height: 240})).observe(box);
    } else {
      chart.setData(series);
    }
    const withDurations = points.some((p) => p.avg_duration_s !== null);
    P.note(note, !points.length ? "No check-ins in this range."
      : !withDurations ? "No durations in this range: ping /start when the job begins (or send duration=…) to see timings." : "");
  }

  // --- check-ins -------------------------------------------------------------------
  function kindFilter() { return $("#kind-filter").value; }

  const present = (v) => v !== null && v !== undefined;

  /** The run's duration: measured from its /start when there was one, else as reported. */
  function shownDuration(c) {
    return present(c.measured_duration) ? c.measured_duration : c.duration;
  }

  /** "18 KB", "312 B": the size of a check-in's output as UTF-8. */
  function outputSize(text) {
    const bytes = new TextEncoder().encode(text).length;
    if (bytes < 1024) return bytes + " B";
    return (bytes < 10240 ? (bytes / 1024).toFixed(1) : Math.round(bytes / 1024)) + " KB";
  }

  function runId(c) {
    if (!c.rid) return "";
    return el("code", {class: "rid", title: "Run " + c.rid}, c.rid.slice(0, 8));
  }

  /** Whether the check-in has output, and how much. A page carries the start of each output
   *  only (output_truncated then means "there is more"): the dialog reads it whole. */
  function outputMark(c) {
    if (!c.output) return "";
    return el("span", {class: "output-mark", title: c.output_truncated
      ? "Longer than shown here: open the check-in to read all of it" : "Open the check-in to read it"},
    el("span", {"aria-hidden": "true"}, "▤ "), outputSize(c.output), c.output_truncated ? "+" : null);
  }

  // What a rule found in a check-in (CheckinJudged.verdicts), as short words; the reason on hover.
  const VERDICT_TEXT = {
    too_fast: "too fast", too_slow: "too slow", under_min: "under the minimum", over_max: "over the maximum",
    too_early: "too early", too_often: "too often", ignored: "ignored", unmatched_failed: "no keyword: failed",
    keyword_failure: "keyword", keyword_success: "keyword", keyword_start: "start keyword",
  };

  function verdictText(v, c) {
    const text = VERDICT_TEXT[v] || String(v).replace(/_/g, " ");
    return v.startsWith("keyword_") && c.keyword ? text + ": " + c.keyword : text;
  }

  function verdictBadges(c) {
    return (c.verdicts || []).flatMap((v) => {
      // Colour follows what it did (alerted, marked, a good or neutral finding); the word says which.
      const tone = v === "keyword_success" || v === "keyword_start" ? "good" : v === "ignored" ? "quiet"
        : c.alerted ? "bad" : "marked";
      const title = [c.verdict_reason, tone === "bad" ? "Counted as a failed run." : tone === "marked" ? "Marked only." : ""]
        .filter(Boolean).join(" ");
      return [" ", el("span", {class: "verdict verdict-" + tone, title: title || null}, verdictText(v, c))];
    });
  }

  function checkinRow(c) {
    const open = () => openCheckin(c);
    const duration = shownDuration(c);
    const row = el("tr", {class: "clickable", onclick: (e) => { if (e.target.tagName !== "BUTTON") open(); }},
      el("td", {class: "nowrap"}, el("button", {type: "button", class: "linklike", onclick: open,
        "aria-label": "Details of the check-in at " + new Date(c.received_at).toLocaleString()}, P.timeExact(c.received_at, true))),
      el("td", {class: "kind-cell"}, el("span", {class: P.kindClass(c) + (c.kind === "start" ? " kind-run" : "")}, P.kindText(c)),
        verdictBadges(c)),
      el("td", {class: "nowrap col-instance"}, c.instance ? el("code", {class: "instance-name"}, c.instance) : ""),
      el("td", {class: "nowrap"}, runId(c)),
      el("td", {}, c.status || ""),
      el("td", {class: "message"}, c.message || ""),
      el("td", {class: "nowrap", title: present(c.measured_duration) ? "Measured from the run's start" : null},
        present(duration) ? P.durationText(duration) : ""),
      el("td", {class: "nowrap"}, outputMark(c)),
      el("td", {class: "nowrap"}, c.source_ip || ""),
      el("td", {class: "ua"}, c.user_agent || ""),
    );
    return row;
  }

  let openedCheckin = null;

  function openCheckin(c) {
    const dialog = $("#checkin-dialog");
    openedCheckin = c.id;
    const item = (label, value) => [el("dt", {}, label), el("dd", {}, value === null || value === undefined || value === "" ? el("span", {class: "muted"}, "—") : value)];
    $("#checkin-title").textContent = "Check-in: " + P.kindText(c);
    $("#checkin-details").replaceChildren(
      ...item("Received", [P.timeExact(c.received_at), el("div", {class: "muted small"}, P.utcText(new Date(c.received_at)))]),
      ...item("Kind", P.kindText(c)),
      ...item("Exit code", c.exit_code === null || c.exit_code === undefined ? null : String(c.exit_code)),
      ...item("Status", c.status),
      ...item("Run ID", c.rid ? el("code", {}, c.rid) : null),
      ...(c.instance ? item("Instance", el("code", {}, c.instance)) : []),
      ...((c.verdicts || []).length ? item("Rules found", [...verdictBadges(c),
        c.verdict_reason ? el("div", {class: "small"}, P.textWithTimes(c.verdict_reason)) : null,
        el("div", {class: "muted small"}, c.alerted ? "Counted as a failed run (alerts like one)." : "Marked only: no alert.")]) : []),
      ...(c.keyword ? item("Keyword matched", el("code", {}, c.keyword)) : []),
      // A text body is the message and the output both: shown once, as the output.
      ...item("Message", c.message && !(c.output && c.output.startsWith(c.message.slice(0, 200)))
        ? el("pre", {class: "full-message"}, c.message) : null),
      ...item("Measured duration", present(c.measured_duration)
        ? P.durationText(c.measured_duration) + " (from the run's start to this check-in)" : null),
      ...item("Reported duration", !present(c.duration) ? null
        : P.durationText(c.duration) + (c.duration_raw ? " (sent as “" + c.duration_raw + "”)" : "")),
      ...item("Source IP", c.source_ip),
      ...item("User agent", c.user_agent),
      ...item("Method", c.method),
      ...item("ID", el("code", {}, c.id)),
    );
    showOutput(c, !c.output_truncated);
    dialog.showModal();
    if (c.output_truncated) loadWholeOutput(c);
  }

  /** The output in the dialog; ``whole``: this is all of it (else the page's start of it). */
  function showOutput(c, whole, problem) {
    P.show($("#checkin-output"), !!c.output);
    const pre = $("#checkin-output-text");
    if (pre.textContent !== (c.output || "")) {
      pre.textContent = c.output || "";
      pre.scrollTop = 0;
    }
    $("#checkin-output-meta").textContent = !c.output ? ""
      : !whole ? (problem || "the start of it; loading the rest…")
        : outputSize(c.output) + (c.output_truncated ? " (truncated: the job sent more than was kept)" : "");
  }

  async function loadWholeOutput(c) {
    let whole;
    try {
      whole = await api("GET", base + "/checkins/" + encodeURIComponent(c.id));
    } catch (e) {
      if (openedCheckin === c.id) showOutput(c, false, "the start of it only (" + e.message + ")");
      return;
    }
    if (openedCheckin === c.id && $("#checkin-dialog").open) showOutput(whole, true);
  }

  $("#checkin-dialog").addEventListener("close", () => { openedCheckin = null; });

  async function loadCheckins() {
    const kind = kindFilter();
    let data;
    // "Exit code" is no kind of its own (a success or fail with a code): narrowed here. "Found by
    // a rule" is any check-in with a verdict (the API's ?verdict=, every one of them).
    const flagged = kind === "flagged";
    const query = {limit: 50, before: checkinCursor, kind: kind === "exit_code" || flagged ? "" : kind,
      verdict: flagged ? Object.keys(VERDICT_TEXT).join(",") : "", ...windowQuery()};
    try {
      try {
        data = await api("GET", base + "/checkins", {query});
      } catch (e) {
        if (!(e.status === 400 && e.field === "kind")) throw e;
        data = await api("GET", base + "/checkins", {query: {...query, kind: ""}});  // a kind this server does not know
      }
    } catch (e) {
      P.note($("#checkins-note"), "Could not load check-ins: " + e.message, "error");
      return false;
    }
    P.note($("#checkins-note"), "");
    let rows = data.checkins || [];
    // Until the API filters by kind and time itself, narrow this page here.
    const w = windowMs();
    rows = rows.filter((c) => { const t = new Date(c.received_at).getTime(); return t >= w.from && t < w.to; });
    if (kind === "exit_code") rows = rows.filter((c) => c.exit_code !== null && c.exit_code !== undefined);
    else if (flagged) rows = rows.filter((c) => (c.verdicts || []).length);
    else if (kind) rows = rows.filter((c) => c.kind === kind);
    $("#checkins").classList.toggle("with-instances", isFleet(heartbeat) || rows.some((c) => c.instance));
    P.render($("#checkin-rows"), JSON.stringify(rows), () => rows.map(checkinRow));
    P.show($("#checkins-empty"), rows.length === 0);
    nextCheckinCursor = data.next || null;
    P.show($("#older"), !!nextCheckinCursor);
    P.show($("#newest"), !!checkinCursor);
    if (checkinCursor || kind) return false;
    newestCheckins = rows;
    const top = rows.length ? rows[0].id : "";
    const changed = top !== lastTopCheckin;
    lastTopCheckin = top;
    return changed;
  }

  $("#kind-filter").addEventListener("change", () => { checkinCursor = ""; poller.now(); });
  $("#older").addEventListener("click", () => { checkinCursor = nextCheckinCursor || ""; poller.now(); });
  $("#newest").addEventListener("click", () => { checkinCursor = ""; poller.now(); });

  // --- status changes and alerts ---------------------------------------------------------
  let changesAvailable = true;
  let changesCursor = "";
  let olderChanges = [];

  async function loadChanges() {
    if (!changesAvailable) return;
    let changes;
    let deliveries = [];
    try {
      changes = await api("GET", base + "/status-changes", {query: {limit: 50}});
    } catch (e) {
      if (e.status === 404) {
        changesAvailable = false;
        P.note($("#changes-note"), "Status history is not available from this server yet.");
        $("#changes").closest(".table-wrap").hidden = true;
      } else {
        P.note($("#changes-note"), "Could not load status changes: " + e.message, "error");
      }
      return;
    }
    let deliveriesNote = "";
    try {
      deliveries = (await api("GET", base + "/deliveries")).deliveries || [];
    } catch (e) {
      deliveriesNote = e.status === 404 ? "Alert deliveries are not available from this server yet." : "Could not load alerts: " + e.message;
    }
    P.note($("#changes-note"), deliveriesNote);
    if (!changesCursor) changesCursor = changes.next || "";
    renderChanges([...(changes.changes || []), ...olderChanges], deliveries);
    P.show($("#older-changes"), !!changesCursor);
  }

  $("#older-changes").addEventListener("click", async () => {
    try {
      const more = await api("GET", base + "/status-changes", {query: {limit: 50, before: changesCursor}});
      olderChanges = olderChanges.concat(more.changes || []);
      changesCursor = more.next || "";
      forceSlow = true;
      poller.now();
    } catch (e) {
      P.note($("#changes-note"), "Could not load older changes: " + e.message, "error");
    }
  });

  function renderChanges(changes, deliveries) {
    // Newest first; the alerts for a change are those of its kind sent before the next change.
    const sorted = changes.slice().sort((a, b) => (a.at < b.at ? 1 : -1));
    P.render($("#change-rows"), JSON.stringify([sorted, deliveries, channelNames]), () => sorted.map((c, i) => {
      const newer = i > 0 ? sorted[i - 1].at : null;
      const sent = deliveries.filter((d) => deliveryKind(d) === c.status && d.at >= c.at && (newer === null || d.at < newer));
      return el("tr", {},
        el("td", {class: "nowrap"}, P.timeExact(c.at, true), el("div", {class: "muted small"}, P.timeRelative(c.at))),
        el("td", {class: "nowrap"}, c.previous ? [P.statusBadge(c.previous), el("span", {class: "arrow", "aria-label": "to"}, " → ")] : null,
          P.statusBadge(c.status)),
        el("td", {}, c.reason ? P.textWithTimes(c.reason) : ""),
        el("td", {}, sent.length ? el("ul", {class: "plain"}, sent.map(delivery)) : el("span", {class: "muted"}, "—")),
      );
    }));
    P.show($("#changes-empty"), sorted.length === 0);
  }

  /** "down"/"up": the delivery's kind, or the end of its alert id ("<heartbeat>:<n>:down"). */
  function deliveryKind(d) {
    return d.kind || String(d.alert_id || "").split(":").pop();
  }

  function delivery(d) {
    const name = channelNames[d.channel_id] || d.channel_id;
    const tries = d.attempts > 1 ? " after " + d.attempts + " attempts" : "";
    return el("li", {class: d.ok ? "delivery-ok" : "delivery-failed"},
      el("span", {class: "sr-mark"}, d.ok ? "✓ " : "✗ "),
      d.ok ? "Sent to " + name + tries : "Failed to send to " + name + tries + (d.error ? ": " + d.error : ""),
      " ", el("span", {class: "muted small"}, "(", P.timeExact(d.at, true), ")"));
  }

  // --- refresh loop ------------------------------------------------------------------------
  async function tick() {
    let h;
    try {
      h = await api("GET", base);
    } catch (e) {
      if (e.status === 401) return;
      $("#content").hidden = e.status === 404 || !heartbeat;
      P.note($("#page-note"), e.status === 404 ? "This heartbeat does not exist (or was deleted). " : "Could not load: " + e.message, "error");
      if (e.status === 404) { $("#page-note").append(el("a", {href: "/"}, "Back to the list")); poller.stop(); }
      return;
    }
    P.note($("#page-note"), "");
    const first = !heartbeat;
    const newCheckins = await loadCheckins();
    await loadDependencyNames(h);
    renderHeartbeat(h);
    if (first) $("#content").hidden = false;
    // A new deadline judged for a fleet, or a new usual run time: the instances and the graph too.
    const statusKey = JSON.stringify([h.status, h.status_since, h.paused, h.instances_summary, h.usual_run_time]);
    const statusChanged = statusKey !== lastStatusKey;
    lastStatusKey = statusKey;
    if (forceSlow || statusChanged || newCheckins || Date.now() - lastSlowAt > 60000) {
      forceSlow = false;
      lastSlowAt = Date.now();
      updateExportLinks();
      await Promise.all([loadUptime(), loadTimings(), loadChanges(), loadInstances()]);
    }
    P.refreshRelativeTimes();
  }

  async function loadChannelNames() {
    try {
      const data = await api("GET", "/channels");
      channelNames = Object.fromEntries((data.channels || []).map((c) => [c.id, c.name]));
    } catch (e) { /* ids are shown instead */ }
  }

  let poller = {now: () => {}, stop: () => {}};
  readRangeFromUrl();
  if (range.preset === "custom") { $("#range-from").value = range.from; $("#range-to").value = range.to; }
  renderRange();
  P.frame().then(async (s) => {
    readOnly = !!s.read_only;
    await loadChannelNames();
    poller = P.poll(tick, 5000);
  });
})();
