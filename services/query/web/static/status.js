/* A project's public status page: no session, no key but the one in the URL. Reads
 * /api/v1/status-page/{key} (labels, states, daily uptime, recent changes) every minute and
 * draws it with textContent only: nothing the project typed is ever parsed as HTML. */
"use strict";

(() => {
  const REFRESH_MS = 60000;
  const STATES = {
    up: "Operational", running: "Running", late: "Late", unknown: "Unknown", down: "Down",
    paused: "Paused", new: "Not yet reporting", maintenance: "Maintenance",
  };
  const OVERALL = {
    up: ["✓", "All systems operational"],
    degraded: ["!", "Some systems are running late"],
    down: ["✕", "Some systems are down"],
    maintenance: ["i", "Maintenance in progress"],
  };
  const CHANGE_WORDS = {
    up: "is up", down: "went down", late: "is late", paused: "was paused", new: "was reset",
    running: "started a run", unknown: "status unknown",
  };

  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value !== null && value !== undefined && value !== false) node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child !== null && child !== undefined && child !== false) node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  const key = decodeURIComponent(location.pathname.split("/").filter(Boolean)[1] || "");
  const dateFormat = new Intl.DateTimeFormat(undefined, {year: "numeric", month: "short", day: "numeric", timeZone: "UTC"});
  const timeFormat = new Intl.DateTimeFormat(undefined, {dateStyle: "medium", timeStyle: "short"});
  const relative = new Intl.RelativeTimeFormat(undefined, {numeric: "auto"});

  function ago(iso) {
    const seconds = (Date.parse(iso) - Date.now()) / 1000;
    const units = [["day", 86400], ["hour", 3600], ["minute", 60]];
    for (const [unit, size] of units) {
      if (Math.abs(seconds) >= size) return relative.format(Math.round(seconds / size), unit);
    }
    return relative.format(Math.round(seconds), "second");
  }

  function percent(value) {
    if (value === null || value === undefined) return "no data";
    return (value === 100 ? "100" : value.toFixed(value >= 99.99 ? 3 : 2).replace(/0+$/, "").replace(/\.$/, "")) + "%";
  }

  function barClass(value) {
    if (value === null) return "bar-none";
    if (value >= 100) return "bar-full";
    if (value >= 99) return "bar-most";
    if (value >= 95) return "bar-some";
    return "bar-low";
  }

  function stateBadge(state) {
    return el("span", {class: "sp-state state-" + state}, el("span", {class: "status-dot", "aria-hidden": "true"}),
      STATES[state] || state);
  }

  function bars(item, days) {
    return el("ol", {class: "sp-bars", "aria-label": "Daily uptime of " + item.label + ", oldest first"},
      item.days.map((value, i) => {
        const day = dateFormat.format(new Date(days[i] + "T00:00:00Z"));
        const text = day + ": " + (value === null ? "no data" : percent(value) + " up");
        return el("li", {class: "sp-bar " + barClass(value), title: text}, el("span", {class: "visually-hidden"}, text));
      }));
  }

  function item(it, days) {
    return el("li", {class: "sp-item"},
      el("div", {class: "sp-item-head"}, el("span", {class: "sp-label"}, it.label), stateBadge(it.state)),
      bars(it, days),
      el("div", {class: "sp-scale", "aria-hidden": "true"},
        el("span", {}, el("span", {class: "sp-long"}, days.length + " days ago"), el("span", {class: "sp-short"}, "30 days ago")),
        el("span", {class: "sp-uptime"}, it.uptime === null ? "no data yet" : [
          el("span", {class: "sp-long"}, percent(it.uptime) + " uptime"),
          el("span", {class: "sp-short"}, percent(it.uptime) + " over 90 days")]),
        el("span", {}, "Today")));
  }

  function legend() {
    const swatch = (cls, text) => el("span", {}, el("i", {class: cls, "aria-hidden": "true"}), text);
    return el("div", {class: "sp-legend", "aria-hidden": "true"},
      swatch("bar-full", "100%"), swatch("bar-most", "99% or more"), swatch("bar-some", "95% or more"),
      swatch("bar-low", "less"), swatch("bar-none", "no data"));
  }

  function draw(page) {
    document.title = page.title + " · Status";
    $("sp-title").textContent = page.title;
    $("sp-intro").textContent = page.intro;
    $("sp-intro").hidden = !page.intro;
    const [icon, words] = OVERALL[page.state] || OVERALL.up;
    const overall = $("sp-overall");
    overall.className = "sp-overall sp-overall-" + page.state;
    overall.replaceChildren(el("span", {class: "sp-icon", "aria-hidden": "true"}, icon), el("span", {}, words));
    overall.hidden = false;
    $("sp-groups").replaceChildren(
      ...page.groups.filter((g) => g.items.length).map((g, i) => el("section", {class: "card sp-card", "aria-labelledby": "sp-g" + i},
        el("h2", {id: "sp-g" + i}, g.name),
        el("ul", {class: "sp-items"}, g.items.map((it) => item(it, page.days))))),
      page.groups.some((g) => g.items.length) ? legend() : el("p", {class: "empty"}, "Nothing to show yet."));
    $("sp-change-list").replaceChildren(...page.changes.map((c) => el("li", {},
      el("span", {}, el("strong", {}, c.label), " ", CHANGE_WORDS[c.state] || c.state),
      el("time", {datetime: c.at, title: timeFormat.format(new Date(c.at))}, ago(c.at)))));
    $("sp-changes").hidden = !page.changes.length;
    $("sp-updated").textContent = "Updated " + timeFormat.format(new Date(page.updated_at)) + " · refreshes every minute";
  }

  function fail(text) {
    const node = $("sp-error");
    node.textContent = text;
    node.hidden = false;
  }

  async function load() {
    let response;
    try {
      response = await fetch("/api/v1/status-page/" + encodeURIComponent(key), {headers: {Accept: "application/json"}});
    } catch (e) {
      fail("Cannot reach the server; retrying in a minute.");
      return;
    }
    if (response.status === 404) {
      $("sp-title").textContent = "No such status page";
      fail("This status page does not exist, or its address has changed.");
      $("sp-overall").hidden = true;
      $("sp-groups").replaceChildren();
      $("sp-changes").hidden = true;
      return;
    }
    if (!response.ok) {
      fail("The status could not be loaded (" + response.status + "); retrying in a minute.");
      return;
    }
    $("sp-error").hidden = true;
    draw(await response.json());
  }

  load().finally(() => { $("main").setAttribute("aria-busy", "false"); });
  setInterval(() => { if (!document.hidden) load(); }, REFRESH_MS);
})();
