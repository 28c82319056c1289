"""The notifier's code, parsed (never imported), reaches no other trust domain's package, no token, crypto or HTTP
library and no secret-holding service, and makes one AWS call that is not read-only: SNS Publish
(tests/unit/test_import_boundaries.py's check, with the notifier's own allowance)."""

from __future__ import annotations

import pytest

from tests.support.stack import ROOT
from tests.unit.test_import_boundaries import agent_side_files, violations_in

NOTIFIER_SIDE = (ROOT / "functions" / "notifier",)
NOTIFIER_ALLOWED_CALLS = {"publish": "a notification, to the stack's topic; IAM limits it to that topic"}


def test_the_notifier_reaches_no_credential_code_and_only_publishes() -> None:
    files = agent_side_files(NOTIFIER_SIDE)
    assert {path.name for path in files} >= {"app.py", "service.py", "notifications.py"}
    found = [
        str(violation)
        for path in files
        for violation in violations_in(
            path.read_text(encoding="utf-8"), path.relative_to(ROOT).as_posix(), NOTIFIER_ALLOWED_CALLS
        )
    ]
    assert found == []


@pytest.mark.parametrize(
    "snippet",
    [
        "table.put_item(Item={'mission_id': 'm-1'})",
        "from aegis_auth.handoff import HandoffStore",
        "boto3.client('secretsmanager')",
        "import httpx",
        "kms.decrypt(CiphertextBlob=blob)",
    ],
)
def test_the_boundary_check_catches_what_the_notifier_must_not_do(snippet: str) -> None:
    assert violations_in(snippet, "functions/notifier/aegis_notifier/sneaky.py", NOTIFIER_ALLOWED_CALLS) != []
