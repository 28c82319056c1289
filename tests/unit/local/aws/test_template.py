"""aegis_local.aws.template: CloudFormation YAML in, CloudFormation JSON forms out; intrinsics resolved on request."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from aegis_local.aws.resources import StackIdentity
from aegis_local.aws.template import (
    Resolver,
    TemplateError,
    load_template,
    parameter_values,
    predicted_deployment,
    substitute_definition,
)

SHORT_FORMS = """
Parameters:
  Env: {Type: String, Default: dev, AllowedValues: [dev, prod]}
  Size: {Type: Number, Default: 3, MinValue: 1, MaxValue: 5}
  Name: {Type: String, AllowedPattern: "^[a-z]+$"}
Conditions:
  IsProd: !Equals [!Ref Env, prod]
  NotProd: !Not [!Condition IsProd]
Resources:
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: !Sub "${AWS::StackName}-${Name}"
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      FunctionName: !Join ["-", [!Ref "AWS::StackName", fn]]
      Environment:
        Variables:
          TABLE: !Ref Table
          TABLE_ARN: !GetAtt Table.Arn
          ONLY_PROD: !If [IsProd, "yes", !Ref "AWS::NoValue"]
          LITERAL: !Sub "${!NotSubstituted}"
          HOST: !Select [1, !Split ["//", "https://example.com/x"]]
          WITH_VARS: !Sub ["${Prefix}-${Table}", {Prefix: !Ref Env}]
"""


@pytest.fixture
def template(tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "template.yaml"
    path.write_text(SHORT_FORMS, encoding="utf-8")
    return load_template(path)


def test_short_forms_become_the_json_forms(template: dict[str, Any]) -> None:
    variables = template["Resources"]["Fn"]["Properties"]["Environment"]["Variables"]
    assert variables["TABLE"] == {"Ref": "Table"}
    assert variables["TABLE_ARN"] == {"Fn::GetAtt": ["Table", "Arn"]}
    assert variables["ONLY_PROD"] == {"Fn::If": ["IsProd", "yes", {"Ref": "AWS::NoValue"}]}
    assert template["Conditions"]["NotProd"] == {"Fn::Not": [{"Condition": "IsProd"}]}
    assert variables["WITH_VARS"] == {"Fn::Sub": ["${Prefix}-${Table}", {"Prefix": {"Ref": "Env"}}]}


def test_resolving_evaluates_every_intrinsic(template: dict[str, Any]) -> None:
    resolver = predicted_deployment(template, parameter_values(template, {"Name": "orders"}))
    variables = resolver.resolve(template["Resources"]["Fn"]["Properties"]["Environment"]["Variables"])
    assert variables == {
        "TABLE": "aegis-orders",
        "TABLE_ARN": "arn:aws:dynamodb:us-east-1:123456789012:table/aegis-orders",
        "LITERAL": "${NotSubstituted}",
        "HOST": "example.com/x",
        "WITH_VARS": "dev-aegis-orders",
    }  # ONLY_PROD vanished: AWS::NoValue removes the key
    assert resolver.refs["Fn"] == "aegis-fn"
    prod = predicted_deployment(template, parameter_values(template, {"Name": "orders", "Env": "prod"}))
    assert prod.resolve({"Fn::If": ["IsProd", "yes", "no"]}) == "yes"
    assert prod.condition("NotProd") is False


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({}, "Name has no value"),
        ({"Name": "Orders"}, r"Name='Orders': does not match"),
        ({"Name": "orders", "Env": "test"}, "not one of"),
        ({"Name": "orders", "Size": "9"}, "above 5"),
        ({"Name": "orders", "Size": "three"}, "not a number"),
        ({"Name": "orders", "Colour": "red"}, "unknown parameters: Colour"),
    ],
)
def test_parameter_values_are_checked_as_cloudformation_does(
    template: dict[str, Any], overrides: dict[str, str], message: str
) -> None:
    with pytest.raises(TemplateError, match=message):
        parameter_values(template, overrides)


def test_unknown_names_are_named_errors(template: dict[str, Any]) -> None:
    resolver = Resolver(template, parameter_values(template, {"Name": "x"}))
    with pytest.raises(TemplateError, match="Ref Missing"):
        resolver.resolve({"Ref": "Missing"})
    with pytest.raises(TemplateError, match=r"Fn::GetAtt Table\.Arn"):
        resolver.resolve({"Fn::GetAtt": ["Table", "Arn"]})
    with pytest.raises(TemplateError, match="unknown condition Nope"):
        resolver.condition("Nope")
    with pytest.raises(TemplateError, match="Fn::Base64 is not supported"):
        resolver.resolve({"Fn::Base64": "x"})
    with pytest.raises(TemplateError, match="out of range"):
        resolver.resolve({"Fn::Select": [3, ["a"]]})


def test_unpredictable_resource_types_are_refused(template: dict[str, Any]) -> None:
    template["Resources"]["Queue"] = {"Type": "AWS::Kinesis::Stream", "Properties": {}}
    with pytest.raises(TemplateError, match="AWS::Kinesis::Stream has no predicted physical id"):
        predicted_deployment(template, parameter_values(template, {"Name": "x"}))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Resources: [unclosed", "not valid YAML"),
        ("just: a mapping\n", "no Resources mapping"),
        ("Resources:\n  X:\n    Value: !GetAtt NoDot\n", "Resource.Attribute"),
    ],
)
def test_files_that_are_not_templates_are_refused(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(TemplateError, match=message):
        load_template(path)


def test_definition_substitution_replaces_every_placeholder_and_names_missing_ones() -> None:
    text = '{"Resource": "${FnArn}", "Max": "${Max}"}'
    assert substitute_definition(text, {"FnArn": "arn:aws:lambda:x", "Max": "4"}) == (
        '{"Resource": "arn:aws:lambda:x", "Max": "4"}'
    )
    with pytest.raises(TemplateError, match="no value: FnArn, Max"):
        substitute_definition(text, {})


@pytest.mark.parametrize(
    ("region", "partition", "suffix"),
    [
        ("us-east-1", "aws", "amazonaws.com"),
        ("us-gov-west-1", "aws-us-gov", "amazonaws.com"),
        ("cn-north-1", "aws-cn", "amazonaws.com.cn"),
    ],
)
def test_the_partition_and_url_suffix_follow_the_region(region: str, partition: str, suffix: str) -> None:
    pseudo = Resolver({"Resources": {}}, {}, pseudo={"AWS::Region": region}).pseudo
    assert (pseudo["AWS::Partition"], pseudo["AWS::URLSuffix"]) == (partition, suffix)
    identity = StackIdentity("s", region, "123456789012")
    assert (identity.partition, identity.url_suffix) == (partition, suffix)
    assert identity.stack_id.startswith(f"arn:{partition}:cloudformation:{region}:")
