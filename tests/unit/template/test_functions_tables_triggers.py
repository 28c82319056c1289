"""What template.yaml deploys besides the roles: the functions as docs/CONTRACTS.md states them (code, handler,
layers, role, environment, logs), the seven tables, the scan triggers, the parameters and the outputs."""

from __future__ import annotations

import pytest

from tests.support.stack import ROOT, Stack, build_stack, pristine_template
from tests.unit.template.iam_matrix import ALL_ROLES, is_read_only

COMMON_ENV = {
    "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_METRICS_NAMESPACE",
    "POWERTOOLS_LOG_LEVEL",
    "CONTROL_TABLE",
    "AUDIT_TABLE",
}
# The approval policy (aegis.approvals.policy): the agent plans with it, the validator plans the requests with it, the
# approval function holds every request to it.
APPROVAL_POLICY_ENV = {
    "APPROVER_SUBS",
    "APPROVAL_BATCH_MAX_RISK",
    "APPROVAL_BATCH_MAX_CHANGES",
    "APPROVAL_TWO_PERSON_RISK",
    "APPROVER_ROUTING",
    "APPROVAL_REVIEW_URL_BASE",
}
AGENT_ENV = {
    "CHECKPOINTS_TABLE",
    "MISSIONS_TABLE",
    "STATE_MACHINE_ARN",
    "SCAN_REGIONS",
    "DRY_RUN",
    "MAX_CHANGES_PER_MISSION",
    "MAX_SHARE_PER_RESOURCE_TYPE",
    "SUPPRESSIONS",
    "TRUST_EXEMPTION_TAGS",
    "TRAIL_BUCKET",
    "FLOW_LOGS_LOG_GROUP",
    "FLOW_LOGS_ROLE_ARN",
    "CONFIG_BUCKET",
    # Which fix each check takes where it has several, and the CIS version the report groups by.
    "REMEDIATION_CHOICES",
    "CIS_VERSION",
    "UNDO_ENABLED",
    "CHECKPOINT_TTL_DAYS",
    # Organization scans: the org-scan state machine the agent starts, how it reads a member (AegisScanRole with the
    # external id) and the organization-wide cap on planned changes.
    "ORG_SCAN_STATE_MACHINE_ARN",
    "MEMBER_SCAN_ROLE_NAME",
    "MEMBER_EXTERNAL_ID",
    "MAX_CHANGES_PER_ORG_SCAN",
} | APPROVAL_POLICY_ENV
# The analyst (AnalystModelId ...): only the scan asks the model; the resume never calls it again for the same plan.
ANALYST_ENV = {
    "ANALYST_MODEL_ID",
    "ANALYST_GUARDRAIL_ID",
    "ANALYST_GUARDRAIL_VERSION",
    "ANALYST_TOKEN_BUDGET",
    "ANALYST_TIMEOUT_SECONDS",
}
# The deployment parameters the validator holds a plan to (aegis_validator.settings).
VALIDATOR_ENV = {
    "ACCOUNT_ID",
    "SCAN_REGIONS",
    "MAX_CHANGES_PER_MISSION",
    "TRAIL_BUCKET",
    "FLOW_LOGS_LOG_GROUP",
    "FLOW_LOGS_ROLE_ARN",
    "CONFIG_BUCKET",
    "UNDO_ENABLED",
    # The mission's account (its Missions item): a plan's changes may name only that account or this one.
    "MISSIONS_TABLE",
} | APPROVAL_POLICY_ENV
# A member account's remediation roles, by their fixed names in member/template.yaml.
MEMBER_ROLES_ENV = {"MEMBER_REMEDIATION_ROLE_NAME", "MEMBER_UNDO_ROLE_NAME"}
AUTH0_ENV = {"AUTH0_ISSUER", "AUTH0_CLIENT_ID", "AUTH0_CLIENT_SECRET_ARN", "AUTH0_AUDIENCE", "CLIENT_AUTH_METHOD"}
# logical id -> (CodeUri, Handler, layers, role, environment) as docs/CONTRACTS.md states them.
CONTRACT: dict[str, tuple[str, str, list[str], str, set[str]]] = {
    "AgentScanFunction": ("functions/agent/", "app.scan_handler", ["AegisLayer"], "AgentRole", AGENT_ENV | ANALYST_ENV),
    "AgentResumeFunction": ("functions/agent/", "app.resume_handler", ["AegisLayer"], "AgentRole", AGENT_ENV),
    "ValidatorFunction": ("functions/validator/", "app.handler", ["AegisLayer"], "ValidatorRole", VALIDATOR_ENV),
    "ApprovalFunction": (
        "functions/approval/",
        "app.handler",
        ["AegisLayer", "JwtLayer", "AuthLayer"],
        "ApprovalRole",
        AUTH0_ENV
        | {"HANDOFF_TABLE", "HANDOFF_KEY_ID", "APPROVER_SUBS", "CIBA_SCOPE", "CIBA_REQUESTED_EXPIRY"}
        | {"APPROVAL_FUNCTION_NAME", "CONTINUATIONS_TABLE", "APPROVAL_WAITING_NOTIFY_MINUTES"}
        | APPROVAL_POLICY_ENV
        | {"APPROVER_PUSHES_PER_MINUTE"},
    ),
    "ExecutorFunction": (
        "functions/executor/",
        "app.handler",
        ["AegisLayer", "JwtLayer", "AuthLayer"],
        "ExecutorRole",
        AUTH0_ENV
        | {"HANDOFF_TABLE", "IDEMPOTENCY_TABLE", "TOKEN_VAULT_CONNECTION", "REMEDIATION_ROLE_ARN"}
        | {"APPROVAL_CLIENT_ID", "UNDO_ROLE_ARN", "UNDO_TOKEN_VAULT_CONNECTION", "APPROVAL_TWO_PERSON_RISK"}
        | MEMBER_ROLES_ENV,
    ),
    "KillSwitchFunction": (
        "functions/killswitch/",
        "app.handler",
        ["AegisLayer", "JwtLayer", "AuthLayer"],
        "KillSwitchRole",
        AUTH0_ENV
        | {"STATE_MACHINE_ARN", "SCHEDULE_RULE_NAME", "SCAN_RULE_NAME", "APPROVER_SUBS", "TOKEN_VAULT_CONNECTION"}
        | {"REMEDIATION_ROLE_NAME", "OPS_API_AUDIENCE", "HANDOFF_TABLE", "UNDO_ROLE_NAME", "UNDO_RULE_NAME"}
        | {"ORG_SCAN_STATE_MACHINE_ARN", "ORGANIZATION_ID", "MEMBER_KILLSWITCH_ROLE_NAME", "MEMBER_EXTERNAL_ID"}
        | MEMBER_ROLES_ENV,
    ),
    # Lists the organization's accounts for an organization scan and summarises it: no secret, no STS.
    "OrgScanFunction": (
        "functions/orgscan/",
        "app.handler",
        ["AegisLayer"],
        "OrgScanRole",
        {"MISSIONS_TABLE", "ORG_SCAN_BUCKET", "ORGANIZATION_ID", "SCAN_REGIONS", "MAX_CHANGES_PER_ORG_SCAN"}
        | {"ORG_SCAN_ORGANIZATIONAL_UNITS", "ORG_SCAN_INCLUDE_ACCOUNTS", "ORG_SCAN_EXCLUDE_ACCOUNTS"},
    ),
    "AuditChainFunction": (
        "functions/auditchain/",
        "app.handler",
        ["AegisLayer"],
        "AuditChainRole",
        {"MISSIONS_TABLE", "AUDIT_EXPORT_BUCKET"},
    ),
    "NotifierFunction": (
        "functions/notifier/",
        "app.handler",
        ["AegisLayer"],
        "NotifierRole",
        {"NOTIFICATIONS_TOPIC_ARN", "DEPLOYMENT_NAME"},
    ),
    # Never AuthLayer: the operators' API is credential-free like the agent.
    "OpsFunction": (
        "functions/ops/",
        "app.handler",
        ["AegisLayer", "JwtLayer"],
        "OpsRole",
        {"MISSIONS_TABLE", "AUTH0_ISSUER", "OPS_API_AUDIENCE", "ACCOUNT_ID", "UNDO_ENABLED", "EVENT_BUS_NAME"}
        | {"APPROVAL_TIMEOUT_SECONDS", "CIS_VERSION"},
    ),
}


def test_exemption_tags_are_not_trusted_unless_the_deployment_says_so(stack: Stack) -> None:
    # Anyone allowed to tag a resource could set aegis:exempt: by default only Suppressions confirms an exemption.
    assert stack.template["Parameters"]["TrustExemptionTags"]["Default"] == "false"
    for function in ("AgentScanFunction", "AgentResumeFunction"):
        assert stack.function_environment(function)["TRUST_EXEMPTION_TAGS"] == stack.parameters["TrustExemptionTags"]
    assert (
        build_stack(TrustExemptionTags="true").function_environment("AgentScanFunction")["TRUST_EXEMPTION_TAGS"]
        == "true"
    )


def test_functions_are_exactly_those_of_the_contract(stack: Stack) -> None:
    assert set(stack.resources_of_type("AWS::Serverless::Function")) == set(CONTRACT)


@pytest.mark.parametrize("function", list(CONTRACT))
def test_function_matches_the_contract(stack: Stack, function: str) -> None:
    code_uri, handler, layers, role, environment = CONTRACT[function]
    raw = stack.resource(function)["Properties"]
    assert raw["CodeUri"] == code_uri
    assert raw["Handler"] == handler
    assert raw["Layers"] == [{"Ref": layer} for layer in layers]
    assert raw["Role"] == {"Fn::GetAtt": [role, "Arn"]}
    assert set(stack.function_environment(function)) == COMMON_ENV | environment


def test_the_validator_holds_plans_to_the_deployments_own_parameters(stack: Stack) -> None:
    validator = stack.function_environment("ValidatorFunction")
    agent = stack.function_environment("AgentScanFunction")
    # The same parameters the agent plans with, so a plan the agent makes is a plan the validator accepts.
    for name in VALIDATOR_ENV - {"ACCOUNT_ID"}:
        assert validator[name] == agent[name], name
    assert validator["ACCOUNT_ID"] == stack.resolver.pseudo["AWS::AccountId"]
    assert validator["AUDIT_TABLE"] == stack.ref("AuditTable")
    # The parameters' own constraints are the validator's: every value the template accepts, it accepts.
    from aegis_validator.settings import MAX_CHANGES_RANGE

    declared = pristine_template()["Parameters"]["MaxChangesPerMission"]
    assert (int(declared["MinValue"]), int(declared["MaxValue"])) == (MAX_CHANGES_RANGE[0], MAX_CHANGES_RANGE[-1])


def test_only_the_credential_side_gets_the_auth_layer(stack: Stack) -> None:
    users = [
        name
        for name, f in stack.resources_of_type("AWS::Serverless::Function").items()
        if {"Ref": "AuthLayer"} in f["Properties"].get("Layers", [])
    ]
    assert sorted(users) == ["ApprovalFunction", "ExecutorFunction", "KillSwitchFunction"]
    assert stack.resource("AegisLayer")["Properties"]["ContentUri"] == "layers/aegis/"
    assert stack.resource("JwtLayer")["Properties"]["ContentUri"] == "layers/jwt/"
    assert stack.resource("AuthLayer")["Properties"]["ContentUri"] == "layers/auth/"
    # Each layer's Makefile installs exactly its pinned packages (none of the runtime's boto3) and bytecode.
    for layer, directory in (("AegisLayer", "aegis"), ("JwtLayer", "jwt"), ("AuthLayer", "auth")):
        assert stack.resource(layer)["Metadata"]["BuildMethod"] == "makefile"
        assert f"build-{layer}:" in (ROOT / "layers" / directory / "Makefile").read_text()


def test_the_auth_layer_comes_with_the_jwt_layer_it_builds_on(stack: Stack) -> None:
    # aegis_auth imports aegis_jwt, and its libraries (httpx, cryptography) are the JwtLayer's: a function given
    # AuthLayer without JwtLayer would fail on its first import.
    for name, function in stack.resources_of_type("AWS::Serverless::Function").items():
        layers = function["Properties"].get("Layers", [])
        if {"Ref": "AuthLayer"} in layers:
            assert {"Ref": "JwtLayer"} in layers, name


def test_environment_points_at_the_right_resources(stack: Stack) -> None:
    state_machine = stack.arn("MissionStateMachine")
    agent = stack.function_environment("AgentResumeFunction")
    # The same settings, but the analyst's: the scan alone asks the model (tests/unit/template/test_analyst_grants.py).
    scan = stack.function_environment("AgentScanFunction")
    assert {name: value for name, value in scan.items() if name not in ANALYST_ENV} == agent
    assert agent["STATE_MACHINE_ARN"] == state_machine
    assert agent["CHECKPOINTS_TABLE"] == stack.ref("CheckpointsTable")
    assert agent["MISSIONS_TABLE"] == stack.ref("MissionsTable")
    assert agent["CONTROL_TABLE"] == stack.ref("ControlTable")
    assert agent["AUDIT_TABLE"] == stack.ref("AuditTable")
    approval = stack.function_environment("ApprovalFunction")
    assert approval["HANDOFF_TABLE"] == stack.ref("HandoffTable")
    assert approval["HANDOFF_KEY_ID"] == stack.arn("HandoffKey")
    assert approval["APPROVAL_FUNCTION_NAME"] == stack.ref("ApprovalFunction")
    assert approval["CONTINUATIONS_TABLE"] == stack.ref("ContinuationsTable")
    executor = stack.function_environment("ExecutorFunction")
    # One application per trust domain, and the executor accepts only tokens issued to the approval application.
    assert approval["AUTH0_CLIENT_ID"] == stack.parameters["ApprovalAuth0ClientId"]
    assert approval["AUTH0_CLIENT_SECRET_ARN"] == stack.parameters["ApprovalAuth0ClientSecretArn"]
    assert executor["AUTH0_CLIENT_ID"] == stack.parameters["ExecutorAuth0ClientId"]
    assert executor["AUTH0_CLIENT_SECRET_ARN"] == stack.parameters["ExecutorAuth0ClientSecretArn"]
    assert executor["APPROVAL_CLIENT_ID"] == stack.parameters["ApprovalAuth0ClientId"]
    assert executor["IDEMPOTENCY_TABLE"] == stack.ref("IdempotencyTable")
    assert executor["REMEDIATION_ROLE_ARN"] == stack.arn("RemediationRole")
    killswitch = stack.function_environment("KillSwitchFunction")
    assert killswitch["STATE_MACHINE_ARN"] == state_machine
    assert killswitch["SCHEDULE_RULE_NAME"] == stack.ref("ScheduledScanRule")
    assert killswitch["SCAN_RULE_NAME"] == stack.ref("ScanRequestRule")
    assert killswitch["UNDO_RULE_NAME"] == stack.ref("UndoRequestRule")
    assert killswitch["REMEDIATION_ROLE_NAME"] == stack.ref("RemediationRole")
    assert killswitch["UNDO_ROLE_NAME"] == stack.ref("UndoRole")
    assert killswitch["HANDOFF_TABLE"] == stack.ref("HandoffTable")
    # The kill switch calls the Management API as its own machine-to-machine client, not as the approval app.
    assert killswitch["AUTH0_CLIENT_ID"] == stack.parameters["KillSwitchAuth0ClientId"]
    assert killswitch["AUTH0_CLIENT_SECRET_ARN"] == stack.parameters["KillSwitchAuth0ClientSecretArn"]
    assert killswitch["OPS_API_AUDIENCE"] == stack.parameters["OpsApiAudience"]


# The fixed role names member/template.yaml gives every member account.
MEMBER_ROLE_NAMES = {
    "MEMBER_SCAN_ROLE_NAME": "AegisScanRole",
    "MEMBER_REMEDIATION_ROLE_NAME": "AegisRemediationRole",
    "MEMBER_UNDO_ROLE_NAME": "AegisUndoRole",
    "MEMBER_KILLSWITCH_ROLE_NAME": "AegisKillSwitchRole",
}


def test_environment_points_at_the_organization_scan_and_the_member_roles(stack: Stack) -> None:
    org_scan = stack.arn("OrgScanStateMachine")
    agent = stack.function_environment("AgentScanFunction")
    killswitch = stack.function_environment("KillSwitchFunction")
    executor = stack.function_environment("ExecutorFunction")
    assert agent["ORG_SCAN_STATE_MACHINE_ARN"] == killswitch["ORG_SCAN_STATE_MACHINE_ARN"] == org_scan
    assert agent["MEMBER_EXTERNAL_ID"] == killswitch["MEMBER_EXTERNAL_ID"] == stack.parameters["MemberExternalId"]
    assert agent["MAX_CHANGES_PER_ORG_SCAN"] == stack.parameters["MaxChangesPerOrgScan"]
    assert killswitch["ORGANIZATION_ID"] == stack.parameters["OrganizationId"]
    for environment in (agent, killswitch, executor):
        for name in set(MEMBER_ROLE_NAMES) & set(environment):
            assert environment[name] == MEMBER_ROLE_NAMES[name], name
    assert executor["MEMBER_REMEDIATION_ROLE_NAME"] == killswitch["MEMBER_REMEDIATION_ROLE_NAME"]
    assert stack.function_environment("ValidatorFunction")["MISSIONS_TABLE"] == stack.ref("MissionsTable")
    org = stack.function_environment("OrgScanFunction")
    assert org["MISSIONS_TABLE"] == stack.ref("MissionsTable")
    assert org["ORG_SCAN_BUCKET"] == stack.ref("OrgScanBucket")
    assert org["SCAN_REGIONS"] == agent["SCAN_REGIONS"]
    assert org["MAX_CHANGES_PER_ORG_SCAN"] == agent["MAX_CHANGES_PER_ORG_SCAN"]
    # Without undo there is no member AegisUndoRole to use or halt.
    without_undo = build_stack(UndoTokenVaultConnection="", UndoOidcAudience="")
    for function in ("ExecutorFunction", "KillSwitchFunction"):
        assert without_undo.function_environment(function)["MEMBER_UNDO_ROLE_NAME"] == "", function


def test_globals_pin_the_runtime_and_tracing(stack: Stack) -> None:
    function_globals = stack.template["Globals"]["Function"]
    assert function_globals["Runtime"] == "python3.13"
    assert function_globals["Tracing"] == "Active"
    assert function_globals["Architectures"] in (["x86_64"], ["arm64"])
    assert function_globals["Environment"]["Variables"]["POWERTOOLS_METRICS_NAMESPACE"] == "AegisCloud"


@pytest.mark.parametrize("function", list(CONTRACT))
def test_each_function_logs_to_its_own_group_with_retention(stack: Stack, function: str) -> None:
    log_group = stack.resource(function)["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
    group = stack.resource(log_group)
    assert group["Type"] == "AWS::Logs::LogGroup"
    assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    assert stack.properties(log_group)["LogGroupName"] == f"/aws/lambda/{stack.ref(function)}"
    role = CONTRACT[function][3]
    assert ("logs:PutLogEvents", log_group) in {(g.action, g.resource) for g in stack.grants(role)}


def test_only_the_kill_switch_has_a_url_and_it_authenticates_callers_itself(stack: Stack) -> None:
    with_url = {
        name: f["Properties"]["FunctionUrlConfig"]
        for name, f in stack.resources_of_type("AWS::Serverless::Function").items()
        if "FunctionUrlConfig" in f["Properties"]
    }
    assert with_url == {"KillSwitchFunction": {"AuthType": "NONE", "InvokeMode": "BUFFERED"}}
    assert "OPS_API_AUDIENCE" in stack.function_environment("KillSwitchFunction")
    assert "APPROVER_SUBS" in stack.function_environment("KillSwitchFunction")


# logical id -> (keys, TTL attribute or None)
TABLES: dict[str, tuple[list[tuple[str, str]], str | None]] = {
    "CheckpointsTable": ([("PK", "HASH"), ("SK", "RANGE")], "ttl"),
    "MissionsTable": ([("mission_id", "HASH")], None),
    "AuditTable": ([("mission_id", "HASH"), ("seq", "RANGE")], None),
    "ControlTable": ([("name", "HASH")], None),
    "HandoffTable": ([("handoff_id", "HASH")], "expires_at"),
    # The approval function's continuations and task claims, apart from the handoffs the executor consumes.
    "ContinuationsTable": ([("id", "HASH")], "expires_at"),
    "IdempotencyTable": ([("id", "HASH")], "expiration"),
}


def test_the_seven_tables_of_the_contract(stack: Stack) -> None:
    tables = stack.resources_of_type("AWS::DynamoDB::Table")
    assert set(tables) == set(TABLES)
    for name, (keys, ttl) in TABLES.items():
        properties = tables[name]["Properties"]
        assert [(k["AttributeName"], k["KeyType"]) for k in properties["KeySchema"]] == keys, name
        # Index keys are declared too (HandoffTable's keys-only by-execution index: handoff_access_problems).
        indexes = [*properties.get("GlobalSecondaryIndexes", []), *properties.get("LocalSecondaryIndexes", [])]
        index_keys = {k["AttributeName"] for index in indexes for k in index["KeySchema"]}
        declared = {a["AttributeName"]: a["AttributeType"] for a in properties["AttributeDefinitions"]}
        # Every key is a string but the audit chain's position (aegis.audit_chain), a number.
        expected = {key: "N" if key == "chain_position" else "S" for key in {key for key, _ in keys} | index_keys}
        assert declared == expected, name
        assert properties["BillingMode"] == "PAY_PER_REQUEST", name
        # Which customer-managed key, and who may use it: test_table_and_log_keys.py.
        assert properties["SSESpecification"]["SSEEnabled"] is True, name
        expected_ttl = {"AttributeName": ttl, "Enabled": True} if ttl else None
        assert properties.get("TimeToLiveSpecification") == expected_ttl, name


def test_audit_survives_the_stack_and_handoffs_are_never_backed_up(stack: Stack) -> None:
    assert stack.resource("AuditTable")["DeletionPolicy"] == "Retain"
    assert stack.resource("AuditTable")["UpdateReplacePolicy"] == "Retain"
    assert "PointInTimeRecoverySpecification" not in stack.resource("HandoffTable")["Properties"]
    assert "PointInTimeRecoverySpecification" not in stack.resource("ContinuationsTable")["Properties"]
    for role in ALL_ROLES:
        audit_writes = {
            g.action for g in stack.grants(role) if g.resource == "AuditTable" and not is_read_only(g.action)
        }
        # The chainer's update is limited to the chain's attributes (tests/unit/template/test_audit_chain.py).
        allowed = {"dynamodb:UpdateItem"} if role == "AuditChainRole" else {"dynamodb:PutItem"}
        assert audit_writes <= allowed, f"{role} may rewrite audit records: {audit_writes}"


def test_scans_are_triggered_by_the_schedule_and_by_aegis_scan_and_aegis_undo_events(stack: Stack) -> None:
    schedule = stack.properties("ScheduledScanRule")
    assert schedule["ScheduleExpression"] == stack.parameters["ScanSchedule"] == "rate(1 day)"
    on_demand = stack.properties("ScanRequestRule")
    assert on_demand["EventPattern"] == {"source": ["aegis.scan"], "detail-type": ["Aegis Scan Requested"]}
    undo = stack.properties("UndoRequestRule")
    assert undo["EventPattern"] == {"source": ["aegis.undo"], "detail-type": ["Undo Requested"]}
    target = stack.arn("AgentScanFunction")
    permissions = stack.resources_of_type("AWS::Lambda::Permission")
    for rule in ("ScheduledScanRule", "ScanRequestRule", "UndoRequestRule"):
        properties = stack.properties(rule)
        assert properties["Name"] == stack.ref(rule)
        assert [t["Arn"] for t in properties["Targets"]] == [target]
        assert any(
            stack.properties(p)["SourceArn"] == stack.arn(rule)
            and stack.properties(p)["Principal"] == "events.amazonaws.com"
            and stack.properties(p)["FunctionName"] == stack.ref("AgentScanFunction")
            for p in permissions
        ), rule


def test_the_kill_switch_names_every_rule_that_starts_a_mission(stack: Stack) -> None:
    """A halt disables the rules the kill switch is told about; a rule that invokes the agent's scan function and
    is not among them would start missions while halted."""
    killswitch = stack.function_environment("KillSwitchFunction")
    told = {killswitch[name] for name in ("SCHEDULE_RULE_NAME", "SCAN_RULE_NAME", "UNDO_RULE_NAME")}
    agent = stack.arn("AgentScanFunction")
    starting = {
        stack.ref(rule)
        for rule in stack.resources_of_type("AWS::Events::Rule")
        if any(target["Arn"] == agent for target in stack.properties(rule)["Targets"])
    }
    assert starting == told


# A tenant's own values: none gets a default that would deploy against someone else's tenant.
TENANT_PARAMETERS = (
    "Auth0Issuer",
    "ApprovalAuth0ClientId",
    "ApprovalAuth0ClientSecretArn",
    "ExecutorAuth0ClientId",
    "ExecutorAuth0ClientSecretArn",
    "KillSwitchAuth0ClientId",
    "KillSwitchAuth0ClientSecretArn",
    "OpsApiAudience",
    "ApproverSubs",
    "RemediationOidcSubjects",
)


def test_parameters_cover_the_tenant_and_the_safety_caps(stack: Stack) -> None:
    declared = set(stack.template["Parameters"])
    assert set(stack.parameters) == declared
    assert {
        *TENANT_PARAMETERS,
        "Auth0Audience",
        "UndoTokenVaultConnection",
        "UndoOidcAudience",
        "TokenVaultConnection",
        "ScanSchedule",
        "DryRun",
        "MaxChangesPerMission",
        "MaxSharePerResourceType",
        "TrustExemptionTags",
        "LogRetentionDays",
        "MapMaxConcurrency",
    } <= declared
    for tenant_value in TENANT_PARAMETERS:
        assert "Default" not in stack.template["Parameters"][tenant_value], tenant_value


@pytest.mark.parametrize(
    ("parameter", "bad_value"),
    [
        ("Auth0Issuer", "http://aegis-demo.eu.auth0.com/"),
        ("ApprovalAuth0ClientSecretArn", "aegis/auth0-client"),
        ("ExecutorAuth0ClientSecretArn", "aegis/auth0-client"),
        ("RemediationOidcAudience", "sts.amazonaws.com"),
        ("RemediationOidcSubjects", "auth0|a,,auth0|b"),
        ("KillSwitchAuth0ClientSecretArn", "aegis/killswitch-m2m"),
        ("KillSwitchAuth0ClientId", ""),
        ("CibaRequestedExpirySeconds", "0"),
        ("CibaRequestedExpirySeconds", "301"),
        # A refresh token would outlive the one approved change (issue 12 §2), however the scope is spelled.
        ("CibaScope", "openid offline_access"),
        ("CibaScope", "offline_access openid"),
        ("CibaScope", "openid profile,offline_access"),
        ("MaxSharePerResourceType", "1.5"),
        ("DryRun", "yes"),
        ("TrustExemptionTags", "yes"),
        ("ScanRegions", "us-east-1;eu-west-1"),
    ],
)
def test_bad_parameter_values_are_refused(parameter: str, bad_value: str) -> None:
    from aegis_local.aws.template import TemplateError

    with pytest.raises(TemplateError, match=parameter):
        build_stack(**{parameter: bad_value})


def test_the_approval_function_accepts_every_ciba_expiry_the_template_accepts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from aegis_approval.settings import ApprovalSettings

    declared = pristine_template()["Parameters"]["CibaRequestedExpirySeconds"]
    lowest, highest = int(declared["MinValue"]), int(declared["MaxValue"])
    for accepted in (lowest, highest):
        environment = build_stack(CibaRequestedExpirySeconds=str(accepted)).function_environment("ApprovalFunction")
        for name, value in environment.items():
            monkeypatch.setenv(name, str(value))
        assert ApprovalSettings.from_env().requested_expiry == accepted
    # Just outside the template's range, the approval function refuses too: the range is the function's, exactly.
    for refused in (lowest - 1, highest + 1):
        monkeypatch.setenv("CIBA_REQUESTED_EXPIRY", str(refused))
        with pytest.raises(ValueError, match="CIBA_REQUESTED_EXPIRY"):
            ApprovalSettings.from_env()


def test_outputs_name_what_an_operator_needs(stack: Stack) -> None:
    assert {"MissionStateMachineArn", "KillSwitchUrl", "RemediationRoleArn", "HandoffKeyArn"} <= set(
        stack.template["Outputs"]
    )


# --- the approval policy ---------------------------------------------------------------------------------------------

POLICY_READERS = ("AgentScanFunction", "AgentResumeFunction", "ValidatorFunction", "ApprovalFunction")
POLICY_PARAMETERS = {
    "APPROVER_SUBS": "ApproverSubs",
    "APPROVAL_BATCH_MAX_RISK": "ApprovalBatchMaxRisk",
    "APPROVAL_BATCH_MAX_CHANGES": "ApprovalBatchMaxChanges",
    "APPROVAL_TWO_PERSON_RISK": "ApprovalTwoPersonRisk",
    "APPROVER_ROUTING": "ApproverRouting",
}


def test_the_agent_the_validator_and_the_approval_function_read_one_approval_policy(stack: Stack) -> None:
    """The agent plans, the validator plans the requests and the approval function holds each request to the same
    policy: were they to differ, a plan one accepts another would refuse."""
    environments = {function: stack.function_environment(function) for function in POLICY_READERS}
    for variable, parameter in POLICY_PARAMETERS.items():
        for function, environment in environments.items():
            assert environment[variable] == stack.parameters[parameter], (function, variable)
    assert len({environment["APPROVAL_REVIEW_URL_BASE"] for environment in environments.values()}) == 1
    # The executor enforces the two-person rule on what it applies; the approval function paces the pushes.
    executor = stack.function_environment("ExecutorFunction")
    assert executor["APPROVAL_TWO_PERSON_RISK"] == stack.parameters["ApprovalTwoPersonRisk"]
    approval = stack.function_environment("ApprovalFunction")
    assert approval["APPROVER_PUSHES_PER_MINUTE"] == stack.parameters["ApproverPushesPerMinute"]
    assert {parameter: stack.parameters[parameter] for parameter in list(POLICY_PARAMETERS.values())[1:]} == {
        "ApprovalBatchMaxRisk": "medium",
        "ApprovalBatchMaxChanges": "25",
        "ApprovalTwoPersonRisk": "high",
        "ApproverRouting": "",
    }
    assert stack.parameters["ApproverPushesPerMinute"] == "5"


def test_a_batch_is_reviewed_on_the_console_this_stack_serves_or_nowhere(stack: Stack) -> None:
    def review_base(deployment: Stack) -> str:
        return str(deployment.function_environment("ValidatorFunction")["APPROVAL_REVIEW_URL_BASE"])

    domain = stack.resolver.resolve({"Fn::GetAtt": ["ConsoleDistribution", "DomainName"]})
    assert review_base(stack) == f"https://{domain}/"
    custom = build_stack(
        ConsoleDomainName="console.example.com",
        ConsoleCertificateArn="arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-0000-0000-0000-000000000000",
    )
    assert review_base(custom) == "https://console.example.com/"
    assert review_base(build_stack(DeployConsole="false")) == ""
    # Matches the ConsoleUrl output, the address an operator is given for the console.
    assert f"https://{domain}/" == stack.resolver.resolve(stack.template["Outputs"]["ConsoleUrl"]["Value"])


@pytest.mark.parametrize(
    ("parameter", "values"),
    [
        ("ApprovalBatchMaxRisk", ("none", "low", "medium", "high")),
        ("ApprovalTwoPersonRisk", ("none", "low", "medium", "high")),
        ("ApprovalBatchMaxChanges", ("2", "100")),
    ],
)
def test_every_policy_value_the_template_accepts_the_functions_accept(parameter: str, values: tuple[str, ...]) -> None:
    from aegis.approvals.policy import ApprovalPolicy
    from aegis_validator.errors import InvalidSettings

    for value in values:
        environment = build_stack(**{parameter: value}).function_environment("ValidatorFunction")
        ApprovalPolicy.from_env({name: str(setting) for name, setting in environment.items()}, InvalidSettings)


@pytest.mark.parametrize(
    ("parameter", "bad_value"),
    [
        ("ApprovalBatchMaxRisk", "critical"),
        ("ApprovalTwoPersonRisk", "always"),
        ("ApprovalBatchMaxChanges", "1"),
        ("ApprovalBatchMaxChanges", "101"),
        ("ApproverPushesPerMinute", "0"),
        ("ApproverPushesPerMinute", "61"),
        ("ApproverRouting", "auth0|a"),
    ],
)
def test_bad_approval_policy_values_are_refused(parameter: str, bad_value: str) -> None:
    from aegis_local.aws.template import TemplateError

    with pytest.raises(TemplateError, match=parameter):
        build_stack(**{parameter: bad_value})
