/* Sign-in page: a plain form POSTed to /login; this script only shows the outcome. */
"use strict";

(async () => {
  if (P.params().get("error")) {
    P.note(P.$("#login-error"), "That key was not accepted.", "error");
    P.$("#key").setAttribute("aria-invalid", "true");
    P.$("#key").setAttribute("aria-describedby", "login-error");
  } else if (await P.session()) {
    location.replace("/");  // already signed in
  }
})();
