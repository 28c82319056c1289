"""The analyst on AWS (issue 19): AgentRole may invoke exactly the one Bedrock model the deployment names (or its
inference profile, and the models behind it only through that profile) and apply its one guardrail; nothing of
Bedrock without a model id, nothing else ever. Each configuration of the parameters is resolved as CloudFormation
would, the grants compared exactly, the policies evaluated as IAM would, and the matrix's own proofs (no secret, no
write beyond the agent's state) rerun on each, so the allowance for Invoke* stays narrow."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.support.iam_policy import Request, allows
from tests.support.stack import Stack, build_stack, pristine_template
from tests.unit.template.iam_matrix import (
    ALL_ROLES,
    FUNCTION_ROLES,
    INFERENCE_PROFILE_PREFIXES,
    agent_credential_reach,
    analyst_grant_problems,
    catalogue_actions_outside_remediation,
    unjustified_wildcards,
    unknown_actions,
    writes_beyond_domain,
)

ACCOUNT = "123456789012"
MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0"
PROFILE = "us.amazon.nova-lite-v1:0"
GUARDRAIL = "gr0abc123def"
MODEL_ARN = f"arn:aws:bedrock:us-east-1::foundation-model/{MODEL}"
PROFILE_ARN = f"arn:aws:bedrock:us-east-1:{ACCOUNT}:inference-profile/{PROFILE}"
GUARDRAIL_ARN = f"arn:aws:bedrock:us-east-1:{ACCOUNT}:guardrail/{GUARDRAIL}"
ANY_MODEL = "arn:aws:bedrock:*::foundation-model/*"
ANALYST_ENV = {
    "ANALYST_MODEL_ID": "AnalystModelId",
    "ANALYST_GUARDRAIL_ID": "AnalystGuardrailId",
    "ANALYST_GUARDRAIL_VERSION": "AnalystGuardrailVersion",
    "ANALYST_TOKEN_BUDGET": "AnalystTokenBudget",
    "ANALYST_TIMEOUT_SECONDS": "AnalystTimeoutSeconds",
}

# Each configuration and the exact Bedrock grants of AgentRole: (Sid, action, resource, condition).
Grants = set[tuple[str, str, str, str]]
CONFIGURATIONS: dict[str, tuple[dict[str, str], Grants]] = {
    "no analyst (the default)": ({}, set()),
    "a guardrail but no model": ({"AnalystGuardrailId": GUARDRAIL}, set()),
    "a foundation model": (
        {"AnalystModelId": MODEL},
        {("AnalystInvokesItsModel", "bedrock:InvokeModel", f"external:{MODEL_ARN}", "{}")},
    ),
    "a foundation model and a guardrail": (
        {"AnalystModelId": MODEL, "AnalystGuardrailId": GUARDRAIL, "AnalystGuardrailVersion": "3"},
        {
            ("AnalystInvokesItsModel", "bedrock:InvokeModel", f"external:{MODEL_ARN}", "{}"),
            ("AnalystAppliesItsGuardrail", "bedrock:ApplyGuardrail", f"external:{GUARDRAIL_ARN}", "{}"),
        },
    ),
    "an inference profile": (
        {"AnalystModelId": PROFILE},
        {
            ("AnalystInvokesItsInferenceProfile", "bedrock:InvokeModel", f"external:{PROFILE_ARN}", "{}"),
            (
                "AnalystModelsThroughItsProfileOnly",
                "bedrock:InvokeModel",
                f"external:{ANY_MODEL}",
                str({"StringEquals": {"bedrock:InferenceProfileArn": PROFILE_ARN}}),
            ),
        },
    ),
    "an inference profile and a guardrail": (
        {"AnalystModelId": PROFILE, "AnalystGuardrailId": GUARDRAIL},
        {
            ("AnalystInvokesItsInferenceProfile", "bedrock:InvokeModel", f"external:{PROFILE_ARN}", "{}"),
            (
                "AnalystModelsThroughItsProfileOnly",
                "bedrock:InvokeModel",
                f"external:{ANY_MODEL}",
                str({"StringEquals": {"bedrock:InferenceProfileArn": PROFILE_ARN}}),
            ),
            ("AnalystAppliesItsGuardrail", "bedrock:ApplyGuardrail", f"external:{GUARDRAIL_ARN}", "{}"),
        },
    ),
}


def _bedrock_grants(stack: Stack, role: str = "AgentRole") -> Grants:
    return {(g.sid, g.action, g.resource, str(dict(g.condition))) for g in stack.grants(role) if g.service == "bedrock"}


def _documents(stack: Stack) -> list[dict[str, Any]]:
    return [document for _, document in stack.policy_documents("AgentRole")]


# --- the parameters ---------------------------------------------------------------------------------------------------


def test_the_analyst_is_off_unless_the_deployment_names_a_model(stack: Stack) -> None:
    declared = stack.template["Parameters"]
    assert {name: declared[name].get("Default") for name in ANALYST_ENV.values()} == {
        "AnalystModelId": "",
        "AnalystGuardrailId": "",
        "AnalystGuardrailVersion": "DRAFT",
        "AnalystTokenBudget": 200000,
        "AnalystTimeoutSeconds": 30,
    }
    assert (declared["AnalystTokenBudget"]["Type"], declared["AnalystTokenBudget"]["MinValue"]) == ("Number", 1000)
    timeout = declared["AnalystTimeoutSeconds"]
    assert (timeout["Type"], timeout["MinValue"], timeout["MaxValue"]) == ("Number", 1, 120)
    assert stack.resolver.condition("HasAnalyst") is False
    assert [name for name, _ in stack.policy_documents("AgentRole")] == ["agent"]


@pytest.mark.parametrize(
    "model",
    [
        MODEL,
        PROFILE,
        "eu.anthropic.claude-3-7-sonnet-20250219-v1:0",
        "us-gov.anthropic.claude-3-5-sonnet-20240620-v1:0",
        "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
        "anthropic.claude-3-haiku-20240307-v1:0:200k",
        "amazon.titan-text-express-v1",
        # The local emulator's models (aegis_local.bedrock).
        "scripted",
        "adversarial",
    ],
)
def test_bedrock_model_and_inference_profile_ids_are_accepted(model: str) -> None:
    assert build_stack(AnalystModelId=model).function_environment("AgentScanFunction")["ANALYST_MODEL_ID"] == model


@pytest.mark.parametrize(
    ("parameter", "bad_value"),
    [
        # An ARN would not fit the grants, which are built from an id; a path or a wildcard would widen them.
        ("AnalystModelId", MODEL_ARN),
        ("AnalystModelId", "anthropic.*"),
        ("AnalystModelId", "anthropic/claude"),
        ("AnalystModelId", "Anthropic.Claude"),
        ("AnalystModelId", "anthropic..claude"),
        ("AnalystModelId", "anthropic.claude v1"),
        ("AnalystGuardrailId", GUARDRAIL_ARN),
        ("AnalystGuardrailId", "gr-*"),
        ("AnalystGuardrailVersion", "latest"),
        # Bedrock numbers a guardrail's versions from 1.
        ("AnalystGuardrailVersion", "0"),
        ("AnalystGuardrailId", "a" * 65),
        ("AnalystGuardrailVersion", ""),
        ("AnalystTokenBudget", "999"),
        ("AnalystTimeoutSeconds", "0"),
        ("AnalystTimeoutSeconds", "121"),
    ],
)
def test_bad_analyst_values_are_refused(parameter: str, bad_value: str) -> None:
    from aegis_local.aws.template import TemplateError

    with pytest.raises(TemplateError, match=parameter):
        build_stack(**{parameter: bad_value})


@pytest.mark.parametrize("prefix", sorted(INFERENCE_PROFILE_PREFIXES))
def test_a_geography_prefix_makes_the_id_an_inference_profile(prefix: str) -> None:
    stack = build_stack(AnalystModelId=f"{prefix}.anthropic.claude-3-5-haiku-20241022-v1:0")
    assert stack.resolver.condition("HasAnalyst") is True
    assert stack.resolver.condition("AnalystIsInferenceProfile") is True


@pytest.mark.parametrize("model", [MODEL, "scripted", "usa.model-v1:0", "useu.model-v1:0", "cohere.command-r-v1:0"])
def test_any_other_id_is_a_foundation_model(model: str) -> None:
    stack = build_stack(AnalystModelId=model)
    assert stack.resolver.condition("HasAnalyst") is True
    assert stack.resolver.condition("AnalystIsInferenceProfile") is False


# --- the environment --------------------------------------------------------------------------------------------------


def test_only_the_scan_gets_the_analysts_settings() -> None:
    """The scan asks the model; the resume (the same role) never calls it again for the same plan, so it is not even
    told which model there is. No other function hears of the analyst."""
    stack = build_stack(
        AnalystModelId=PROFILE,
        AnalystGuardrailId=GUARDRAIL,
        AnalystGuardrailVersion="7",
        AnalystTokenBudget="50000",
        AnalystTimeoutSeconds="45",
    )
    scan = stack.function_environment("AgentScanFunction")
    assert {name: scan[name] for name in ANALYST_ENV} == {
        "ANALYST_MODEL_ID": PROFILE,
        "ANALYST_GUARDRAIL_ID": GUARDRAIL,
        "ANALYST_GUARDRAIL_VERSION": "7",
        "ANALYST_TOKEN_BUDGET": "50000",
        "ANALYST_TIMEOUT_SECONDS": "45",
    }
    for function in stack.resources_of_type("AWS::Serverless::Function"):
        if function != "AgentScanFunction":
            environment = stack.function_environment(function)
            assert not [name for name in environment if name.startswith("ANALYST_")], function


@pytest.mark.parametrize(
    "overrides",
    [
        {"AnalystModelId": MODEL, "AnalystTokenBudget": "1000", "AnalystTimeoutSeconds": "1"},
        {
            "AnalystModelId": PROFILE,
            "AnalystGuardrailId": "a" * 64,
            "AnalystGuardrailVersion": "99999999",
            "AnalystTimeoutSeconds": "120",
        },
        {"AnalystModelId": "scripted", "AnalystGuardrailId": GUARDRAIL, "AnalystGuardrailVersion": "1"},
    ],
)
def test_the_agent_accepts_every_analyst_setting_the_template_accepts(overrides: dict[str, str]) -> None:
    """A value the template lets through but the agent refused would fail every scan with Agent.InvalidSettings."""
    from aegis_agent.settings import AgentSettings

    stack = build_stack(**overrides)
    environment = {name: str(value) for name, value in stack.function_environment("AgentScanFunction").items()}
    analyst = AgentSettings.from_env(environment).analyst
    assert analyst is not None
    assert analyst.model_id == stack.parameters["AnalystModelId"]
    assert analyst.guardrail_id == (stack.parameters["AnalystGuardrailId"] or None)
    assert analyst.guardrail_version == stack.parameters["AnalystGuardrailVersion"]
    assert analyst.token_budget == int(stack.parameters["AnalystTokenBudget"])
    assert analyst.timeout_seconds == int(stack.parameters["AnalystTimeoutSeconds"])


def test_without_a_model_id_the_agent_plans_deterministically(stack: Stack) -> None:
    from aegis_agent.settings import AgentSettings

    environment = {name: str(value) for name, value in stack.function_environment("AgentScanFunction").items()}
    assert AgentSettings.from_env(environment).analyst is None


# --- the grants -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("configuration", list(CONFIGURATIONS))
def test_the_agent_holds_exactly_the_analysts_grants(configuration: str) -> None:
    overrides, expected = CONFIGURATIONS[configuration]
    stack = build_stack(**overrides)
    assert _bedrock_grants(stack) == expected
    assert analyst_grant_problems(stack) == []
    # No other role holds anything of Bedrock, whatever the configuration.
    for role in ALL_ROLES:
        if role != "AgentRole" and role in stack.template["Resources"]:
            assert _bedrock_grants(stack, role) == set(), role


@pytest.mark.parametrize("configuration", list(CONFIGURATIONS))
def test_with_the_analyst_the_agent_still_reaches_no_secret_and_writes_only_its_state(configuration: str) -> None:
    stack = build_stack(**CONFIGURATIONS[configuration][0])
    assert agent_credential_reach(stack) == []
    assert writes_beyond_domain(stack, "AgentRole") == []
    assert unjustified_wildcards(stack, "AgentRole") == []
    assert unknown_actions(stack, "AgentRole") == []
    for role in FUNCTION_ROLES:
        assert catalogue_actions_outside_remediation(stack, role) == [], role
    secret = stack.parameters["ApprovalAuth0ClientSecretArn"]
    assert not allows(_documents(stack), Request("secretsmanager:GetSecretValue", secret))


def test_a_foundation_model_is_invokable_and_nothing_else_of_bedrock() -> None:
    documents = _documents(build_stack(AnalystModelId=MODEL))
    assert allows(documents, Request("bedrock:InvokeModel", MODEL_ARN))
    refused = [
        Request("bedrock:InvokeModel", "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-opus-v1:0"),
        Request("bedrock:InvokeModel", MODEL_ARN.replace("us-east-1", "us-west-2")),
        Request("bedrock:InvokeModelWithResponseStream", MODEL_ARN),
        Request("bedrock:InvokeModel", f"arn:aws:bedrock:us-east-1:{ACCOUNT}:inference-profile/us.{MODEL}"),
        Request("bedrock:ApplyGuardrail", GUARDRAIL_ARN),
        Request("bedrock:InvokeAgent", f"arn:aws:bedrock:us-east-1:{ACCOUNT}:agent-alias/AGENT/ALIAS"),
        Request("bedrock:CreateGuardrail", "*"),
    ]
    assert [request for request in refused if allows(documents, request)] == []


def test_an_inference_profiles_models_are_invokable_only_through_that_profile() -> None:
    documents = _documents(build_stack(AnalystModelId=PROFILE))
    routed_to = "arn:aws:bedrock:us-west-2::foundation-model/amazon.nova-lite-v1:0"
    through_profile = {"bedrock:InferenceProfileArn": PROFILE_ARN}
    assert allows(documents, Request("bedrock:InvokeModel", PROFILE_ARN))
    assert allows(documents, Request("bedrock:InvokeModel", routed_to, through_profile))
    other_profile = f"arn:aws:bedrock:us-east-1:{ACCOUNT}:inference-profile/us.anthropic.claude-3-opus-v1:0"
    refused = [
        # The model directly, or through another profile: no.
        Request("bedrock:InvokeModel", routed_to),
        Request("bedrock:InvokeModel", routed_to, {"bedrock:InferenceProfileArn": other_profile}),
        Request("bedrock:InvokeModel", other_profile),
        Request("bedrock:InvokeModelWithResponseStream", PROFILE_ARN),
        Request("bedrock:InvokeModelWithResponseStream", routed_to, through_profile),
        Request("bedrock:ApplyGuardrail", GUARDRAIL_ARN),
    ]
    assert [request for request in refused if allows(documents, request)] == []


def test_a_guardrail_is_applicable_only_when_set_and_only_that_one() -> None:
    documents = _documents(build_stack(AnalystModelId=MODEL, AnalystGuardrailId=GUARDRAIL))
    assert allows(documents, Request("bedrock:ApplyGuardrail", GUARDRAIL_ARN))
    assert not allows(documents, Request("bedrock:ApplyGuardrail", GUARDRAIL_ARN.replace(GUARDRAIL, "gr0other")))
    assert not allows(documents, Request("bedrock:UpdateGuardrail", GUARDRAIL_ARN))
    without = _documents(build_stack(AnalystModelId=MODEL))
    assert not allows(without, Request("bedrock:ApplyGuardrail", GUARDRAIL_ARN))


# --- the checks catch a loosened grant --------------------------------------------------------------------------------


def _analyst_statement(template: dict[str, Any], sid: str) -> dict[str, Any]:
    """The statement `sid` of AgentRole's analyst policy (each is the first branch of its Fn::If)."""
    policies = template["Resources"]["AgentRole"]["Properties"]["Policies"]
    (policy,) = [p["Fn::If"][1] for p in policies if "Fn::If" in p and p["Fn::If"][1].get("PolicyName") == "analyst"]
    for item in policy["PolicyDocument"]["Statement"]:
        for branch in item["Fn::If"][1:]:
            if isinstance(branch, dict) and branch.get("Sid") == sid:
                return branch
    raise AssertionError(f"no analyst statement {sid}")


def _set(sid: str, **fields: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(template: dict[str, Any]) -> None:
        _analyst_statement(template, sid).update(fields)

    return mutate


def _drop_condition(sid: str) -> Callable[[dict[str, Any]], None]:
    def mutate(template: dict[str, Any]) -> None:
        _analyst_statement(template, sid).pop("Condition")

    return mutate


def _unconditional_analyst_policy(template: dict[str, Any]) -> None:
    """The analyst's policy and its statements granted whatever the parameters say."""
    policies = template["Resources"]["AgentRole"]["Properties"]["Policies"]
    policies[:] = [p["Fn::If"][1] if "Fn::If" in p else p for p in policies]
    for policy in policies:
        statements = policy["PolicyDocument"]["Statement"]
        statements[:] = [s["Fn::If"][1] if "Fn::If" in s else s for s in statements]


def _validator_invokes(template: dict[str, Any]) -> None:
    statements = template["Resources"]["ValidatorRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    statements.append({"Effect": "Allow", "Action": "bedrock:InvokeModel", "Resource": MODEL_ARN})


ANY_FOUNDATION_MODEL = {"Fn::Sub": "arn:${AWS::Partition}:bedrock:${AWS::Region}::foundation-model/*"}
BREAKS: dict[str, tuple[dict[str, str], Callable[[dict[str, Any]], None]]] = {
    "any model, not the one named": (
        {"AnalystModelId": MODEL},
        _set("AnalystInvokesItsModel", Resource=ANY_FOUNDATION_MODEL),
    ),
    "streaming too": (
        {"AnalystModelId": MODEL},
        _set("AnalystInvokesItsModel", Action=["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"]),
    ),
    "every Bedrock action": ({"AnalystModelId": MODEL}, _set("AnalystInvokesItsModel", Action="bedrock:*")),
    "the profile's models invokable directly": (
        {"AnalystModelId": PROFILE},
        _drop_condition("AnalystModelsThroughItsProfileOnly"),
    ),
    "the profile's models through any profile": (
        {"AnalystModelId": PROFILE},
        _set(
            "AnalystModelsThroughItsProfileOnly",
            Condition={"StringLike": {"bedrock:InferenceProfileArn": "arn:aws:bedrock:*:*:inference-profile/*"}},
        ),
    ),
    "every guardrail": (
        {"AnalystModelId": MODEL, "AnalystGuardrailId": GUARDRAIL},
        _set("AnalystAppliesItsGuardrail", Resource="*"),
    ),
    "a grant without a model id": ({}, _unconditional_analyst_policy),
    "another role invokes a model": ({"AnalystModelId": MODEL}, _validator_invokes),
}


@pytest.mark.parametrize("break_it", list(BREAKS))
def test_the_analyst_allowance_catches(break_it: str) -> None:
    overrides, mutate = BREAKS[break_it]
    template = pristine_template()
    mutate(template)
    assert analyst_grant_problems(build_stack(template, **overrides)) != [], break_it


@pytest.mark.parametrize("break_it", ["any model, not the one named", "streaming too", "a grant without a model id"])
def test_a_loosened_analyst_grant_is_a_write_beyond_the_agents_state(break_it: str) -> None:
    overrides, mutate = BREAKS[break_it]
    template = pristine_template()
    mutate(template)
    assert writes_beyond_domain(build_stack(template, **overrides), "AgentRole") != [], break_it
