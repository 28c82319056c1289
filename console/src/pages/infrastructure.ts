// Infrastructure: every CIS control of the catalogue, its latest state and, per resource, the latest status and the
// outcome of the change planned for it (GET /findings). `#/infrastructure/v5` groups by another CIS AWS Foundations
// version than the deployment's (v7 unless its CisVersion says otherwise).

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
      h("span", { class: "cis", title: unsureTitle(control) }, `CIS ${text(control, "cis") || "-"}${list(control, "cis_unsure").length ? "?" : ""}`),
      " ",
      text(control, "title"),
      " ",
      h("span", { class: `severity severity-${text(control, "severity")}` }, text(control, "severity")),
      " ",
      h("span", { class: `status status-${text(control, "state")}` }, text(control, "state")),
    ),
    h(
      "p",
      { class: "meta fixes" },
      list(control, "fixes").length ? `Fixes: ${list(control, "fixes").map(String).join(", ")}` : "Notify-only",
      text(control, "manual_fix") ? ` · By hand: ${text(control, "manual_fix")}` : "",
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

const CIS_VERSIONS = ["v7", "v6", "v5", "v3"];

function unsureTitle(control: unknown): string {
  const unsure = list(control, "cis_unsure").map(String);
  return unsure.length ? `Not confirmed against a published mapping: ${unsure.join(", ")}` : "";
}

function versionPicker(current: string): HTMLElement {
  return h(
    "p",
    { class: "cis-versions" },
    "CIS AWS Foundations ",
    ...CIS_VERSIONS.map((version) =>
      version === current
        ? h("b", { "aria-current": "true" }, ` ${version} `)
        : h("a", { href: `#/infrastructure/${version}` }, ` ${version} `),
    ),
  );
}

export async function infrastructure(context: PageContext, version?: string): Promise<HTMLElement> {
  const answer = await context.api.get<unknown>("/findings", { cis: version });
  const controls = list(answer, "controls");
  const failing = controls.filter((control) => text(control, "state") === "failing").length;
  return h(
    "div",
    { class: "page" },
    h("h1", {}, "Infrastructure"),
    versionPicker(text(answer, "cis_version")),
    notice(`${controls.length} controls, ${failing} failing at their latest scan.`),
    ...controls.map(controlCard),
  );
}
