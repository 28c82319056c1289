// Scopes Radar: the caller's token scopes against every scope of the ops API (from the template's routes), and
// beside it what each AegisCloud role may do, by service (from the template's IAM roles, at build time).

import type { RoleDescription } from "../config";
import { type PageContext, list, text } from "../context";
import { h } from "../dom";
import { scopesRadar } from "../radar";

function roleCard(role: RoleDescription): HTMLElement {
  // Collapsed by default: eleven roles' grants would otherwise bury the radar on a phone.
  return h(
    "details",
    { class: "role", "data-role": role.role },
    h(
      "summary",
      {},
      h("strong", {}, role.role),
      h("span", { class: "hint" }, ` ${role.services.map((service) => service.service).join(", ")}`),
      role.condition ? h("span", { class: "hint" }, ` (only if ${role.condition})`) : null,
    ),
    role.description ? h("p", { class: "hint" }, role.description) : null,
    role.used_by.length > 0 ? h("p", { class: "meta" }, `Used by ${role.used_by.join(", ")}`) : null,
    h(
      "dl",
      { class: "services" },
      ...role.services.flatMap((service) => [
        h("dt", {}, service.service),
        h(
          "dd",
          {},
          ...service.statements.map((statement) =>
            h(
              "p",
              { class: statement.effect === "Deny" ? "deny" : "allow" },
              statement.effect === "Deny" ? "Deny " : "",
              statement.actions.map((action) => action.split(":")[1] ?? action).join(", "),
              h(
                "span",
                { class: "hint" },
                ` on ${statement.resources.join(", ")}`,
                statement.conditional ? " (with conditions)" : "",
                statement.when ? ` (only if ${statement.when})` : "",
              ),
            ),
          ),
        ),
      ]),
    ),
  );
}

export async function scopesPage(context: PageContext): Promise<HTMLElement> {
  // What the API itself read from the verified token (GET /me needs no scope).
  const me = await context.api.get<unknown>("/me");
  const fromApi = list(me, "scopes").filter((scope): scope is string => typeof scope === "string");
  const granted = new Set(fromApi);
  const allScopes = context.roles.api_scopes.map((entry) => entry.scope);
  return h(
    "div",
    { class: "page" },
    h("h1", {}, "Scopes Radar"),
    h(
      "div",
      { class: "grid" },
      h(
        "section",
        { class: "card", id: "radar" },
        h("h2", {}, "Your token"),
        h("p", { class: "meta" }, `Signed in as ${text(me, "sub")}`),
        scopesRadar(allScopes, granted),
        h(
          "ul",
          { class: "scope-list" },
          ...context.roles.api_scopes.map((entry) =>
            h(
              "li",
              { class: granted.has(entry.scope) ? "granted" : "missing", "data-scope": entry.scope },
              h("code", {}, entry.scope),
              granted.has(entry.scope) ? " ✓ " : " ✗ ",
              h("span", { class: "hint" }, entry.routes.join(", ")),
            ),
          ),
        ),
      ),
      h(
        "section",
        { class: "card", id: "roles" },
        h("h2", {}, "What each AegisCloud role may do"),
        h("p", { class: "hint" }, "From the template's IAM roles, by service."),
        ...context.roles.roles.map(roleCard),
      ),
    ),
  );
}
