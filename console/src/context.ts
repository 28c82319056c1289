import type { MyAccountApi, OpsApi } from "./api";
import type { Session } from "./auth";
import type { ConsoleConfig, RolesDocument } from "./config";

/** What every page gets: who is signed in, the two APIs, and the template-derived roles and scopes. */
export interface PageContext {
  config: ConsoleConfig;
  session: Session;
  api: OpsApi;
  myAccount: MyAccountApi;
  roles: RolesDocument;
  /** Navigate to a hash route (re-renders). */
  go(hash: string): void;
}

export type Page = (context: PageContext, ...parameters: string[]) => Promise<HTMLElement>;

export const SCOPES = {
  read: "aegis:read",
  audit: "aegis:audit",
  scan: "aegis:scan",
  undo: "aegis:undo",
  killswitch: "aegis:killswitch",
  rearm: "aegis:rearm",
} as const;

/** A field of a JSON object of unknown shape, as text ("" when absent). */
export function text(record: unknown, field: string): string {
  if (typeof record !== "object" || record === null) return "";
  const value = (record as Record<string, unknown>)[field];
  if (value === null || value === undefined) return "";
  return typeof value === "string" ? value : typeof value === "object" ? JSON.stringify(value) : String(value);
}

export function field(record: unknown, name: string): unknown {
  return typeof record === "object" && record !== null ? (record as Record<string, unknown>)[name] : undefined;
}

export function list(record: unknown, name: string): unknown[] {
  const value = field(record, name);
  return Array.isArray(value) ? value : [];
}
