"""Token verification without credentials, shared by every function that checks a caller's or the provider's JWT.

It holds no secret and calls no AWS API, so a function that only verifies tokens (the ops API) ships it without the
AuthLayer's hand-off and Token Vault code.

- `aegis_jwt.discovery`: the issuer URL rules, the provider's discovery document (cached), the process's HTTP client.
- `aegis_jwt.verify`: RS256 JWT verification against the provider's JWKS.
- `aegis_jwt.callers`: an HTTP caller's bearer token verified for one audience, and the scope a route requires.
- `aegis_jwt.errors`: the named errors of all of the above (and the base classes of aegis_auth's).
"""
