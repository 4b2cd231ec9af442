// A real OpenID Connect provider for the tests (the npm package oidc-provider), started by
// tests/oidc_provider.py. Its users and their groups, and any tampering with the ID tokens it
// issues (to test that the dashboard refuses them), are read from STATE_FILE at every use, so a
// test changes them by rewriting that file:
//   {"users": {"alice": {"groups": ["zoom-ops"]}}, "tamper": {"iss": "...", "aud": "...", "nonce": "..."}}
// Environment: PORT, ISSUER, CLIENT_ID, CLIENT_SECRET, REDIRECT_URIS (comma-separated), STATE_FILE.
import { readFileSync } from "node:fs";
import { generateKeyPair, exportJWK, importJWK, SignJWT, decodeJwt } from "jose";
import Provider from "oidc-provider";

const env = process.env;
const state = () => JSON.parse(readFileSync(env.STATE_FILE, "utf8"));

const { privateKey } = await generateKeyPair("RS256", { extractable: true });
const jwk = { ...(await exportJWK(privateKey)), kid: "test-key", alg: "RS256", use: "sig" };

const provider = new Provider(env.ISSUER, {
  clients: [
    {
      client_id: env.CLIENT_ID,
      client_secret: env.CLIENT_SECRET,
      redirect_uris: env.REDIRECT_URIS.split(","),
      grant_types: ["authorization_code"],
      response_types: ["code"],
      token_endpoint_auth_method: "client_secret_post",
    },
  ],
  jwks: { keys: [jwk] },
  cookies: { keys: ["test-only-cookie-key"] },
  // Every claim of the granted scopes in the ID token, as the identity providers the dashboard
  // meets do for a groups claim (Keycloak's group mapper, Entra ID's groups claim).
  conformIdTokenClaims: false,
  claims: {
    openid: ["sub"],
    profile: ["name", "preferred_username", "groups"],
    email: ["email", "email_verified"],
  },
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        const user = state().users?.[id] ?? {};
        return {
          sub: id,
          preferred_username: id,
          name: id,
          email: `${id}@example.test`,
          email_verified: true,
          groups: user.groups ?? [],
        };
      },
    };
  },
  ttl: { Session: 60, Interaction: 600, Grant: 600, IdToken: 600, AccessToken: 600 },
});
provider.proxy = true;

const page = (uid) => `<!doctype html><html lang="en"><head><title>Test identity provider</title></head>
<body><h1>Test identity provider</h1>
<form method="post" action="/interaction/${uid}/login">
<label for="login">Provider username</label> <input id="login" name="login" autofocus>
<button type="submit">Continue</button></form></body></html>`;

async function readForm(req) {
  let body = "";
  for await (const chunk of req) body += chunk;
  return new URLSearchParams(body);
}

provider.use(async (ctx, next) => {
  const match = ctx.path.match(/^\/interaction\/([^/]+)(\/login)?$/);
  if (match) {
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    if (ctx.method === "GET" && !match[2]) {
      ctx.type = "html";
      ctx.body = page(match[1]);
      return;
    }
    if (ctx.method === "POST" && match[2]) {
      const accountId = (await readForm(ctx.req)).get("login");
      const grant = new provider.Grant({ accountId, clientId: details.params.client_id });
      grant.addOIDCScope(details.params.scope);
      const grantId = await grant.save();
      await provider.interactionFinished(
        ctx.req,
        ctx.res,
        { login: { accountId }, consent: { grantId } },
        { mergeWithLastSubmission: false },
      );
      ctx.respond = false;
      return;
    }
  }
  await next();
  // Tampering: the ID token re-signed with the provider's own key after changing claims.
  const tamper = state().tamper;
  if (ctx.path === "/token" && tamper && ctx.body && ctx.body.id_token) {
    const claims = { ...decodeJwt(ctx.body.id_token), ...tamper };
    ctx.body = {
      ...ctx.body,
      id_token: await new SignJWT(claims)
        .setProtectedHeader({ alg: "RS256", kid: jwk.kid, typ: "JWT" })
        .sign(await importJWK(jwk, "RS256")),
    };
  }
});

provider.listen(Number(env.PORT), "127.0.0.1", () => {
  console.log(`oidc-provider listening on ${env.ISSUER}`);
});
