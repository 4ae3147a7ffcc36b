/* Members: the project's people and their roles (GET /members), a role changed in place
 * (PATCH /members/{user_id}), a member removed (DELETE), leaving (POST /projects/me/leave);
 * invitations waiting (GET /invitations), revoked (DELETE /invitations/{id}), sent (POST).
 * Admins and owners manage; viewers and members read. Only an owner makes, unmakes or removes
 * owners; the API refuses the rest and the page says what it said. */
"use strict";

(() => {
  const {el, $, api} = P;
  const ROLES = ["viewer", "member", "admin", "owner"];
  let yourRole = "viewer";

  const rank = (role) => ROLES.indexOf(role);
  const manages = () => rank(yourRole) >= rank("admin");
  const isOwner = () => yourRole === "owner";
  /** The roles the caller may give: up to admin, and owner for owners. */
  const giveable = () => ROLES.filter((r) => r !== "owner" || isOwner());

  function fieldError(id, message) {
    const slot = $("#err-" + id);
    slot.textContent = message || "";
    slot.hidden = !message;
    const input = $("#" + id);
    if (input) input.setAttribute("aria-invalid", message ? "true" : "false");
  }

  // --- members ------------------------------------------------------------------------------
  function roleCell(member) {
    const mayChange = manages() && (member.role !== "owner" || isOwner());
    if (!mayChange) return el("td", {}, member.role);
    const id = "role-" + member.user_id;
    const select = el("select", {id, "data-user": member.user_id},
      giveable().map((r) => el("option", {value: r, selected: r === member.role}, r)));
    select.addEventListener("change", () => changeRole(member, select));
    return el("td", {}, el("label", {class: "visually-hidden", for: id}, "Role of " + (member.name || member.email)), select);
  }

  function memberRow(member) {
    const mayRemove = manages() && !member.you && (member.role !== "owner" || isOwner());
    return el("tr", {"data-user": member.user_id},
      el("th", {scope: "row"}, member.name || "—", member.you ? [" ", el("span", {class: "badge"}, "you")] : null),
      el("td", {}, member.email),
      roleCell(member),
      el("td", {class: "nowrap"}, P.timeExact(member.since, true)),
      el("td", {class: "row-actions"}, mayRemove
        ? el("button", {type: "button", class: "small danger", onclick: () => remove(member)}, "Remove") : null));
  }

  async function loadMembers() {
    let listed;
    try {
      listed = await api("GET", "/members");
    } catch (e) {
      if (e.status !== 401) P.note($("#members-note"), "Could not load the members: " + e.message, "error");
      return;
    }
    yourRole = listed.your_role;
    P.render($("#member-rows"), JSON.stringify(listed), () => listed.members.map(memberRow));
    P.show($("#leave"), listed.members.some((m) => m.you));
    P.show($("#invitations-card"), manages());
    if (manages()) {
      const select = $("#i-role");
      const chosen = select.value || "member";
      select.replaceChildren(...giveable().map((r) => el("option", {value: r, selected: r === chosen}, r)));
      loadInvitations();
    }
  }

  async function changeRole(member, select) {
    try {
      await api("PATCH", "/members/" + encodeURIComponent(member.user_id), {body: {role: select.value}});
      P.note($("#members-note"), (member.name || member.email) + " is now " + select.value + ".", "ok");
    } catch (e) {
      select.value = member.role;
      if (e.status !== 401) P.note($("#members-note"), "Could not change the role: " + e.message, "error");
    }
    loadMembers();
  }

  async function remove(member) {
    const who = member.name || member.email;
    const yes = await P.confirmDialog("Remove " + who + "?",
      who + " loses access to this project at once (their sessions here end). They can be invited again.", "Remove");
    if (!yes) return;
    try {
      await api("DELETE", "/members/" + encodeURIComponent(member.user_id));
      P.note($("#members-note"), "Removed " + who + ".", "ok");
    } catch (e) {
      if (e.status !== 401) P.note($("#members-note"), "Could not remove " + who + ": " + e.message, "error");
    }
    loadMembers();
  }

  async function leave() {
    const yes = await P.confirmDialog("Leave this project?",
      "You lose access to it at once; only an invitation brings you back.", "Leave");
    if (!yes) return;
    try {
      await api("POST", "/projects/me/leave");
      location.assign("/login");
    } catch (e) {
      if (e.status !== 401) P.note($("#members-note"), "Could not leave: " + e.message, "error");
    }
  }

  // --- invitations --------------------------------------------------------------------------
  function invitationRow(invitation) {
    return el("tr", {},
      el("th", {scope: "row"}, invitation.email),
      el("td", {}, invitation.role),
      el("td", {}, invitation.invited_by),
      el("td", {class: "nowrap"}, invitation.expired ? el("span", {class: "badge"}, "expired") : P.timeExact(invitation.expires_at, true)),
      el("td", {class: "row-actions"},
        el("button", {type: "button", class: "small danger", onclick: () => revoke(invitation)}, "Revoke")));
  }

  async function loadInvitations() {
    let waiting;
    try {
      waiting = (await api("GET", "/invitations")).invitations;
    } catch (e) {
      if (e.status !== 401) P.note($("#invitations-note"), "Could not load the invitations: " + e.message, "error");
      return;
    }
    P.render($("#invitation-rows"), JSON.stringify(waiting), () => waiting.map(invitationRow));
    P.show($("#invitations-wrap"), waiting.length > 0);
    P.show($("#invitations-empty"), waiting.length === 0);
  }

  async function revoke(invitation) {
    const yes = await P.confirmDialog("Revoke this invitation?",
      "The link sent to " + invitation.email + " stops working at once.", "Revoke");
    if (!yes) return;
    try {
      await api("DELETE", "/invitations/" + encodeURIComponent(invitation.id));
      P.note($("#invitations-note"), "Revoked the invitation of " + invitation.email + ".", "ok");
    } catch (e) {
      if (e.status !== 401) P.note($("#invitations-note"), "Could not revoke: " + e.message, "error");
    }
    loadInvitations();
  }

  function showLink(made) {
    const dialog = $("#link-dialog");
    $("#link-warning").textContent = "The email could not be sent (" + made.mail_error + "). Pass this link on to " +
      made.email + " yourself: it is shown only this once, works once and for 7 days.";
    $("#link-text").textContent = made.link;
    dialog.addEventListener("close", () => { $("#link-text").textContent = ""; }, {once: true});
    dialog.showModal();
    $("#link-copy").focus();
  }

  async function invite(event) {
    event.preventDefault();
    fieldError("i-email", "");
    fieldError("i-role", "");
    P.note($("#invite-form-note"), "");
    const button = $("#i-send");
    button.disabled = true;
    try {
      const made = await api("POST", "/invitations", {body: {email: $("#i-email").value, role: $("#i-role").value}});
      $("#i-email").value = "";
      if (made.link) showLink(made);
      else P.note($("#invitations-note"), "Invitation emailed to " + made.email + ".", "ok");
      loadInvitations();
    } catch (e) {
      if ((e.status === 400 || e.status === 409 || e.status === 403) && (e.field === "email" || e.field === "role")) {
        fieldError("i-" + e.field, e.message);
        $("#i-" + e.field).focus();
      } else if (e.status !== 401) {
        P.note($("#invite-form-note"), "Could not invite: " + e.message, "error");
      }
    } finally {
      button.disabled = false;
    }
  }

  $("#invite-form").addEventListener("submit", invite);
  $("#leave").addEventListener("click", leave);
  $("#link-copy").addEventListener("click", (e) => P.copy($("#link-text").textContent, e.currentTarget, $("#link-text")));
  P.frame().then(loadMembers);
})();
