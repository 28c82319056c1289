// Audit Log: the append-only trail, read by mission, change or action (the API reads it by one of its keys, never
// whole), from a moment on, a page at a time.

import { type PageContext, field, text } from "../context";
import { asText, h, notice, replaceChildren, when } from "../dom";

const FILTERS = ["mission", "change", "action", "since"] as const;
type Filter = (typeof FILTERS)[number];

function recordRow(record: unknown): HTMLElement {
  return h(
    "tr",
    {},
    h("td", {}, when(field(record, "at"))),
    h("td", {}, text(record, "mission_id")),
    h("td", {}, text(record, "change_id")),
    h("td", {}, text(record, "actor")),
    h("td", {}, h("code", {}, text(record, "action"))),
    h("td", {}, text(record, "outcome")),
    h("td", {}, h("details", {}, h("summary", {}, "details"), h("pre", {}, asText(field(record, "details"))))),
  );
}

export async function auditLog(context: PageContext): Promise<HTMLElement> {
  const current = new URLSearchParams(window.location.hash.split("?")[1] ?? "");
  const inputs = Object.fromEntries(
    FILTERS.map((name) => [
      name,
      h("input", {
        type: "text",
        name,
        value: current.get(name) ?? "",
        placeholder: { mission: "m-… or killswitch", change: "chg-…", action: "approval.requested", since: "2030-01-31T12:00:00Z" }[name],
        autocomplete: "off",
      }),
    ]),
  ) as Record<Filter, HTMLInputElement>;
  const body = h("tbody");
  const status = h("div");
  const more = h("button", { type: "button", class: "secondary", hidden: true }, "Next page");
  let next: string | null = null;
  const filters = (): Record<string, string> =>
    Object.fromEntries(FILTERS.map((name) => [name, inputs[name].value.trim()]).filter(([, value]) => value !== ""));

  const load = async (fresh: boolean): Promise<void> => {
    if (fresh) {
      body.replaceChildren();
      next = null;
    }
    const chosen = filters();
    if (!chosen["mission"] && !chosen["change"] && !chosen["action"]) {
      replaceChildren(status, notice("Give a mission (or killswitch), a change or an action: the trail is read by one of them."));
      more.hidden = true;
      return;
    }
    try {
      const page = await context.api.page<unknown>("/audit", "records", { ...chosen, limit: 50, next });
      for (const record of page.items) body.appendChild(recordRow(record));
      next = page.next;
      more.hidden = next === null;
      replaceChildren(status, body.childElementCount === 0 ? notice("No record matches.") : null);
    } catch (error) {
      replaceChildren(status, notice((error as Error).message, "error"));
    }
  };
  const form = h(
    "form",
    { class: "filters" },
    ...FILTERS.map((name) => h("label", {}, `${name} `, inputs[name])),
    h("button", { type: "submit" }, "Search"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    // The filters go into the address, so a search can be shared and survives a reload.
    const query = new URLSearchParams(filters()).toString();
    window.history.replaceState(null, "", `#/audit${query ? `?${query}` : ""}`);
    void load(true);
  });
  more.addEventListener("click", () => void load(false));
  void load(true);
  return h(
    "div",
    { class: "page" },
    h("h1", {}, "Audit Log"),
    h("section", { class: "card" }, form),
    h(
      "section",
      { class: "card" },
      h(
        "div",
        { class: "table-scroll" },
        h(
          "table",
          { id: "audit-records" },
          h("thead", {}, h("tr", {}, ...["At", "Mission", "Change", "Actor", "Action", "Outcome", ""].map((t) => h("th", {}, t)))),
          body,
        ),
      ),
      status,
      more,
    ),
  );
}
