"""Checkov, the independent infrastructure-as-code scanner `make lint` runs, agrees with template.yaml: no failed
check, and every check that does not fit is skipped in its resource's Metadata with the reason. The reasons that
rest on a fact of the template are tested here: no function environment holds a secret, the tables without
point-in-time recovery are exactly the hand-off side's, and the concurrency reservations fit any account whose
quota allows one.

Checkov lives in its own virtualenv (.venv-checkov, `make setup-checkov`, pinned in requirements-checkov.txt). Where
it is missing the test that runs it skips, except under CI (env CI set), where that is a failure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from typing import Any

import pytest

from tests.support.stack import ROOT, TEMPLATE_PATH, Stack, build_stack, pristine_template
from tests.unit.member.member_stack import MEMBER_TEMPLATE_PATH, build_member_stack

REQUIREMENTS = ROOT / "requirements-checkov.txt"
CHECKOV_IN_ITS_VENV = ROOT / ".venv-checkov" / "bin" / "checkov"
# What `make lint` runs (Makefile, lint): the template's framework, offline, failures only.
CHECKOV_ARGS = ("--file", "template.yaml", "--framework", "cloudformation", "--skip-download", "--quiet", "--compact")
# The member accounts' stack (member/template.yaml, deployed by StackSets) is held to the same checks.
MEMBER_CHECKOV_ARGS = ("--file", "member/template.yaml", *CHECKOV_ARGS[2:])
CHECK_ID = re.compile(r"^CKV2?_[A-Z0-9]+_\d+$")
# A reason is a sentence a reviewer can weigh, not "n/a" or "false positive".
MIN_REASON_WORDS = 12
# The last word of a variable's name that would announce a secret as its value; AUTH0_CLIENT_SECRET_ARN names where
# one is kept (an ARN), TOKEN_VAULT_CONNECTION a connection.
SECRET_WORDS = frozenset({"SECRET", "PASSWORD", "TOKEN", "CREDENTIAL", "CREDENTIALS", "KEY"})
# Point-in-time recovery would keep sealed approvals and task tokens past their TTL (see each table's skip).
WITHOUT_RECOVERY = frozenset({"HandoffTable", "ContinuationsTable"})
# Lambda refuses a reservation that leaves fewer unreserved executions than this, out of the default quota of 1000.
UNRESERVED_MINIMUM = 100
DEFAULT_ACCOUNT_CONCURRENCY = 1000
KILL_SWITCH_RESERVATION = 5
# Breaks a copy of template.yaml in place.
Mutation = Callable[[dict[str, Any]], None]


def checkov_skips(stack: Stack) -> dict[str, list[dict[str, Any]]]:
    """Each resource's `Metadata: checkov: skip` entries."""
    return {
        name: body["Metadata"]["checkov"]["skip"]
        for name, body in stack.template["Resources"].items()
        if "checkov" in (body.get("Metadata") or {})
    }


def functions(stack: Stack) -> list[str]:
    return sorted(
        {**stack.resources_of_type("AWS::Serverless::Function"), **stack.resources_of_type("AWS::Lambda::Function")}
    )


def skip_problems(stack: Stack) -> list[str]:
    """Each skip names one check, once per resource, and gives a reason."""
    found = []
    for resource, entries in checkov_skips(stack).items():
        ids = [str(entry.get("id", "")) for entry in entries]
        if len(ids) != len(set(ids)):
            found.append(f"{resource} skips a check twice: {ids}")
        for entry in entries:
            check = str(entry.get("id", ""))
            reason = str(entry.get("comment") or "").strip()
            if set(entry) != {"id", "comment"} or not CHECK_ID.match(check):
                found.append(f"{resource}: {entry} is not an id and a comment")
            elif len(reason.split()) < MIN_REASON_WORDS:
                found.append(f"{resource} skips {check} without a reason: {reason!r}")
    return found


def test_every_skip_names_a_check_and_says_why(stack: Stack) -> None:
    assert checkov_skips(stack), "the template skips no check: this test and the README's account are stale"
    assert skip_problems(stack) == []
    member = build_member_stack()
    assert checkov_skips(member), "the member template skips no check: this test is stale"
    assert skip_problems(member) == []


@pytest.mark.parametrize("path", [TEMPLATE_PATH, MEMBER_TEMPLATE_PATH], ids=["template", "member"])
def test_no_check_is_skipped_outside_the_resources_metadata(path: Any) -> None:
    """Checkov also reads `# checkov:skip=` comments; those would escape the test above."""
    assert "checkov:skip" not in path.read_text(encoding="utf-8")


def test_make_lint_fails_on_any_failed_check() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    commands = [line.strip() for line in makefile.splitlines() if "/bin/checkov " in line]
    assert len(commands) == 2, commands
    assert sorted(commands, key=lambda c: "member/" in c)[0].endswith(" ".join(CHECKOV_ARGS))
    assert sorted(commands, key=lambda c: "member/" in c)[1].endswith(" ".join(MEMBER_CHECKOV_ARGS))
    for command in commands:
        assert "--soft-fail" not in command
        assert "--skip-check" not in command


def environment_secret_problems(stack: Stack) -> list[str]:
    """No function's environment holds a secret: no NoEcho parameter (how a secret would be passed in), no dynamic
    reference, no variable named as a secret; a variable about a secret holds its Secrets Manager ARN."""
    found = [f"parameter {p} is NoEcho" for p, spec in stack.template["Parameters"].items() if spec.get("NoEcho")]
    shared = stack.resolver.resolve(stack.template["Globals"]["Function"]["Environment"]["Variables"])
    for function in functions(stack):
        own = (stack.properties(function).get("Environment") or {}).get("Variables", {})
        for name, value in {**shared, **own}.items():
            words = name.split("_")
            if "{{resolve:" in json.dumps(value):
                found.append(f"{function}: {name} resolves a dynamic reference")
            if words[-1] in SECRET_WORDS:
                found.append(f"{function}: {name} looks like a secret")
            # Where the secret is kept, read at run time by the role that may (iam_matrix.credential_readers).
            elif "SECRET" in words and not re.match(r"^arn:aws[a-z-]*:secretsmanager:", str(value)):
                found.append(f"{function}: {name} is {value!r}, not a Secrets Manager ARN")
    return found


def test_no_function_environment_holds_a_secret(stack: Stack) -> None:
    assert environment_secret_problems(stack) == []


def _set_variable(function: str, name: str, value: Any) -> Mutation:
    def mutate(template: dict[str, Any]) -> None:
        template["Resources"][function]["Properties"]["Environment"]["Variables"][name] = value

    return mutate


def _no_echo(template: dict[str, Any]) -> None:
    template["Parameters"]["Auth0ClientSecret"] = {"Type": "String", "NoEcho": True, "Default": "x"}


def _skip(resource: str, entry: dict[str, Any]) -> Mutation:
    def mutate(template: dict[str, Any]) -> None:
        body = template["Resources"][resource]
        body.setdefault("Metadata", {}).setdefault("checkov", {}).setdefault("skip", []).append(entry)

    return mutate


_CAUGHT_BY: list[tuple[Callable[[Stack], list[str]], dict[str, Mutation]]] = [
    (
        environment_secret_problems,
        {
            "a client secret in a variable": _set_variable("ExecutorFunction", "AUTH0_CLIENT_SECRET", "s3cr3t"),
            "a secret resolved into a variable": _set_variable(
                "ApprovalFunction", "CLIENT", "{{resolve:secretsmanager:aegis/approval:SecretString:secret}}"
            ),
            "a secret ARN variable holding something else": _set_variable(
                "KillSwitchFunction", "AUTH0_CLIENT_SECRET_ARN", "plain-text"
            ),
            "a NoEcho parameter": _no_echo,
        },
    ),
    (
        skip_problems,
        {
            "a skip without a comment": _skip("MissionsTable", {"id": "CKV_AWS_28"}),
            "a skip with a placeholder": _skip("MissionsTable", {"id": "CKV_AWS_28", "comment": "false positive"}),
            "a skip of no check": _skip("MissionsTable", {"id": "CKV-28", "comment": " ".join(["reason"] * 20)}),
            "a check skipped twice": _skip("HandoffTable", {"id": "CKV_AWS_28", "comment": " ".join(["reason"] * 20)}),
        },
    ),
]
_MUTATIONS = {name: (mutate, check) for check, breaks in _CAUGHT_BY for name, mutate in breaks.items()}


@pytest.mark.parametrize("break_it", list(_MUTATIONS))
def test_each_check_catches(break_it: str) -> None:
    mutate, check = _MUTATIONS[break_it]
    template = pristine_template()
    mutate(template)
    assert check(build_stack(template)) != [], f"the check did not notice: {break_it}"


def test_point_in_time_recovery_is_on_except_where_a_backup_would_keep_a_token(stack: Stack) -> None:
    skips = checkov_skips(stack)
    for table in stack.resources_of_type("AWS::DynamoDB::Table"):
        recovery = stack.properties(table).get("PointInTimeRecoverySpecification")
        if table in WITHOUT_RECOVERY:
            assert recovery is None, table
            assert "CKV_AWS_28" in {entry["id"] for entry in skips.get(table, [])}, table
        else:
            assert recovery == {"PointInTimeRecoveryEnabled": True}, table


def reservations(stack: Stack) -> dict[str, int]:
    return {
        function: int(stack.properties(function)["ReservedConcurrentExecutions"])
        for function in functions(stack)
        if "ReservedConcurrentExecutions" in stack.properties(function)
    }


def test_the_executor_is_capped_at_one_missions_parallelism_and_the_kill_switch_keeps_capacity(stack: Stack) -> None:
    assert stack.template["Parameters"]["ReserveConcurrency"]["Default"] == "true"
    parallel = int(stack.parameters["MapMaxConcurrency"])
    assert reservations(stack) == {"ExecutorFunction": parallel, "KillSwitchFunction": KILL_SWITCH_RESERVATION}
    # Every other function says in its checkov skip why it has no reservation.
    skips = checkov_skips(stack)
    for function in set(functions(stack)) - set(reservations(stack)):
        assert "CKV_AWS_115" in {entry["id"] for entry in skips.get(function, [])}, function


def test_the_reservations_fit_a_default_quota_and_can_be_turned_off_for_a_new_account() -> None:
    widest = build_stack(MapMaxConcurrency=str(build_stack().template["Parameters"]["MapMaxConcurrency"]["MaxValue"]))
    assert sum(reservations(widest).values()) <= DEFAULT_ACCOUNT_CONCURRENCY - UNRESERVED_MINIMUM
    # An account still at the initial quota (10) accepts no reservation at all.
    assert reservations(build_stack(ReserveConcurrency="false")) == {}


def _checkov() -> str:
    if CHECKOV_IN_ITS_VENV.exists():
        return str(CHECKOV_IN_ITS_VENV)
    found = shutil.which("checkov")
    if found:
        return found
    reason = (
        "checkov is not installed (it lives in .venv-checkov: run `make setup-checkov`, or the tests via `make test`)"
    )
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.slow
@pytest.mark.parametrize("arguments", [CHECKOV_ARGS, MEMBER_CHECKOV_ARGS], ids=["template", "member"])
def test_the_pinned_checkov_finds_no_failed_check(arguments: tuple[str, ...]) -> None:
    checkov = _checkov()
    [pinned] = re.findall(r"^checkov==(\S+)$", REQUIREMENTS.read_text(encoding="utf-8"), flags=re.MULTILINE)
    assert _run([checkov, "--version"]).stdout.strip() == pinned, "run `make setup-checkov` for the pinned version"
    answer = _run([checkov, *arguments, "--output", "json"])
    report = json.loads(answer.stdout)
    failed = [(check["check_id"], check["resource"]) for check in report["results"]["failed_checks"]]
    assert failed == [], f"checkov: {failed}"
    assert report["summary"]["failed"] == 0
    assert report["summary"]["parsing_errors"] == 0
    assert answer.returncode == 0, answer.stderr[-2000:]


@pytest.mark.slow
def test_every_skipped_check_exists_in_the_pinned_checkov() -> None:
    """A misspelt or retired id would skip nothing: the template would claim a decision Checkov never sees."""
    checkov = _checkov()
    listed = _run([checkov, "--list", "--framework", "cloudformation"]).stdout
    known = set(re.findall(r"CKV2?_[A-Z0-9]+_\d+", listed))
    skipped = {
        entry["id"]
        for stack in (build_stack(), build_member_stack())
        for entries in checkov_skips(stack).values()
        for entry in entries
    }
    assert skipped <= known, sorted(skipped - known)


def test_the_requirements_pin_one_exact_version() -> None:
    lines = [line for line in REQUIREMENTS.read_text(encoding="utf-8").splitlines() if not line.startswith("#")]
    assert len(lines) == 1, lines
    assert re.fullmatch(r"checkov==\d+\.\d+\.\d+", lines[0]), lines


def test_make_clean_removes_the_checkov_virtualenv() -> None:
    dry_run = _run(["make", "--dry-run", "clean"])
    assert dry_run.returncode == 0, dry_run.stderr
    [removal] = [line for line in dry_run.stdout.splitlines() if line.startswith("rm -rf")]
    assert ".venv-checkov" in removal.split()
