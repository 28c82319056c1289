// Kill Switch: whether the halt is engaged, trigger it with a reason, re-arm it, and every step of the last
// operation. The buttons are disabled without the scope, and the API refuses anyway (403) if called without it.

import { ApiError, type Page } from "../api";
import { type PageContext, SCOPES, field, list, text } from "../context";
import { h, notice, replaceChildren, when } from "../dom";

// The kill switch audits each operation's steps under this partition (aegis_killswitch.service).
const KILLSWITCH_TRAIL = "killswitch";
const MAX_TRAIL_PAGES = 20;

type State = { halted: boolean | null; source: string };

/** The halt state: from GET /me when the API reports it, else from the newest kill switch operation audited. */
async function currentState(context: PageContext): Promise<State> {
  try {
    const me = await context.api.get<unknown>("/me");
    const halted = field(me, "halted");
    if (typeof halted === "boolean") return { halted, source: "the halt flag" };
  } catch {
    // Fall through to the trail.
  }
  if (!context.session.can(SCOPES.audit)) return { halted: null, source: `unknown without ${SCOPES.audit}` };
  let newest: unknown = undefined;
  let next: string | null = null;
  for (let pages = 0; pages < MAX_TRAIL_PAGES; pages += 1) {
    const page: Page<unknown> = await context.api.page<unknown>("/audit", "records", { mission: KILLSWITCH_TRAIL, limit: 100, next });
    for (const record of page.items) {
      if (newest === undefined || text(record, "seq") > text(newest, "seq")) newest = record;
    }
    next = page.next;
    if (next === null) break;
  }
  if (newest === undefined) return { halted: false, source: "never triggered" };
  const operation = text(newest, "action").split(".")[1];
  return { halted: operation === "trigger", source: `last ${operation} at ${when(field(newest, "at"))}` };
}

function stepsTable(answer: unknown): HTMLElement {
  const steps = list(answer, "steps");
  return h(
    "div",
    { class: "operation", "data-operation": text(answer, "operation"), "data-ok": text(answer, "ok") },
    h(
      "p",
      { class: "meta" },
      `${text(answer, "operation")} ${text(answer, "operation_id")} by ${text(answer, "requested_by")} at ${when(field(answer, "at"))}: `,
      field(answer, "ok") === true ? "every step succeeded" : `failed steps: ${list(answer, "failed_steps").join(", ")}`,
    ),
    h(
      "div",
      { class: "table-scroll" },
      h(
        "table",
        { class: "steps" },
        h("thead", {}, h("tr", {}, h("th", {}, "Step"), h("th", {}, "OK"), h("th", {}, "Reason"))),
        h(
          "tbody",
          {},
          ...steps.map((step) =>
            h("tr", { class: field(step, "ok") === true ? "ok" : "failed" }, h("td", {}, text(step, "step")), h("td", {}, field(step, "ok") === true ? "✓" : "✗"), h("td", {}, text(step, "reason"))),
          ),
        ),
      ),
    ),
  );
}

function stateBadge(state: State): HTMLElement {
  const label = state.halted === null ? "unknown" : state.halted ? "HALTED" : "armed";
  return h(
    "p",
    { class: `halt-state ${state.halted ? "halted" : "armed"}`, id: "halt-state", "data-halted": String(state.halted) },
    `State: ${label} `,
    h("span", { class: "hint" }, `(${state.source})`),
  );
}

export async function killSwitch(context: PageContext): Promise<HTMLElement> {
  const canKill = context.session.can(SCOPES.killswitch);
  const canRearm = context.session.can(SCOPES.rearm);
  const stateHolder = h("div", {}, stateBadge(await currentState(context)));
  const lastOperation = h("div", { id: "last-operation" }, notice("No operation from this console yet."));
  const reason = h("input", { type: "text", name: "reason", maxlength: 500, placeholder: "why", autocomplete: "off" });
  const trigger = h("button", { type: "button", class: "danger", id: "trigger-kill", disabled: !canKill }, "Trigger the kill switch");
  const rearm = h("button", { type: "button", id: "rearm", disabled: !canRearm }, "Re-arm");

  const operate = async (path: "/kill" | "/rearm"): Promise<void> => {
    const why = reason.value.trim();
    if (path === "/rearm" && why === "") {
      replaceChildren(lastOperation, notice("Re-arming is deliberate: give the reason.", "error"));
      return;
    }
    trigger.disabled = rearm.disabled = true;
    try {
      const answer = await context.api.post<unknown>(path, why ? { reason: why } : {});
      replaceChildren(lastOperation, stepsTable(answer));
      const halted = field(answer, "halted");
      replaceChildren(stateHolder, stateBadge({ halted: typeof halted === "boolean" ? halted : null, source: "this operation" }));
    } catch (error) {
      // A 502 still carries every step: the halt flag holds whatever else failed.
      const body = error instanceof ApiError ? error.body : undefined;
      replaceChildren(lastOperation, notice((error as Error).message, "error"), list(body, "steps").length > 0 ? stepsTable(body) : null);
    } finally {
      trigger.disabled = !canKill;
      rearm.disabled = !canRearm;
    }
  };
  trigger.addEventListener("click", () => void operate("/kill"));
  rearm.addEventListener("click", () => void operate("/rearm"));
  return h(
    "div",
    { class: "page" },
    h("h1", {}, "Kill Switch"),
    h(
      "section",
      { class: "card" },
      stateHolder,
      h(
        "p",
        { class: "hint" },
        "Triggering denies the remediation roles at once, disables the rules, fails waiting approvals, stops executions, purges sealed approvals and revokes the approvers' sessions. Re-arming lifts the halt.",
      ),
      h("label", {}, "Reason ", reason),
      h("div", { class: "actions" }, trigger, rearm),
      canKill ? null : h("p", { class: "hint" }, `Triggering needs ${SCOPES.killswitch}.`),
      canRearm ? null : h("p", { class: "hint" }, `Re-arming needs ${SCOPES.rearm}.`),
    ),
    h("section", { class: "card" }, h("h2", {}, "Last operation"), lastOperation),
  );
}
