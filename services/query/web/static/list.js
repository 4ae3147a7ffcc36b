/* Heartbeats list: counts per status, filters (status, tag, name), a sort (problems first
 * unless asked otherwise), cursor pages, refreshed every 5 s in place. State lives in the
 * URL (?status=&tag=&q=&sort=&before=; sort only when not the default). */
"use strict";

(() => {
  const {el, $, api} = P;
  const PAGE_SIZE = 50;
  const rows = $("#rows");
  const listNote = $("#list-note");
  const DEFAULT_SORT = "status";  // down, then late, then the rest: what needs looking at on top

  function state() {
    const p = P.params();
    return {q: p.get("q") || "", status: p.get("status") || "", tag: p.get("tag") || "",
      sort: p.get("sort") || "", before: p.get("before") || ""};
  }

  function go(changes) {
    const next = {...state(), before: "", ...changes};
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(next)) if (v) p.set(k, v);
    const url = "/" + (p.toString() ? "?" + p : "");
    history.pushState(null, "", url);
    syncForm();
    poller.now();
  }

  function syncForm() {
    const s = state();
    $("#q").value = s.q;
    $("#status").value = s.status;
    $("#tag").value = s.tag;
    $("#sort").value = s.sort || DEFAULT_SORT;
    P.show($("#clear-filters"), !!(s.q || s.status || s.tag));
  }

  function renderCounts(counts, active) {
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    const button = (status, label, n) => el("button", {
      type: "button", class: "count" + (status ? " count-" + status : ""), "aria-pressed": String(active === status),
      onclick: () => go({status: active === status ? "" : status}),
    }, status ? el("span", {class: "status-dot", "aria-hidden": "true"}) : null, label, " ", el("strong", {}, String(n)));
    P.render($("#counts"), JSON.stringify([counts, active]), () => [
      button("", "All", total),
      ...P.STATUS_ORDER.filter((s) => (s === "unknown" ? counts[s] || active === s : s !== "running" || s in counts)).map((s) => button(s, P.STATUS_LABELS[s], counts[s] || 0)),
    ]);
  }

  function statusCell(h) {
    const parts = [P.statusBadge(h.status)];
    if (h.status_since && h.status !== "new") {
      parts.push(el("span", {class: "since"}, h.status === "running" ? " started " : " since ", P.timeRelative(h.status_since)));
    }
    if (h.status_reason && (h.status === "down" || h.status === "late" || h.status === "unknown")) {
      parts.push(el("div", {class: "reason"}, P.textWithTimes(h.status_reason)));
    }
    parts.push(P.holdNotes(h));
    return el("td", {}, parts);
  }

  function nextExpectedCell(h) {
    if (h.paused) return el("td", {class: "muted"}, "paused");
    if (!h.next_expected_at) return el("td", {class: "muted"}, "—");
    const overdue = new Date(h.next_expected_at).getTime() < Date.now();
    return el("td", {class: overdue ? "overdue" : ""}, P.timeRelative(h.next_expected_at), overdue ? " (overdue)" : null);
  }

  function row(h) {
    return el("tr", {class: "row-" + h.status},
      el("th", {scope: "row"}, el("a", {href: "/heartbeats/" + encodeURIComponent(h.id)}, h.name)),
      statusCell(h),
      el("td", {}, P.timeRelative(h.last_checkin_at)),
      nextExpectedCell(h),
      el("td", {}, (h.tags || []).map((t) => el("a", {class: "tag", href: "/?tag=" + encodeURIComponent(t)}, t))),
    );
  }

  let nextCursor = null;

  async function load() {
    const s = state();
    let data;
    try {
      data = await api("GET", "/heartbeats", {query: {limit: PAGE_SIZE, before: s.before, status: s.status, tag: s.tag, q: s.q,
        sort: s.sort || DEFAULT_SORT}});
    } catch (e) {
      if (e.status !== 401) P.note(listNote, "Could not load heartbeats: " + e.message, "error");
      return;
    }
    let list = data.heartbeats || [];
    const notes = [];
    // Until the API filters by status and name itself, narrow this page here.
    if (s.status && list.some((h) => h.status !== s.status)) list = list.filter((h) => h.status === s.status);
    if (s.q && list.some((h) => !h.name.toLowerCase().includes(s.q.toLowerCase()))) {
      list = list.filter((h) => h.name.toLowerCase().includes(s.q.toLowerCase()));
    }
    let counts = data.counts;
    if (!counts) {
      counts = {};
      for (const h of data.heartbeats || []) counts[h.status] = (counts[h.status] || 0) + 1;
      notes.push("Counts cover the heartbeats on this page.");
    }
    renderCounts(counts, s.status);
    P.note(listNote, notes.join(" "));
    listNote.className = "muted small";

    P.render(rows, JSON.stringify(list), () => list.map(row));
    P.refreshRelativeTimes();
    const filtered = s.q || s.status || s.tag;
    const empty = $("#empty");
    if (list.length === 0) {
      empty.replaceChildren(filtered ? "No heartbeats match these filters." : "No heartbeats yet. ",
        !filtered && !document.body.classList.contains("read-only")
          ? el("a", {href: "/heartbeats/new"}, "Create your first heartbeat") : "");
    }
    P.show(empty, list.length === 0);
    nextCursor = data.next || null;
    P.show($("#next-page"), !!nextCursor);
    P.show($("#first-page"), !!s.before);
  }

  $("#filters").addEventListener("submit", (event) => {
    event.preventDefault();
    go({q: $("#q").value.trim(), status: $("#status").value, tag: $("#tag").value.trim(), sort: sortParam()});
  });
  // A new order starts at its first page (a cursor belongs to one order).
  $("#sort").addEventListener("change", () => go({sort: sortParam()}));

  function sortParam() { return $("#sort").value === DEFAULT_SORT ? "" : $("#sort").value; }
  $("#clear-filters").addEventListener("click", (event) => { event.preventDefault(); go({q: "", status: "", tag: ""}); });
  $("#next-page").addEventListener("click", () => { if (nextCursor) go({...state(), before: nextCursor}); });
  $("#first-page").addEventListener("click", () => go({...state(), before: ""}));
  window.addEventListener("popstate", () => { syncForm(); poller.now(); });

  syncForm();
  let poller = {now: () => {}};
  P.frame().then(() => { poller = P.poll(load, 5000); });
})();
