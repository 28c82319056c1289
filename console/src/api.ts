// The ops HTTP API and Auth0's My Account API, called with the caller's own bearer tokens.

export class ApiError extends Error {
  override name = "ApiError";
  constructor(
    readonly status: number,
    message: string,
    /** The API's named reason, when it gives one (409 on an undo refused: "undo-disabled" ...). */
    readonly reason: string | undefined,
    /** The whole JSON answer, when there is one (the kill switch answers its steps even on a 502). */
    readonly body: unknown,
  ) {
    super(message);
  }
}

type TokenSource = () => Promise<string>;
type Query = Record<string, string | number | boolean | undefined | null>;

function messageOf(status: number, body: unknown): { message: string; reason: string | undefined } {
  if (typeof body === "object" && body !== null) {
    const record = body as Record<string, unknown>;
    const text = [record["message"], record["detail"], record["title"], record["error_description"]].find(
      (value): value is string => typeof value === "string" && value !== "",
    );
    const reason = typeof record["reason"] === "string" ? record["reason"] : undefined;
    if (text) return { message: `${text} (HTTP ${status})`, reason };
  }
  const meaning: Record<number, string> = {
    401: "not signed in, or the session expired",
    403: "your token lacks the scope this needs",
    404: "not found",
  };
  return { message: `${meaning[status] ?? "the request failed"} (HTTP ${status})`, reason: undefined };
}

async function call(url: string, init: RequestInit, token: TokenSource): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set("authorization", `Bearer ${await token()}`);
  // Cross-origin API: no cookie is ever sent, the bearer token is the only credential.
  const response = await fetch(url, { ...init, headers, credentials: "omit", cache: "no-store" });
  if (!response.ok) {
    let body: unknown = undefined;
    try {
      body = await response.json();
    } catch {
      body = undefined;
    }
    const { message, reason } = messageOf(response.status, body);
    throw new ApiError(response.status, message, reason, body);
  }
  return response;
}

function withQuery(base: string, query: Query | undefined): string {
  const url = new URL(base);
  for (const [name, value] of Object.entries(query ?? {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, String(value));
  }
  return url.toString();
}

export interface Page<T> {
  items: T[];
  next: string | null;
}

export class OpsApi {
  constructor(
    private readonly baseUrl: string,
    private readonly token: TokenSource,
  ) {}

  async get<T>(path: string, query?: Query): Promise<T> {
    const response = await call(withQuery(this.baseUrl + path, query), { method: "GET" }, this.token);
    return (await response.json()) as T;
  }

  async text(path: string): Promise<string> {
    const response = await call(this.baseUrl + path, { method: "GET" }, this.token);
    return response.text();
  }

  async post<T>(path: string, body: unknown): Promise<T> {
    const response = await call(
      this.baseUrl + path,
      { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body ?? {}) },
      this.token,
    );
    return (await response.json()) as T;
  }

  /** One page of a listing route: its items under `key`, and the opaque cursor of the next page. */
  async page<T>(path: string, key: string, query?: Query): Promise<Page<T>> {
    const answer = await this.get<Record<string, unknown>>(path, query);
    const items = answer[key];
    const next = answer["next"];
    return { items: Array.isArray(items) ? (items as T[]) : [], next: typeof next === "string" ? next : null };
  }
}

export interface ConnectedAccount {
  id: string;
  connection: string;
  access_type?: string;
  scopes?: string[];
  created_at?: string;
  expires_at?: string;
}

/** Auth0's My Account API: the caller's own Token Vault connected accounts. */
export class MyAccountApi {
  constructor(
    private readonly issuer: string,
    private readonly token: TokenSource,
  ) {}

  private get base(): string {
    return `${this.issuer}me/v1/connected-accounts`;
  }

  async accounts(): Promise<ConnectedAccount[]> {
    const found: ConnectedAccount[] = [];
    let from: string | undefined;
    // The API pages with `from`/`next` (take is at most 20); follow every page so none is hidden.
    for (let pages = 0; pages < 50; pages += 1) {
      const response = await call(withQuery(`${this.base}/accounts`, { take: 20, from }), { method: "GET" }, this.token);
      const body = (await response.json()) as { accounts?: ConnectedAccount[]; next?: string };
      found.push(...(body.accounts ?? []));
      if (!body.next) break;
      from = body.next;
    }
    return found;
  }

  async remove(accountId: string): Promise<void> {
    await call(`${this.base}/accounts/${encodeURIComponent(accountId)}`, { method: "DELETE" }, this.token);
  }
}
