"""Credential-handling code shared by the approval, executor and kill-switch functions. Never given to the agent.

- `aegis_auth.oidc`: discovery, client authentication, the client secret from Secrets Manager, form posts.
- `aegis_auth.jwt_verify`: RS256 JWT verification against the provider's JWKS.
- `aegis_auth.rar`: the aegis-change authorization_details and the digest check ("approve X, execute X").
- `aegis_auth.handoff`: sealing a token response for one execution and change, and consuming it once.
- `aegis_auth.errors`: the named errors of all of the above.
"""
