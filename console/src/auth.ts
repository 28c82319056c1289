// Login through Auth0's own SPA SDK: authorization code with PKCE (S256), tokens kept in memory only. Without
// refresh tokens the SDK renews tokens, and gets the My Account API's token, from a hidden iframe (prompt=none) on
// the issuer's session. No token is ever written to localStorage or sessionStorage: with cacheLocation "memory" the
// SDK keeps only the login transaction (state, nonce, PKCE verifier) in sessionStorage, for the redirect's duration.

import { Auth0Client, type User } from "@auth0/auth0-spa-js";

import type { ConsoleConfig } from "./config";

const LOGIN_SCOPES = ["openid", "profile", "email"];
/** What the Connected Accounts page needs from Auth0's My Account API: list and delete, never create. */
export const MY_ACCOUNT_SCOPES = ["read:me:connected_accounts", "delete:me:connected_accounts"];

interface AppState {
  returnTo?: string;
}

export class Session {
  private constructor(
    private readonly client: Auth0Client,
    private readonly config: ConsoleConfig,
    readonly user: User | undefined,
    private opsAccessToken: string | undefined,
    /** Why the last login did not complete, when it did not. */
    readonly loginError: string | undefined,
  ) {}

  /** Finish a login redirect if this page load is one, else restore the session from the issuer if it has one. */
  static async start(config: ConsoleConfig, apiScopes: string[]): Promise<Session> {
    const client = new Auth0Client({
      // The SDK accepts a full base URL as the domain and expects the ID token's issuer to be `{domain}/`.
      domain: config.issuer.replace(/\/$/, ""),
      clientId: config.clientId,
      cacheLocation: "memory",
      useRefreshTokens: false,
      authorizationParams: {
        audience: config.audience,
        scope: [...LOGIN_SCOPES, ...apiScopes].join(" "),
        redirect_uri: `${window.location.origin}/`,
      },
    });
    const query = new URLSearchParams(window.location.search);
    let loginError: string | undefined;
    if (query.has("state") && (query.has("code") || query.has("error"))) {
      let returnTo = "#/missions";
      try {
        const result = await client.handleRedirectCallback<AppState>();
        returnTo = result.appState?.returnTo ?? returnTo;
      } catch (error) {
        // A refused or stale login (access_denied, a reused code): say why, and offer to sign in again.
        loginError = (error as Error).message;
      }
      // The code and state must not stay in the address bar (or in the history) once used.
      window.history.replaceState(null, "", `/${returnTo.startsWith("#") ? returnTo : "#/missions"}`);
    } else {
      await client.checkSession();
    }
    if (!(await client.isAuthenticated())) return new Session(client, config, undefined, undefined, loginError);
    const token = await client.getTokenSilently();
    return new Session(client, config, await client.getUser(), token, undefined);
  }

  get authenticated(): boolean {
    return this.user !== undefined;
  }

  async login(): Promise<void> {
    await this.client.loginWithRedirect<AppState>({ appState: { returnTo: window.location.hash || "#/missions" } });
  }

  async logout(): Promise<void> {
    await this.client.logout({ logoutParams: { returnTo: `${window.location.origin}/` } });
  }

  /** A current access token for the ops API (renewed by the SDK when it nears expiry). */
  async opsToken(): Promise<string> {
    this.opsAccessToken = required(await this.client.getTokenSilently(), "the ops API");
    return this.opsAccessToken;
  }

  /** An access token for Auth0's My Account API, for the caller's own connected accounts. */
  async myAccountToken(): Promise<string> {
    const token = await this.client.getTokenSilently({
      authorizationParams: { audience: this.config.myAccountAudience, scope: MY_ACCOUNT_SCOPES.join(" ") },
    });
    return required(token, "the My Account API");
  }

  /** The scopes the ops API token carries: what the gateway and the ops function will allow. */
  scopes(): Set<string> {
    return scopesOf(this.opsAccessToken);
  }

  can(scope: string): boolean {
    return this.scopes().has(scope);
  }
}

function required(token: string | undefined, audience: string): string {
  if (!token) throw new Error(`Auth0 issued no access token for ${audience}; sign in again`);
  return token;
}

/** The `scope` claim of a JWT access token (read only to shape the page: the API checks the signature). */
export function scopesOf(token: string | undefined): Set<string> {
  const payload = token?.split(".")[1];
  if (!payload) return new Set();
  try {
    const json = atob(payload.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(payload.length / 4) * 4, "="));
    const claims = JSON.parse(json) as { scope?: unknown; scp?: unknown };
    if (typeof claims.scope === "string") return new Set(claims.scope.split(" ").filter(Boolean));
    if (Array.isArray(claims.scp)) return new Set(claims.scp.filter((s): s is string => typeof s === "string"));
  } catch {
    return new Set();
  }
  return new Set();
}
