// Infrastructure: every CIS control of the catalogue, its latest state and, per resource, the latest status and the
// outcome of the change planned for it (GET /findings).

import { type PageContext, field, list, text } from "../context";
import { h, notice, when } from "../dom";

function resourceRow(resource: unknown): HTMLElement {
  const outcome = [text(resource, "decision"), text(resource, "outcome"), text(resource, "verified")].filter(Boolean).join(" · ");
  return h(
    "tr",
    {},
    h("td", {}, h("code", {}, text(resource, "resource_arn"))),
    h("td", {}, text(resource, "region")),
    h("td", {}, h("span", { class: `status status-${text(resource, "status")}` }, text(resource, "status"))),
    h("td", {}, text(resource, "disposition"), text(resource, "reason") ? `: ${text(resource, "reason")}` : ""),
    h("td", {}, outcome || "none"),
  );
}

function controlCard(control: unknown): HTMLElement {
  const resources = list(control, "resources");
  const missionId = text(control, "latest_mission_id");
  return h(
    "article",
    { class: "control", "data-check": text(control, "check_id") },
    h(
      "h3",
      {},
      h("span", { class: "cis" }, `CIS ${text(control, "cis_v5")}`),
      " ",
      text(control, "title"),
      " ",
      h("span", { class: `severity severity-${text(control, "severity")}` }, text(control, "severity")),
      " ",
      h("span", { class: `status status-${text(control, "state")}` }, text(control, "state")),
    ),
    missionId
      ? h(
          "p",
          { class: "meta" },
          "Latest mission ",
          h("a", { href: `#/missions/${encodeURIComponent(missionId)}` }, missionId),
          ` at ${when(field(control, "recorded_at"))}`,
          field(control, "dry_run") === true ? " (dry run)" : "",
          ` · regions ${list(control, "regions").join(", ")}`,
        )
      : h("p", { class: "meta" }, "Never scanned."),
    resources.length === 0
      ? null
      : h(
          "div",
          { class: "table-scroll" },
          h(
            "table",
            {},
            h("thead", {}, h("tr", {}, h("th", {}, "Resource"), h("th", {}, "Region"), h("th", {}, "Status"), h("th", {}, "Disposition"), h("th", {}, "Outcome"))),
            h("tbody", {}, ...resources.map(resourceRow)),
          ),
        ),
  );
}

export async function infrastructure(context: PageContext): Promise<HTMLElement> {
  const answer = await context.api.get<unknown>("/findings");
  const controls = list(answer, "controls");
  const failing = controls.filter((control) => text(control, "state") === "failing").length;
  return h(
    "div",
    { class: "page" },
    h("h1", {}, "Infrastructure"),
    notice(`${controls.length} controls, ${failing} failing at their latest scan.`),
    ...controls.map(controlCard),
  );
}
