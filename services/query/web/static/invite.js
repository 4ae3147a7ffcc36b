/* Join a project: the invitation link /invite#token=... (POST /api/v1/invitations/preview shows
 * the project, the role and the invited email), accepted with POST /api/v1/invitations/accept:
 * a new person chooses a name and a password; a person with an account is signed in as it or
 * gives its password (and, with two-factor sign-in on, a code: POST /api/v1/auth/sign-in/totp).
 * The session cookie comes with the answer; the page then goes where it says. No app.js: the
 * visitor is not signed in yet. Text only (textContent), never HTML. */
"use strict";

(() => {
  const $ = (selector) => document.querySelector(selector);
  const ROLE_TEXT = {
    viewer: "A viewer sees everything in the project and changes nothing.",
    member: "A member also changes heartbeats, channels and maintenance windows.",
    admin: "An admin also manages API keys, project settings, members and invitations.",
    owner: "An owner may do everything, including making and unmaking owners.",
  };
  // The link holds the secret in its fragment (/invite#token=...; ?token= is read too): taken
  // out of the address bar at once, so it is neither bookmarked nor shown over a shoulder.
  const token = new URLSearchParams(location.hash.slice(1)).get("token") || new URLSearchParams(location.search).get("token") || "";
  if (token) history.replaceState(null, "", "/invite");
  let invitation = null;
  let ticket = null;  // the second step's, when the account has two-factor sign-in

  function note(node, text, kind) {
    node.textContent = text || "";
    node.className = "note" + (kind ? " note-" + kind : "");
    node.hidden = !text;
  }

  function fieldError(name, text) {
    const slot = $("#err-a-" + name);
    if (!slot) return false;
    slot.textContent = text || "";
    slot.hidden = !text;
    $("#a-" + name).setAttribute("aria-invalid", text ? "true" : "false");
    return true;
  }

  async function post(path, body) {
    let response;
    try {
      response = await fetch("/api/v1" + path, {method: "POST", credentials: "same-origin",
        headers: {"Content-Type": "application/json", Accept: "application/json"}, body: JSON.stringify(body)});
    } catch (e) {
      return {status: 0, data: {error: "Cannot reach the server (" + e.message + ")"}};
    }
    let data = {};
    try { data = await response.json(); } catch (e) { data = {error: response.statusText}; }
    return {status: response.status, data};
  }

  function show() {
    $("#inv-project").textContent = invitation.project_name;
    $("#inv-role").textContent = invitation.role;
    $("#inv-email").textContent = invitation.email;
    $("#inv-role-text").textContent = ROLE_TEXT[invitation.role] || "";
    const signedIn = invitation.signed_in_as === invitation.email;
    $("#inv-signed-in").hidden = !signedIn;
    $("#inv-existing").hidden = !invitation.account_exists || signedIn;
    $("#name-field").hidden = invitation.account_exists;
    $("#password-field").hidden = signedIn;
    if (invitation.account_exists) {
      $("#a-password-label").textContent = "Password of " + invitation.email;
      $("#a-password").autocomplete = "current-password";
      $("#hint-a-password").hidden = true;
    }
    $("#invitation").hidden = false;
    const first = invitation.account_exists ? $("#a-password") : $("#a-name");
    if (!signedIn) first.focus();
  }

  function signedIn(data) {
    if (data.second_factor) {
      ticket = data.ticket;
      $("#code-field").hidden = false;
      $("#password-field").hidden = true;
      $("#accept").textContent = "Sign in";
      $("#a-code").focus();
      return;
    }
    location.assign(data.redirect || "/");
  }

  async function accept(event) {
    event.preventDefault();
    ["name", "password", "code"].forEach((f) => fieldError(f, ""));
    note($("#accept-note"), "");
    const button = $("#accept");
    button.disabled = true;
    try {
      let answer;
      if (ticket) {
        const code = $("#a-code").value.trim();
        answer = await post("/auth/sign-in/totp", /^[0-9 ]+$/.test(code) ? {ticket, code} : {ticket, recovery_code: code});
      } else {
        const body = {token};
        if (!invitation.account_exists) body.name = $("#a-name").value;
        if (!$("#password-field").hidden) body.password = $("#a-password").value;
        answer = await post("/invitations/accept", body);
      }
      if (answer.status === 200) { signedIn(answer.data); return; }
      let message = answer.data.error || "Could not join";
      let field = answer.data.field;
      const m = /^([a-z_]+): (.+)$/.exec(message);
      if (m && (!field || field === m[1])) { field = m[1]; message = m[2]; }
      if (ticket && answer.status !== 429) field = "code";
      if (!(field && fieldError(field, message))) note($("#accept-note"), message, "error");
    } finally {
      button.disabled = false;
    }
  }

  async function load() {
    if (!token) {
      note($("#page-note"), "This page opens from the link in an invitation email; this address holds none.", "error");
      return;
    }
    const answer = await post("/invitations/preview", {token});
    if (answer.status !== 200) {
      note($("#page-note"), answer.data.error || "This invitation cannot be used.", "error");
      return;
    }
    invitation = answer.data;
    show();
  }

  $("#accept-form").addEventListener("submit", accept);
  load();
})();
