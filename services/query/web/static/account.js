// Your account: the email address and whether it is verified, the password, two-factor
// sign-in (TOTP: enrol with a QR code, recovery codes shown once, turn off), and signing out
// everywhere. A verification link opens this page as /account#verify=<secret>: the secret is
// posted to the API (it never reaches a server log: browsers do not send the fragment).
"use strict";

(() => {
  const {$, el, api, note, show} = P;
  const CODE = /^\s*\d{3}\s?\d{3}\s*$/;
  const RECOVERY = /^\s*[a-z2-9]{4}([- ]?[a-z2-9]{4}){3}\s*$/i;

  function fieldError(name, message) {
    const node = $("#err-" + name);
    if (node) { node.textContent = message || ""; node.hidden = !message; }
    return !!node;
  }

  function clearErrors(form) { form.querySelectorAll(".field-error").forEach((n) => { n.textContent = ""; n.hidden = true; }); }

  /** Show an API error beside its field when the page has one, else in ``fallback``. */
  function showError(e, fallback, fieldAlias) {
    const field = (fieldAlias && fieldAlias[e.field]) || e.field;
    if (!(field && fieldError(field, e.message))) note(fallback, e.message, "error");
  }

  async function verifyFromLink() {
    const m = /^#verify=([A-Za-z0-9_-]+)$/.exec(location.hash);
    if (!m) return false;
    history.replaceState(null, "", location.pathname);  // the secret leaves the address bar
    try {
      const done = await api("POST", "/auth/verify-email", {body: {token: m[1]}, noRedirect: true});
      note($("#page-note"), "Thank you: " + done.email + " is verified.", "ok");
    } catch (e) {
      note($("#page-note"), e.message, "error");
    }
    return true;
  }

  function renderState(state) {
    $("#email").textContent = state.email;
    const badge = $("#email-state");
    badge.textContent = state.email_verified ? "verified" : "not verified";
    badge.className = "badge" + (state.email_verified ? "" : " badge-readonly");
    show($("#email-hint"), !state.email_verified);
    show($("#send-verification"), !state.email_verified && state.can_mail);
    show($("#no-password"), !state.has_password);
    show($("#password-form"), state.has_password);
    $("#totp-state").textContent = state.totp
      ? "On: signing in asks for a code from your authenticator app. Recovery codes left: " + state.recovery_codes_left + "."
      : "Off: your password alone signs you in.";
    show($("#totp-start"), !state.totp && $("#totp-enrol").hidden && $("#recovery").hidden);
    show($("#totp-manage"), state.totp && $("#recovery").hidden);
  }

  async function refresh() {
    renderState(await api("GET", "/account/security"));
  }

  function showRecoveryCodes(codes) {
    $("#recovery-codes").replaceChildren(...codes.map((c) => el("li", {}, el("code", {}, c))));
    show($("#recovery"), true);
    show($("#totp-manage"), false);
    $("#recovery-done").focus();
  }

  function proof() {
    const value = $("#proof").value;
    if (CODE.test(value)) return {code: value.trim()};
    if (RECOVERY.test(value)) return {recovery_code: value.trim()};
    return {password: value};
  }

  function wire() {
    $("#send-verification").addEventListener("click", async () => {
      try {
        const sent = await api("POST", "/account/verify-email");
        note($("#email-note"), "A link is on its way to " + sent.sent_to + ".", "ok");
      } catch (e) { note($("#email-note"), e.message, "error"); }
    });

    $("#password-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const form = event.currentTarget;
      clearErrors(form);
      try {
        await api("POST", "/account/password", {body: {
          current_password: $("#current-password").value, new_password: $("#new-password").value}});
        form.reset();
        note($("#password-note"), "Password changed. Every other session of your account has ended.", "ok");
      } catch (e) { showError(e, $("#password-note")); }
    });

    let pending = null;
    $("#totp-start").addEventListener("click", async () => {
      try {
        const enrolment = await api("POST", "/account/totp/enrol");
        pending = enrolment.pending;
        $("#totp-qr").src = "data:image/svg+xml;charset=utf-8," + encodeURIComponent(enrolment.qr_svg);
        $("#totp-secret").textContent = enrolment.secret.replace(/(.{4})/g, "$1 ").trim();
        show($("#totp-enrol"), true);
        show($("#totp-start"), false);
        $("#totp-code").focus();
      } catch (e) { note($("#totp-note"), e.message, "error"); }
    });
    $("#totp-cancel").addEventListener("click", () => {
      pending = null;
      $("#totp-enrol").reset();
      $("#totp-secret").textContent = "";
      $("#totp-qr").removeAttribute("src");
      show($("#totp-enrol"), false);
      show($("#totp-start"), true);
    });
    $("#totp-enrol").addEventListener("submit", async (event) => {
      event.preventDefault();
      const form = event.currentTarget;
      clearErrors(form);
      try {
        const done = await api("POST", "/account/totp/confirm", {body: {pending, code: $("#totp-code").value}});
        pending = null;
        form.reset();
        $("#totp-secret").textContent = "";
        $("#totp-qr").removeAttribute("src");
        show($("#totp-enrol"), false);
        note($("#totp-note"), "Two-factor sign-in is on.", "ok");
        showRecoveryCodes(done.recovery_codes);
        await refresh();
      } catch (e) {
        if (e.field === "pending") note($("#totp-note"), e.message, "error");
        else showError(e, $("#totp-note"));
      }
    });
    $("#recovery-copy").addEventListener("click", (event) => {
      const codes = Array.from(document.querySelectorAll("#recovery-codes code")).map((c) => c.textContent);
      P.copy(codes.join("\n"), event.currentTarget, $("#recovery-codes"));
    });
    $("#recovery-done").addEventListener("click", async () => {
      $("#recovery-codes").replaceChildren();
      show($("#recovery"), false);
      await refresh();
    });

    $("#totp-manage").addEventListener("submit", async (event) => {
      event.preventDefault();
      const form = event.currentTarget;
      clearErrors(form);
      try {
        const renewed = await api("POST", "/account/totp/recovery-codes", {body: proof()});
        form.reset();
        note($("#totp-note"), "New recovery codes: the old ones no longer work.", "ok");
        showRecoveryCodes(renewed.recovery_codes);
      } catch (e) { showError(e, $("#totp-note"), {code: "proof", password: "proof", recovery_code: "proof"}); }
    });
    $("#totp-off").addEventListener("click", async () => {
      const form = $("#totp-manage");
      clearErrors(form);
      if (!$("#proof").value) { fieldError("proof", "enter a code, a recovery code or your password first"); return; }
      try {
        await api("POST", "/account/totp/disable", {body: proof()});
        form.reset();
        note($("#totp-note"), "Two-factor sign-in is off.", "ok");
        await refresh();
      } catch (e) { showError(e, $("#totp-note"), {code: "proof", password: "proof", recovery_code: "proof"}); }
    });

    $("#sign-out-everywhere").addEventListener("click", async () => {
      if (!(await P.confirmDialog("Sign out everywhere?", "Every session of your account ends, this one too.", "Sign out everywhere"))) return;
      try {
        await api("POST", "/auth/sign-out-everywhere", {noRedirect: true});
      } catch (e) {
        if (e.status !== 401) { note($("#page-note"), e.message, "error"); return; }
      }
      location.assign("/login");
    });
  }

  async function start() {
    const verified = await verifyFromLink();
    const session = await P.session();
    if (!session) {
      if (!verified) { location.assign("/login"); return; }
      show($("#signed-out"), true);  // a verification link opened where nobody is signed in
      return;
    }
    await P.frame();
    try {
      const state = await api("GET", "/account/security", {noRedirect: true});
      show($("#account"), true);
      wire();
      renderState(state);
      window.addEventListener("hashchange", async () => { await verifyFromLink(); await refresh(); });
    } catch (e) {
      note($("#page-note"), e.status === 403 ? "Signed in with an API key: there is no account to manage. Sign in with your email to see it." : e.message, "error");
    }
  }

  start();
})();
