/* Settings: the project's public status page (title, intro, groups of heartbeats each under a
 * label of its own, its address) and its badges (the badge key, a preview, snippets to copy).
 * Read-only keys see both and change neither (the write controls stay hidden, fields disabled). */
"use strict";

(() => {
  const {el, $, $$, api, note} = P;
  let readOnly = true;
  let heartbeats = [];  // [{id, name, slug, tags}] of the project, by name
  let page = null;  // the status page as saved (GET /projects/me/status-page), or null
  let groups = [];  // the editor's groups: [{name, items: [{heartbeat_id, label}]}]
  let badgeKey = null;

  const byId = () => Object.fromEntries(heartbeats.map((h) => [h.id, h]));

  async function loadHeartbeats() {
    const all = [];
    let before = null;
    do {
      const got = await api("GET", "/heartbeats", {query: {limit: 1000, before}});
      all.push(...got.heartbeats);
      before = got.next;
    } while (before);
    heartbeats = all;
  }

  // --- status page ----------------------------------------------------------------
  function fieldError(name, text) {
    const node = $("#err-" + name);
    if (node) { node.textContent = text || ""; node.hidden = !text; }
    const input = $("#sp-" + name);
    if (input) input.setAttribute("aria-invalid", text ? "true" : "false");
  }

  function showPage() {
    const on = page !== null;
    $("#sp-actions").hidden = !on;
    $("#sp-url-line").hidden = !on;
    $("#sp-none").hidden = on || !$("#sp-form").hidden;
    $("#sp-create").hidden = on || readOnly || !$("#sp-form").hidden;
    if (on) {
      const url = location.origin + page.url;
      $("#sp-link").href = page.url;
      $("#sp-url").textContent = url;
      $("#sp-form").hidden = false;
    }
  }

  function fillForm() {
    $("#sp-title").value = page ? page.title : "Status";
    $("#sp-intro").value = page ? page.intro : "";
    groups = page ? page.groups.map((g) => ({name: g.name, items: g.items.map((i) => ({...i}))}))
      : [{name: "Services", items: []}];
    drawGroups();
  }

  function moveButton(text, label, disabled, onclick) {
    return el("button", {type: "button", class: "small quiet", "aria-label": label, disabled, onclick, "data-write": true}, text);
  }

  function drawGroups() {
    const known = byId();
    const chosen = new Set(groups.flatMap((g) => g.items.map((i) => i.heartbeat_id)));
    const box = $("#sp-groups");
    box.replaceChildren(...groups.map((group, gi) => {
      const nameOf = (id) => (known[id] ? known[id].name : "(deleted heartbeat)");
      const items = group.items.map((item, ii) => el("li", {class: "sp-edit-item"},
        el("span", {class: "sp-hb-name", title: "The heartbeat (its name is not shown on the page)"}, nameOf(item.heartbeat_id)),
        el("label", {class: "visually-hidden", for: `sp-g${gi}-i${ii}`}, "Label for " + nameOf(item.heartbeat_id)),
        el("input", {id: `sp-g${gi}-i${ii}`, type: "text", maxlength: 100, value: item.label, disabled: readOnly,
          oninput: (e) => { item.label = e.target.value; }}),
        el("span", {class: "sp-item-buttons"},
          moveButton("↑", "Move " + item.label + " up", ii === 0, () => { group.items.splice(ii - 1, 0, ...group.items.splice(ii, 1)); drawGroups(); }),
          moveButton("↓", "Move " + item.label + " down", ii === group.items.length - 1, () => { group.items.splice(ii + 1, 0, ...group.items.splice(ii, 1)); drawGroups(); }),
          el("button", {type: "button", class: "small danger", "data-write": true, "aria-label": "Remove " + item.label,
            onclick: () => { group.items.splice(ii, 1); drawGroups(); }}, "Remove"))));
      const free = heartbeats.filter((h) => !chosen.has(h.id));
      const pick = el("select", {id: `sp-g${gi}-add`, disabled: readOnly || !free.length},
        el("option", {value: ""}, free.length ? "Choose a heartbeat…" : "Every heartbeat is on the page"),
        free.map((h) => el("option", {value: h.id}, h.name)));
      const add = () => {
        const h = known[pick.value];
        if (!h) return;
        group.items.push({heartbeat_id: h.id, label: h.name});
        drawGroups();
        const inputs = $$(`#sp-groups fieldset:nth-of-type(${gi + 1}) .sp-edit-item input`);
        if (inputs.length) inputs[inputs.length - 1].focus();
      };
      return el("fieldset", {class: "sp-group"},
        el("legend", {class: "visually-hidden"}, "Group " + (gi + 1)),
        el("div", {class: "sp-group-head"},
          el("div", {class: "field"}, el("label", {for: `sp-g${gi}-name`}, "Group name"),
            el("input", {id: `sp-g${gi}-name`, type: "text", maxlength: 100, value: group.name, disabled: readOnly,
              oninput: (e) => { group.name = e.target.value; }})),
          el("button", {type: "button", class: "small danger", "data-write": true, "aria-label": "Remove group " + (group.name || gi + 1),
            onclick: () => { groups.splice(gi, 1); drawGroups(); }}, "Remove group")),
        group.items.length ? el("ul", {class: "sp-edit-items", "aria-label": "Heartbeats of group " + (gi + 1)},
          el("li", {class: "sp-edit-item sp-edit-head", "aria-hidden": "true"}, el("span", {}, "Heartbeat"),
            el("span", {}, "Shown on the page as"), el("span", {})), items)
          : el("p", {class: "muted small"}, "No heartbeats in this group yet."),
        readOnly ? null : el("div", {class: "sp-add"},
          el("label", {for: `sp-g${gi}-add`}, "Add a heartbeat"),
          el("div", {class: "sp-add-row"}, pick, el("button", {type: "button", onclick: add}, "Add"))),
        el("p", {class: "hint"}, "Each heartbeat shows under its label, saved as typed: renaming the heartbeat later does not change it."));
    }));
    if (readOnly) $$("#sp-groups [data-write]").forEach((n) => n.remove());
  }

  async function save(event) {
    event.preventDefault();
    ["title", "intro", "groups"].forEach((f) => fieldError(f, ""));
    const body = {title: $("#sp-title").value, intro: $("#sp-intro").value, groups};
    try {
      page = await api("PUT", "/projects/me/status-page", {body});
      note($("#sp-note"), "Saved. The public page shows it within a minute.", "ok");
      fillForm();
      showPage();
    } catch (e) {
      const field = ["title", "intro"].includes(e.field) ? e.field : "groups";
      fieldError(field, (field === "groups" && e.field && e.field !== "groups" ? e.field + ": " : "") + e.message);
      note($("#sp-note"), "Not saved: " + e.message, "error");
    }
  }

  async function rotate() {
    if (!(await P.confirmDialog("New address?", "The current address of the status page stops working at once.", "New address"))) return;
    try {
      page = await api("POST", "/projects/me/status-page/key");
      note($("#sp-note"), "The status page has a new address; the old one no longer works.", "ok");
      showPage();
    } catch (e) { note($("#sp-note"), e.message, "error"); }
  }

  async function turnOff() {
    if (!(await P.confirmDialog("Turn the status page off?", "Its address stops working; setting it up again gives a new one.", "Turn off"))) return;
    try {
      await api("DELETE", "/projects/me/status-page");
      page = null;
      $("#sp-form").hidden = true;
      note($("#sp-note"), "The status page is off.", "ok");
      showPage();
    } catch (e) { note($("#sp-note"), e.message, "error"); }
  }

  // --- badges ---------------------------------------------------------------------
  function badgeTargets() {
    const tags = [...new Set(heartbeats.flatMap((h) => h.tags || []))].sort();
    return [
      {value: "project", text: "The whole project", label: "status"},
      ...tags.map((t) => ({value: "tag/" + encodeURIComponent(t), text: "Tag: " + t, label: t})),
      ...heartbeats.map((h) => ({value: encodeURIComponent(h.slug || h.id), text: "Heartbeat: " + h.name, label: h.slug || "status"})),
    ];
  }

  function snippet(label, text) {
    const code = el("code", {class: "snippet-text"}, text);
    const button = el("button", {type: "button", class: "small", "aria-label": "Copy " + label}, "Copy");
    button.addEventListener("click", () => P.copy(text, button, code));
    return el("div", {class: "snippet"}, el("span", {class: "snippet-label"}, label), code, button);
  }

  function drawBadge() {
    $("#badge-none").hidden = !!badgeKey;
    $("#badge-body").hidden = !badgeKey;
    $("#badge-rotate").textContent = badgeKey ? "New badge key" : "Make badge key";
    if (!badgeKey) return;
    const select = $("#badge-what");
    const targets = badgeTargets();
    const chosen = select.value || "project";
    select.replaceChildren(...targets.map((t) => el("option", {value: t.value, selected: t.value === chosen}, t.text)));
    const target = targets.find((t) => t.value === select.value) || targets[0];
    const states = $("#badge-states").value;
    const base = `${location.origin}/api/v1/badge/${badgeKey}/${target.value}`;
    const query = states === "3" ? "?states=3" : "";
    const svg = base + ".svg" + query;
    const alt = target.label + " status";
    $("#badge-img").src = svg;
    $("#badge-img").alt = "Badge: " + target.text;
    $("#badge-snippets").replaceChildren(
      snippet("Markdown", `![${alt}](${svg})`),
      snippet("HTML", `<img src="${svg}" alt="${alt}">`),
      snippet("Shields.io", "https://img.shields.io/endpoint?url=" + encodeURIComponent(base + ".shields" + query)),
      snippet("JSON", base + ".json" + query),
    );
  }

  async function rotateBadge() {
    if (badgeKey && !(await P.confirmDialog("New badge key?", "Every badge address in use stops working at once.", "New key"))) return;
    try {
      badgeKey = (await api("POST", "/projects/me/badge-key")).badge_key;
      note($("#badge-note"), "Badge key made; the addresses below use it.", "ok");
      drawBadge();
    } catch (e) { note($("#badge-note"), e.message, "error"); }
  }

  // --- start ----------------------------------------------------------------------
  async function start() {
    const session = await P.frame();
    readOnly = !!session.read_only;
    try {
      const [project] = await Promise.all([api("GET", "/projects/me"), loadHeartbeats()]);
      badgeKey = project.badge_key;
      try {
        page = await api("GET", "/projects/me/status-page");
      } catch (e) {
        if (e.status !== 404) throw e;
        page = null;
      }
    } catch (e) {
      note($("#page-note"), "Could not load the settings: " + e.message, "error");
      return;
    }
    if (readOnly) note($("#page-note"), "This key can only read: the settings are shown, not changed.");
    $("#sp-title").disabled = $("#sp-intro").disabled = readOnly;
    fillForm();
    showPage();
    drawBadge();
    $("#sp-form").addEventListener("submit", save);
    $("#sp-create").addEventListener("click", () => {
      $("#sp-form").hidden = false;
      showPage();
      $("#sp-title").focus();
    });
    $("#sp-add-group").addEventListener("click", () => { groups.push({name: "", items: []}); drawGroups(); $(`#sp-g${groups.length - 1}-name`).focus(); });
    $("#sp-rotate").addEventListener("click", rotate);
    $("#sp-off").addEventListener("click", turnOff);
    $("#sp-copy").addEventListener("click", (e) => P.copy($("#sp-url").textContent, e.target, $("#sp-url")));
    $("#badge-rotate").addEventListener("click", rotateBadge);
    $("#badge-what").addEventListener("change", drawBadge);
    $("#badge-states").addEventListener("change", drawBadge);
  }

  start();
})();
