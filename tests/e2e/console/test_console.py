"""The console in Debian's Chromium, headless, on a phone-sized viewport, against the local stack: the seeded users
sign in through the emulator's login page (authorization code with PKCE, by Auth0's SPA SDK) and use the six pages.

- the operator sees a completed mission's diff, launches a dry run and sees it finish, requests an undo and the
  approval arrives on the emulated phone (the console itself never approves), triggers and re-arms the kill switch;
- the accounts user deletes their own Token Vault connected account (the approver's stay);
- the viewer (no aegis:killswitch) finds the button disabled and gets 403 calling POST /kill with their own token;
- no token is ever written to localStorage or sessionStorage.

Each page's screenshot goes to reports/console/."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from aegis.control import halt_state
from tests.e2e.console.conftest import PHONE_SIZE, SCREENSHOTS, ConsoleStack
from tests.support.waiting import wait_for

pytestmark = pytest.mark.e2e

OPERATOR = "operator@aegis.local"
VIEWER = "viewer@aegis.local"
ACCOUNTS = "accounts@aegis.local"
APPROVER = "approver@aegis.local"
TIMEOUT_MS = 60_000
PAGES = ("missions", "infrastructure", "audit", "scopes", "killswitch", "accounts")


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


@dataclass
class SignedIn:
    """A user's page in a browser profile of its own, and the bearer tokens the console sent to the ops API."""

    page: Any
    bearer_tokens: list[str]


@pytest.fixture
def sign_in(browser: Any, console_stack: ConsoleStack) -> Iterator[Callable[[str], SignedIn]]:
    """A fresh browser profile per user, signed in through the emulator's login page."""
    contexts: list[Any] = []

    def signed_in(email: str) -> SignedIn:
        context = browser.new_context(viewport=PHONE_SIZE)
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        tokens: list[str] = []
        api = console_stack.stack.http_api_url()

        def record(request: Any) -> None:
            header = request.headers.get("authorization", "")
            if request.url.startswith(api) and header.startswith("Bearer "):
                tokens.append(header.removeprefix("Bearer "))

        page.on("request", record)
        page.goto(console_stack.url)
        page.click("#login")
        # The emulator's Universal Login page, on the issuer's origin.
        expect(page.locator("#email")).to_be_visible()
        assert page.url.startswith(console_stack.stack.endpoints.issuer)
        page.fill("#email", email)
        page.fill("#password", console_stack.password(email))
        page.click("button[type=submit]")
        expect(page.locator("#signed-in-as")).to_have_text(email)
        # The code and state never stay in the address bar.
        assert "code=" not in page.url
        assert not errors, errors
        return SignedIn(page, tokens)

    yield signed_in
    for context in contexts:
        context.close()


def open_page(page: Any, route: str) -> None:
    page.goto(page.url.split("#")[0] + f"#/{route}")
    expect(page.locator("main .notice", has_text="Loading…")).to_have_count(0)


def post(url: str, token: str, body: dict[str, Any]) -> tuple[int, Any]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"authorization": f"Bearer {token}", "content-type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def test_the_operator_signs_in_and_sees_a_completed_missions_diff(
    console_stack: ConsoleStack, sign_in: Callable[[str], SignedIn]
) -> None:
    operator = sign_in(OPERATOR)
    page = operator.page
    mission_id = console_stack.mission.run.mission_id
    row = page.locator(f"tr[data-mission='{mission_id}']")
    expect(row).to_contain_text("completed")
    page.screenshot(path=str(SCREENSHOTS / "missions.png"), full_page=True)
    row.locator("a").click()
    expect(page.locator("h1")).to_contain_text(mission_id)
    changes = page.locator("#changes article.change")
    expect(changes).to_have_count(len(console_stack.mission.report.changes))
    applied = next(change for change in console_stack.mission.report.changes if change.outcome == "applied")
    card = page.locator(f"article.change[data-change='{applied.change_id}']")
    # The diff as the approver saw it: what goes, what comes, and the digest they approved.
    expect(card.locator(".digest")).to_have_text(applied.digest)
    expect(card.locator(".diff .diff-add").first).to_be_visible()
    expect(card.locator(".binding-message")).to_have_text(applied.binding_message)
    page.screenshot(path=str(SCREENSHOTS / "mission.png"), full_page=True)
    for route in PAGES[1:]:
        open_page(page, route)
        page.screenshot(path=str(SCREENSHOTS / f"{route}.png"), full_page=True)
    # Tokens live in memory only: nothing token-shaped in either web storage.
    stored = page.evaluate("() => JSON.stringify([{...localStorage}, {...sessionStorage}])")
    assert not re.search(r"eyJ[\w-]+\.[\w-]+\.[\w-]+", stored), stored
    assert operator.bearer_tokens
    assert all(token not in stored for token in operator.bearer_tokens)


def test_the_scopes_radar_shows_the_operators_and_the_viewers_reach(sign_in: Callable[[str], SignedIn]) -> None:
    operator = sign_in(OPERATOR).page
    open_page(operator, "scopes")
    labels = operator.locator("svg.radar text[data-scope]")
    expect(labels).to_have_count(6)
    expect(operator.locator("svg.radar text[data-granted='true']")).to_have_count(6)
    expect(operator.locator("details.role[data-role='ExecutorRole']")).to_be_visible()
    viewer = sign_in(VIEWER).page
    open_page(viewer, "scopes")
    granted = viewer.locator("svg.radar text[data-granted='true']")
    expect(granted).to_have_count(2)
    assert sorted(granted.evaluate_all("nodes => nodes.map(n => n.dataset.scope)")) == ["aegis:audit", "aegis:read"]
    viewer.screenshot(path=str(SCREENSHOTS / "scopes-viewer.png"), full_page=True)


def test_a_dry_run_launched_from_the_console_finishes(
    console_stack: ConsoleStack, sign_in: Callable[[str], SignedIn]
) -> None:
    page = sign_in(OPERATOR).page
    expect(page.locator("input[name=dry_run]")).to_be_checked()
    page.fill("input[name=regions]", console_stack.stack.identity.region)
    page.click("#launch-scan button[type=submit]")
    finished = page.locator(".scan-result [data-status='completed']")
    expect(finished).to_be_visible(timeout=180_000)
    mission_id = finished.locator("a").inner_text()
    item = console_stack.stack.client("dynamodb").get_item(
        TableName=console_stack.stack.physical_id("MissionsTable"), Key={"mission_id": {"S": mission_id}}
    )["Item"]
    assert item["dry_run"] == {"BOOL": True}
    assert item["status"] == {"S": "completed"}
    page.screenshot(path=str(SCREENSHOTS / "dry-run.png"), full_page=True)


def test_an_undo_requested_from_the_console_arrives_on_the_phone(
    console_stack: ConsoleStack, sign_in: Callable[[str], SignedIn]
) -> None:
    page = sign_in(OPERATOR).page
    emulator = console_stack.stack.emulator
    approver = console_stack.user_sub(APPROVER)
    before = {request["auth_req_id"] for request in emulator.pending(approver)}
    mission_id = console_stack.mission.run.mission_id
    applied = next(change for change in console_stack.mission.report.changes if change.outcome == "applied")
    open_page(page, f"missions/{mission_id}")
    card = page.locator(f"article.change[data-change='{applied.change_id}']")
    card.locator("button", has_text="Request undo").click()
    expect(card.locator(".undo-result .notice-ok")).to_contain_text("Undo requested")

    def new_request() -> dict[str, Any] | None:
        return next((r for r in emulator.pending(approver) if r["auth_req_id"] not in before), None)

    request = wait_for(new_request, "the undo's approval request on the approver's phone", timeout=120)
    # Mission Control shows what the phone shows, and offers no way to answer it.
    open_page(page, "missions")
    approval = page.locator("#pending-approvals article.approval").filter(has_text=request["binding_message"])
    expect(approval).to_have_count(1)
    expect(approval.locator(".binding-message")).to_have_text(request["binding_message"])
    assert approval.locator("button").count() == 0
    page.screenshot(path=str(SCREENSHOTS / "pending-undo.png"), full_page=True)
    # The approver says no on the phone, so nothing is undone and the mission ends.
    emulator.deny(request["auth_req_id"])


def test_the_operator_triggers_and_rearms_the_kill_switch(sign_in: Callable[[str], SignedIn]) -> None:
    page = sign_in(OPERATOR).page
    open_page(page, "killswitch")
    page.fill("input[name=reason]", "console test: trigger")
    page.click("#trigger-kill")
    expect(page.locator("#last-operation .operation[data-operation='trigger']")).to_be_visible(timeout=120_000)
    expect(page.locator("#halt-state")).to_have_attribute("data-halted", "true")
    expect(page.locator("#last-operation table.steps tbody tr").first).to_be_visible()
    page.screenshot(path=str(SCREENSHOTS / "killswitch-triggered.png"), full_page=True)
    page.fill("input[name=reason]", "console test: re-arm")
    page.click("#rearm")
    expect(page.locator("#last-operation .operation[data-operation='rearm']")).to_be_visible(timeout=120_000)
    expect(page.locator("#halt-state")).to_have_attribute("data-halted", "false")
    # A reload reads the state back from the API, not from this page's memory.
    open_page(page, "missions")
    open_page(page, "killswitch")
    expect(page.locator("#halt-state")).to_have_attribute("data-halted", "false")


def test_the_accounts_user_deletes_their_connected_account(
    console_stack: ConsoleStack, sign_in: Callable[[str], SignedIn]
) -> None:
    tenant = console_stack.stack.emulator.tenant
    approver_accounts = tenant.management_connected_accounts(console_stack.user_sub(APPROVER))
    page = sign_in(ACCOUNTS).page
    open_page(page, "accounts")
    rows = page.locator("#connected-accounts tbody tr")
    expect(rows).to_have_count(1)
    page.screenshot(path=str(SCREENSHOTS / "accounts-before.png"), full_page=True)
    page.once("dialog", lambda dialog: dialog.accept())
    rows.first.locator("button", has_text="Delete").click()
    expect(page.locator(".notice-ok")).to_contain_text("Deleted")
    expect(rows).to_have_count(0)
    assert tenant.management_connected_accounts(console_stack.user_sub(ACCOUNTS))["connected_accounts"] == []
    # Only their own: the approver's accounts, which every mission needs, are untouched.
    assert tenant.management_connected_accounts(console_stack.user_sub(APPROVER)) == approver_accounts


def test_a_viewer_finds_the_kill_switch_disabled_and_is_refused_by_the_api(
    console_stack: ConsoleStack, sign_in: Callable[[str], SignedIn]
) -> None:
    viewer = sign_in(VIEWER)
    page = viewer.page
    open_page(page, "killswitch")
    expect(page.locator("#trigger-kill")).to_be_disabled()
    expect(page.locator("#rearm")).to_be_disabled()
    page.screenshot(path=str(SCREENSHOTS / "killswitch-viewer.png"), full_page=True)
    assert viewer.bearer_tokens, "the console sent no bearer token to the ops API"
    token = viewer.bearer_tokens[-1]
    status, body = post(console_stack.stack.http_api_url() + "/kill", token, {"reason": "not allowed"})
    assert (status, body) == (403, {"message": "Forbidden"})
    control = console_stack.stack.session().resource("dynamodb").Table(console_stack.stack.physical_id("ControlTable"))
    assert halt_state(control) is None
