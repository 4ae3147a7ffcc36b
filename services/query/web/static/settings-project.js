/* Project and API keys: the project's name and settings (PATCH /projects/me), its ping key
 * (POST /projects/me/ping-key), its API keys (GET/POST /keys, DELETE /keys/{id}). A new key's
 * secret is shown once, in a dialog, and kept nowhere: after it closes, the page cannot show it.
 * Every write here needs the admin role; others see what they may read, without the controls. */
"use strict";

(() => {
  const {el, $, api} = P;
  let project = null;
  let admin = false;

  function fieldError(id, message) {
    const slot = $("#err-" + id);
    slot.textContent = message || "";
    slot.hidden = !message;
  }

  // --- the project ------------------------------------------------------------------------
  function showProject() {
    $("#p-name").value = project.name;
    $("#p-auto-create").checked = !!project.auto_create;
    $("#p-name").disabled = $("#p-auto-create").disabled = !admin;
    const hasKey = typeof project.ping_key === "string";
    const secretHidden = !("ping_key" in project);  // read-only callers are not shown it
    $("#ping-key").textContent = hasKey ? project.ping_key : "";
    P.show($("#ping-key-line"), hasKey);
    P.show($("#ping-key-none"), !hasKey && !secretHidden);
    P.show($("#ping-key-hidden"), secretHidden);
    $("#ping-key-rotate").textContent = hasKey ? "New ping key" : "Make ping key";
  }

  async function loadProject() {
    try {
      project = await api("GET", "/projects/me");
    } catch (e) {
      if (e.status !== 401) P.note($("#page-note"), "Could not load the project: " + e.message, "error");
      return;
    }
    showProject();
  }

  async function saveProject(event) {
    event.preventDefault();
    fieldError("name", "");
    const button = $("#p-save");
    button.disabled = true;
    try {
      project = await api("PATCH", "/projects/me", {body: {name: $("#p-name").value, auto_create: $("#p-auto-create").checked}});
      showProject();
      P.note($("#project-note"), "Saved.", "ok");
    } catch (e) {
      if (e.status === 400 && e.field === "name") { fieldError("name", e.message); $("#p-name").focus(); }
      else if (e.status !== 401) P.note($("#project-note"), "Could not save: " + e.message, "error");
    } finally {
      button.disabled = false;
    }
  }

  async function rotatePingKey() {
    const had = typeof project.ping_key === "string";
    const text = had
      ? "Every slug URL holding the current ping key (/ping/<ping key>/<slug>) stops working at once: " +
        "jobs pinging them must be given the new key. Ping URLs by token are not affected."
      : "Slug URLs (/ping/<ping key>/<slug>) start working with it.";
    if (!(await P.confirmDialog(had ? "New ping key?" : "Make a ping key?", text, had ? "New key" : "Make key"))) return;
    try {
      project = await api("POST", "/projects/me/ping-key");
      showProject();
      P.note($("#ping-key-note"), had ? "A new ping key: the old one no longer works." : "Ping key made.", "ok");
    } catch (e) {
      if (e.status !== 401) P.note($("#ping-key-note"), "Could not make a ping key: " + e.message, "error");
    }
  }

  // --- API keys -------------------------------------------------------------------------------
  function keyRow(key) {
    return el("tr", {},
      el("th", {scope: "row"}, key.name),
      el("td", {}, key.read_only ? "read-only" : "read-write"),
      el("td", {class: "nowrap"}, P.timeExact(key.created_at, true)),
      el("td", {class: "row-actions"}, admin
        ? el("button", {type: "button", class: "small danger", onclick: () => revoke(key)}, "Revoke") : null));
  }

  async function loadKeys() {
    let keys;
    try {
      keys = (await api("GET", "/keys")).keys || [];
    } catch (e) {
      if (e.status === 403) P.note($("#keys-note"), "Only the project's admins see its API keys.");
      else if (e.status !== 401) P.note($("#keys-note"), "Could not load the keys: " + e.message, "error");
      P.show($("#keys-wrap"), false);
      return;
    }
    P.render($("#key-rows"), JSON.stringify([keys, admin]), () => keys.map(keyRow));
    P.show($("#keys-wrap"), keys.length > 0);
    P.show($("#keys-empty"), keys.length === 0);
  }

  async function revoke(key) {
    const yes = await P.confirmDialog("Revoke this key?",
      "“" + key.name + "” is refused from now on, by every script and tool using it. This cannot be undone.", "Revoke");
    if (!yes) return;
    try {
      await api("DELETE", "/keys/" + encodeURIComponent(key.id));
      P.note($("#keys-note"), "Revoked “" + key.name + "”.", "ok");
    } catch (e) {
      // The key in use cannot revoke itself: the API says why, and so do we.
      if (e.status !== 401) P.note($("#keys-note"), "Could not revoke “" + key.name + "”: " + e.message, "error");
    }
    loadKeys();
  }

  function showSecret(made) {
    const dialog = $("#secret-dialog");
    $("#secret-title").textContent = "API key “" + made.name + "” made";
    $("#secret-key").textContent = made.key;
    dialog.addEventListener("close", () => { $("#secret-key").textContent = ""; }, {once: true});  // held nowhere after
    dialog.showModal();
    $("#secret-copy").focus();
  }

  async function createKey(event) {
    event.preventDefault();
    fieldError("k-name", "");
    P.note($("#key-form-note"), "");
    const button = $("#k-create");
    button.disabled = true;
    try {
      const made = await api("POST", "/keys", {body: {name: $("#k-name").value, read_only: $("#k-read-only").checked}});
      $("#k-name").value = "";
      showSecret(made);
      loadKeys();
    } catch (e) {
      if (e.status === 400 && e.field === "name") { fieldError("k-name", e.message); $("#k-name").focus(); }
      else if (e.status !== 401) P.note($("#key-form-note"), "Could not create the key: " + e.message, "error");
    } finally {
      button.disabled = false;
    }
  }

  $("#project-form").addEventListener("submit", saveProject);
  $("#ping-key-rotate").addEventListener("click", rotatePingKey);
  $("#ping-key-copy").addEventListener("click", (e) => P.copy(project.ping_key, e.currentTarget, $("#ping-key")));
  $("#key-form").addEventListener("submit", createKey);
  $("#secret-copy").addEventListener("click", (e) => P.copy($("#secret-key").textContent, e.currentTarget, $("#secret-key")));

  P.frame().then(async (s) => {
    // Keys and project settings are the admins' (a read-write key acts as one; a user by role).
    admin = s.role ? s.role === "admin" || s.role === "owner" : !s.read_only;
    if (!admin) P.$$("[data-write]").forEach((n) => { n.hidden = true; });
    await loadProject();
    await loadKeys();
  });
})();
