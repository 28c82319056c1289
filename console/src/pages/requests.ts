// One approval request of a mission (`#/missions/<mission>/requests/<request_id>`), the page a batch's phone push
// links to as "Review": every change of the request with its diff, kind, resource and digest, and the batch's Merkle
// root recomputed here from the digests shown, its first characters beside the root the request names (the phone
// shows the same characters in its binding message). A root that does not recompute is a loud warning: what the
// phone asks to approve is then not what this page shows. Approving stays on the phone; this page has no way to.

import { analystLine } from "../analyst";
import { type PageContext, field, list, text } from "../context";
import { diffView } from "../diff";
import { h, notice, when } from "../dom";
import { merkleRoot } from "../merkle";

/** How many characters of a root the phone's binding message shows (`Approve 12 changes #<6 hex>`). */
export const ROOT_PREFIX_CHARS = 6;

export function requestHash(missionId: string, requestId: string): string {
  return `#/missions/${encodeURIComponent(missionId)}/requests/${encodeURIComponent(requestId)}`;
}

function itemCard(item: unknown): HTMLElement {
  return h(
    "article",
    { class: "change", "data-change": text(item, "change_id") },
    h("h3", {}, text(item, "kind") || "change", " ", h("code", {}, text(item, "resource_arn"))),
    h(
      "p",
      { class: "meta" },
      `change ${text(item, "change_id")} · risk ${text(item, "risk") || "n/a"}`,
      text(item, "region") ? ` · ${text(item, "region")}` : "",
      text(item, "decision") ? ` · decision ${text(item, "decision")}` : "",
      text(item, "outcome") ? ` · outcome ${text(item, "outcome")}` : "",
    ),
    text(item, "instruction") ? h("p", {}, text(item, "instruction")) : null,
    analystLine(text(item, "analyst")),
    h("p", {}, "Digest ", h("code", { class: "digest" }, text(item, "change_digest"))),
    diffView(text(item, "before_text"), text(item, "after_text")),
  );
}

/** The root check: the request's root, the one computed here, and whether they agree. */
async function rootSection(request: unknown, items: unknown[]): Promise<HTMLElement> {
  const named = text(request, "root");
  const digests = items.map((item) => text(item, "change_digest"));
  let computed = "";
  let problem = "";
  try {
    computed = await merkleRoot(digests);
  } catch (error) {
    problem = (error as Error).message;
  }
  const matches = computed !== "" && computed === named;
  const verdict = matches
    ? notice(
        `The root computed here from the ${digests.length} changes below matches the request's root. Your phone shows #${named.slice(0, ROOT_PREFIX_CHARS)}: approve only if it does.`,
        "ok",
      )
    : notice(
        problem
          ? `The root cannot be computed from the changes shown (${problem}): do not approve this request.`
          : "MISMATCH: the root computed from the changes shown here is not the root this request names. What the phone asks you to approve is not what this page shows: do not approve it, deny it on the phone.",
        "error",
      );
  return h(
    "section",
    { class: "card", id: "root-check", "data-match": matches ? "true" : "false" },
    h("h2", {}, "Merkle root (SHA-256)"),
    h(
      "dl",
      { class: "facts" },
      h("dt", {}, "Computed here"),
      h(
        "dd",
        {},
        h("strong", { class: "root-prefix", id: "computed-prefix" }, computed ? `#${computed.slice(0, ROOT_PREFIX_CHARS)}` : "—"),
        " ",
        h("code", { id: "computed-root", "data-root": computed }, computed),
      ),
      h("dt", {}, "The request's root"),
      h(
        "dd",
        {},
        h("strong", { class: "root-prefix", id: "request-prefix" }, `#${named.slice(0, ROOT_PREFIX_CHARS)}`),
        " ",
        h("code", { id: "request-root", "data-root": named }, named),
      ),
    ),
    verdict,
  );
}

export async function requestPage(context: PageContext, missionId: string, requestId: string): Promise<HTMLElement> {
  const answer = await context.api.get<unknown>(`/missions/${encodeURIComponent(missionId)}`);
  const report = field(answer, "report");
  const request = list(report, "requests").find((candidate) => text(candidate, "request_id") === requestId);
  const back = h("p", {}, h("a", { href: `#/missions/${encodeURIComponent(missionId)}` }, `← Mission ${missionId}`));
  if (request === undefined) {
    return h(
      "div",
      { class: "page" },
      back,
      h("h1", {}, "Request ", h("code", {}, requestId)),
      notice(`Mission ${missionId} has no approval request ${requestId} (yet: a request appears once it reached a phone).`, "error"),
    );
  }
  const items = list(request, "items");
  const batch = text(request, "kind") === "batch";
  const decisions = list(request, "decisions");
  return h(
    "div",
    { class: "page", id: "approval-request", "data-request": requestId, "data-kind": text(request, "kind") },
    back,
    h("h1", {}, batch ? `Batch of ${items.length} changes ` : "Request ", h("code", {}, requestId)),
    h(
      "section",
      { class: "card" },
      h(
        "dl",
        { class: "facts" },
        h("dt", {}, "Mission"),
        h("dd", {}, h("code", {}, missionId)),
        h("dt", {}, "Phone shows"),
        h("dd", { class: "binding-message" }, text(request, "binding_message")),
        h("dt", {}, "Approvers"),
        h("dd", {}, list(request, "approvers").map(String).join(", ")),
        batch ? h("dt", {}, "By kind") : null,
        batch ? h("dd", {}, text(request, "kinds")) : null,
        h("dt", {}, "Highest risk"),
        h("dd", {}, text(request, "risk")),
        h("dt", {}, "Requested"),
        h("dd", {}, when(field(request, "requested_at")), text(request, "expires_at") ? ` · expires ${when(field(request, "expires_at"))}` : ""),
        h("dt", {}, "Decision"),
        h(
          "dd",
          { "data-decision": text(request, "decision") },
          text(request, "decision") || "pending",
          ...decisions.map((decision) => ` · ${text(decision, "approver_sub")}: ${text(decision, "decision")}`),
        ),
      ),
      h("p", { class: "hint" }, "Approving or denying happens on the approver's phone, never here."),
    ),
    batch ? await rootSection(request, items) : null,
    h("section", { class: "card", id: "request-changes" }, h("h2", {}, `Changes (${items.length})`), ...items.map(itemCard)),
  );
}
