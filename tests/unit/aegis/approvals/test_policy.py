"""The approval policy: reading it from the environment (every named error, no value echoed), routing precedence,
resource types, the risk order, and how many approvers a change needs."""

from __future__ import annotations

import json

import pytest

from aegis.approvals.policy import (
    NEEDS_SECOND_APPROVER,
    REVIEW_URL_BASE_MAX,
    RISK_ORDER,
    ApprovalPolicy,
    ApproverRouting,
    highest_risk,
    resource_type_of,
    risk_at_least,
    risk_at_most,
    risk_rank,
)
from aegis.models import Risk
from aegis.named_errors import ConfigurationError
from tests.support.approval_plans import OTHER_ACCOUNT, static_change, variant


class PolicySettingsError(ConfigurationError):
    """A function's own settings error, as each function passes its InvalidSettings."""


A, B, C = "auth0|alice", "auth0|bob", "auth0|carol"
SUBS = f"{A},{B},{C}"


def policy(**env: str) -> ApprovalPolicy:
    return ApprovalPolicy.from_env({"APPROVER_SUBS": SUBS, **env}, PolicySettingsError)


def refused(env: dict[str, str], variable: str, secret_value: str) -> PolicySettingsError:
    with pytest.raises(PolicySettingsError) as caught:
        ApprovalPolicy.from_env({"APPROVER_SUBS": SUBS, **env}, PolicySettingsError)
    message = str(caught.value)
    assert variable in message
    assert secret_value not in message
    return caught.value


# --- Parsing ---------------------------------------------------------------------------------------------------------
def test_defaults() -> None:
    parsed = policy()
    assert parsed.approver_subs == (A, B, C)
    assert parsed.batch_max_risk is Risk.MEDIUM
    assert parsed.batch_max_changes == 25
    assert parsed.two_person_risk is Risk.HIGH
    assert parsed.routing == ApproverRouting()
    assert parsed.review_url_base == ""


def test_every_setting_read() -> None:
    routing = {"checks": {"kms-key-rotation-off": [B]}, "accounts": {OTHER_ACCOUNT: [B, A, B]}}
    parsed = policy(
        APPROVER_SUBS=f" {B} , {A},{B}",
        APPROVAL_BATCH_MAX_RISK="low",
        APPROVAL_BATCH_MAX_CHANGES="2",
        APPROVAL_TWO_PERSON_RISK="none",
        APPROVER_ROUTING=json.dumps(routing),
        APPROVAL_REVIEW_URL_BASE="https://console.example/",
    )
    # Order kept, repeats and blanks dropped (the approval function's first approver stays the first).
    assert parsed.approver_subs == (B, A)
    assert parsed.batch_max_risk is Risk.LOW
    assert parsed.batch_max_changes == 2
    assert parsed.two_person_risk is None
    assert parsed.routing.checks == {"kms-key-rotation-off": (B,)}
    assert parsed.routing.accounts == {OTHER_ACCOUNT: (A, B)}
    assert parsed.review_url_base == "https://console.example/"
    assert policy(APPROVAL_BATCH_MAX_RISK="none", APPROVAL_BATCH_MAX_CHANGES="100").batch_max_risk is None
    assert policy(APPROVAL_BATCH_MAX_CHANGES="100").batch_max_changes == 100
    assert policy(APPROVAL_TWO_PERSON_RISK="medium").two_person_risk is Risk.MEDIUM


def test_the_local_console_url_is_a_review_url_base() -> None:
    assert policy(APPROVAL_REVIEW_URL_BASE="http://127.0.0.1:8710/").review_url_base == "http://127.0.0.1:8710/"


def test_no_approver_is_refused() -> None:
    with pytest.raises(PolicySettingsError, match="APPROVER_SUBS"):
        ApprovalPolicy.from_env({}, PolicySettingsError)
    with pytest.raises(PolicySettingsError, match="APPROVER_SUBS"):
        ApprovalPolicy.from_env({"APPROVER_SUBS": " , "}, PolicySettingsError)


@pytest.mark.parametrize("variable", ["APPROVAL_BATCH_MAX_RISK", "APPROVAL_TWO_PERSON_RISK"])
@pytest.mark.parametrize("value", ["critical-s3cr3t", "HIGH", "1", "low,medium"])
def test_a_risk_threshold_outside_none_low_medium_high_is_refused(variable: str, value: str) -> None:
    error = refused({variable: value}, variable, value)
    assert "none, low, medium, high" in str(error)


@pytest.mark.parametrize("value", ["1", "101", "0", "-5", "twenty-s3cr3t", "2.5"])
def test_batch_max_changes_outside_2_to_100_is_refused(value: str) -> None:
    error = refused({"APPROVAL_BATCH_MAX_CHANGES": value}, "APPROVAL_BATCH_MAX_CHANGES", "s3cr3t")
    # The whole message, so a short number cannot hide in it.
    assert str(error) in (
        "APPROVAL_BATCH_MAX_CHANGES must be between 2 and 100",
        "APPROVAL_BATCH_MAX_CHANGES must be a whole number",
    )


@pytest.mark.parametrize(
    "value",
    [
        "ftp://console.example/s3cr3t",
        "https://console.example/#/s3cr3t",
        "https://console.example/?token=s3cr3t",
        "console.example/s3cr3t",
        "https://user:s3cr3t@console.example/",
        "https://console.example/ s3cr3t",
    ],
)
def test_a_review_url_base_that_is_not_a_plain_http_url_is_refused(value: str) -> None:
    refused({"APPROVAL_REVIEW_URL_BASE": value}, "APPROVAL_REVIEW_URL_BASE", "s3cr3t")


def test_a_review_url_base_too_long_for_an_approval_property_is_refused() -> None:
    fits = "https://console.example/" + "a" * (REVIEW_URL_BASE_MAX - len("https://console.example/"))
    assert policy(APPROVAL_REVIEW_URL_BASE=fits).review_url_base == fits
    refused({"APPROVAL_REVIEW_URL_BASE": fits + "s"}, "APPROVAL_REVIEW_URL_BASE", fits)


@pytest.mark.parametrize(
    ("routing", "says"),
    [
        ("{not json s3cr3t", "not valid JSON"),
        ('["s3cr3t"]', "JSON object"),
        ('{"owners": {"s3cr3t": ["auth0|alice"]}}', "only hold the keys"),
        ('{"checks": ["s3cr3t"]}', "APPROVER_ROUTING.checks must be a JSON object"),
        ('{"checks": {"kms-key-rotation-off": []}}', "non-empty list"),
        ('{"checks": {"kms-key-rotation-off": "auth0|alice"}}', "non-empty list"),
        ('{"checks": {"kms-key-rotation-off": [7]}}', "non-empty list"),
        ('{"checks": {"kms-key-rotation-off": ["auth0|s3cr3t"]}}', "not in APPROVER_SUBS"),
        ('{"resource_types": {"ec2:security-group": ["auth0|s3cr3t"]}}', "not in APPROVER_SUBS"),
        ('{"accounts": {"123456789012": ["auth0|s3cr3t"]}}', "not in APPROVER_SUBS"),
        ('{"accounts": {"s3cr3t": ["auth0|alice"]}}', "12-digit account id"),
        ('{"resource_types": {"EC2 s3cr3t": ["auth0|alice"]}}', "resource type"),
        ('{"checks": {"s3cr3t check": ["auth0|alice"]}}', "check id"),
    ],
)
def test_a_malformed_routing_is_refused_by_name(routing: str, says: str) -> None:
    error = refused({"APPROVER_ROUTING": routing}, "APPROVER_ROUTING", "s3cr3t")
    assert says in str(error)


def test_a_policy_built_in_code_is_held_to_the_same_shape() -> None:
    with pytest.raises(ValueError, match="at least one"):
        ApprovalPolicy(approver_subs=())
    with pytest.raises(ValueError, match="each once"):
        ApprovalPolicy(approver_subs=(A, A))
    for size in (1, 101):
        with pytest.raises(ValueError, match="batch_max_changes"):
            ApprovalPolicy(approver_subs=(A,), batch_max_changes=size)


def test_a_policy_can_be_hashed_for_caching() -> None:
    routed = policy(APPROVER_ROUTING='{"checks": {"kms-key-rotation-off": ["auth0|bob"]}}')
    assert hash(routed) == hash(policy(APPROVER_ROUTING='{"checks": {"kms-key-rotation-off": ["auth0|bob"]}}'))
    assert routed != policy()


# --- Resource types and routing --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("arn", "resource_type"),
    [
        ("arn:aws:ec2:us-east-1:111122223333:security-group/sg-1", "ec2:security-group"),
        ("arn:aws:s3:::b", "s3"),
        ("arn:aws:iam::111122223333:policy/p", "iam:policy"),
        ("arn:aws:iam::111122223333:policy/path/to/p", "iam:policy"),
        ("arn:aws:kms:eu-west-1:111122223333:key/1234abcd", "kms:key"),
        ("arn:aws:cloudtrail:eu-west-1:111122223333:trail/t", "cloudtrail:trail"),
        ("arn:aws:logs:eu-west-1:111122223333:log-group:/aegis/flow:*", "logs:log-group"),
        ("arn:aws-cn:ec2:cn-north-1:111122223333:vpc/vpc-1", "ec2:vpc"),
        ("arn:aws:iam::111122223333:account-password-policy", "iam"),
        ("arn:aws:s3:::account/111122223333", "s3:account"),
    ],
)
def test_resource_type_of(arn: str, resource_type: str) -> None:
    assert resource_type_of(arn) == resource_type


@pytest.mark.parametrize(
    "not_arn", ["", "sg-1", "arn:aws:ec2", "arn:aws::us-east-1:1:x", "urn:aws:s3:::b", "arn:aws:s3:::"]
)
def test_resource_type_of_something_not_an_arn_is_refused(not_arn: str) -> None:
    with pytest.raises(ValueError, match="not an ARN"):
        resource_type_of(not_arn)


KMS = "enable-kms-key-rotation"
ROUTING = {
    "checks": {"kms-key-rotation-off": [C]},
    "resource_types": {"kms:key": [B], "ec2:security-group": [A, B]},
    "accounts": {OTHER_ACCOUNT: [A]},
}


def test_routing_precedence_check_then_resource_type_then_account_then_everyone() -> None:
    routed = policy(APPROVER_ROUTING=json.dumps(ROUTING))
    # Every level matches: the check wins.
    assert routed.eligible(variant(KMS, 1, account_id=OTHER_ACCOUNT)) == (C,)
    # Another check on the same kind of resource in the same account: the resource type wins over the account.
    assert routed.eligible(variant(KMS, 1, account_id=OTHER_ACCOUNT, check_id="kms-other")) == (B,)
    # Neither check nor resource type: the account.
    assert routed.eligible(variant("enable-bucket-public-access-block", 1, account_id=OTHER_ACCOUNT)) == (A,)
    # Nothing matches: everyone in APPROVER_SUBS, sorted.
    assert routed.eligible(variant("enable-bucket-public-access-block", 1)) == (A, B, C)
    assert routed.eligible(variant("revoke-security-group-rules", 1)) == (A, B)
    assert policy().eligible(static_change(KMS)) == (A, B, C)


def test_eligible_is_sorted_and_deduplicated() -> None:
    routed = policy(
        APPROVER_SUBS=f"{C},{A},{B}", APPROVER_ROUTING=json.dumps({"checks": {"kms-key-rotation-off": [C, A, C]}})
    )
    assert routed.eligible(static_change(KMS)) == (A, C)
    assert routed.eligible(static_change("detach-policy")) == (A, B, C)


def test_routing_parsed_on_its_own_names_the_variable_given() -> None:
    with pytest.raises(PolicySettingsError, match="ROUTES"):
        ApproverRouting.parse("[]", (A,), PolicySettingsError, name="ROUTES")
    assert ApproverRouting.parse("  ", (A,), PolicySettingsError).route(static_change(KMS)) is None


# --- Risk order and approvers needed ---------------------------------------------------------------------------------
def test_risk_order_is_low_medium_high_not_alphabetical() -> None:
    assert RISK_ORDER == (Risk.LOW, Risk.MEDIUM, Risk.HIGH)
    assert set(RISK_ORDER) == set(Risk)
    assert [risk_rank(risk) for risk in (Risk.LOW, Risk.MEDIUM, Risk.HIGH)] == [0, 1, 2]
    # A StrEnum's own order would put high below low: everything compares through risk_rank.
    assert Risk.HIGH < Risk.LOW
    assert risk_at_least(Risk.HIGH, Risk.LOW)
    assert not risk_at_least(Risk.LOW, Risk.MEDIUM)
    assert risk_at_least(Risk.MEDIUM, Risk.MEDIUM)
    assert risk_at_most(Risk.MEDIUM, Risk.MEDIUM)
    assert risk_at_most(Risk.LOW, Risk.HIGH)
    assert not risk_at_most(Risk.HIGH, Risk.MEDIUM)
    assert highest_risk([Risk.LOW, Risk.HIGH, Risk.MEDIUM]) is Risk.HIGH
    assert highest_risk([Risk.LOW, Risk.MEDIUM]) is Risk.MEDIUM
    with pytest.raises(ValueError):
        highest_risk([])


@pytest.mark.parametrize(
    ("two_person", "needed"),
    [
        ("high", {Risk.LOW: 1, Risk.MEDIUM: 1, Risk.HIGH: 2}),
        ("medium", {Risk.LOW: 1, Risk.MEDIUM: 2, Risk.HIGH: 2}),
        ("low", {Risk.LOW: 2, Risk.MEDIUM: 2, Risk.HIGH: 2}),
        ("none", {Risk.LOW: 1, Risk.MEDIUM: 1, Risk.HIGH: 1}),
    ],
)
def test_approvers_needed(two_person: str, needed: dict[Risk, int]) -> None:
    parsed = policy(APPROVAL_TWO_PERSON_RISK=two_person)
    for risk, count in needed.items():
        assert parsed.approvers_needed(variant(KMS, 1, risk=risk)) == count


@pytest.mark.parametrize(
    ("batch_max", "batchable"),
    [
        ("medium", {Risk.LOW: True, Risk.MEDIUM: True, Risk.HIGH: False}),
        ("low", {Risk.LOW: True, Risk.MEDIUM: False, Risk.HIGH: False}),
        ("high", {Risk.LOW: True, Risk.MEDIUM: True, Risk.HIGH: False}),  # high needs two approvers by default
        ("none", {Risk.LOW: False, Risk.MEDIUM: False, Risk.HIGH: False}),
    ],
)
def test_batchable(batch_max: str, batchable: dict[Risk, bool]) -> None:
    parsed = policy(APPROVAL_BATCH_MAX_RISK=batch_max)
    for risk, expected in batchable.items():
        assert parsed.batchable(variant(KMS, 1, risk=risk)) is expected
    one_person = policy(APPROVAL_BATCH_MAX_RISK="high", APPROVAL_TWO_PERSON_RISK="none")
    assert one_person.batchable(variant(KMS, 1, risk=Risk.HIGH))


def test_can_plan_needs_as_many_eligible_approvers_as_the_change_needs() -> None:
    high = variant(KMS, 1, risk=Risk.HIGH)
    medium = variant(KMS, 1, risk=Risk.MEDIUM)
    single_approver = ApprovalPolicy.from_env({"APPROVER_SUBS": A}, PolicySettingsError)
    assert not single_approver.can_plan(high)
    assert single_approver.can_plan(medium)
    assert policy().can_plan(high)
    # Routed to one approver, a high-risk change cannot be planned even though the deployment has three.
    routed = policy(APPROVER_ROUTING=json.dumps({"checks": {"kms-key-rotation-off": [B]}}))
    assert not routed.can_plan(high)
    assert routed.can_plan(variant("detach-policy", 1, risk=Risk.HIGH))
    # Without the two-person rule one approver is enough at every risk.
    assert ApprovalPolicy(approver_subs=(A,), two_person_risk=None).can_plan(high)
    assert NEEDS_SECOND_APPROVER == "needs-second-approver"


# --- Review URLs -----------------------------------------------------------------------------------------------------
def test_review_url() -> None:
    mission = "m-0123456789abcdef0123"
    assert policy().review_url(mission, "r001") is None
    with_console = policy(APPROVAL_REVIEW_URL_BASE="https://console.example/")
    assert with_console.review_url(mission, "r001") == f"https://console.example/#/missions/{mission}/requests/r001"
    longest = policy(APPROVAL_REVIEW_URL_BASE="https://c.example/" + "a" * (REVIEW_URL_BASE_MAX - 18))
    url = longest.review_url(mission, "r9999")
    assert url is not None
    assert len(url) == 255


@pytest.mark.parametrize(
    ("mission", "request_id"),
    [("m-1/../x", "r001"), ("m-1?x", "r001"), ("m-" + "0" * 21, "r001"), ("m-1", "001"), ("m-1", "r1"), ("", "r001")],
)
def test_review_url_takes_only_identifiers_of_our_shape(mission: str, request_id: str) -> None:
    with pytest.raises(ValueError, match="shape"):
        policy(APPROVAL_REVIEW_URL_BASE="https://console.example/").review_url(mission, request_id)
