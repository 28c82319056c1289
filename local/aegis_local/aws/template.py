"""Read `template.yaml` the way CloudFormation does, so tests and the local stack share one source of resources.

CloudFormation's YAML short forms (`!Ref`, `!Sub`, `!GetAtt` ...) become the JSON forms (`{"Ref": ...}`,
`{"Fn::Sub": ...}`, `{"Fn::GetAtt": [...]}`), exactly as `aws cloudformation` would see them. Nothing is resolved
here: resolving needs parameter values and physical ids, which only the caller knows.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from aegis.partitions import partition_of, url_suffix

__all__ = [
    "DEFAULT_PSEUDO_PARAMETERS",
    "Resolver",
    "TemplateError",
    "load_template",
    "parameter_values",
    "predicted_deployment",
    "substitute_definition",
]

# Short-form tags whose long form is not simply "Fn::<Tag>".
_LONG_FORM = {"Ref": "Ref", "Condition": "Condition"}
_SUBSTITUTION = re.compile(r"\$\{([A-Za-z0-9_.:]+)\}")


class TemplateError(ValueError):
    """The template (or a state machine definition) is not what CloudFormation would accept."""


class _TemplateLoader(yaml.SafeLoader):
    """A SafeLoader that also understands CloudFormation's intrinsic-function tags."""


def _construct_intrinsic(loader: _TemplateLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    long_form = _LONG_FORM.get(tag_suffix, f"Fn::{tag_suffix}")
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if tag_suffix == "GetAtt":
            # `!GetAtt Resource.Attribute` splits at the first dot only (attributes may contain dots).
            resource, _, attribute = str(value).partition(".")
            if not attribute:
                raise TemplateError(f"!GetAtt {value!r} needs the form Resource.Attribute (line {_line(node)})")
            value = [resource, attribute]
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    else:  # pragma: no cover - PyYAML has no other node kinds
        raise TemplateError(f"unsupported node for !{tag_suffix} (line {_line(node)})")
    return {long_form: value}


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


_TemplateLoader.add_multi_constructor("!", _construct_intrinsic)


def load_template(path: str | Path) -> dict[str, Any]:
    """Parse a CloudFormation/SAM YAML template into its JSON-equivalent dict.

    Raises TemplateError if the file is not valid YAML or is not a template (no `Resources` mapping).
    """
    source = Path(path)
    try:
        document = yaml.load(source.read_text(encoding="utf-8"), Loader=_TemplateLoader)  # noqa: S506
    except yaml.YAMLError as error:
        raise TemplateError(f"{source} is not valid YAML: {error}") from error
    if not isinstance(document, dict) or not isinstance(document.get("Resources"), dict):
        raise TemplateError(f"{source} has no Resources mapping, so it is not a CloudFormation template")
    return document


def substitute_definition(definition: str, substitutions: Mapping[str, str]) -> str:
    """Apply `DefinitionSubstitutions` the way Step Functions does: `${Name}` replaced textually.

    Raises TemplateError naming every `${...}` in the definition that has no value, because CloudFormation
    would otherwise deploy a state machine that fails only when it reaches that state.
    """
    missing = sorted({name for name in _SUBSTITUTION.findall(definition) if name not in substitutions})
    if missing:
        raise TemplateError(f"definition uses substitutions with no value: {', '.join(missing)}")
    return _SUBSTITUTION.sub(lambda match: str(substitutions[match.group(1)]), definition)


# ---------------------------------------------------------------------------------------------------------------------
# Resolving intrinsic functions
# ---------------------------------------------------------------------------------------------------------------------

DEFAULT_PSEUDO_PARAMETERS: dict[str, str] = {
    "AWS::Partition": "aws",
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "123456789012",
    "AWS::StackName": "aegis",
    "AWS::URLSuffix": "amazonaws.com",
}
_NO_VALUE: Any = object()


def parameter_values(template: Mapping[str, Any], overrides: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Every parameter's value (override, else default) as CloudFormation passes it: a string, validated.

    Raises TemplateError for an unknown override, a parameter with neither value nor default, a value that breaks
    the parameter's AllowedValues/AllowedPattern/MinLength/MinValue/MaxValue, or a broken `Rules` assertion, as
    `aws cloudformation deploy` would.
    """
    declared: Mapping[str, Any] = template.get("Parameters") or {}
    given = dict(overrides or {})
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise TemplateError(f"unknown parameters: {', '.join(unknown)}")
    values: dict[str, str] = {}
    for name, spec in declared.items():
        raw = given.get(name, spec.get("Default"))
        if raw is None:
            raise TemplateError(f"parameter {name} has no value and no default")
        value = _parameter_string(raw)
        problem = _parameter_problem(spec, value)
        if problem:
            raise TemplateError(f"parameter {name}={value!r}: {problem}")
        values[name] = value
    _check_rules(template, values)
    return values


def _check_rules(template: Mapping[str, Any], values: Mapping[str, str]) -> None:
    """The template's `Rules`: each assertion whose rule condition holds must hold, as CloudFormation checks them
    before creating anything."""
    rules: Mapping[str, Any] = template.get("Rules") or {}
    resolver = Resolver(template, values)
    for name, rule in rules.items():
        if "RuleCondition" in rule and resolver.resolve(rule["RuleCondition"]) is not True:
            continue
        for assertion in rule.get("Assertions") or []:
            if resolver.resolve(assertion["Assert"]) is not True:
                raise TemplateError(f"rule {name}: {assertion.get('AssertDescription', 'assertion failed')}")


def _parameter_string(raw: Any) -> str:
    if isinstance(raw, bool):
        return "true" if raw else "false"
    return str(raw)


def _parameter_problem(spec: Mapping[str, Any], value: str) -> str | None:
    allowed = spec.get("AllowedValues")
    if allowed is not None and value not in [_parameter_string(item) for item in allowed]:
        return f"not one of {allowed}"
    pattern = spec.get("AllowedPattern")
    if pattern is not None and not re.fullmatch(pattern, value):
        return f"does not match {pattern}"
    if "MinLength" in spec and len(value) < int(spec["MinLength"]):
        return f"shorter than {spec['MinLength']}"
    if "MaxLength" in spec and len(value) > int(spec["MaxLength"]):
        return f"longer than {spec['MaxLength']}"
    if spec.get("Type") == "Number":
        try:
            number = float(value)
        except ValueError:
            return "not a number"
        if "MinValue" in spec and number < float(spec["MinValue"]):
            return f"below {spec['MinValue']}"
        if "MaxValue" in spec and number > float(spec["MaxValue"]):
            return f"above {spec['MaxValue']}"
    return None


class Resolver:
    """Evaluates CloudFormation intrinsic functions against parameter values and the stack's physical ids.

    `refs` maps a logical id to what `Ref` returns for it; `attributes` maps (logical id, attribute) to what
    `Fn::GetAtt` returns. A local stack passes the ids of the resources it created; `predicted_deployment` gives
    the ids CloudFormation would give, for reading a template without deploying it.
    """

    def __init__(
        self,
        template: Mapping[str, Any],
        parameters: Mapping[str, str],
        *,
        refs: Mapping[str, str] | None = None,
        attributes: Mapping[tuple[str, str], str] | None = None,
        pseudo: Mapping[str, str] | None = None,
    ) -> None:
        self.template = template
        self.parameters = dict(parameters)
        self.refs = dict(refs or {})
        self.attributes = dict(attributes or {})
        given = dict(pseudo or {})
        # The partition and its DNS suffix follow the region unless given, as they do in an account.
        region = given.get("AWS::Region", DEFAULT_PSEUDO_PARAMETERS["AWS::Region"])
        partition = given.get("AWS::Partition") or partition_of(region)
        derived = {"AWS::Partition": partition, "AWS::URLSuffix": url_suffix(partition)}
        self.pseudo = {**DEFAULT_PSEUDO_PARAMETERS, **derived, **given}
        self._conditions: dict[str, bool] = {}

    def condition(self, name: str) -> bool:
        """The value of a named condition of the template's `Conditions` section."""
        if name not in self._conditions:
            conditions: Mapping[str, Any] = self.template.get("Conditions") or {}
            if name not in conditions:
                raise TemplateError(f"unknown condition {name}")
            value = self.resolve(conditions[name])
            if not isinstance(value, bool):
                raise TemplateError(f"condition {name} does not evaluate to true or false")
            self._conditions[name] = value
        return self._conditions[name]

    def resolve(self, value: Any) -> Any:
        """`value` with every intrinsic function evaluated; `AWS::NoValue` removes the key or list item."""
        if isinstance(value, list):
            return [item for item in (self.resolve(item) for item in value) if item is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, argument), *_ = value.items()
            if key == "Ref":
                return self._ref(argument)
            if key == "Condition" and isinstance(argument, str):
                return self.condition(argument)
            if key.startswith("Fn::"):
                return self._function(key, argument)
        resolved = {key: self.resolve(item) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not _NO_VALUE}

    def _ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            value = self.parameters[name]
            declared = ((self.template.get("Parameters") or {}).get(name) or {}).get("Type", "String")
            if isinstance(value, str) and (declared == "CommaDelimitedList" or str(declared).startswith("List<")):
                # A list parameter's Ref is a list, as in CloudFormation (an empty one is [""]).
                return value.split(",")
            return value
        if name in self.refs:
            return self.refs[name]
        raise TemplateError(f"Ref {name}: no such parameter, pseudo parameter or known resource")

    def _get_att(self, resource: str, attribute: str) -> str:
        try:
            return self.attributes[(resource, attribute)]
        except KeyError:
            raise TemplateError(f"Fn::GetAtt {resource}.{attribute}: attribute not known") from None

    def _function(self, name: str, argument: Any) -> Any:
        if name == "Fn::GetAtt":
            resource, attribute = argument if isinstance(argument, list) else str(argument).split(".", 1)
            return self._get_att(resource, self.resolve(attribute))
        if name == "Fn::Sub":
            return self._sub(argument)
        if name == "Fn::If":
            condition, when_true, when_false = argument
            return self.resolve(when_true if self.condition(condition) else when_false)
        if name == "Fn::Join":
            delimiter, items = argument
            return str(delimiter).join(str(item) for item in self.resolve(items))
        if name == "Fn::Select":
            index, items = argument
            chosen = self.resolve(items)
            position = int(self.resolve(index))
            if not 0 <= position < len(chosen):
                raise TemplateError(f"Fn::Select index {position} out of range for {chosen!r}")
            return chosen[position]
        if name == "Fn::Split":
            delimiter, text = argument
            return str(self.resolve(text)).split(delimiter)
        if name == "Fn::Equals":
            left, right = (self.resolve(item) for item in argument)
            return _parameter_string(left) == _parameter_string(right)
        if name == "Fn::Not":
            return not self._boolean(argument[0])
        if name == "Fn::And":
            return all(self._boolean(item) for item in argument)
        if name == "Fn::Or":
            return any(self._boolean(item) for item in argument)
        if name == "Fn::FindInMap":
            mapping, first, second = (self.resolve(item) for item in argument)
            try:
                return self.template["Mappings"][mapping][first][second]
            except KeyError:
                raise TemplateError(f"Fn::FindInMap {mapping}/{first}/{second}: no such entry") from None
        raise TemplateError(f"{name} is not supported by this resolver")

    def _boolean(self, value: Any) -> bool:
        result = self.resolve(value)
        if not isinstance(result, bool):
            raise TemplateError(f"{value!r} is not a condition")
        return result

    def _sub(self, argument: Any) -> str:
        if isinstance(argument, list):
            text, variables = argument
            local = {key: self.resolve(item) for key, item in variables.items()}
        else:
            text, local = argument, {}

        def replace(match: re.Match[str]) -> str:
            expression = match.group(1)
            if expression.startswith("!"):
                return "${" + expression[1:] + "}"
            if expression in local:
                return str(local[expression])
            if expression in self.pseudo or expression in self.parameters or expression in self.refs:
                return str(self._ref(expression))
            if "." in expression:
                resource, attribute = expression.split(".", 1)
                return self._get_att(resource, attribute)
            return str(self._ref(expression))

        return re.sub(r"\$\{([^}]+)\}", replace, str(text))


def predicted_deployment(
    template: Mapping[str, Any], parameters: Mapping[str, str], pseudo: Mapping[str, str] | None = None
) -> Resolver:
    """A Resolver whose physical ids are the ones CloudFormation would assign in `pseudo`'s account and region.

    Explicit names (FunctionName, Name, TableName, LogGroupName, RoleName, LayerName) are used when the template
    sets them; generated ones follow CloudFormation's `<stack>-<LogicalId>` shape. Only the resource types this
    project uses are known; any other raises TemplateError, so a new type cannot be silently mis-described.
    """
    names = Resolver(template, parameters, pseudo=pseudo)
    refs: dict[str, str] = {}
    attributes: dict[tuple[str, str], str] = {}
    for logical_id, resource in template["Resources"].items():
        ref, resource_attributes = _predict(names, logical_id, resource.get("Type"), resource.get("Properties") or {})
        refs[logical_id] = ref
        attributes.update({(logical_id, attribute): value for attribute, value in resource_attributes.items()})
    return Resolver(template, parameters, refs=refs, attributes=attributes, pseudo=pseudo)


# Resource type -> (property holding an explicit name, what Ref returns, ARN pattern). Patterns use {name}, {region},
# {account}, {partition}; a Ref of "arn" means Ref returns the ARN.
_STATE_MACHINE_ARN = "arn:{partition}:states:{region}:{account}:stateMachine:{name}"
_PREDICTABLE: dict[str, tuple[str, str, str]] = {
    "AWS::Serverless::Function": ("FunctionName", "name", "arn:{partition}:lambda:{region}:{account}:function:{name}"),
    "AWS::Lambda::Function": ("FunctionName", "name", "arn:{partition}:lambda:{region}:{account}:function:{name}"),
    "AWS::DynamoDB::Table": ("TableName", "name", "arn:{partition}:dynamodb:{region}:{account}:table/{name}"),
    "AWS::Serverless::StateMachine": ("Name", "arn", "arn:{partition}:states:{region}:{account}:stateMachine:{name}"),
    "AWS::StepFunctions::StateMachine": (
        "Name",
        "arn",
        "arn:{partition}:states:{region}:{account}:stateMachine:{name}",
    ),
    "AWS::Events::Rule": ("Name", "name", "arn:{partition}:events:{region}:{account}:rule/{name}"),
    "AWS::Logs::LogGroup": ("LogGroupName", "name", "arn:{partition}:logs:{region}:{account}:log-group:{name}:*"),
    "AWS::IAM::Role": ("RoleName", "name", "arn:{partition}:iam::{account}:role/{name}"),
    "AWS::Serverless::LayerVersion": ("LayerName", "arn", "arn:{partition}:lambda:{region}:{account}:layer:{name}:1"),
    "AWS::Lambda::Permission": ("", "name", ""),
    "AWS::CloudWatch::Alarm": ("AlarmName", "name", "arn:{partition}:cloudwatch:{region}:{account}:alarm:{name}"),
    "AWS::CloudWatch::Dashboard": ("DashboardName", "name", ""),
}


_CLOUDFRONT_TYPES = frozenset(
    {"AWS::CloudFront::Distribution", "AWS::CloudFront::OriginAccessControl", "AWS::CloudFront::ResponseHeadersPolicy"}
)


def _predict(names: Resolver, logical_id: str, kind: Any, properties: Mapping[str, Any]) -> tuple[str, dict[str, str]]:
    where = {
        "region": names.pseudo["AWS::Region"],
        "account": names.pseudo["AWS::AccountId"],
        "partition": names.pseudo["AWS::Partition"],
    }
    if kind == "AWS::IAM::OIDCProvider":
        host = str(names.resolve(properties["Url"])).removeprefix("https://")
        return f"arn:{where['partition']}:iam::{where['account']}:oidc-provider/{host}", {}
    if kind == "AWS::KMS::Key":
        key_id = f"{logical_id.lower()}-0000-4000-8000-000000000000"
        arn = "arn:{partition}:kms:{region}:{account}:key/".format(**where) + key_id
        return key_id, {"Arn": arn, "KeyId": key_id}
    if kind == "AWS::KMS::Alias":
        return str(names.resolve(properties["AliasName"])), {}
    if kind == "AWS::SQS::Queue":
        # Ref of a queue is its URL, not its name or ARN.
        explicit = properties.get("QueueName")
        generated = f"{names.pseudo['AWS::StackName']}-{logical_id}"
        name = str(names.resolve(explicit)) if explicit is not None else generated
        url = f"https://sqs.{where['region']}.{names.pseudo['AWS::URLSuffix']}/{where['account']}/{name}"
        arn = "arn:{partition}:sqs:{region}:{account}:".format(**where) + name
        return url, {"Arn": arn, "QueueName": name, "QueueUrl": url}
    if kind == "AWS::S3::Bucket":
        explicit = properties.get("BucketName")
        generated = f"{names.pseudo['AWS::StackName']}-{logical_id}".lower()[:63]
        bucket = str(names.resolve(explicit)) if explicit is not None else generated
        domain = f"{bucket}.s3.{names.pseudo['AWS::URLSuffix']}"
        regional = f"{bucket}.s3.{where['region']}.{names.pseudo['AWS::URLSuffix']}"
        return bucket, {
            "Arn": f"arn:{where['partition']}:s3:::{bucket}",
            "DomainName": domain,
            "RegionalDomainName": regional,
        }
    if kind == "AWS::S3::BucketPolicy":
        # Its Ref (the bucket's name) refers to another resource, unknown here; nothing of the project refers to it.
        return f"{names.pseudo['AWS::StackName']}-{logical_id}", {}
    if kind == "AWS::SNS::Topic":
        # Ref of a topic is its ARN.
        explicit = properties.get("TopicName")
        generated = f"{names.pseudo['AWS::StackName']}-{logical_id}"
        topic = str(names.resolve(explicit)) if explicit is not None else generated
        topic_arn = "arn:{partition}:sns:{region}:{account}:".format(**where) + topic
        return topic_arn, {"TopicArn": topic_arn, "TopicName": topic}
    if kind == "AWS::SNS::Subscription":
        # Its Ref (the topic's ARN and an id SNS makes up) is unknown here; nothing of the project refers to it.
        return f"{names.pseudo['AWS::StackName']}-{logical_id}", {}
    if kind in ("AWS::Serverless::HttpApi", "AWS::ApiGatewayV2::Api"):
        # API Gateway makes up a 10-character lower-case id; here one derived from the stack and the logical id.
        api_id = hashlib.sha256(f"{names.pseudo['AWS::StackName']}/{logical_id}".encode()).hexdigest()[:10]
        endpoint = f"https://{api_id}.execute-api.{where['region']}.{names.pseudo['AWS::URLSuffix']}"
        return api_id, {"ApiId": api_id, "ApiEndpoint": endpoint}
    if kind in _CLOUDFRONT_TYPES:
        # CloudFront makes up its ids (E + 13 upper-case characters; a UUID for a policy); here ones derived from the
        # stack and the logical id. A distribution's domain is d<14 characters>.cloudfront.net, in every partition.
        digest = hashlib.sha256(f"{names.pseudo['AWS::StackName']}/{logical_id}".encode()).hexdigest()
        cloudfront_id = str(uuid.UUID(digest[:32])) if kind.endswith("Policy") else "E" + digest[:13].upper()
        attributes = {"Id": cloudfront_id}
        if kind == "AWS::CloudFront::Distribution":
            attributes["DomainName"] = f"d{digest[13:27]}.cloudfront.net"
        return cloudfront_id, attributes
    if kind not in _PREDICTABLE:
        raise TemplateError(f"{logical_id}: resource type {kind} has no predicted physical id")
    name_property, ref_kind, arn_pattern = _PREDICTABLE[kind]
    explicit = properties.get(name_property) if name_property else None
    name = str(names.resolve(explicit)) if explicit is not None else f"{names.pseudo['AWS::StackName']}-{logical_id}"
    if not arn_pattern:
        return name, {}
    arn = arn_pattern.format(name=name, **where)
    attributes = {"Arn": arn}
    if kind.endswith("StateMachine"):
        attributes["Name"] = name
    if kind == "AWS::DynamoDB::Table" and "StreamSpecification" in properties:
        attributes["StreamArn"] = f"{arn}/stream/1970-01-01T00:00:00.000"
    return (arn if ref_kind == "arn" else name), attributes
