// An independent OpenID provider (panva/oidc-provider) with CIBA poll mode, RAR and RS256 JWT access tokens, so that
// the approval client is also exercised against an implementation that is not Auth0 and not our emulator.
// Usage: node server.mjs [port]; prints {"issuer": ...} once listening. AUTH_METHOD selects the client auth method.
// /__test/pending and /__test/decide stand in for the authentication device.
import http from 'node:http';
import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import Provider, { errors } from 'oidc-provider';

const port = Number(process.argv[2] || 0);
const AUDIENCE = 'https://aegis.example/api';
const TYPE = 'urn:auth0:schemas:authorization-details:v1:aegis-change';
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), use: 'sig', alg: 'RS256' };
const pending = new Map();
const clientSecret = randomBytes(32).toString('base64url');

const server = http.createServer();
server.listen(port, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: 'aegis-indep', client_secret: clientSecret,
      grant_types: ['urn:openid:params:grant-type:ciba'], response_types: [], redirect_uris: [],
      token_endpoint_auth_method: process.env.AUTH_METHOD || 'client_secret_post',
      backchannel_token_delivery_mode: 'poll', authorization_details_types: [TYPE],
      id_token_signed_response_alg: 'RS256',
    }],
    jwks: { keys: [jwk] },
    findAccount: async (ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
    features: {
      devInteractions: { enabled: false },
      ciba: {
        enabled: true, deliveryModes: ['poll'],
        processLoginHint(ctx, hint) {
          try { const parsed = JSON.parse(hint); if (parsed.format === 'iss_sub' && parsed.iss === issuer) return parsed.sub; } catch {}
          return hint;
        },
        validateBindingMessage(ctx, message) { if (!message) throw new errors.InvalidBindingMessage('binding_message is required'); },
        validateRequestContext() {},
        verifyUserCode() {},
        async triggerAuthenticationDevice(ctx, request, account) {
          const details = ctx.oidc.params.authorization_details ? JSON.parse(ctx.oidc.params.authorization_details) : undefined;
          pending.set(request.jti, { request, account: account.accountId, details, binding: ctx.oidc.params.binding_message });
        },
      },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => AUDIENCE,
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({ scope: 'remediate', audience: AUDIENCE, accessTokenFormat: 'jwt', accessTokenTTL: 600, jwt: { sign: { alg: 'RS256' } } }),
      },
      richAuthorizationRequests: {
        enabled: true,
        types: { [TYPE]: { validate() {} } },
        authorizationDetailsForGrantSource: (ctx, source) => source.rar,
        authorizationDetailsForAccessToken: (ctx, token, source) => source.rar,
        authorizationDetailsForIntrospection: (ctx, token) => token.rar,
      },
    },
  });
  const callback = provider.callback();
  server.on('request', async (req, res) => {
    const url = new URL(req.url, issuer);
    if (url.pathname === '/__test/pending') {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify([...pending.entries()].map(([id, p]) => ({ auth_req_id: id, sub: p.account, binding_message: p.binding, authorization_details: p.details }))));
      return;
    }
    if (url.pathname === '/__test/decide') {
      const id = url.searchParams.get('auth_req_id');
      const entry = pending.get(id);
      pending.delete(id);
      if (url.searchParams.get('approve') === 'true') {
        const grant = new provider.Grant({ clientId: entry.request.clientId, accountId: entry.account });
        grant.addOIDCScope('openid');
        grant.addResourceScope(AUDIENCE, 'remediate');
        await grant.save();
        await provider.backchannelResult(entry.request, grant, { rar: entry.details });
      } else {
        await provider.backchannelResult(entry.request, new errors.AccessDenied('denied by the test'));
      }
      res.end('{}');
      return;
    }
    callback(req, res);
  });
  console.log(JSON.stringify({ issuer, client_id: 'aegis-indep', client_secret: clientSecret }));
});
