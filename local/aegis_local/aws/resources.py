"""Create the resources of `template.yaml` in moto, the way CloudFormation (with the SAM transform) would.

The local stack has no second description of its resources: this module validates the parameters against their
declared constraints and evaluates conditions and intrinsic functions with `aegis_local.aws.template` (the same reading
of the template the unit tests use), orders the resources by their references, and creates each one through the
AWS API of the moto server; each created resource's physical id feeds the `!Ref`/`!GetAtt` of the ones after it.
SAM resources expand as SAM expands them: `Globals`, an implicit `<Function>Role` when a function names no
role, `<Function>Url` for `FunctionUrlConfig`, and one `<Function><EventName>` rule per `Schedule`,
`EventBridgeRule` or `CloudWatchEvent` event, and one route of an HttpApi per `HttpApi` event (the implicit
`ServerlessHttpApi` when the event names no `ApiId`), served with the gateway's rules by `aegis_local.aws.http_api`.

A resource type this module does not know is an error naming it (never silently skipped); the few types that
have no local effect are listed in `NO_LOCAL_EFFECT` with the reason.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aegis.partitions import partition_of, url_suffix
from aegis_local.aws.http_api import HttpApi, HttpApiDefinitionError
from aegis_local.aws.lambdas import FunctionSpec
from aegis_local.aws.streams import StreamMapping
from aegis_local.aws.template import Resolver, TemplateError, parameter_values, substitute_definition

__all__ = [
    "NO_LOCAL_EFFECT",
    "CreatedStack",
    "ParameterError",
    "PhysicalResource",
    "StackIdentity",
    "UnsupportedResourceType",
    "create_stack",
    "resolve_parameters",
]

# Types CloudFormation would create but that change nothing a local run can observe.
NO_LOCAL_EFFECT: Mapping[str, str] = {
    "AWS::CloudWatch::Alarm": "no metrics are produced locally",
    "AWS::CloudWatch::Dashboard": "no metrics are produced locally",
    # The console's CDN: aegis-local serves console/dist itself (aegis_local.console.server); the bucket is created.
    "AWS::CloudFront::Distribution": "no CDN locally: aegis-local serves the console itself",
    "AWS::CloudFront::OriginAccessControl": "no CDN locally: aegis-local serves the console itself",
    "AWS::CloudFront::ResponseHeadersPolicy": "no CDN locally: the console server sends the same headers",
}

_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_SAM_FUNCTION = "AWS::Serverless::Function"
_SAM_STATE_MACHINE = "AWS::Serverless::StateMachine"
_SAM_HTTP_API = "AWS::Serverless::HttpApi"
# The API SAM creates for HttpApi events that name no ApiId.
_IMPLICIT_HTTP_API = "ServerlessHttpApi"
_RULE_EVENT_TYPES = frozenset({"Schedule", "EventBridgeRule", "CloudWatchEvent"})
_QUEUE_ATTRIBUTES = (
    "DelaySeconds",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
    "KmsMasterKeyId",
    "KmsDataKeyReusePeriodSeconds",
    "SqsManagedSseEnabled",
    "FifoQueue",
    "ContentBasedDeduplication",
)
# The AWS::SNS::Topic properties that are topic attributes of the same name.
_TOPIC_ATTRIBUTES = ("DisplayName", "KmsMasterKeyId", "FifoTopic", "ContentBasedDeduplication", "SignatureVersion")


class ParameterError(TemplateError):
    """A parameter value is missing or violates the template's constraint, as CloudFormation would reject it."""


class UnsupportedResourceType(TemplateError):
    """The template has a resource type the local stack cannot create."""


@dataclass(frozen=True)
class StackIdentity:
    stack_name: str
    region: str
    account_id: str
    # The region's partition unless given (aegis.partitions).
    partition: str = ""

    def __post_init__(self) -> None:
        if not self.partition:
            object.__setattr__(self, "partition", partition_of(self.region))

    @property
    def url_suffix(self) -> str:
        return url_suffix(self.partition)

    @property
    def stack_id(self) -> str:
        return (
            f"arn:{self.partition}:cloudformation:{self.region}:{self.account_id}:stack/{self.stack_name}/"
            "00000000-0000-0000-0000-000000000000"
        )


@dataclass
class PhysicalResource:
    """What `Ref` and `Fn::GetAtt` return for a created resource."""

    logical_id: str
    resource_type: str
    ref: Any
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass
class CreatedStack:
    identity: StackIdentity
    parameters: dict[str, Any]
    resources: dict[str, PhysicalResource]
    outputs: dict[str, Any]
    functions: list[FunctionSpec]
    skipped: dict[str, str]
    # The functions' DynamoDB stream events, delivered by aegis_local.aws.streams while the stack runs.
    stream_mappings: list[StreamMapping] = field(default_factory=list)
    # The HttpApis with the routes their functions' events declare (served by aegis_local.aws.http_api).
    http_apis: list[HttpApi] = field(default_factory=list)

    def ref(self, logical_id: str) -> Any:
        return self.resources[logical_id].ref

    def attribute(self, logical_id: str, name: str) -> Any:
        return self.resources[logical_id].attributes[name]

    def of_type(self, resource_type: str) -> list[PhysicalResource]:
        return [resource for resource in self.resources.values() if resource.resource_type == resource_type]


# ----------------------------------------------------------------------------------------------------------------
# Parameters


def resolve_parameters(
    template: Mapping[str, Any],
    overrides: Mapping[str, str],
    *,
    loopback_http: Iterable[str] = (),
) -> dict[str, Any]:
    """Parameter values as CloudFormation would accept them (`aegis_local.aws.template.parameter_values`).

    `loopback_http` names parameters whose `https://` pattern may also be met by `http://127.0.0.1:<port>/...`:
    the local Auth0 emulator has no TLS. Such a value is checked as its `https://` form, so nothing else about
    the constraint is relaxed.
    """
    checked = dict(overrides)
    plain_http: dict[str, str] = {}
    for name in loopback_http:
        value = checked.get(name)
        if value is not None and re.match(r"^http://127\.0\.0\.1:\d+/", value):
            plain_http[name] = value
            checked[name] = "https://" + value.removeprefix("http://")
    try:
        values = parameter_values(template, checked)
    except TemplateError as error:
        raise ParameterError(str(error)) from error
    values.update(plain_http)
    resolved: dict[str, Any] = dict(values)
    for name, spec in (template.get("Parameters") or {}).items():
        kind = str(spec.get("Type", "String"))
        if kind == "CommaDelimitedList" or kind.startswith("List<"):
            # Ref of a list parameter is a list (Fn::Join, Fn::Select work on it).
            resolved[name] = [item.strip() for item in values[name].split(",")] if values[name] else []
    return resolved


def references(value: Any) -> set[str]:
    """Logical ids (and parameters) a value refers to through Ref, GetAtt and Sub."""
    found: set[str] = set()
    if isinstance(value, dict):
        if len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref" and isinstance(argument, str):
                found.add(argument)
                return found
            if key == "Fn::GetAtt":
                target = argument.split(".", 1)[0] if isinstance(argument, str) else argument[0]
                found.add(str(target))
                return found
            if key == "Fn::Sub":
                text, variables = (argument[0], argument[1]) if isinstance(argument, list) else (argument, {})
                for name in _SUB_VARIABLE.findall(str(text)):
                    if not name.startswith("!") and name not in variables:
                        found.add(name.split(".", 1)[0])
                found |= references(variables)
                return found
        for item in value.values():
            found |= references(item)
    elif isinstance(value, list):
        for item in value:
            found |= references(item)
    return found


# ----------------------------------------------------------------------------------------------------------------
# SAM expansion


def _scalar_text(value: Any) -> str:
    """A property value as CloudFormation passes it where a string is required (env variables, substitutions)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _merge_globals(properties: Mapping[str, Any], globals_section: Mapping[str, Any]) -> dict[str, Any]:
    """SAM's Globals rules: maps merge key by key (the resource wins), lists concatenate, scalars are overridden."""
    merged: dict[str, Any] = dict(globals_section)
    for key, value in properties.items():
        if key in merged and isinstance(merged[key], dict) and isinstance(value, dict):
            merged[key] = _merge_globals(value, merged[key])
        elif key in merged and isinstance(merged[key], list) and isinstance(value, list):
            merged[key] = [*merged[key], *value]
        else:
            merged[key] = value
    return merged


def _expanded_properties(template: Mapping[str, Any], logical_id: str) -> dict[str, Any]:
    resource = template["Resources"][logical_id]
    properties = dict(resource.get("Properties") or {})
    globals_section = template.get("Globals") or {}
    kind = resource["Type"]
    if kind == _SAM_FUNCTION and "Function" in globals_section:
        return _merge_globals(properties, globals_section["Function"])
    if kind == "AWS::Serverless::SimpleTable" and "SimpleTable" in globals_section:
        return _merge_globals(properties, globals_section["SimpleTable"])
    if kind == _SAM_HTTP_API and "HttpApi" in globals_section:
        return _merge_globals(properties, globals_section["HttpApi"])
    return properties


# ----------------------------------------------------------------------------------------------------------------
# Creation


def _placeholder_zip(note: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("AEGIS_LOCAL.txt", note)
    return buffer.getvalue()


def _dependency_order(template: Mapping[str, Any], active: list[str]) -> list[str]:
    resources = template["Resources"]
    active_set = set(active)
    dependencies: dict[str, set[str]] = {}
    for logical_id in active:
        resource = resources[logical_id]
        depends_on = resource.get("DependsOn") or []
        if isinstance(depends_on, str):
            depends_on = [depends_on]
        named = references(resource.get("Properties") or {}) | set(depends_on)
        if resource["Type"] == _SAM_FUNCTION:
            named |= references((template.get("Globals") or {}).get("Function") or {})
        dependencies[logical_id] = {name for name in named if name in active_set and name != logical_id}
    ordered: list[str] = []
    placed: set[str] = set()
    visiting: list[str] = []

    def visit(logical_id: str) -> None:
        if logical_id in placed:
            return
        if logical_id in visiting:
            cycle = " -> ".join([*visiting[visiting.index(logical_id) :], logical_id])
            raise TemplateError(f"circular dependency between resources: {cycle}")
        visiting.append(logical_id)
        for dependency in sorted(dependencies[logical_id]):
            visit(dependency)
        visiting.pop()
        placed.add(logical_id)
        ordered.append(logical_id)

    for logical_id in active:
        visit(logical_id)
    return ordered


class _Creator:
    """Creates one resource at a time through boto3 clients of the moto server."""

    def __init__(
        self,
        template: Mapping[str, Any],
        template_dir: Path,
        resolver: Resolver,
        identity: StackIdentity,
        client: Callable[[str], Any],
        *,
        serve_function_url: Callable[[str, str], str] | None = None,
        serve_http_api: Callable[[HttpApi], str] | None = None,
    ) -> None:
        self.template = template
        self.template_dir = template_dir
        self.resolver = resolver
        self.client = client
        self.identity = identity
        self.resources: dict[str, PhysicalResource] = {}
        self.serve_function_url = serve_function_url
        self.functions: list[FunctionSpec] = []
        self.skipped: dict[str, str] = {}
        self.stream_mappings: list[StreamMapping] = []
        self.serve_http_api = serve_http_api
        self.http_apis: dict[str, HttpApi] = {}  # by api id (what !Ref gives the functions' events)

    def physical_name(self, logical_id: str, limit: int = 64) -> str:
        return f"{self.identity.stack_name}-{logical_id}"[:limit]

    def arn(self, service: str, resource: str, *, region: bool = True) -> str:
        where = self.identity.region if region else ""
        return f"arn:{self.identity.partition}:{service}:{where}:{self.identity.account_id}:{resource}"

    def record(self, logical_id: str, resource_type: str, ref: Any, **attributes: Any) -> PhysicalResource:
        resource = PhysicalResource(logical_id, resource_type, ref, dict(attributes))
        self.resources[logical_id] = resource
        # What later resources' !Ref and !GetAtt see.
        self.resolver.refs[logical_id] = ref
        self.resolver.attributes.update({(logical_id, name): value for name, value in attributes.items()})
        return resource

    def attribute(self, logical_id: str, name: str) -> Any:
        return self.resources[logical_id].attributes[name]

    def create(self, logical_id: str) -> None:
        resource = self.template["Resources"][logical_id]
        kind = str(resource["Type"])
        creator = _CREATORS.get(kind)
        if creator is None:
            if kind in NO_LOCAL_EFFECT:
                self.skipped[logical_id] = f"{kind}: {NO_LOCAL_EFFECT[kind]}"
                self.record(logical_id, kind, self.physical_name(logical_id), **self._skipped_attributes(logical_id))
                return
            raise UnsupportedResourceType(f"{logical_id}: the local stack cannot create {kind}")
        properties = self.resolver.resolve(_expanded_properties(self.template, logical_id))
        creator(self, logical_id, properties)

    def _skipped_attributes(self, logical_id: str) -> dict[str, str]:
        """What `!GetAtt` gives for a resource with no local effect that others name: a distribution's domain (the
        ops API's CORS lists the console's origin) is a `.invalid` name nobody serves, the other ids its name."""
        name = self.physical_name(logical_id).lower()
        return {"Id": name, "DomainName": f"{name}.cloudfront.invalid"}

    # -- DynamoDB -------------------------------------------------------------------------------------

    def table(self, logical_id: str, properties: dict[str, Any]) -> None:
        dynamodb = self.client("dynamodb")
        name = properties.get("TableName") or self.physical_name(logical_id, 255)
        request: dict[str, Any] = {
            "TableName": name,
            "KeySchema": properties["KeySchema"],
            "AttributeDefinitions": properties["AttributeDefinitions"],
            "BillingMode": properties.get("BillingMode", "PROVISIONED"),
        }
        for key in ("ProvisionedThroughput", "GlobalSecondaryIndexes", "LocalSecondaryIndexes", "Tags"):
            if key in properties:
                request[key] = properties[key]
        if "StreamSpecification" in properties:
            request["StreamSpecification"] = {"StreamEnabled": True, **properties["StreamSpecification"]}
        sse = properties.get("SSESpecification")
        if sse:
            request["SSESpecification"] = {
                "Enabled": bool(sse.get("SSEEnabled", False)),
                **({"SSEType": sse["SSEType"]} if "SSEType" in sse else {}),
                **({"KMSMasterKeyId": sse["KMSMasterKeyId"]} if "KMSMasterKeyId" in sse else {}),
            }
        if "DeletionProtectionEnabled" in properties:
            request["DeletionProtectionEnabled"] = bool(properties["DeletionProtectionEnabled"])
        description = dynamodb.create_table(**request)["TableDescription"]
        ttl = properties.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            dynamodb.update_time_to_live(
                TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]}
            )
        recovery = properties.get("PointInTimeRecoverySpecification")
        if recovery and recovery.get("PointInTimeRecoveryEnabled"):
            dynamodb.update_continuous_backups(
                TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
            )
        self.record(
            logical_id,
            "AWS::DynamoDB::Table",
            name,
            Arn=description["TableArn"],
            StreamArn=description.get("LatestStreamArn"),
        )

    def simple_table(self, logical_id: str, properties: dict[str, Any]) -> None:
        primary = properties.get("PrimaryKey") or {"Name": "id", "Type": "String"}
        attribute_type = {"String": "S", "Number": "N", "Binary": "B"}[primary.get("Type", "String")]
        self.table(
            logical_id,
            {
                "TableName": properties.get("TableName"),
                "KeySchema": [{"AttributeName": primary["Name"], "KeyType": "HASH"}],
                "AttributeDefinitions": [{"AttributeName": primary["Name"], "AttributeType": attribute_type}],
                "BillingMode": "PAY_PER_REQUEST" if "ProvisionedThroughput" not in properties else "PROVISIONED",
                **({"SSESpecification": properties["SSESpecification"]} if "SSESpecification" in properties else {}),
            },
        )

    # -- KMS, Secrets Manager, Logs -------------------------------------------------------------------

    def kms_key(self, logical_id: str, properties: dict[str, Any]) -> None:
        kms = self.client("kms")
        request: dict[str, Any] = {}
        if "KeyPolicy" in properties:
            policy = properties["KeyPolicy"]
            request["Policy"] = policy if isinstance(policy, str) else json.dumps(policy)
        for source, target in (("Description", "Description"), ("KeyUsage", "KeyUsage"), ("KeySpec", "KeySpec")):
            if source in properties:
                request[target] = properties[source]
        if "Tags" in properties:
            request["Tags"] = [{"TagKey": tag["Key"], "TagValue": tag["Value"]} for tag in properties["Tags"]]
        metadata = kms.create_key(**request)["KeyMetadata"]
        if properties.get("EnableKeyRotation"):
            kms.enable_key_rotation(KeyId=metadata["KeyId"])
        if properties.get("Enabled") is False:
            kms.disable_key(KeyId=metadata["KeyId"])
        self.record(logical_id, "AWS::KMS::Key", metadata["KeyId"], Arn=metadata["Arn"], KeyId=metadata["KeyId"])

    def kms_alias(self, logical_id: str, properties: dict[str, Any]) -> None:
        self.client("kms").create_alias(AliasName=properties["AliasName"], TargetKeyId=properties["TargetKeyId"])
        self.record(logical_id, "AWS::KMS::Alias", properties["AliasName"])

    def secret(self, logical_id: str, properties: dict[str, Any]) -> None:
        request: dict[str, Any] = {"Name": properties.get("Name") or self.physical_name(logical_id, 512)}
        if "SecretString" in properties:
            request["SecretString"] = properties["SecretString"]
        elif "GenerateSecretString" in properties:
            generate = properties["GenerateSecretString"]
            password = self.client("secretsmanager").get_random_password(
                PasswordLength=int(generate.get("PasswordLength", 32)),
                ExcludeCharacters=generate.get("ExcludeCharacters", ""),
                ExcludePunctuation=bool(generate.get("ExcludePunctuation", False)),
            )["RandomPassword"]
            if "SecretStringTemplate" in generate:
                document = json.loads(generate["SecretStringTemplate"])
                document[generate["GenerateStringKey"]] = password
                request["SecretString"] = json.dumps(document)
            else:
                request["SecretString"] = password
        for key in ("Description", "KmsKeyId", "Tags"):
            if key in properties:
                request[key] = properties[key]
        arn = self.client("secretsmanager").create_secret(**request)["ARN"]
        self.record(logical_id, "AWS::SecretsManager::Secret", arn, Id=arn)

    def log_group(self, logical_id: str, properties: dict[str, Any]) -> None:
        logs = self.client("logs")
        name = properties.get("LogGroupName") or self.physical_name(logical_id, 512)
        logs.create_log_group(
            logGroupName=name, **({"kmsKeyId": properties["KmsKeyId"]} if "KmsKeyId" in properties else {})
        )
        if "RetentionInDays" in properties:
            logs.put_retention_policy(logGroupName=name, retentionInDays=int(properties["RetentionInDays"]))
        self.record(logical_id, "AWS::Logs::LogGroup", name, Arn=self.arn("logs", f"log-group:{name}:*"))

    # -- IAM ------------------------------------------------------------------------------------------

    def role(self, logical_id: str, properties: dict[str, Any]) -> None:
        iam = self.client("iam")
        name = properties.get("RoleName") or self.physical_name(logical_id, 64)
        trust = properties["AssumeRolePolicyDocument"]
        request: dict[str, Any] = {
            "RoleName": name,
            "AssumeRolePolicyDocument": trust if isinstance(trust, str) else json.dumps(trust),
            "Path": properties.get("Path", "/"),
        }
        for key in ("Description", "MaxSessionDuration", "PermissionsBoundary", "Tags"):
            if key in properties:
                request[key] = properties[key]
        role = iam.create_role(**request)["Role"]
        for policy in properties.get("Policies") or []:
            document = policy["PolicyDocument"]
            iam.put_role_policy(
                RoleName=name,
                PolicyName=policy["PolicyName"],
                PolicyDocument=document if isinstance(document, str) else json.dumps(document),
            )
        for policy_arn in properties.get("ManagedPolicyArns") or []:
            self._attach_managed_policy(logical_id, name, policy_arn)
        self.record(logical_id, "AWS::IAM::Role", name, Arn=role["Arn"], RoleId=role["RoleId"])

    def _implicit_role(self, logical_id: str, service: str, **properties: Any) -> Any:
        """SAM's implicit execution role of a function or state machine, trusting `service`: its ARN."""
        trust = {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
        self.role(
            f"{logical_id}Role",
            {"AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [trust]}, **properties},
        )
        return self.attribute(f"{logical_id}Role", "Arn")

    def _attach_managed_policy(self, logical_id: str, role_name: str, policy_arn: str) -> None:
        if ":iam::aws:policy/" in policy_arn:
            # moto does not load AWS-managed policies (it would slow every start): record, do not pretend.
            self.skipped[f"{logical_id}:{policy_arn}"] = "AWS-managed policy not loaded in moto"
            return
        self.client("iam").attach_role_policy(RoleName=role_name, PolicyArn=policy_arn)

    def managed_policy(self, logical_id: str, properties: dict[str, Any]) -> None:
        iam = self.client("iam")
        document = properties["PolicyDocument"]
        policy = iam.create_policy(
            PolicyName=properties.get("ManagedPolicyName") or self.physical_name(logical_id, 128),
            Path=properties.get("Path", "/"),
            PolicyDocument=document if isinstance(document, str) else json.dumps(document),
            **({"Description": properties["Description"]} if "Description" in properties else {}),
        )["Policy"]
        for role_name in properties.get("Roles") or []:
            iam.attach_role_policy(RoleName=role_name, PolicyArn=policy["Arn"])
        self.record(logical_id, "AWS::IAM::ManagedPolicy", policy["Arn"], PolicyArn=policy["Arn"])

    def inline_policy(self, logical_id: str, properties: dict[str, Any]) -> None:
        document = properties["PolicyDocument"]
        text = document if isinstance(document, str) else json.dumps(document)
        for role_name in properties.get("Roles") or []:
            self.client("iam").put_role_policy(
                RoleName=role_name, PolicyName=properties["PolicyName"], PolicyDocument=text
            )
        self.record(logical_id, "AWS::IAM::Policy", properties["PolicyName"])

    def oidc_provider(self, logical_id: str, properties: dict[str, Any]) -> None:
        arn = self.client("iam").create_open_id_connect_provider(
            Url=properties["Url"],
            ClientIDList=properties.get("ClientIdList") or [],
            ThumbprintList=properties.get("ThumbprintList") or [],
            **({"Tags": properties["Tags"]} if "Tags" in properties else {}),
        )["OpenIDConnectProviderArn"]
        self.record(logical_id, "AWS::IAM::OIDCProvider", arn, Arn=arn)

    # -- Lambda ---------------------------------------------------------------------------------------

    def layer(self, logical_id: str, properties: dict[str, Any]) -> None:
        name = properties.get("LayerName") or self.physical_name(logical_id, 140)
        content = properties.get("ContentUri") or properties.get("Content") or ""
        version = self.client("lambda").publish_layer_version(
            LayerName=name,
            Description=properties.get("Description", ""),
            Content={"ZipFile": _placeholder_zip(f"layer code is installed in the environment from {content}")},
            CompatibleRuntimes=properties.get("CompatibleRuntimes") or [],
        )
        self.record(logical_id, "AWS::Lambda::LayerVersion", version["LayerVersionArn"])

    def sam_function(self, logical_id: str, properties: dict[str, Any]) -> None:
        role_arn = properties.get("Role")
        if role_arn is None:
            role_arn = self._implicit_role(
                logical_id,
                "lambda.amazonaws.com",
                ManagedPolicyArns=[
                    f"arn:{self.identity.partition}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
                ],
                Policies=[p for p in properties.get("Policies") or [] if isinstance(p, dict) and "PolicyDocument" in p],
            )
        code_uri = properties.get("CodeUri")
        if not isinstance(code_uri, str):
            raise TemplateError(f"{logical_id}: CodeUri must be a local directory for the local stack")
        spec = self._lambda_function(
            logical_id,
            {**properties, "Role": role_arn},
            code_dir=(self.template_dir / code_uri).resolve(),
            resource_type=_SAM_FUNCTION,
        )
        url_config = properties.get("FunctionUrlConfig")
        if url_config:
            self._function_url(f"{logical_id}Url", spec.function_name, url_config)
        for event_name, event in (properties.get("Events") or {}).items():
            self._sam_event(logical_id, spec, event_name, event)

    def lambda_function(self, logical_id: str, properties: dict[str, Any]) -> None:
        code = properties.get("Code")
        if not isinstance(code, str):
            # `aws cloudformation package` accepts a local directory as Code; anything else has no code here.
            raise TemplateError(f"{logical_id}: Code must be a local directory for the local stack")
        self._lambda_function(
            logical_id, properties, code_dir=(self.template_dir / code).resolve(), resource_type="AWS::Lambda::Function"
        )

    def _lambda_function(
        self, logical_id: str, properties: dict[str, Any], *, code_dir: Path, resource_type: str
    ) -> FunctionSpec:
        lambda_client = self.client("lambda")
        name = properties.get("FunctionName") or self.physical_name(logical_id, 64)
        variables = {
            key: _scalar_text(value)
            for key, value in (properties.get("Environment") or {}).get("Variables", {}).items()
        }
        timeout = int(properties.get("Timeout", 3))
        memory = int(properties.get("MemorySize", 128))
        request: dict[str, Any] = {
            "FunctionName": name,
            "Runtime": properties.get("Runtime", "python3.13"),
            "Role": properties["Role"],
            "Handler": properties["Handler"],
            "Code": {
                "ZipFile": _placeholder_zip(f"the local stack runs this function in-process from {code_dir.name}/")
            },
            "Timeout": timeout,
            "MemorySize": memory,
            "Environment": {"Variables": variables},
            "Publish": False,
        }
        if properties.get("Description"):
            request["Description"] = properties["Description"]
        if properties.get("Layers"):
            request["Layers"] = properties["Layers"]
        if properties.get("Architectures"):
            request["Architectures"] = properties["Architectures"]
        tracing = properties.get("Tracing")
        if isinstance(tracing, str):
            request["TracingConfig"] = {"Mode": tracing}
        elif isinstance(tracing, dict):
            request["TracingConfig"] = tracing
        # SAM's DeadLetterQueue ({Type, TargetArn}) becomes Lambda's DeadLetterConfig, as the transform writes it.
        dead_letters = properties.get("DeadLetterConfig") or properties.get("DeadLetterQueue")
        if dead_letters:
            request["DeadLetterConfig"] = {"TargetArn": dead_letters["TargetArn"]}
        function = lambda_client.create_function(**request)
        invoke_config = properties.get("EventInvokeConfig")
        if invoke_config:
            lambda_client.put_function_event_invoke_config(
                FunctionName=name,
                **{
                    key: int(invoke_config[key])
                    for key in ("MaximumRetryAttempts", "MaximumEventAgeInSeconds")
                    if key in invoke_config
                },
            )
        if "ReservedConcurrentExecutions" in properties:
            # Recorded as Lambda records it; the in-process invoker does not throttle.
            lambda_client.put_function_concurrency(
                FunctionName=name, ReservedConcurrentExecutions=int(properties["ReservedConcurrentExecutions"])
            )
        self.record(logical_id, resource_type, name, Arn=function["FunctionArn"])
        spec = FunctionSpec(
            logical_id=logical_id,
            function_name=name,
            function_arn=function["FunctionArn"],
            code_dir=code_dir,
            handler=str(properties["Handler"]),
            timeout_seconds=timeout,
            memory_mb=memory,
            environment=variables,
            runtime=str(request["Runtime"]),
        )
        self.functions.append(spec)
        return spec

    def _function_url(self, logical_id: str, function_name: str, config: Mapping[str, Any]) -> None:
        request: dict[str, Any] = {"FunctionName": function_name, "AuthType": config.get("AuthType", "AWS_IAM")}
        if "Cors" in config:
            request["Cors"] = config["Cors"]
        if "InvokeMode" in config:
            request["InvokeMode"] = config["InvokeMode"]
        url = self.client("lambda").create_function_url_config(**request)
        if self.serve_function_url is not None:
            # moto serves nothing at the URL it makes up: the attribute is the local listener instead.
            name = function_name.split(":")[6] if function_name.startswith("arn:") else function_name
            url["FunctionUrl"] = self.serve_function_url(name, str(request["AuthType"]))
        self.record(
            logical_id,
            "AWS::Lambda::Url",
            url["FunctionArn"],
            FunctionUrl=url["FunctionUrl"],
            FunctionArn=url["FunctionArn"],
        )

    def function_url(self, logical_id: str, properties: dict[str, Any]) -> None:
        self._function_url(logical_id, str(properties["TargetFunctionArn"]), properties)

    def _sam_event(self, function_id: str, spec: FunctionSpec, event_name: str, event: Mapping[str, Any]) -> None:
        kind = event.get("Type")
        if kind == "HttpApi":
            self._http_api_route(function_id, spec, event_name, dict(event.get("Properties") or {}))
            return
        if kind == "DynamoDB":
            properties = dict(event.get("Properties") or {})
            self.stream_mappings.append(
                StreamMapping.from_properties(f"{function_id}{event_name}", spec.function_arn, properties)
            )
            return
        if kind not in _RULE_EVENT_TYPES:
            raise UnsupportedResourceType(f"{function_id}: event {event_name} of type {kind} is not supported locally")
        event_properties = dict(event.get("Properties") or {})
        target: dict[str, Any] = {"Id": f"{function_id}{event_name}LambdaTarget", "Arn": spec.function_arn}
        for key in ("Input", "InputPath", "InputTransformer"):
            if key in event_properties:
                target[key] = event_properties[key]
        if "Target" in event_properties and "Id" in event_properties["Target"]:
            target["Id"] = event_properties["Target"]["Id"]
        rule: dict[str, Any] = {"Targets": [target]}
        if kind == "Schedule":
            rule["ScheduleExpression"] = event_properties["Schedule"]
            enabled = event_properties.get("Enabled", True)
            rule["State"] = event_properties.get("State") or ("ENABLED" if enabled else "DISABLED")
        else:
            rule["EventPattern"] = event_properties["Pattern"]
            rule["State"] = event_properties.get("State", "ENABLED")
            if "EventBusName" in event_properties:
                rule["EventBusName"] = event_properties["EventBusName"]
        name = event_properties.get("Name") or event_properties.get("RuleName")
        if name:
            rule["Name"] = name
        if "Description" in event_properties:
            rule["Description"] = event_properties["Description"]
        self.rule(f"{function_id}{event_name}", rule)
        self.client("lambda").add_permission(
            FunctionName=spec.function_name,
            StatementId=f"{function_id}{event_name}Permission",
            Action="lambda:InvokeFunction",
            Principal="events.amazonaws.com",
            SourceArn=self.attribute(f"{function_id}{event_name}", "Arn"),
        )

    # -- API Gateway HTTP APIs ------------------------------------------------------------------------

    def http_api(self, logical_id: str, properties: dict[str, Any]) -> None:
        request: dict[str, Any] = {"Name": properties.get("Name") or self.physical_name(logical_id, 128)}
        request["ProtocolType"] = "HTTP"
        if "Description" in properties:
            request["Description"] = properties["Description"]
        if "Tags" in properties:
            request["Tags"] = {str(k): str(v) for k, v in properties["Tags"].items()}
        created = self.client("apigatewayv2").create_api(**request)
        api = HttpApi.from_properties(logical_id, created["ApiId"], properties)
        # moto serves nothing at the endpoint it makes up: the endpoint is the local listener instead.
        endpoint = self.serve_http_api(api) if self.serve_http_api is not None else created["ApiEndpoint"]
        self.http_apis[api.api_id] = api
        self.record(logical_id, _SAM_HTTP_API, api.api_id, ApiId=api.api_id, ApiEndpoint=endpoint.rstrip("/"))

    def _http_api_route(
        self, function_id: str, spec: FunctionSpec, event_name: str, properties: dict[str, Any]
    ) -> None:
        if "ApiId" not in properties:
            if _IMPLICIT_HTTP_API not in self.resources:
                globals_section = (self.template.get("Globals") or {}).get("HttpApi") or {}
                self.http_api(_IMPLICIT_HTTP_API, self.resolver.resolve(dict(globals_section)))
            properties["ApiId"] = self.resources[_IMPLICIT_HTTP_API].ref
        api = self.http_apis.get(str(properties["ApiId"]))
        if api is None:
            raise HttpApiDefinitionError(
                f"{function_id}: event {event_name} names ApiId {properties['ApiId']!r}, "
                "not an HttpApi of this template"
            )
        api.add_event_route(function_id, event_name, spec.function_name, properties)
        # SAM's permission for API Gateway to invoke the function on this route.
        self.client("lambda").add_permission(
            FunctionName=spec.function_name,
            StatementId=f"{function_id}{event_name}Permission",
            Action="lambda:InvokeFunction",
            Principal="apigateway.amazonaws.com",
            SourceArn=self.arn("execute-api", f"{api.api_id}/*"),
        )

    def permission(self, logical_id: str, properties: dict[str, Any]) -> None:
        request: dict[str, Any] = {
            "FunctionName": properties["FunctionName"],
            "StatementId": logical_id,
            "Action": properties["Action"],
            "Principal": properties["Principal"],
        }
        for key in ("SourceArn", "SourceAccount", "FunctionUrlAuthType"):
            if key in properties:
                request[key] = properties[key]
        self.client("lambda").add_permission(**request)
        self.record(logical_id, "AWS::Lambda::Permission", logical_id)

    # -- Step Functions -------------------------------------------------------------------------------

    def sam_state_machine(self, logical_id: str, properties: dict[str, Any]) -> None:
        if "Definition" in properties:
            definition = json.dumps(properties["Definition"])
        elif isinstance(properties.get("DefinitionUri"), str):
            definition = (self.template_dir / properties["DefinitionUri"]).read_text(encoding="utf-8")
        else:
            raise TemplateError(f"{logical_id}: needs Definition or a local DefinitionUri")
        substitutions = {
            key: _scalar_text(value) for key, value in (properties.get("DefinitionSubstitutions") or {}).items()
        }
        definition = substitute_definition(definition, substitutions)
        role_arn = properties.get("Role")
        if role_arn is None:
            role_arn = self._implicit_role(logical_id, "states.amazonaws.com")
        self._state_machine(
            logical_id,
            _SAM_STATE_MACHINE,
            name=properties.get("Name") or self.physical_name(logical_id, 80),
            definition=definition,
            role_arn=str(role_arn),
            machine_type=properties.get("Type", "STANDARD"),
            logging=properties.get("Logging"),
            tracing=properties.get("Tracing"),
        )

    def state_machine(self, logical_id: str, properties: dict[str, Any]) -> None:
        if "DefinitionString" in properties:
            definition = str(properties["DefinitionString"])
        elif "Definition" in properties:
            definition = json.dumps(properties["Definition"])
        else:
            raise TemplateError(f"{logical_id}: needs DefinitionString or Definition for the local stack")
        substitutions = {
            key: _scalar_text(value) for key, value in (properties.get("DefinitionSubstitutions") or {}).items()
        }
        self._state_machine(
            logical_id,
            "AWS::StepFunctions::StateMachine",
            name=properties.get("StateMachineName") or self.physical_name(logical_id, 80),
            definition=substitute_definition(definition, substitutions),
            role_arn=str(properties["RoleArn"]),
            machine_type=properties.get("StateMachineType", "STANDARD"),
            logging=properties.get("LoggingConfiguration"),
            tracing=properties.get("TracingConfiguration"),
        )

    def _state_machine(
        self,
        logical_id: str,
        resource_type: str,
        *,
        name: str,
        definition: str,
        role_arn: str,
        machine_type: str,
        logging: Mapping[str, Any] | None,
        tracing: Mapping[str, Any] | None,
    ) -> None:
        try:
            json.loads(definition)
        except json.JSONDecodeError as error:
            raise TemplateError(f"{logical_id}: the definition is not JSON after substitution: {error}") from error
        request: dict[str, Any] = {"name": name, "definition": definition, "roleArn": role_arn, "type": machine_type}
        if logging:
            request["loggingConfiguration"] = {
                "level": logging.get("Level", "OFF"),
                "includeExecutionData": bool(logging.get("IncludeExecutionData", False)),
                "destinations": [
                    {"cloudWatchLogsLogGroup": {"logGroupArn": d["CloudWatchLogsLogGroup"]["LogGroupArn"]}}
                    for d in logging.get("Destinations") or []
                ],
            }
        if tracing:
            request["tracingConfiguration"] = {"enabled": bool(tracing.get("Enabled", False))}
        arn = self.client("stepfunctions").create_state_machine(**request)["stateMachineArn"]
        self.record(logical_id, resource_type, arn, Arn=arn, Name=name)

    # -- EventBridge ----------------------------------------------------------------------------------

    def event_bus(self, logical_id: str, properties: dict[str, Any]) -> None:
        name = properties["Name"]
        arn = self.client("events").create_event_bus(Name=name)["EventBusArn"]
        self.record(logical_id, "AWS::Events::EventBus", name, Arn=arn, Name=name)

    def rule(self, logical_id: str, properties: dict[str, Any]) -> None:
        events = self.client("events")
        name = properties.get("Name") or self.physical_name(logical_id, 64)
        request: dict[str, Any] = {"Name": name, "State": properties.get("State", "ENABLED")}
        if "ScheduleExpression" in properties:
            request["ScheduleExpression"] = properties["ScheduleExpression"]
        if "EventPattern" in properties:
            pattern = properties["EventPattern"]
            request["EventPattern"] = pattern if isinstance(pattern, str) else json.dumps(pattern)
        for key in ("Description", "EventBusName", "RoleArn"):
            if key in properties:
                request[key] = properties[key]
        arn = events.put_rule(**request)["RuleArn"]
        targets = properties.get("Targets") or []
        if targets:
            events.put_targets(
                Rule=name,
                **({"EventBusName": properties["EventBusName"]} if "EventBusName" in properties else {}),
                Targets=[dict(target) for target in targets],
            )
        self.record(logical_id, "AWS::Events::Rule", name, Arn=arn)

    # -- S3 -------------------------------------------------------------------------------------------

    def bucket(self, logical_id: str, properties: dict[str, Any]) -> None:
        s3 = self.client("s3")
        name = properties.get("BucketName") or self.physical_name(logical_id, 63).lower()
        request: dict[str, Any] = {"Bucket": name}
        if self.identity.region != "us-east-1":
            request["CreateBucketConfiguration"] = {"LocationConstraint": self.identity.region}
        if properties.get("ObjectLockEnabled"):
            request["ObjectLockEnabledForBucket"] = True
        s3.create_bucket(**request)
        block = properties.get("PublicAccessBlockConfiguration")
        if block:
            s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=block)
        versioning = properties.get("VersioningConfiguration")
        if versioning:
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": versioning["Status"]})
        encryption = properties.get("BucketEncryption")
        if encryption:
            # CloudFormation's ServerSideEncryptionByDefault is the API's ApplyServerSideEncryptionByDefault.
            rules = [
                {("Apply" + k if k == "ServerSideEncryptionByDefault" else k): v for k, v in rule.items()}
                for rule in encryption["ServerSideEncryptionConfiguration"]
            ]
            s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
        lifecycle = properties.get("LifecycleConfiguration")
        if lifecycle:
            # An expiry the template relies on (the org-scan item lists are kept a week) exists locally too.
            s3.put_bucket_lifecycle_configuration(
                Bucket=name,
                LifecycleConfiguration={"Rules": [_lifecycle_rule(logical_id, rule) for rule in lifecycle["Rules"]]},
            )
        lock = properties.get("ObjectLockConfiguration")
        if lock:
            default = lock["Rule"]["DefaultRetention"]
            retention = {k: int(v) if k in ("Days", "Years") else v for k, v in default.items()}
            s3.put_object_lock_configuration(
                Bucket=name,
                ObjectLockConfiguration={
                    "ObjectLockEnabled": lock["ObjectLockEnabled"],
                    "Rule": {"DefaultRetention": retention},
                },
            )
        self.record(
            logical_id,
            "AWS::S3::Bucket",
            name,
            Arn=f"arn:{self.identity.partition}:s3:::{name}",
            DomainName=f"{name}.s3.{self.identity.url_suffix}",
            RegionalDomainName=f"{name}.s3.{self.identity.region}.{self.identity.url_suffix}",
        )

    def bucket_policy(self, logical_id: str, properties: dict[str, Any]) -> None:
        document = properties["PolicyDocument"]
        self.client("s3").put_bucket_policy(
            Bucket=properties["Bucket"], Policy=document if isinstance(document, str) else json.dumps(document)
        )
        self.record(logical_id, "AWS::S3::BucketPolicy", properties["Bucket"])

    # -- SQS ------------------------------------------------------------------------------------------

    def queue(self, logical_id: str, properties: dict[str, Any]) -> None:
        sqs = self.client("sqs")
        name = properties.get("QueueName") or self.physical_name(logical_id, 80)
        # The queue attributes CloudFormation passes through under the same names (SQS takes them as strings).
        attributes = {key: _scalar_text(properties[key]) for key in _QUEUE_ATTRIBUTES if key in properties}
        for key in ("RedrivePolicy", "RedriveAllowPolicy"):
            if key in properties:
                value = properties[key]
                attributes[key] = value if isinstance(value, str) else json.dumps(value)
        tags = {tag["Key"]: tag["Value"] for tag in properties.get("Tags") or []}
        url = sqs.create_queue(QueueName=name, Attributes=attributes, **({"tags": tags} if tags else {}))["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.record(logical_id, "AWS::SQS::Queue", url, Arn=arn, QueueName=name, QueueUrl=url)

    # -- SNS ------------------------------------------------------------------------------------------

    def topic(self, logical_id: str, properties: dict[str, Any]) -> None:
        name = properties.get("TopicName") or self.physical_name(logical_id, 256)
        # The topic attributes CloudFormation passes through under the same names (SNS takes them as strings).
        attributes = {key: _scalar_text(properties[key]) for key in _TOPIC_ATTRIBUTES if key in properties}
        tags = [{"Key": tag["Key"], "Value": tag["Value"]} for tag in properties.get("Tags") or []]
        arn = self.client("sns").create_topic(Name=name, Attributes=attributes, **({"Tags": tags} if tags else {}))[
            "TopicArn"
        ]
        self.record(logical_id, "AWS::SNS::Topic", arn, TopicArn=arn, TopicName=name)

    def subscription(self, logical_id: str, properties: dict[str, Any]) -> None:
        attributes: dict[str, str] = {}
        for key in ("FilterPolicy", "RedrivePolicy", "DeliveryPolicy"):
            if key in properties:
                value = properties[key]
                attributes[key] = value if isinstance(value, str) else json.dumps(value)
        if "RawMessageDelivery" in properties:
            attributes["RawMessageDelivery"] = _scalar_text(properties["RawMessageDelivery"])
        arn = self.client("sns").subscribe(
            TopicArn=properties["TopicArn"],
            Protocol=properties["Protocol"],
            Endpoint=properties["Endpoint"],
            Attributes=attributes,
            ReturnSubscriptionArn=True,
        )["SubscriptionArn"]
        self.record(logical_id, "AWS::SNS::Subscription", arn)


# CloudFormation's lifecycle rule properties this module translates to the S3 API's; any other is refused by name
# rather than dropped (a transition or a tag filter would change which objects a rule reaches).
_LIFECYCLE_RULE_KEYS = frozenset(
    {
        "Id",
        "Status",
        "Prefix",
        "ExpirationInDays",
        "ExpirationDate",
        "ExpiredObjectDeleteMarker",
        "NoncurrentVersionExpiration",
        "NoncurrentVersionExpirationInDays",
        "AbortIncompleteMultipartUpload",
    }
)


def _lifecycle_rule(logical_id: str, rule: Mapping[str, Any]) -> dict[str, Any]:
    """A CloudFormation `LifecycleConfiguration.Rules` entry as the S3 API's lifecycle rule."""
    unknown = sorted(set(rule) - _LIFECYCLE_RULE_KEYS)
    if unknown:
        raise TemplateError(f"{logical_id}: the local stack cannot apply lifecycle rule properties {unknown}")
    translated: dict[str, Any] = {"Status": rule["Status"], "Filter": {"Prefix": str(rule.get("Prefix", ""))}}
    if "Id" in rule:
        translated["ID"] = rule["Id"]
    expiration: dict[str, Any] = {}
    if "ExpirationInDays" in rule:
        expiration["Days"] = int(rule["ExpirationInDays"])
    if "ExpirationDate" in rule:
        expiration["Date"] = rule["ExpirationDate"]
    if "ExpiredObjectDeleteMarker" in rule:
        expiration["ExpiredObjectDeleteMarker"] = bool(rule["ExpiredObjectDeleteMarker"])
    if expiration:
        translated["Expiration"] = expiration
    noncurrent = dict(rule.get("NoncurrentVersionExpiration") or {})
    if "NoncurrentVersionExpirationInDays" in rule:
        noncurrent["NoncurrentDays"] = rule["NoncurrentVersionExpirationInDays"]
    if noncurrent:
        translated["NoncurrentVersionExpiration"] = {key: int(value) for key, value in noncurrent.items()}
    if "AbortIncompleteMultipartUpload" in rule:
        days = rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"]
        translated["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": int(days)}
    return translated


_CREATORS: dict[str, Callable[[_Creator, str, dict[str, Any]], None]] = {
    "AWS::DynamoDB::Table": _Creator.table,
    "AWS::Serverless::SimpleTable": _Creator.simple_table,
    "AWS::KMS::Key": _Creator.kms_key,
    "AWS::KMS::Alias": _Creator.kms_alias,
    "AWS::SecretsManager::Secret": _Creator.secret,
    "AWS::Logs::LogGroup": _Creator.log_group,
    "AWS::IAM::Role": _Creator.role,
    "AWS::IAM::ManagedPolicy": _Creator.managed_policy,
    "AWS::IAM::Policy": _Creator.inline_policy,
    "AWS::IAM::OIDCProvider": _Creator.oidc_provider,
    "AWS::Serverless::LayerVersion": _Creator.layer,
    "AWS::Lambda::LayerVersion": _Creator.layer,
    _SAM_FUNCTION: _Creator.sam_function,
    "AWS::Lambda::Function": _Creator.lambda_function,
    "AWS::Lambda::Url": _Creator.function_url,
    "AWS::Lambda::Permission": _Creator.permission,
    _SAM_STATE_MACHINE: _Creator.sam_state_machine,
    "AWS::StepFunctions::StateMachine": _Creator.state_machine,
    "AWS::Events::EventBus": _Creator.event_bus,
    "AWS::Events::Rule": _Creator.rule,
    "AWS::S3::Bucket": _Creator.bucket,
    "AWS::S3::BucketPolicy": _Creator.bucket_policy,
    "AWS::SQS::Queue": _Creator.queue,
    "AWS::SNS::Topic": _Creator.topic,
    "AWS::SNS::Subscription": _Creator.subscription,
    _SAM_HTTP_API: _Creator.http_api,
}


def create_stack(
    template: Mapping[str, Any],
    template_dir: Path,
    parameters: Mapping[str, Any],
    identity: StackIdentity,
    client: Callable[[str], Any],
    *,
    serve_function_url: Callable[[str, str], str] | None = None,
    serve_http_api: Callable[[HttpApi], str] | None = None,
) -> CreatedStack:
    """Create every active resource of `template` through `client(service)` (boto3 clients of the moto server).

    `serve_function_url(function_name, auth_type) -> url`, when given, serves each function URL locally; its URL
    becomes the `FunctionUrl` attribute. `serve_http_api(api) -> url`, when given, serves each HttpApi locally
    (its routes are added as the functions that declare them are created); its URL becomes `ApiEndpoint`."""
    resources = template.get("Resources") or {}
    resolver = Resolver(
        template,
        parameters,
        pseudo={
            "AWS::Region": identity.region,
            "AWS::AccountId": identity.account_id,
            "AWS::StackName": identity.stack_name,
            "AWS::StackId": identity.stack_id,
            "AWS::Partition": identity.partition,
            "AWS::URLSuffix": identity.url_suffix,
        },
    )

    def is_active(logical_id: str) -> bool:
        condition = resources[logical_id].get("Condition")
        return condition is None or resolver.condition(str(condition))

    active = [logical_id for logical_id in resources if is_active(logical_id)]
    unknown = sorted(
        {
            str(resources[logical_id]["Type"])
            for logical_id in active
            if resources[logical_id]["Type"] not in _CREATORS and resources[logical_id]["Type"] not in NO_LOCAL_EFFECT
        }
    )
    if unknown:
        raise UnsupportedResourceType(f"the local stack cannot create: {', '.join(unknown)}")
    creator = _Creator(
        template,
        template_dir,
        resolver,
        identity,
        client,
        serve_function_url=serve_function_url,
        serve_http_api=serve_http_api,
    )
    for logical_id in _dependency_order(template, active):
        try:
            creator.create(logical_id)
        except TemplateError:
            raise
        except Exception as error:
            raise TemplateError(f"creating {logical_id} ({resources[logical_id]['Type']}) failed: {error}") from error
    outputs: dict[str, Any] = {}
    for name, output in (template.get("Outputs") or {}).items():
        condition = output.get("Condition")
        if condition is not None and not resolver.condition(str(condition)):
            continue
        outputs[name] = resolver.resolve(output["Value"])
    return CreatedStack(
        identity=identity,
        parameters=dict(parameters),
        resources=dict(creator.resources),
        outputs=outputs,
        functions=list(creator.functions),
        skipped=dict(creator.skipped),
        stream_mappings=list(creator.stream_mappings),
        http_apis=list(creator.http_apis.values()),
    )
