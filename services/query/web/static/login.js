/* Sign-in page: email and password (JSON to /api/v1/auth/sign-in), then the TOTP step when the
 * answer asks for it; the API-key form is a plain form POSTed to /login, this script only shows
 * its outcome. */
"use strict";

(async () => {
  const error = P.$("#login-error");
  const passwordForm = P.$("#password-form");
  const totpForm = P.$("#totp-form");
  let ticket = null;

  function fail(message, input) {
    P.note(error, message, "error");
    P.$$("[aria-invalid]").forEach((n) => n.removeAttribute("aria-invalid"));
    if (input) {
      input.setAttribute("aria-invalid", "true");
      input.setAttribute("aria-describedby", "login-error");
      input.focus();
    }
  }

  async function post(path, body) {
    return P.api("POST", path, {body, noRedirect: true});
  }

  function done(answer) {
    if (answer && answer.second_factor === "totp") {
      ticket = answer.ticket;
      P.note(error, "");
      passwordForm.hidden = true;
      totpForm.hidden = false;
      P.$("#code").value = "";
      P.$("#code").focus();
      return;
    }
    location.assign((answer && answer.redirect) || "/");
  }

  passwordForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const email = P.$("#email");
    const password = P.$("#password");
    if (!email.value.trim()) return fail("Enter your email address.", email);
    if (!password.value) return fail("Enter your password.", password);
    const button = passwordForm.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      done(await post("/auth/sign-in", {email: email.value.trim(), password: password.value}));
    } catch (e) {
      password.value = "";
      fail(e.status === 401 ? "Wrong email or password." : e.message, e.status === 401 ? password : null);
    } finally {
      button.disabled = false;
    }
  });

  totpForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = P.$("#code");
    const code = input.value.trim();
    if (!code) return fail("Enter the code.", input);
    const proof = /^[0-9 ]{6,12}$/.test(code) ? {code} : {recovery_code: code};
    const button = totpForm.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      done(await post("/auth/sign-in/totp", {ticket, ...proof}));
    } catch (e) {
      input.value = "";
      if (e.field === "ticket") {  // the five minutes are over: start again
        P.$("#totp-back").click();
        fail(e.message, P.$("#password"));
      } else {
        fail(e.message, input);
      }
    } finally {
      button.disabled = false;
    }
  });

  P.$("#totp-back").addEventListener("click", () => {
    ticket = null;
    totpForm.hidden = true;
    passwordForm.hidden = false;
    P.note(error, "");
    P.$("#password").focus();
  });

  if (P.params().get("refused")) {  // sent here by a page whose session was refused (403)
    P.note(error, "Your session there has ended: you are no longer a member of that project, or your "
      + "account was disabled. Sign in again.", "error");
  }
  if (P.params().get("error")) {  // the key form's refusal (it posts to /login)
    fail("That key was not accepted.", P.$("#key"));
  } else if (await P.session()) {
    location.replace("/");  // already signed in
    return;
  }
  try {
    const setup = await P.api("GET", "/setup", {noRedirect: true});
    P.show(P.$("#setup-hint"), setup.open);
  } catch (e) { /* the hint is a courtesy */ }
})();
