/* Create (/heartbeats/new) or edit (/heartbeats/{id}/edit) a heartbeat. The API
 * validates; a 400 names the field, and its message is shown beside that field. */
"use strict";

(() => {
  const {el, $, api} = P;
  const id = P.heartbeatId();
  const form = $("#heartbeat-form");
  const formNote = $("#form-note");
  const FIELD_INPUTS = {
    name: "#f-name", interval: "#f-interval", grace: "#f-grace",
    max_consecutive_misses: "#f-misses", channels: "#channel-choices input", tags: "#f-tags",
  };
  let original = null;

  function clearErrors() {
    P.$$(".field-error", form).forEach((n) => { n.hidden = true; n.textContent = ""; });
    P.$$("[aria-invalid]", form).forEach((n) => n.removeAttribute("aria-invalid"));
    P.note(formNote, "");
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
    const misses = $("#f-misses").value.trim();
    const out = {
      name: $("#f-name").value.trim(),
      interval: $("#f-interval").value.trim(),
      max_consecutive_misses: /^\d+$/.test(misses) ? Number(misses) : misses,
      channels: P.$$("#channel-choices input:checked").map((i) => i.value),
      tags: $("#f-tags").value.split(",").map((t) => t.trim()).filter(Boolean),
    };
    const grace = $("#f-grace").value.trim();
    if (grace || id) out.grace = grace || "0s";
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
      $("#f-interval").value = P.durationInput(original.interval);
      $("#f-grace").value = P.durationInput(original.grace);
      $("#f-misses").value = original.max_consecutive_misses;
      $("#f-tags").value = (original.tags || []).join(", ");
      selected = original.channels || [];
    }
    await loadChannels(selected);
  }

  start();
})();
