// The analyst's part of a mission (a language model that chose among code-built fixes and wrote a priority and a
// rationale per finding, and a summary for operators). Everything it wrote is model output: shown as text nodes only
// (h() never parses markup) and always labelled as advisory, beside what code decided.

import { field, list, text } from "./context";
import { h } from "./dom";

/** `P1: <rationale>` for a change's or finding's analyst note, "" when there is none. */
export function analystNote(note: unknown): string {
  if (typeof note !== "object" || note === null) return "";
  const priority = text(note, "priority");
  const rationale = text(note, "rationale");
  if (!priority && !rationale) return "";
  return `P${priority || "?"}${rationale ? `: ${rationale}` : ""}`;
}

/** The line a change card or a phone card shows: the note, labelled advisory (null when there is none). */
export function analystLine(shown: string, priority = ""): HTMLElement | null {
  if (!shown) return null;
  return h("p", { class: "analyst", "data-priority": priority || null }, h("span", { class: "hint" }, "AI analyst (advisory): "), shown);
}

function figures(analyst: unknown): string {
  const calls = Number(text(analyst, "calls") || "0");
  const fallbacks = field(analyst, "fallbacks");
  const reasons =
    typeof fallbacks === "object" && fallbacks !== null
      ? Object.entries(fallbacks as Record<string, unknown>)
          .sort(([a], [b]) => a.localeCompare(b))
          .map(([reason, count]) => `${reason} ${String(count)}`)
      : [];
  return (
    `${calls} call${calls === 1 ? "" : "s"}, ${text(analyst, "input_tokens") || "0"} input + ${text(analyst, "output_tokens") || "0"} output tokens` +
    (reasons.length > 0 ? `, fallbacks: ${reasons.join(", ")}` : ", no fallback")
  );
}

/** The mission's analyst section: model, figures, its summary, and the findings where it did not take the
 * deterministic choice; null when the deployment has no analyst. */
export function analystSection(report: unknown): HTMLElement | null {
  const analyst = field(report, "analyst");
  if (typeof analyst !== "object" || analyst === null) return null;
  const overruled = list(report, "findings").filter((finding) => text(finding, "analyst_line") !== "");
  const summary = text(analyst, "summary");
  return h(
    "section",
    { class: "card", id: "analyst" },
    h("h2", {}, "Analyst"),
    h("p", { class: "meta" }, "Model ", h("code", {}, text(analyst, "model_id")), ` · ${figures(analyst)}`),
    summary ? h("p", { class: "hint" }, "Summary written by the model: advisory, not checked by AegisCloud. The changes are built by code; the model only chose among them.") : null,
    summary ? h("blockquote", { class: "analyst-summary", id: "analyst-summary" }, summary) : null,
    overruled.length > 0
      ? h(
          "ul",
          { class: "analyst-overruled" },
          ...overruled.map((finding) =>
            h("li", {}, h("code", {}, text(finding, "resource_arn")), ` ${text(finding, "check_id")}: ${text(finding, "analyst_line")}`),
          ),
        )
      : null,
  );
}
