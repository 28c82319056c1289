// The console's entry point: read the runtime config, sign in, and route between the six pages by the URL's hash.

import { MyAccountApi, OpsApi } from "./api";
import { Session } from "./auth";
import { loadConfig, loadRoles } from "./config";
import type { Page, PageContext } from "./context";
import { h, notice, replaceChildren } from "./dom";
import { connectedAccounts } from "./pages/accounts";
import { auditLog } from "./pages/audit";
import { infrastructure } from "./pages/infrastructure";
import { killSwitch } from "./pages/killswitch";
import { missionControl, missionDetail } from "./pages/missions";
import { requestPage } from "./pages/requests";
import { scopesPage } from "./pages/scopes";

interface Route {
  path: string;
  title: string;
  page: Page;
  inMenu: boolean;
}

const ROUTES: Route[] = [
  { path: "missions", title: "Mission Control", page: missionControl, inMenu: true },
  { path: "infrastructure", title: "Infrastructure", page: infrastructure, inMenu: true },
  { path: "audit", title: "Audit Log", page: auditLog, inMenu: true },
  { path: "scopes", title: "Scopes Radar", page: scopesPage, inMenu: true },
  { path: "killswitch", title: "Kill Switch", page: killSwitch, inMenu: true },
  { path: "accounts", title: "Connected Accounts", page: connectedAccounts, inMenu: true },
];

/** `#/missions/m-…?x=y` -> ["missions", "m-…"] (the query belongs to the page); a request of a mission is
 * `#/missions/m-…/requests/r001` (the review URL a batch's phone push links to). */
function currentPath(): string[] {
  const path = window.location.hash.replace(/^#\/?/, "").split("?")[0] ?? "";
  return path.split("/").filter(Boolean).map(decodeURIComponent);
}

function shell(context: PageContext | null, session: Session | null): { main: HTMLElement; root: HTMLElement } {
  const main = h("main", { id: "content", tabindex: -1 });
  const menu = h(
    "nav",
    { "aria-label": "Pages" },
    ...ROUTES.filter((route) => route.inMenu).map((route) => h("a", { href: `#/${route.path}`, "data-route": route.path }, route.title)),
  );
  const who = session?.user
    ? h(
        "div",
        { class: "who" },
        h("span", { id: "signed-in-as" }, session.user.email ?? session.user.sub ?? ""),
        h("button", { type: "button", class: "secondary", onclick: () => void session.logout() }, "Sign out"),
      )
    : null;
  const root = h("div", { class: "app" }, h("header", {}, h("a", { class: "brand", href: "#/missions" }, "AegisCloud"), context ? menu : null, who), main);
  return { main, root };
}

async function render(context: PageContext, main: HTMLElement, nav: HTMLElement | null): Promise<void> {
  const [first = "missions", ...rest] = currentPath();
  const route = ROUTES.find((candidate) => candidate.path === first);
  for (const link of nav?.querySelectorAll("a") ?? []) {
    link.toggleAttribute("aria-current", link.getAttribute("data-route") === first);
  }
  replaceChildren(main, notice("Loading…"));
  try {
    const page =
      first === "missions" && rest[0] !== undefined && rest[1] === "requests" && rest[2] !== undefined
        ? await requestPage(context, rest[0], rest[2])
        : first === "missions" && rest[0] !== undefined
        ? await missionDetail(context, rest[0])
        : route
          ? await route.page(context, ...rest)
          : h("div", { class: "page" }, notice(`No page ${first}.`, "error"));
    document.title = `${route?.title ?? "AegisCloud"} · AegisCloud`;
    replaceChildren(main, page);
  } catch (error) {
    replaceChildren(main, h("div", { class: "page" }, notice((error as Error).message, "error")));
  }
}

async function boot(): Promise<void> {
  const body = document.getElementById("app");
  if (!body) return;
  try {
    const [config, roles] = await Promise.all([loadConfig(), loadRoles()]);
    const session = await Session.start(
      config,
      roles.api_scopes.map((entry) => entry.scope),
    );
    if (!session.authenticated) {
      const { main, root } = shell(null, null);
      replaceChildren(
        main,
        h(
          "div",
          { class: "page login" },
          h("h1", {}, "AegisCloud console"),
          h("p", {}, "Missions, findings, approvals waiting on a phone, the audit trail and the kill switch."),
          session.loginError ? notice(`Sign-in did not complete: ${session.loginError}`, "error") : null,
          h("button", { type: "button", id: "login", onclick: () => void session.login() }, "Sign in"),
        ),
      );
      replaceChildren(body, root);
      return;
    }
    const context: PageContext = {
      config,
      session,
      roles,
      api: new OpsApi(config.apiUrl, () => session.opsToken()),
      myAccount: new MyAccountApi(config.issuer, () => session.myAccountToken()),
      go: (hash) => {
        window.location.hash = hash;
      },
    };
    const { main, root } = shell(context, session);
    replaceChildren(body, root);
    const nav = root.querySelector("nav");
    if (!window.location.hash) window.history.replaceState(null, "", "#/missions");
    window.addEventListener("hashchange", () => void render(context, main, nav));
    await render(context, main, nav);
  } catch (error) {
    replaceChildren(body, h("div", { class: "page" }, notice(`The console could not start: ${(error as Error).message}`, "error")));
  }
}

void boot();
