// The deployment-specific settings, read at run time from /config.json (written next to the static build by the
// local server or by the operator's upload), so one build serves every stack.

export interface ConsoleConfig {
  /** The Auth0 issuer, with its trailing slash (https://TENANT/ or the local emulator's http://127.0.0.1:PORT/). */
  issuer: string;
  /** The console's own Auth0 application (a public SPA client: authorization code with PKCE). */
  clientId: string;
  /** The ops API's audience: the access token the console sends to apiUrl is issued for it. */
  audience: string;
  /** The ops HTTP API's base URL. */
  apiUrl: string;
  /** Auth0's My Account API audience, `{issuer}me/`. */
  myAccountAudience: string;
}

export class ConfigError extends Error {
  override name = "ConfigError";
}

function requiredUrl(document: Record<string, unknown>, field: string): string {
  const value = document[field];
  if (typeof value !== "string" || value === "") throw new ConfigError(`config.json: ${field} is missing`);
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    throw new ConfigError(`config.json: ${field} is not a URL`);
  }
  // Tokens travel to these URLs: only https, or plain http on the loopback interface (the local stack).
  const loopback = parsed.hostname === "127.0.0.1" || parsed.hostname === "localhost";
  if (parsed.protocol !== "https:" && !(parsed.protocol === "http:" && loopback)) {
    throw new ConfigError(`config.json: ${field} must be an https:// URL`);
  }
  return value;
}

function requiredText(document: Record<string, unknown>, field: string): string {
  const value = document[field];
  if (typeof value !== "string" || value.trim() === "") throw new ConfigError(`config.json: ${field} is missing`);
  return value;
}

export function parseConfig(raw: unknown): ConsoleConfig {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new ConfigError("config.json must be a JSON object");
  }
  const document = raw as Record<string, unknown>;
  const issuer = requiredUrl(document, "issuer");
  if (!issuer.endsWith("/")) throw new ConfigError("config.json: issuer must end with a slash, as Auth0's does");
  const apiUrl = requiredUrl(document, "apiUrl").replace(/\/+$/, "");
  const myAccount = document["myAccountAudience"];
  return {
    issuer,
    clientId: requiredText(document, "clientId"),
    audience: requiredText(document, "audience"),
    apiUrl,
    myAccountAudience: typeof myAccount === "string" && myAccount !== "" ? myAccount : `${issuer}me/`,
  };
}

export async function loadConfig(): Promise<ConsoleConfig> {
  const response = await fetch("/config.json", { cache: "no-store", credentials: "same-origin" });
  if (!response.ok) throw new ConfigError(`config.json could not be loaded (HTTP ${response.status})`);
  return parseConfig(await response.json());
}

export interface RoleStatement {
  sid: string;
  effect: "Allow" | "Deny";
  actions: string[];
  resources: string[];
  conditional: boolean;
  /** The template condition the statement exists under, if any. */
  when: string | null;
}

export interface RoleService {
  service: string;
  statements: RoleStatement[];
}

export interface RoleDescription {
  role: string;
  description: string;
  condition: string | null;
  used_by: string[];
  services: RoleService[];
}

export interface ApiScope {
  scope: string;
  routes: string[];
}

export interface RolesDocument {
  api_scopes: ApiScope[];
  roles: RoleDescription[];
}

/** roles.json, generated from template.yaml at build time (aegis_local.console.roles). */
export async function loadRoles(): Promise<RolesDocument> {
  const response = await fetch("/roles.json", { credentials: "same-origin" });
  if (!response.ok) throw new ConfigError(`roles.json could not be loaded (HTTP ${response.status})`);
  const document = (await response.json()) as Partial<RolesDocument>;
  if (!Array.isArray(document.api_scopes) || !Array.isArray(document.roles)) {
    throw new ConfigError("roles.json must list api_scopes and roles");
  }
  return { api_scopes: document.api_scopes, roles: document.roles };
}
