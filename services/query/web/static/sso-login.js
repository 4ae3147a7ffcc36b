// Single sign-on on the sign-in page (README, "Single sign-on"): asks the server what it
// offers (GET /api/v1/sso/providers, public) and fills #sso-slot with a link for each: "Sign in
// with <provider>" (OpenID Connect) and, when this page came through the authenticating proxy
// with its header, "Continue as the proxy's signed-in user". Nothing when neither is on.
"use strict";

(async () => {
  const slot = document.getElementById("sso-slot");
  if (!slot) return;
  let offered;
  try {
    const response = await fetch("/api/v1/sso/providers", {credentials: "same-origin", cache: "no-store"});
    if (!response.ok) return;
    offered = await response.json();
  } catch (e) {
    return; // the password and key forms still work
  }
  const links = [];
  if (offered.oidc) {
    links.push([offered.oidc.start, `Sign in with ${offered.oidc.name}`, "sso-oidc"]);
  }
  if (offered.proxy) {
    links.push([offered.proxy.start, "Continue as the proxy's signed-in user", "sso-proxy"]);
  }
  if (!links.length) return;
  const box = document.createElement("div");
  box.className = "stack sso";
  const or = document.createElement("p");
  or.className = "muted small";
  or.textContent = "Or sign in through your organisation:";
  box.append(or);
  for (const [href, text, id] of links) {
    const link = document.createElement("a");
    link.id = id;
    link.className = "button primary";
    link.href = href;
    link.textContent = text; // a name from the settings: text, never HTML
    link.style.width = "100%"; // as wide as the form's buttons (CSSOM: allowed by the CSP)
    box.append(link);
  }
  slot.replaceChildren(box);
})();
