/* Channels: list (each with the heartbeats alerting to it), add, edit, delete, send a test.
 * The form for each kind is drawn from GET /api/v1/channel-kinds, so a new kind needs no
 * change here. Editing sends PATCH /channels/{id}: a secret setting left empty keeps its saved
 * value (the API never shows it whole), an emptied plain setting is removed (null). */
"use strict";

(() => {
  const {el, $, api} = P;
  // Used only while the server cannot list its kinds: the one kind every server has.
  const FALLBACK_KINDS = [{kind: "webhook", label: "Webhook", settings: [
    {name: "url", type: "url", required: true, secret: false, help: "Receives each alert as a JSON POST."},
  ]}];
  let kinds = [];
  let readOnly = false;
  let editing = null;  // the channel the form edits; null: the form adds one

  function kindOf(name) { return kinds.find((k) => k.kind === name); }

  // --- list ------------------------------------------------------------------
  function settingsSummary(channel) {
    const kind = kindOf(channel.kind);
    const secretNames = new Set(((kind && kind.settings) || []).filter((s) => s.secret || s.type === "secret").map((s) => s.name));
    const lines = [];
    for (const [name, value] of Object.entries(channel.config || {})) {
      if (value === null || value === undefined || value === "" ||
          (typeof value === "object" && Object.keys(value).length === 0)) continue;
      // The API masks secrets ("****abcd"); anything that does not look masked is hidden here too.
      const secret = secretNames.has(name);
      const shown = (v) => (!secret ? String(v) : typeof v === "string" && v.startsWith("*") ? v : "••••••");
      let text;
      if (Array.isArray(value)) text = value.map(shown).join(", ");
      else if (typeof value === "object") text = Object.entries(value).map(([k, v]) => k + ": " + shown(v)).join(", ");
      else text = shown(value);
      lines.push(el("div", {class: "setting"}, el("span", {class: "muted"}, name + ": "), text));
    }
    return lines;
  }

  function usedBy(channel) {
    const beats = channel.heartbeats || [];
    if (!beats.length) return el("span", {class: "muted"}, "none");
    return el("ul", {class: "plain used-by"}, beats.map((h) =>
      el("li", {}, el("a", {href: "/heartbeats/" + encodeURIComponent(h.id)}, h.name))));
  }

  function row(channel) {
    const result = el("div", {class: "test-result", role: "status"});
    const kind = kindOf(channel.kind);
    return el("tr", {},
      el("th", {scope: "row"}, channel.name),
      el("td", {}, kind ? kind.label : channel.kind),
      el("td", {class: "settings-cell"}, settingsSummary(channel)),
      el("td", {}, usedBy(channel)),
      el("td", {class: "nowrap"}, P.timeExact(channel.created_at, true)),
      el("td", {class: "row-actions"},
        readOnly ? null : el("button", {type: "button", class: "small", "aria-label": "Edit " + channel.name, onclick: () => startEdit(channel)}, "Edit"),
        readOnly ? null : el("button", {type: "button", class: "small", onclick: (e) => sendTest(channel, e.currentTarget, result)}, "Send test"),
        readOnly ? null : el("button", {type: "button", class: "small danger", onclick: () => remove(channel)}, "Delete"),
        result),
    );
  }

  async function load() {
    let data;
    try {
      data = await api("GET", "/channels");
    } catch (e) {
      if (e.status !== 401) P.note($("#list-note"), "Could not load channels: " + e.message, "error");
      return;
    }
    const channels = data.channels || [];
    P.render($("#rows"), JSON.stringify([channels, kinds.length]), () => channels.map(row));
    P.show($("#empty"), channels.length === 0);
  }

  async function sendTest(channel, button, result) {
    button.disabled = true;
    result.className = "test-result";
    result.textContent = "Sending…";
    try {
      const data = await api("POST", "/channels/" + encodeURIComponent(channel.id) + "/test");
      if (data && data.ok === false) throw new P.ApiError(200, data.error || "the channel did not accept it");
      result.className = "test-result ok";
      result.textContent = "✓ Test sent" + (data && data.message ? ": " + data.message : ".");
    } catch (e) {
      result.className = "test-result error";
      result.textContent = "✗ " + (e.status === 404 ? "Sending a test is not available from this server yet." : e.message);
    } finally {
      button.disabled = false;
    }
  }

  async function remove(channel) {
    const yes = await P.confirmDialog("Delete this channel?",
      "“" + channel.name + "” stops receiving alerts; heartbeats using it keep their other channels.", "Delete");
    if (!yes) return;
    try {
      await api("DELETE", "/channels/" + encodeURIComponent(channel.id));
      P.note($("#list-note"), "Deleted “" + channel.name + "”.", "ok");
      load();
    } catch (e) {
      if (e.status !== 401) P.note($("#list-note"), "Could not delete: " + e.message, "error");
    }
  }

  // --- add form -------------------------------------------------------------------
  function settingInput(setting) {
    const inputId = "s-" + setting.name;
    const described = "err-config-" + setting.name + (setting.help ? " hint-" + setting.name : "");
    const common = {id: inputId, name: setting.name, required: !!setting.required, "aria-describedby": described, "data-setting": setting.type};
    const secret = setting.secret || setting.type === "secret";
    if (secret) {
      const shown = editing && editing.config ? editing.config[setting.name] : null;
      return el("input", {...common, type: "password", autocomplete: "new-password", spellcheck: "false",
        required: editing ? false : !!setting.required,
        placeholder: editing && shown ? "unchanged (" + shown + ")" : null});
    }
    const type = setting.choices && setting.choices.length ? "select" : setting.type;
    switch (type) {
      case "url": return el("input", {...common, type: "url", autocomplete: "off", spellcheck: "false", placeholder: "https://"});
      case "number": return el("input", {...common, type: "number", step: "any"});
      case "integer": return el("input", {...common, type: "number", step: "1"});
      case "text": return el("textarea", {...common, rows: 4});
      case "list": return el("textarea", {...common, rows: 3});
      case "boolean": return el("input", {...common, type: "checkbox", required: false});
      case "select": return el("select", common,
        setting.required ? null : el("option", {value: ""}, "—"),
        (setting.choices || []).map((c) => (typeof c === "object"
          ? el("option", {value: c.value}, c.label || c.value) : el("option", {value: c}, c))));
      default: return el("input", {...common, type: "text", autocomplete: "off"});
    }
  }

  /** "chat_id" -> "Chat ID", "url" -> "URL": a label for a setting the server did not label. */
  function humanize(name) {
    const upper = new Set(["url", "id", "api", "smtp", "sms", "ip"]);
    const text = name.split(/[_\s]+/).map((w) => (upper.has(w.toLowerCase()) ? w.toUpperCase() : w)).join(" ");
    return text.charAt(0).toUpperCase() + text.slice(1);
  }

  /** A name -> value setting (e.g. HTTP headers): one row per entry, values masked when secret. */
  function mapEditor(setting, label, saved) {
    const rows = el("div", {class: "map-rows", id: "s-" + setting.name, "data-setting": "map"});
    const secret = setting.secret || setting.type === "secret";
    let n = 0;
    const addRow = (focus, name, value) => {
      n += 1;
      const nameInput = el("input", {type: "text", class: "map-name", autocomplete: "off", spellcheck: "false",
        "aria-label": label.replace(/ \(optional\)$/, "") + " " + n + " name", placeholder: "Name"});
      const valueInput = el("input", {type: secret ? "password" : "text", class: "map-value", spellcheck: "false",
        autocomplete: secret ? "new-password" : "off", "aria-label": label.replace(/ \(optional\)$/, "") + " " + n + " value",
        placeholder: "Value"});
      const row = el("div", {class: "map-row"}, nameInput, valueInput,
        el("button", {type: "button", class: "small quiet", "aria-label": "Remove entry " + n,
          onclick: () => { row.remove(); }}, "Remove"));
      // A saved secret value comes masked ("****abcd"); sent back as it is, the API keeps it.
      nameInput.value = name || "";
      valueInput.value = value || "";
      rows.append(row);
      if (focus) nameInput.focus();
    };
    const entries = Object.entries(saved || {});
    if (entries.length) entries.forEach(([k, v]) => addRow(false, k, v)); else addRow(false);
    return el("fieldset", {class: "field", "aria-describedby": "err-config-" + setting.name + (setting.help ? " hint-" + setting.name : "")},
      el("legend", {}, label),
      rows,
      el("div", {}, el("button", {type: "button", class: "small", onclick: () => addRow(true)}, "Add another")),
      setting.help ? el("p", {class: "hint", id: "hint-" + setting.name}, setting.help) : null,
      el("p", {class: "field-error", id: "err-config-" + setting.name, hidden: true}));
  }

  /** The form's settings for the chosen kind; when editing, filled with the channel's. */
  function renderSettings() {
    const kind = kindOf($("#c-kind").value);
    const settings = (kind && kind.settings) || [];
    const saved = (editing && editing.config) || {};
    $("#settings").replaceChildren(...settings.map((s) => {
      const label = (s.label || humanize(s.name)) + (s.required ? "" : " (optional)");
      if (s.type === "map") return mapEditor(s, label, saved[s.name]);
      const input = settingInput(s);
      const value = saved[s.name];
      const secret = s.secret || s.type === "secret";
      if (s.type === "boolean") input.checked = value === true;
      else if (!secret && Array.isArray(value)) input.value = value.join("\n");
      else if (!secret && value !== undefined && value !== null) input.value = String(value);
      const perLine = {list: "One per line."}[s.type];
      const keep = editing && secret ? "Leave it empty to keep the saved value." : null;
      const hint = [s.help, perLine, keep].filter(Boolean).join(" ");
      const parts = s.type === "boolean"
        ? [el("label", {class: "choice", for: input.id}, input, " ", label)]
        : [el("label", {for: input.id}, label), input];
      // An optional secret that is saved can be removed (left empty, it would be kept).
      const removable = editing && secret && !s.required && value !== undefined && value !== null;
      return el("div", {class: "field"}, ...parts,
        hint ? el("p", {class: "hint", id: "hint-" + s.name}, hint) : null,
        removable ? el("label", {class: "choice small"}, el("input", {type: "checkbox", id: "s-" + s.name + "-remove"}),
          " Remove the saved " + label.replace(/ \(optional\)$/, "").toLowerCase()) : null,
        el("p", {class: "field-error", id: "err-config-" + s.name, hidden: true}));
    }));
  }

  /** The settings as the API takes them. When editing, an emptied setting is sent as null
   *  (removed), except a secret one: left empty, it is left out and keeps its saved value. */
  function configFromForm() {
    const kind = kindOf($("#c-kind").value);
    const config = {};
    for (const s of (kind && kind.settings) || []) {
      const input = document.getElementById("s-" + s.name);
      if (!input) continue;
      if (s.type === "boolean") { config[s.name] = input.checked; continue; }
      if (s.type === "map") {
        const entries = P.$$(".map-row", input)
          .map((row) => [P.$(".map-name", row).value.trim(), P.$(".map-value", row).value])
          .filter(([name, value]) => name || value);
        if (entries.length) config[s.name] = Object.fromEntries(entries);
        else if (editing) config[s.name] = null;
        continue;
      }
      const remove = document.getElementById("s-" + s.name + "-remove");
      if (remove && remove.checked) { config[s.name] = null; continue; }
      const raw = input.value;
      if (raw.trim() === "") {
        if (editing && !(s.secret || s.type === "secret")) config[s.name] = null;
        continue;
      }
      if (s.type === "list") config[s.name] = raw.split("\n").map((v) => v.trim()).filter(Boolean);
      else if (s.type === "number") config[s.name] = Number(raw);
      else if (s.type === "integer") config[s.name] = /^-?\d+$/.test(raw.trim()) ? Number(raw) : raw;
      else config[s.name] = s.type === "text" || s.secret || s.type === "secret" ? raw : raw.trim();
    }
    return config;
  }

  function clearErrors() {
    P.$$("#channel-form .field-error").forEach((n) => { n.hidden = true; n.textContent = ""; });
    P.$$("#channel-form [aria-invalid]").forEach((n) => n.removeAttribute("aria-invalid"));
    P.note($("#form-note"), "");
  }

  function showError(field, message) {
    const key = (field || "").replace(/\./g, "-");
    const slot = document.getElementById("err-" + key);
    if (!slot) { P.note($("#form-note"), (field ? field + ": " : "") + message, "error"); return; }
    slot.textContent = message;
    slot.hidden = false;
    const input = document.getElementById(field.startsWith("config.") ? "s-" + field.slice(7) : "c-" + field);
    if (input) { input.setAttribute("aria-invalid", "true"); input.focus(); }
  }

  // --- edit: the same form, filled with the channel -------------------------------------
  function formMode() {
    $("#h-add").textContent = editing ? "Edit “" + editing.name + "”" : "Add a channel";
    $("#add").textContent = editing ? "Save channel" : "Add channel";
    $("#c-kind").disabled = !!editing;  // a channel's kind cannot change
    P.show($("#cancel-edit"), !!editing);
  }

  function startEdit(channel) {
    editing = channel;
    clearErrors();
    $("#c-kind").value = channel.kind;
    $("#c-name").value = channel.name;
    formMode();
    renderSettings();
    $("#h-add").scrollIntoView({block: "start"});
    $("#c-name").focus();
  }

  function stopEdit() {
    editing = null;
    $("#c-name").value = "";
    const first = kinds.find((k) => k.available !== false);
    if (first) $("#c-kind").value = first.kind;
    formMode();
    renderSettings();
  }

  $("#cancel-edit").addEventListener("click", () => { clearErrors(); stopEdit(); });

  $("#channel-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors();
    const button = $("#add");
    button.disabled = true;
    try {
      const kind = $("#c-kind").value;
      if (editing) {
        const name = $("#c-name").value.trim();
        const saved = await api("PATCH", "/channels/" + encodeURIComponent(editing.id), {body: {name, config: configFromForm()}});
        stopEdit();
        P.note($("#form-note"), "Saved “" + saved.name + "”.", "ok");
      } else {
        const created = await api("POST", "/channels", {body: {kind, name: $("#c-name").value.trim(), config: configFromForm()}});
        P.note($("#form-note"), "Added “" + created.name + "”.", "ok");
        $("#c-name").value = "";
        renderSettings();
      }
      load();
    } catch (e) {
      if (e.status === 400) showError(e.field, e.message);
      else if (e.status !== 401) P.note($("#form-note"), "Could not " + (editing ? "save" : "add") + " the channel: " + e.message, "error");
    } finally {
      button.disabled = false;
    }
  });

  $("#c-kind").addEventListener("change", () => { clearErrors(); renderSettings(); });

  async function loadKinds() {
    try {
      kinds = (await api("GET", "/channel-kinds")).kinds || [];
    } catch (e) {
      if (e.status === 401) return;
      kinds = FALLBACK_KINDS;
      P.note($("#kinds-note"), "This server does not list its channel kinds yet; only webhooks can be added here.");
    }
    // A kind this server cannot make (email without an SMTP server) is shown, disabled, with why.
    const usable = (k) => k.available !== false;
    $("#c-kind").replaceChildren(...kinds.map((k) => el("option", {value: k.kind, disabled: !usable(k),
      title: usable(k) ? null : k.unavailable_reason}, (k.label || k.kind) + (usable(k) ? "" : " (unavailable)"))));
    const first = kinds.find(usable);
    if (first) $("#c-kind").value = first.kind;
    const unavailable = kinds.filter((k) => !usable(k));
    $("#kinds-unavailable").replaceChildren(...unavailable.map((k) => el("span", {class: "unavailable-kind"},
      (k.label || k.kind) + " is unavailable: " + (k.unavailable_reason || "not set up on this server") + ". ")));
    P.show($("#kinds-unavailable"), unavailable.length > 0);
    renderSettings();
  }

  P.frame().then(async (s) => {
    readOnly = !!s.read_only;
    await loadKinds();
    await load();
  });
})();
