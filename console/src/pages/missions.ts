// Mission Control: the missions, what waits for an approver (exactly what the phone shows), a scan or dry run to
// launch, and one mission in full with its diffs and an undo to request. Approving stays on the phone: this page has
// no way to approve or deny anything.

import { analystLine, analystNote, analystSection } from "../analyst";
import { ApiError } from "../api";
import { type PageContext, SCOPES, field, list, text } from "../context";
import { diffView } from "../diff";
import { h, notice, replaceChildren, when } from "../dom";
import { ROOT_PREFIX_CHARS, requestHash } from "./requests";

const ENDED = new Set(["completed", "failed", "halted"]);
const POLL_MILLISECONDS = 1500;
// A dry run on a real account takes seconds to minutes; past this the page stops polling and says so.
const POLL_GIVE_UP_MILLISECONDS = 15 * 60 * 1000;

function counts(mission: unknown): string {
  const found = field(mission, "counts");
  if (typeof found !== "object" || found === null) return "";
  const record = found as Record<string, unknown>;
  return `${String(record["findings"] ?? 0)} findings, ${String(record["changes"] ?? 0)} changes`;
}

function missionRow(context: PageContext, mission: unknown): HTMLElement {
  const id = text(mission, "mission_id");
  return h(
    "tr",
    { "data-mission": id },
    h("td", {}, h("a", { href: `#/missions/${encodeURIComponent(id)}` }, id)),
    h("td", {}, h("span", { class: `status status-${text(mission, "status")}` }, text(mission, "status"))),
    h("td", {}, text(mission, "trigger"), field(mission, "dry_run") === true ? " (dry run)" : ""),
    h("td", {}, when(field(mission, "created_at"))),
    h("td", {}, counts(mission)),
  );
}

function missionsSection(context: PageContext): HTMLElement {
  const body = h("tbody");
  const status = h("div");
  const more = h("button", { type: "button", class: "secondary", hidden: true }, "Older missions");
  let next: string | null = null;
  const load = async (): Promise<void> => {
    try {
      const page = await context.api.page<unknown>("/missions", "missions", { limit: 25, next });
      for (const mission of page.items) body.appendChild(missionRow(context, mission));
      next = page.next;
      more.hidden = next === null;
      if (body.childElementCount === 0) replaceChildren(status, notice("No mission yet."));
    } catch (error) {
      replaceChildren(status, notice(String((error as Error).message), "error"));
    }
  };
  more.addEventListener("click", () => void load());
  void load();
  return h(
    "section",
    { class: "card", id: "missions" },
    h("h2", {}, "Missions"),
    h(
      "div",
      { class: "table-scroll" },
      h(
        "table",
        {},
        h("thead", {}, h("tr", {}, h("th", {}, "Mission"), h("th", {}, "Status"), h("th", {}, "Trigger"), h("th", {}, "Started"), h("th", {}, "Counts"))),
        body,
      ),
    ),
    status,
    more,
  );
}

/** A batch waiting on a phone: what the phone shows (count, kinds, root), and the link to review every change. */
function batchApprovalCard(approval: unknown): HTMLElement {
  const missionId = text(approval, "mission_id");
  const requestId = text(approval, "request_id");
  return h(
    "article",
    { class: "approval", "data-request": requestId },
    h("h3", {}, `Batch of ${text(approval, "count")} changes `, h("code", {}, requestId)),
    h("p", { class: "binding-message" }, text(approval, "binding_message")),
    h("p", {}, text(approval, "kinds")),
    h("p", {}, "Merkle root ", h("code", { class: "digest" }, text(approval, "merkle_root"))),
    h("p", {}, h("a", { href: requestHash(missionId, requestId) }, "Review every change and check the root")),
    h(
      "p",
      { class: "meta" },
      `Mission ${missionId} · for ${text(approval, "approver_sub")} · requested `,
      when(field(approval, "requested_at")),
      text(approval, "expires_at") ? ` · expires ${when(field(approval, "expires_at"))}` : "",
    ),
  );
}

/** One approval request as the approver's phone shows it: binding message, change digest, before and after. */
export function approvalCard(approval: unknown): HTMLElement {
  if (text(approval, "request_kind") === "batch") return batchApprovalCard(approval);
  return h(
    "article",
    { class: "approval", "data-change": text(approval, "change_id"), "data-approver": text(approval, "approver_sub") },
    h("h3", {}, text(approval, "kind") || "change", " on ", h("code", {}, text(approval, "resource_arn"))),
    h("p", { class: "binding-message" }, text(approval, "binding_message")),
    text(approval, "instruction") ? h("p", {}, text(approval, "instruction")) : null,
    analystLine(text(approval, "analyst")),
    h("p", {}, "Digest ", h("code", { class: "digest" }, text(approval, "change_digest"))),
    diffView(text(approval, "before_text"), text(approval, "after_text")),
    h(
      "p",
      { class: "meta" },
      `Mission ${text(approval, "mission_id")} · for ${text(approval, "approver_sub")} · risk ${text(approval, "risk") || "n/a"} · requested `,
      when(field(approval, "requested_at")),
      text(approval, "expires_at") ? ` · expires ${when(field(approval, "expires_at"))}` : "",
    ),
  );
}

function approvalsSection(context: PageContext): HTMLElement {
  const holder = h("div", { class: "approvals" }, notice("Loading…"));
  const load = async (): Promise<void> => {
    try {
      const answer = await context.api.get<unknown>("/approvals/pending");
      const approvals = list(answer, "approvals");
      replaceChildren(holder, approvals.length === 0 ? notice("Nothing waits for an approver.") : null, ...approvals.map(approvalCard));
    } catch (error) {
      replaceChildren(holder, notice((error as Error).message, "error"));
    }
  };
  void load();
  return h(
    "section",
    { class: "card", id: "pending-approvals" },
    h("h2", {}, "Pending approvals"),
    h("p", { class: "hint" }, "Exactly what the approver's phone shows. Approving or denying happens on that phone, never here."),
    h("button", { type: "button", class: "secondary", onclick: () => void load() }, "Refresh"),
    holder,
  );
}

/** Poll a mission until it ends, writing its status into `into`. */
async function follow(context: PageContext, missionId: string, into: HTMLElement): Promise<void> {
  const started = Date.now();
  for (;;) {
    let status = "requested";
    try {
      const answer = await context.api.get<unknown>(`/missions/${encodeURIComponent(missionId)}`);
      status = text(field(answer, "mission"), "status") || "unknown";
    } catch (error) {
      // The agent creates the mission item a moment after the event is accepted: 404 until then.
      if (!(error instanceof ApiError && error.status === 404)) {
        replaceChildren(into, notice((error as Error).message, "error"));
        return;
      }
    }
    replaceChildren(
      into,
      h(
        "p",
        { class: `notice ${ENDED.has(status) ? "notice-ok" : "notice-info"}`, role: "status", "data-status": status },
        "Mission ",
        h("a", { href: `#/missions/${encodeURIComponent(missionId)}` }, missionId),
        `: ${status}`,
      ),
    );
    if (ENDED.has(status)) return;
    if (Date.now() - started > POLL_GIVE_UP_MILLISECONDS) {
      into.appendChild(notice("Still running; open the mission to see where it is.", "info"));
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MILLISECONDS));
  }
}

function scanSection(context: PageContext): HTMLElement {
  const allowed = context.session.can(SCOPES.scan);
  const regions = h("input", { type: "text", name: "regions", placeholder: "every region the deployment scans", autocomplete: "off" });
  const dryRun = h("input", { type: "checkbox", name: "dry_run", checked: true });
  const launch = h("button", { type: "submit", disabled: !allowed }, "Launch");
  const result = h("div", { class: "scan-result" });
  const form = h(
    "form",
    { class: "scan-form" },
    h("label", {}, "Regions (comma separated) ", regions),
    h("label", { class: "inline" }, dryRun, " Dry run (scan and plan only, nothing is asked or changed)"),
    launch,
    allowed ? null : h("p", { class: "hint" }, `Needs the ${SCOPES.scan} scope.`),
    result,
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const wanted = regions.value.split(",").map((r) => r.trim()).filter(Boolean);
    const body: Record<string, unknown> = { dry_run: dryRun.checked };
    if (wanted.length > 0) body["regions"] = wanted;
    launch.disabled = true;
    void (async () => {
      try {
        const answer = await context.api.post<unknown>("/scans", body);
        const missionId = text(answer, "mission_id");
        await follow(context, missionId, result);
      } catch (error) {
        const reason = error instanceof ApiError && error.reason ? ` [${error.reason}]` : "";
        replaceChildren(result, notice(`${(error as Error).message}${reason}`, "error"));
      } finally {
        launch.disabled = false;
      }
    })();
  });
  return h("section", { class: "card", id: "launch-scan" }, h("h2", {}, "Launch a scan"), form);
}

export async function missionControl(context: PageContext): Promise<HTMLElement> {
  return h(
    "div",
    { class: "page" },
    h("h1", {}, "Mission Control"),
    h("div", { class: "grid" }, scanSection(context), approvalsSection(context)),
    missionsSection(context),
  );
}

// ------------------------------------------------------------------------------------------ one mission

function undoButton(context: PageContext, change: unknown): HTMLElement | null {
  if (text(change, "outcome") !== "applied") return null;
  const allowed = context.session.can(SCOPES.undo);
  const result = h("div", { class: "undo-result" });
  const button = h("button", { type: "button", class: "secondary", disabled: !allowed }, "Request undo");
  button.addEventListener("click", () => {
    button.disabled = true;
    void (async () => {
      try {
        const changeId = encodeURIComponent(text(change, "change_id"));
        const answer = await context.api.post<unknown>(`/changes/${changeId}/undo`, {});
        const missionId = text(answer, "mission_id");
        replaceChildren(
          result,
          notice("Undo requested: the approver's phone will ask for it.", "ok"),
        );
        const progress = h("div");
        result.appendChild(progress);
        await follow(context, missionId, progress);
      } catch (error) {
        const reason = error instanceof ApiError && error.reason ? ` [${error.reason}]` : "";
        replaceChildren(result, notice(`${(error as Error).message}${reason}`, "error"));
        button.disabled = false;
      }
    })();
  });
  return h("div", { class: "undo" }, button, allowed ? null : h("span", { class: "hint" }, ` needs ${SCOPES.undo}`), result);
}

/** Who approved a change: both approvers of a two-person change, else the one who decided. */
function approversOf(change: unknown): string {
  const approved = list(change, "approved_by").map(String);
  return approved.length > 0 ? approved.join(" and ") : text(change, "approver_sub");
}

/** Which approval request a change was asked in: a batch's id and root prefix, linked to the request's page. */
function requestLine(missionId: string, change: unknown): HTMLElement {
  const requestId = text(change, "request_id");
  const root = text(change, "batch_root");
  return h(
    "p",
    { class: "request-of-change" },
    "Asked in ",
    h("a", { href: requestHash(missionId, requestId) }, root ? `batch ${requestId} #${root.slice(0, ROOT_PREFIX_CHARS)}` : `request ${requestId}`),
  );
}

function changeCard(context: PageContext, missionId: string, change: unknown): HTMLElement {
  return h(
    "article",
    { class: "change", "data-change": text(change, "change_id") },
    h("h3", {}, text(change, "title") || text(change, "kind"), " ", h("code", {}, text(change, "resource_arn"))),
    h(
      "p",
      { class: "meta" },
      `decision ${text(change, "decision")}`,
      approversOf(change) ? ` by ${approversOf(change)}` : "",
      ` · outcome ${text(change, "outcome") || "none"}`,
      text(change, "verified") ? ` · re-scan ${text(change, "verified")}` : "",
      text(change, "reason") ? ` · ${text(change, "reason")}` : "",
    ),
    text(change, "binding_message") ? h("p", { class: "binding-message" }, text(change, "binding_message")) : null,
    analystLine(analystNote(field(change, "analyst")), text(field(change, "analyst"), "priority")),
    text(change, "request_id") ? requestLine(missionId, change) : null,
    h("p", {}, "Digest ", h("code", { class: "digest" }, text(change, "digest"))),
    diffView(text(change, "before_text") || field(change, "before"), text(change, "after_text") || field(change, "after")),
    undoButton(context, change),
  );
}

async function downloadReport(context: PageContext, missionId: string, into: HTMLElement): Promise<void> {
  try {
    const html = await context.api.text(`/missions/${encodeURIComponent(missionId)}/report.html`);
    // A download, not a page of this origin: the report's own inline styles stay outside the console's CSP.
    const url = URL.createObjectURL(new Blob([html], { type: "text/html" }));
    const link = h("a", { href: url, download: `${missionId}.html` });
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  } catch (error) {
    replaceChildren(into, notice((error as Error).message, "error"));
  }
}

export async function missionDetail(context: PageContext, missionId: string): Promise<HTMLElement> {
  const answer = await context.api.get<unknown>(`/missions/${encodeURIComponent(missionId)}`);
  const mission = field(answer, "mission");
  const report = field(answer, "report");
  const changes = list(report, "changes");
  const findings = list(report, "findings");
  const timeline = list(report, "timeline");
  const reportStatus = h("div");
  return h(
    "div",
    { class: "page" },
    h("p", {}, h("a", { href: "#/missions" }, "← Mission Control")),
    h("h1", {}, "Mission ", h("code", {}, missionId)),
    h(
      "section",
      { class: "card" },
      h(
        "dl",
        { class: "facts" },
        h("dt", {}, "Status"),
        h("dd", { "data-status": text(mission, "status") }, text(mission, "status")),
        h("dt", {}, "Trigger"),
        h("dd", {}, text(mission, "trigger"), field(mission, "dry_run") === true ? " (dry run)" : ""),
        h("dt", {}, "Started"),
        h("dd", {}, when(field(mission, "created_at"))),
        h("dt", {}, "Regions"),
        h("dd", {}, list(mission, "regions").join(", ")),
        h("dt", {}, "Plan"),
        h("dd", {}, text(report, "plan_status"), text(report, "plan_stop_reason") ? `: ${text(report, "plan_stop_reason")}` : ""),
        text(mission, "undo_of") ? h("dt", {}, "Undo of") : null,
        text(mission, "undo_of") ? h("dd", {}, h("code", {}, text(mission, "undo_of"))) : null,
      ),
      h("button", { type: "button", class: "secondary", onclick: () => void downloadReport(context, missionId, reportStatus) }, "Download the HTML report"),
      reportStatus,
    ),
    analystSection(report),
    h(
      "section",
      { class: "card", id: "changes" },
      h("h2", {}, `Changes (${changes.length})`),
      changes.length === 0 ? notice("This mission planned no change.") : null,
      ...changes.map((change) => changeCard(context, missionId, change)),
    ),
    h(
      "section",
      { class: "card" },
      h("h2", {}, `Findings (${findings.length})`),
      h(
        "div",
        { class: "table-scroll" },
        h(
          "table",
          {},
          h("thead", {}, h("tr", {}, h("th", {}, "Check"), h("th", {}, "Severity"), h("th", {}, "Resource"), h("th", {}, "Disposition"))),
          h(
            "tbody",
            {},
            ...findings.map((finding) =>
              h(
                "tr",
                {},
                h("td", {}, text(finding, "title") || text(finding, "check_id")),
                h("td", {}, text(finding, "severity")),
                h("td", {}, h("code", {}, text(finding, "resource_arn"))),
                h(
                  "td",
                  {},
                  text(finding, "disposition"),
                  text(finding, "reason") ? `: ${text(finding, "reason")}` : "",
                  text(finding, "analyst_line") ? h("div", { class: "analyst-line hint" }, text(finding, "analyst_line")) : null,
                ),
              ),
            ),
          ),
        ),
      ),
    ),
    h(
      "section",
      { class: "card" },
      h("h2", {}, "Timeline"),
      h(
        "ol",
        { class: "timeline" },
        ...timeline.map((entry) =>
          h(
            "li",
            {},
            h("time", {}, when(field(entry, "at"))),
            ` ${text(entry, "actor")} ${text(entry, "action")} → ${text(entry, "outcome")}`,
            text(entry, "detail") ? ` (${text(entry, "detail")})` : "",
          ),
        ),
      ),
    ),
  );
}
