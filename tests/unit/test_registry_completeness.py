"""The checklist for adding a check or a remediation kind (docs/ADDING_A_CHECK.md): for every kind and every check,
each part it needs, one test per part, so that a failing test names the part that is missing and where it goes.

A kind or check counts as "known" as soon as any one of its parts exists (a catalogue file, a remediation file, a
test file, a builder entry, a check naming it), so starting from any file yields the whole list.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import get_args

import boto3
import pytest
from moto import mock_aws

from aegis.catalogue import FORWARD_KINDS, KINDS, ChangeBase
from aegis.catalogue.forward import ForwardChange
from aegis.checks import CHECKS
from aegis_executor.remediations import REMEDIATIONS
from aegis_local.scenario.seed import SeededAccount, seed_account
from tests.support.changes import CASES, one_of_each_kind
from tests.support.stack import ROOT, build_stack

KINDS_DIR = ROOT / "layers/aegis/aegis/catalogue/kinds"
CHECKS_DIR = ROOT / "layers/aegis/aegis/checks"
REMEDIATIONS_DIR = ROOT / "functions/executor/aegis_executor/remediations"
KIND_TESTS = ROOT / "tests/unit/aegis/catalogue/kinds"
CHECK_TESTS = ROOT / "tests/unit/aegis/checks"
REMEDIATION_TESTS = ROOT / "tests/unit/executor/remediations"
BUILDER = "tests/support/changes.py"
# Test files beside the mirrored ones that test the shared plumbing of their folder.
PLUMBING_TESTS = {"test_registry.py", "test_base.py"}
# Checks the seeded account cannot fail, and why (their own unit tests cover them).
UNSEEDABLE = {"iam-root-access-keys": "no AWS API creates root access keys"}


def snake(name: str) -> str:
    return name.replace("-", "_")


def dashed(stem: str) -> str:
    return stem.removeprefix("test_").replace("_", "-")


def _stems(folder: Path, prefix: str = "") -> set[str]:
    return {
        dashed(path.stem)
        for path in folder.glob(f"{prefix}*.py")
        if not path.name.startswith("_") and path.name not in PLUMBING_TESTS and path.stem != "base"
    }


def kind_name(kind: type[ChangeBase]) -> str:
    return str(kind.model_fields["kind"].default)


def _union_kinds() -> set[str]:
    return {kind_name(member) for member in get_args(get_args(ForwardChange)[0])}


def known_kinds() -> list[str]:
    named = {
        *(kind_name(kind) for kind in FORWARD_KINDS),
        *_union_kinds(),
        *_stems(REMEDIATIONS_DIR),
        *_stems(KIND_TESTS, "test_"),
        *_stems(REMEDIATION_TESTS, "test_"),
        *(change.kind for change in one_of_each_kind()),
        *(name.split("/")[0] for name in CASES),
        *(check.METADATA.remediation_kind for check in CHECKS.values() if check.METADATA.remediation_kind),
    }
    return sorted(named)


def known_checks() -> list[str]:
    return sorted({*CHECKS, *_stems(CHECK_TESTS, "test_")})


@cache
def _grants(role: str) -> frozenset[str]:
    return frozenset(grant.action for grant in build_stack().grants(role))


@pytest.fixture(scope="module")
def seeded() -> Iterator[SeededAccount]:
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")
    with pytest.MonkeyPatch.context() as patch, mock_aws():
        patch.delenv("AWS_ENDPOINT_URL", raising=False)
        yield seed_account(session, "us-east-1")


def _kind_class(kind: str) -> type[ChangeBase]:
    path = KINDS_DIR / f"{snake(kind)}.py"
    missing = f"{kind}: no catalogue file {path.relative_to(ROOT)} defining it"
    assert path.exists(), missing
    assert kind in KINDS, missing
    return KINDS[kind]


# --- every kind ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", known_kinds())
def test_kind_has_its_catalogue_file(kind: str) -> None:
    _kind_class(kind)


@pytest.mark.parametrize("kind", known_kinds())
def test_kind_is_in_the_static_forward_change_union(kind: str) -> None:
    assert kind in _union_kinds(), f"{kind}: not in the ForwardChange union of layers/aegis/aegis/catalogue/forward.py"


@pytest.mark.parametrize("kind", known_kinds())
def test_kind_says_where_its_changes_belong(kind: str) -> None:
    assert _kind_class(kind).REGION_SCOPE is not None, (
        f"{kind}: set REGION_SCOPE on its class (scanned, home or resource); the validator refuses it until then"
    )


@pytest.mark.parametrize("kind", known_kinds())
def test_kind_has_its_remediation_file(kind: str) -> None:
    path = REMEDIATIONS_DIR / f"{snake(kind)}.py"
    assert path.exists(), f"{kind}: no remediation file {path.relative_to(ROOT)}"
    registered = REMEDIATIONS.get(kind)
    assert registered is not None, f'{kind}: {path.relative_to(ROOT)} registers no @remediation("{kind}")'
    assert type(registered).__module__.endswith(f".{snake(kind)}"), (
        f"{kind}: its remediation is registered in {type(registered).__module__}, not in {path.relative_to(ROOT)}"
    )


@pytest.mark.parametrize("kind", known_kinds())
def test_kind_has_a_static_change_in_the_builder(kind: str) -> None:
    assert kind in {change.kind for change in one_of_each_kind()}, f'{kind}: no @static("{kind}") change in {BUILDER}'


@pytest.mark.parametrize("kind", known_kinds())
def test_kind_has_an_apply_verify_undo_case_in_the_builder(kind: str) -> None:
    assert kind in {name.split("/")[0] for name in CASES}, f'{kind}: no moto-backed @case("{kind}") in {BUILDER}'


@pytest.mark.parametrize(("kind", "role"), [(k, r) for k in known_kinds() for r in ("RemediationRole", "UndoRole")])
def test_kind_actions_are_granted_by_the_template(kind: str, role: str) -> None:
    cls = _kind_class(kind)
    mutating = cls.APPLY_ACTIONS if role == "RemediationRole" else cls.UNDO_ACTIONS
    missing = sorted(set(mutating + cls.READ_ACTIONS) - _grants(role))
    assert not missing, f"{kind}: template.yaml's {role} does not grant {missing}"


@pytest.mark.parametrize("kind", known_kinds())
def test_kind_is_proposed_by_a_check(kind: str) -> None:
    proposers = [check_id for check_id, check in CHECKS.items() if kind in check.METADATA.kinds]
    assert proposers, f"{kind}: no check names it as its remediation_kind or one of its alternative_kinds"


@pytest.mark.parametrize("kind", known_kinds())
def test_kind_has_its_catalogue_test_file(kind: str) -> None:
    path = KIND_TESTS / f"test_{snake(kind)}.py"
    assert path.exists(), f"{kind}: no test file {path.relative_to(ROOT)}"


@pytest.mark.parametrize("kind", known_kinds())
def test_kind_has_its_remediation_test_file(kind: str) -> None:
    path = REMEDIATION_TESTS / f"test_{snake(kind)}.py"
    assert path.exists(), f"{kind}: no test file {path.relative_to(ROOT)}"


def test_the_static_union_is_the_registry() -> None:
    discovered = {kind_name(kind) for kind in FORWARD_KINDS}
    union = _union_kinds()
    assert union == discovered, (
        f"ForwardChange lacks {sorted(discovered - union)} and names {sorted(union - discovered)} that "
        "layers/aegis/aegis/catalogue/kinds does not define"
    )


# --- every check -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("check_id", known_checks())
def test_check_has_its_check_file(check_id: str) -> None:
    path = CHECKS_DIR / f"{snake(check_id)}.py"
    missing = f"{check_id}: no check file {path.relative_to(ROOT)} defining it"
    assert path.exists(), missing
    assert check_id in CHECKS, missing


@pytest.mark.parametrize("check_id", known_checks())
def test_check_has_its_test_file(check_id: str) -> None:
    path = CHECK_TESTS / f"test_{snake(check_id)}.py"
    assert path.exists(), f"{check_id}: no test file {path.relative_to(ROOT)}"


@pytest.mark.parametrize("check_id", known_checks())
def test_check_fails_in_the_seeded_account(check_id: str, seeded: SeededAccount) -> None:
    if check_id in UNSEEDABLE:
        pytest.skip(UNSEEDABLE[check_id])
    assert check_id in {found for found, _ in seeded.expected_findings}, (
        f"{check_id}: local/aegis_local/scenario/seed.py seeds nothing it flags (no expected_findings entry)"
    )
