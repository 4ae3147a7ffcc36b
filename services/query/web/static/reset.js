// Password reset: without a link, ask for one by email; from the emailed link
// (/reset-password#token=<secret>), set a new password. The secret stays in the fragment,
// which browsers never send to a server, and leaves the address bar at once.
"use strict";

(() => {
  const {$, api, note, show} = P;

  function fieldError(name, message) {
    const node = $("#err-" + name);
    if (!node) return false;
    node.textContent = message || "";
    node.hidden = !message;
    return true;
  }

  function clearErrors(form) { form.querySelectorAll(".field-error").forEach((n) => { n.textContent = ""; n.hidden = true; }); }

  function askForLink() {
    show($("#ask-form"), true);
    $("#email").focus();
  }

  function wireAsk() {
    const form = $("#ask-form");
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearErrors(form);
      try {
        const accepted = await api("POST", "/auth/password-reset", {body: {email: $("#email").value.trim()}, noRedirect: true});
        show(form, false);
        note($("#page-note"), accepted.message, "ok");
      } catch (e) {
        if (!(e.field && fieldError(e.field, e.message))) note($("#page-note"), e.message, "error");
      }
    });
  }

  function setPassword(token) {
    const form = $("#reset-form");
    show(form, true);
    $("#password").focus();
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearErrors(form);
      if ($("#password").value !== $("#again").value) { fieldError("again", "the two passwords differ"); return; }
      try {
        await api("POST", "/auth/password-reset/confirm", {body: {token, password: $("#password").value}, noRedirect: true});
        show(form, false);
        note($("#page-note"), "Your password is changed. Sign in with it.", "ok");
        show($("#done"), true);
      } catch (e) {
        if (e.field === "token") {
          show(form, false);
          note($("#page-note"), e.message, "error");
          askForLink();
        } else if (!(e.field && fieldError(e.field, e.message))) {
          note($("#page-note"), e.message, "error");
        }
      }
    });
  }

  wireAsk();
  window.addEventListener("hashchange", () => location.reload());  // a link opened over this page
  const m = /^#token=([A-Za-z0-9_-]+)$/.exec(location.hash);
  if (m) {
    history.replaceState(null, "", location.pathname);
    setPassword(m[1]);
  } else {
    askForLink();
  }
})();
