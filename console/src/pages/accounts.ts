// Connected Accounts: the caller's own Token Vault accounts, listed and deleted through Auth0's My Account API with
// the caller's own token (audience {issuer}me/). AegisCloud's APIs never see these accounts' tokens.

import type { ConnectedAccount } from "../api";
import type { PageContext } from "../context";
import { h, notice, replaceChildren, when } from "../dom";

function accountRow(context: PageContext, account: ConnectedAccount, onDeleted: () => void, status: HTMLElement): HTMLElement {
  const remove = h("button", { type: "button", class: "danger" }, "Delete");
  remove.addEventListener("click", () => {
    if (!window.confirm(`Delete the connected account on ${account.connection}? AegisCloud can then no longer act with it.`)) return;
    remove.disabled = true;
    void (async () => {
      try {
        await context.myAccount.remove(account.id);
        replaceChildren(status, notice(`Deleted the account on ${account.connection}.`, "ok"));
        onDeleted();
      } catch (error) {
        replaceChildren(status, notice((error as Error).message, "error"));
        remove.disabled = false;
      }
    })();
  });
  return h(
    "tr",
    { "data-account": account.id },
    h("td", {}, account.connection),
    h("td", {}, (account.scopes ?? []).join(" ")),
    h("td", {}, account.access_type ?? ""),
    h("td", {}, when(account.created_at)),
    h("td", {}, when(account.expires_at)),
    h("td", {}, remove),
  );
}

export async function connectedAccounts(context: PageContext): Promise<HTMLElement> {
  const body = h("tbody");
  const status = h("div");
  const load = async (): Promise<void> => {
    try {
      const accounts = await context.myAccount.accounts();
      replaceChildren(body, ...accounts.map((account) => accountRow(context, account, () => void load(), status)));
      if (accounts.length === 0) status.appendChild(notice("You have no connected account."));
    } catch (error) {
      replaceChildren(status, notice((error as Error).message, "error"));
    }
  };
  await load();
  return h(
    "div",
    { class: "page" },
    h("h1", {}, "Connected Accounts"),
    h(
      "section",
      { class: "card" },
      h("p", { class: "hint" }, "Your accounts in Auth0's Token Vault, through the My Account API with your own token."),
      h(
        "div",
        { class: "table-scroll" },
        h(
          "table",
          { id: "connected-accounts" },
          h("thead", {}, h("tr", {}, ...["Connection", "Scopes", "Access", "Connected", "Expires", ""].map((t) => h("th", {}, t)))),
          body,
        ),
      ),
      status,
    ),
  );
}
