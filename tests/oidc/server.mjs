// A real OpenID Connect provider for Pingura's single sign-on tests: the certified
// `oidc-provider` (panva), on 127.0.0.1 only, configured by the test through one JSON
// argument:
//
//   node server.mjs '{"port": 5000, "clients": [{"client_id": "pingura", "client_secret": "...",
//                     "redirect_uris": ["http://127.0.0.1:8080/api/v1/sso/oidc/callback"]}],
//                     "accounts": {"ada": {"email": "ada@example.org", "groups": ["ops"]}}}'
//
// The authorization code flow with PKCE (S256) required, client_secret_basic at the token
// endpoint, ID tokens signed with an RS256 key made at start. Claims: `email` and
// `email_verified` (scope email), `name` (profile), `groups` (scope groups); the ID token
// carries only the registered ones, the rest come from the userinfo endpoint, as the spec
// has it when an access token is issued. Its sign-in page is one form: an account name
// (filled in with the first account) and a button; submitting it signs in and consents at
// once. Prints "listening <issuer>" when it is ready.
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import Provider from "oidc-provider";

const config = JSON.parse(process.argv[2] ?? "{}");
const port = config.port;
const issuer = `http://127.0.0.1:${port}`;
// With "accounts_file", the accounts are read from that JSON file at each use, so a test
// can change a user's groups between two sign-ins.
const accountsNow = () => (config.accounts_file ? JSON.parse(readFileSync(config.accounts_file, "utf8")) : config.accounts ?? {});

const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: "jwk" }), kid: "test-key", use: "sig", alg: "RS256" };

const provider = new Provider(issuer, {
  clients: (config.clients ?? []).map((client) => ({
    response_types: ["code"],
    grant_types: ["authorization_code"],
    token_endpoint_auth_method: "client_secret_basic",
    ...client,
  })),
  jwks: { keys: [jwk] },
  cookies: { keys: [randomBytes(32).toString("hex")] },
  pkce: { required: () => true },
  scopes: ["openid", "email", "profile", "groups"],
  claims: {
    openid: ["sub"],
    email: ["email", "email_verified"],
    profile: ["name"],
    groups: ["groups"],
  },
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(ctx, id) {
    const account = accountsNow()[id];
    if (!account) return undefined;
    return {
      accountId: id,
      async claims() {
        return { sub: id, email_verified: true, ...account };
      },
    };
  },
});

const escape = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

async function signInPage(ctx) {
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  ctx.type = "html";
  ctx.body = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Test provider</title></head>
<body><h1>Test identity provider</h1>
<form method="post" action="/interaction/${escape(details.uid)}/login">
<label>Account <input name="login" value="${escape(Object.keys(accountsNow())[0] ?? "")}"></label>
<button type="submit">Sign in</button></form></body></html>`;
}

async function readForm(ctx) {
  let raw = "";
  for await (const chunk of ctx.req) raw += chunk;
  return new URLSearchParams(raw);
}

async function signIn(ctx) {
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  const login = (await readForm(ctx)).get("login") ?? "";
  if (!(login in accountsNow())) {
    ctx.status = 400;
    ctx.body = `no such account: ${login}`;
    return;
  }
  const grant = new provider.Grant({ accountId: login, clientId: details.params.client_id });
  grant.addOIDCScope(String(details.params.scope));
  const grantId = await grant.save();
  const to = await provider.interactionResult(ctx.req, ctx.res, {
    login: { accountId: login },
    consent: { grantId },
  });
  ctx.status = 303;
  ctx.redirect(to);
}

provider.use(async (ctx, next) => {
  const match = ctx.path.match(/^\/interaction\/([A-Za-z0-9_-]+)(\/login)?$/);
  if (match && ctx.method === "GET" && !match[2]) return signInPage(ctx);
  if (match && ctx.method === "POST" && match[2]) return signIn(ctx);
  return next();
});

provider.listen(port, "127.0.0.1", () => console.log(`listening ${issuer}`));
