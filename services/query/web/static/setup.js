/* First-run setup: the link `pingura serve` prints (/setup#token=...) makes the first account,
 * owner of the admin project. The token travels in the URL's fragment, which the browser never
 * sends to a server; this script takes it out of the address bar and posts it with the form. */
"use strict";

(async () => {
  const note = P.$("#page-note");
  const form = P.$("#setup-form");
  const token = new URLSearchParams(location.hash.slice(1)).get("token");
  if (location.hash) history.replaceState(null, "", location.pathname);

  let state;
  try {
    state = await P.api("GET", "/setup", {noRedirect: true});
  } catch (e) {
    P.note(note, "Cannot reach Pingura: " + e.message, "error");
    return;
  }
  if (!state.open) {
    P.note(note, "Pingura is set up already: an account exists. Sign in, or ask an admin of your project for an invitation.");
    P.show(P.$("#signin-link"), true);
    return;
  }
  if (!token) {
    P.note(note, "This page needs the setup link that pingura serve printed when it started (it ends in #token=…). "
      + "Restart pingura serve for a new one.", "error");
    return;
  }
  form.hidden = false;
  P.$("#email").focus();

  function fieldError(field, message) {
    for (const name of ["email", "name", "password"]) {
      const input = P.$("#" + name);
      const bad = name === field;
      P.$("#err-" + name).textContent = bad ? message : "";
      if (bad) { input.setAttribute("aria-invalid", "true"); input.focus(); } else input.removeAttribute("aria-invalid");
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    fieldError(null, "");
    P.note(note, "");
    const body = {token, email: P.$("#email").value.trim(), name: P.$("#name").value.trim(), password: P.$("#password").value};
    if (!body.email) return fieldError("email", "Enter your email address.");
    if (body.password.length < 10) return fieldError("password", "Use at least 10 characters.");
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const answer = await P.api("POST", "/setup", {body, noRedirect: true});
      location.assign(answer.redirect || "/");
    } catch (e) {
      if (["email", "name", "password"].includes(e.field)) {
        fieldError(e.field, e.message);
      } else {
        P.note(note, e.message, "error");
        if (e.status === 409) P.show(P.$("#signin-link"), true);
      }
    } finally {
      button.disabled = false;
    }
  });
})();
