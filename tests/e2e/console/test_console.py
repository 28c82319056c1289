"""The console in Debian's Chromium, headless, on a phone-sized viewport, against the local stack: the seeded users
sign in through the emulator's login page (authorization code with PKCE, by Auth0's SPA SDK) and use the six pages.

- the operator sees a completed mission's diff, launches a dry run and sees it finish, requests an undo and the
  approval arrives on the emulated phone (the console itself never approves), triggers and re-arms the kill switch;
- the accounts user deletes their own Token Vault connected account (the approver's stay);
- the viewer (no aegis:killswitch) finds the button disabled and gets 403 calling POST /kill with their own token;
- no token is ever written to localStorage or sessionStorage;
- an approval request's page (the review link of a batch's phone push), with batch requests seeded into the stack's
  Audit table the way the approval function records them: every change's diff and digest, and the Merkle root the
  browser recomputes (WebCrypto) is exactly `aegis.approvals.merkle.merkle_root` of those digests, its first 6
  characters beside the request's own; a tampered digest shows the mismatch; Mission Control links a pending batch to
  its page.

Each page's screenshot goes to reports/console/."""

from __future__ import annotations

import json
import re
import secrets
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from aegis.approvals.merkle import merkle_root
from aegis.audit import AuditLog
from aegis.catalogue import ChangeBase
from aegis.control import halt_state
from aegis.missions_keys import MISSION_ID_PREFIX
from aegis.reporting.agent_report import AnalystChoice, FindingAnalystNote, MissionReport, ReportAnalyst
from aegis_agent.missions import MissionStore
from tests.e2e.console.conftest import SCREENSHOTS, ConsoleStack, SignedIn, expect, open_page
from tests.support.changes import one_of_each_kind
from tests.support.waiting import wait_for

pytestmark = pytest.mark.e2e

OPERATOR = "operator@aegis.local"
VIEWER = "viewer@aegis.local"
ACCOUNTS = "accounts@aegis.local"
APPROVER = "approver@aegis.local"
PAGES = ("missions", "infrastructure", "audit", "scopes", "killswitch", "accounts")


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


def test_the_infrastructure_page_groups_controls_by_the_cis_version_picked(sign_in: Callable[[str], SignedIn]) -> None:
    page = sign_in(OPERATOR).page
    open_page(page, "infrastructure")
    admin = page.locator("article.control[data-check='iam-admin-policy-attached']")
    # CIS v7.0.0 by default, where the *:* control is 2.14; v5.0.0 numbered it 1.15.
    expect(admin.locator(".cis")).to_have_text("CIS 2.14")
    expect(admin.locator(".fixes")).to_contain_text("detach-policy")
    page.locator(".cis-versions a", has_text="v5").click()
    expect(page.locator(".cis-versions [aria-current]")).to_have_text(" v5 ")
    expect(admin.locator(".cis")).to_have_text("CIS 1.15")


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
    # Mission Control shows what the phone shows, and offers no way to answer it. An undo is high risk: it waits on
    # the phones of both approvers (the two-person rule), one card each.
    open_page(page, "missions")
    approval = page.locator("#pending-approvals article.approval").filter(has_text=request["binding_message"])
    expect(approval).to_have_count(2)
    expect(approval.locator(".binding-message")).to_have_text([request["binding_message"]] * 2)
    assert sorted(approval.evaluate_all("nodes => nodes.map(n => n.dataset.approver)")) == sorted(
        console_stack.stack.parameters["ApproverSubs"].split(",")
    )
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


# ------------------------------------------------------------------------------------- an approval request

APPROVER_SUB = "auth0|aegis-approver"
CHANGES = [change for change in one_of_each_kind() if change.kind != "undo"][:6]


def item_of(change: ChangeBase, digest: str | None = None) -> dict[str, str]:
    return {
        "change_id": change.change_id,
        "change_digest": digest or change.digest,
        "kind": change.kind,
        "resource_arn": change.resource_arn,
        "region": change.region,
        "risk": change.risk.value,
        "before_text": change.describe_before(),
        "after_text": change.describe_after(),
        "instruction": f"Approve exactly this AWS change: {change.summary()}",
    }


def seed_batch(
    stack: ConsoleStack,
    request_id: str,
    changes: list[ChangeBase],
    *,
    tamper: bool = False,
    notes: dict[str, str] | None = None,
) -> tuple[str, str]:
    """A mission awaiting approval of one batch request (its Missions item and its `approval.requested` record);
    `tamper` swaps one item's digest after the root was computed, as a forged record would; `notes` are the
    analyst's notes by change id, as the approval function records them. Its id and root."""
    mission_id = MISSION_ID_PREFIX + secrets.token_hex(10)
    root = merkle_root(change.digest for change in changes)
    items = [item_of(change) for change in sorted(changes, key=lambda change: change.digest)]
    for item in items:
        if notes and item["change_id"] in notes:
            item["analyst"] = notes[item["change_id"]]
    if tamper:
        items[-1]["change_digest"] = "0" * 64
    dynamodb = stack.stack.session().resource("dynamodb")
    now = datetime.now(UTC)
    dynamodb.Table(stack.stack.physical_id("MissionsTable")).put_item(
        Item={
            "mission_id": mission_id,
            "status": "awaiting_approval",
            "trigger": "scan",
            "created_at": now.isoformat(),
        }
    )
    AuditLog(dynamodb.Table(stack.stack.physical_id("AuditTable")), "approval").append(
        mission_id,
        "approval.requested",
        "requested",
        request_id=request_id,
        request_kind="batch",
        approvers=[APPROVER_SUB],
        approver_sub=APPROVER_SUB,
        merkle_root=root,
        review_url=f"{stack.url.rstrip('/')}/#/missions/{mission_id}/requests/{request_id}",
        count=len(changes),
        kinds=", ".join(sorted({change.kind for change in changes})),
        binding_message=f"Approve {len(changes)} changes #{root[:6]}",
        expires_at=(now + timedelta(minutes=10)).isoformat().replace("+00:00", "Z"),
        items=items,
    )
    return mission_id, root


def root_check(page: Any) -> Any:
    check = page.locator("#root-check")
    expect(check).to_be_visible()
    return check


def test_the_page_recomputes_the_batchs_root_as_python_does(
    console_stack: ConsoleStack, sign_in: Callable[[str], SignedIn]
) -> None:
    mission_id, root = seed_batch(console_stack, "r001", CHANGES)
    page = sign_in(VIEWER).page
    open_page(page, f"missions/{mission_id}/requests/r001")

    check = root_check(page)
    expect(check).to_have_attribute("data-match", "true")
    computed = page.locator("#computed-root").get_attribute("data-root")
    assert computed == root == merkle_root(change.digest for change in CHANGES)
    expect(page.locator("#computed-prefix")).to_have_text(f"#{root[:6]}")
    expect(page.locator("#request-prefix")).to_have_text(f"#{root[:6]}")
    expect(check.locator(".notice-ok")).to_be_visible()
    expect(page.locator("[role=alert]")).to_have_count(0)
    # Every change of the batch, with its digest and its diff.
    cards = page.locator("#request-changes article.change")
    expect(cards).to_have_count(len(CHANGES))
    for change in CHANGES:
        card = page.locator(f"#request-changes article.change[data-change='{change.change_id}']")
        expect(card.locator(".digest")).to_have_text(change.digest)
        expect(card.locator(".diff")).to_be_visible()
    expect(page.locator(".binding-message")).to_have_text(f"Approve {len(CHANGES)} changes #{root[:6]}")
    page.screenshot(path=str(SCREENSHOTS / "request-batch.png"), full_page=True)


def test_a_tampered_digest_shows_the_mismatch(console_stack: ConsoleStack, sign_in: Callable[[str], SignedIn]) -> None:
    mission_id, root = seed_batch(console_stack, "r002", CHANGES, tamper=True)
    page = sign_in(VIEWER).page
    open_page(page, f"missions/{mission_id}/requests/r002")

    check = root_check(page)
    expect(check).to_have_attribute("data-match", "false")
    warning = check.locator("[role=alert]")
    expect(warning).to_contain_text("MISMATCH")
    expect(warning).to_contain_text("do not approve")
    computed = str(page.locator("#computed-root").get_attribute("data-root"))
    shown = [str(digest) for digest in page.locator("#request-changes .digest").all_inner_texts()]
    # The browser's root is Python's over the digests it shows, and that is not the root the request names.
    assert computed == merkle_root(shown) != root
    expect(page.locator("#request-prefix")).to_have_text(f"#{root[:6]}")
    expect(page.locator("#computed-prefix")).to_have_text(f"#{computed[:6]}")
    page.screenshot(path=str(SCREENSHOTS / "request-mismatch.png"), full_page=True)


def test_mission_control_links_a_pending_batch_to_its_page(
    console_stack: ConsoleStack, sign_in: Callable[[str], SignedIn]
) -> None:
    mission_id, root = seed_batch(console_stack, "r003", CHANGES[:3])
    page = sign_in(VIEWER).page
    open_page(page, "missions")
    card = page.locator("#pending-approvals article.approval[data-request='r003']").filter(has_text=mission_id)
    expect(card).to_have_count(1)
    expect(card.locator(".binding-message")).to_have_text(f"Approve 3 changes #{root[:6]}")
    assert card.locator("button").count() == 0  # approving stays on the phone
    card.locator("a", has_text="Review every change").click()
    expect(page.locator("#approval-request")).to_have_attribute("data-request", "r003")
    expect(root_check(page)).to_have_attribute("data-match", "true")
    expect(page.locator("#request-changes article.change")).to_have_count(3)


# ------------------------------------------------------------------------------------------------- the analyst

HOSTILE = '<img src=x onerror="window.pwned=1">'


def seed_analysed_mission(stack: ConsoleStack) -> tuple[str, MissionReport]:
    """A copy of the completed mission under a new id, as if an analyst had run: a summary with markup in it (model
    output is hostile), a priority and rationale per change, and one finding that fell back to the deterministic
    choice. Stored as the agent stores a report (pages and digest on the mission item)."""
    table = stack.stack.session().resource("dynamodb").Table(stack.stack.physical_id("MissionsTable"))
    store = MissionStore(table)
    original = store.read_report(stack.mission.run.mission_id)
    assert original is not None
    mission_id = MISSION_ID_PREFIX + secrets.token_hex(10)
    changes = [
        change.model_copy(
            update={
                "analyst": FindingAnalystNote(
                    choice=AnalystChoice.CANDIDATE,
                    deterministic_kind=change.kind,
                    chosen_kind=change.kind,
                    priority=index,
                    rationale=f"Rationale {index} for {change.kind} {HOSTILE}",
                )
            }
        )
        for index, change in enumerate(original.changes, start=1)
    ]
    first = original.findings[0]
    fallback = FindingAnalystNote(
        choice=AnalystChoice.DETERMINISTIC,
        deterministic_kind=next(change.kind for change in original.changes if change.change_id == first.change_id),
        fallback="analyst-timeout",
    )
    findings = [first.model_copy(update={"analyst": fallback}), *original.findings[1:]]
    report = original.model_copy(
        update={
            "mission_id": mission_id,
            "changes": changes,
            "findings": findings,
            "analyst": ReportAnalyst(
                model_id="scripted",
                summary=f"Fix the account-wide settings first. {HOSTILE}",
                calls=1,
                input_tokens=900,
                output_tokens=120,
                fallbacks={"analyst-timeout": 1},
            ),
        }
    )
    pages, digest = store.write_report(report)
    table.put_item(
        Item={
            "mission_id": mission_id,
            "status": "completed",
            "trigger": "scan",
            "created_at": datetime.now(UTC).isoformat(),
            "report_pages": pages,
            "report_digest": digest,
        }
    )
    return mission_id, report


def test_the_mission_page_shows_the_analysts_summary_and_each_changes_rationale_as_text(
    console_stack: ConsoleStack, sign_in: Callable[[str], SignedIn]
) -> None:
    mission_id, report = seed_analysed_mission(console_stack)
    page = sign_in(VIEWER).page
    open_page(page, f"missions/{mission_id}")

    section = page.locator("#analyst")
    expect(section).to_contain_text("scripted")
    expect(section).to_contain_text("1 call, 900 input + 120 output tokens, fallbacks: analyst-timeout 1")
    expect(section).to_contain_text("advisory")
    # The model's markup is text on the page, never an element.
    expect(page.locator("#analyst-summary")).to_have_text(f"Fix the account-wide settings first. {HOSTILE}")
    assert page.locator("img[src=x]").count() == 0
    assert page.evaluate("() => window.pwned") is None
    for index, change in enumerate(report.changes, start=1):
        line = page.locator(f"article.change[data-change='{change.change_id}'] .analyst")
        expect(line).to_have_text(f"AI analyst (advisory): P{index}: Rationale {index} for {change.kind} {HOSTILE}")
        expect(line).to_have_attribute("data-priority", str(index))
    noted = report.findings[0].analyst
    assert noted is not None
    fallback = f"deterministic choice: {noted.deterministic_kind} (analyst-timeout)"
    expect(page.locator(".analyst-line", has_text=fallback)).to_have_count(1)
    expect(section).to_contain_text(fallback)
    page.screenshot(path=str(SCREENSHOTS / "mission-analyst.png"), full_page=True)


def test_the_batch_review_page_lists_each_changes_analyst_note(
    console_stack: ConsoleStack, sign_in: Callable[[str], SignedIn]
) -> None:
    noted = CHANGES[1]
    mission_id, _ = seed_batch(console_stack, "r004", CHANGES[:3], notes={noted.change_id: f"P2: close it {HOSTILE}"})
    page = sign_in(VIEWER).page
    open_page(page, f"missions/{mission_id}/requests/r004")

    expect(root_check(page)).to_have_attribute("data-match", "true")  # the note binds nothing: the root still holds
    card = page.locator(f"#request-changes article.change[data-change='{noted.change_id}']")
    expect(card.locator(".analyst")).to_have_text(f"AI analyst (advisory): P2: close it {HOSTILE}")
    expect(page.locator("#request-changes .analyst")).to_have_count(1)
    assert page.locator("img[src=x]").count() == 0
