"""Credential-handling code shared by the approval, executor and kill-switch functions. Never given to the agent or
to the ops API. Discovery and JWT verification are aegis_jwt's (the JwtLayer), which this layer builds on.

- `aegis_auth.oidc`: client authentication, the client secret from Secrets Manager, form posts.
- `aegis_auth.rar`: the aegis-change and aegis-batch authorization_details, and the checks that a token grants
  this change's digest or this batch's Merkle root ("approve X, execute X").
- `aegis_auth.handoff`: sealing a token response for one execution and change, and consuming it once.
- `aegis_auth.token_vault`: the Token Vault exchange for a connection's access token.
- `aegis_auth.handoff_table`: the Handoff table's key and index names (for the kill switch's purge).
- `aegis_auth.log_levels`: library loggers held at WARNING, so that no log level makes them write a credential.
- `aegis_auth.errors`: the named errors of all of the above.
"""
