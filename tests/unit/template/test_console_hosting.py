"""The console's hosting in template.yaml: a private, encrypted, versioned bucket that only this stack's CloudFront
distribution reads (origin access control), served over HTTPS with the same strict CSP and security headers as the
local console server; never in a partition without CloudFront (GovCloud, China), where nothing else of the stack may
then name a console resource; and the ops API's CORS lists the console's origin exactly when there is one."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from aegis_local.aws.template import TemplateError, parameter_values, predicted_deployment
from aegis_local.console.server import content_security_policy, security_headers
from tests.support.stack import EXAMPLE_PARAMETERS, Stack, build_stack, pristine_template

CONSOLE_RESOURCES = {
    "ConsoleBucket",
    "ConsoleBucketPolicy",
    "ConsoleOriginAccessControl",
    "ConsoleResponseHeadersPolicy",
    "ConsoleDistribution",
}
CONSOLE_OUTPUTS = {"ConsoleUrl", "ConsoleBucketName", "ConsoleDistributionId"}
WITHOUT_CLOUDFRONT = [("aws-us-gov", "us-gov-west-1", "amazonaws.com"), ("aws-cn", "cn-north-1", "amazonaws.com.cn")]
CERTIFICATE_ARN = "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-aaaa-bbbb-cccc-0123456789ab"
PARTITION_IDS = [partition for partition, _, _ in WITHOUT_CLOUDFRONT]
_SUB_NAME = re.compile(r"\$\{([A-Za-z0-9]+)(?:\.[A-Za-z0-9.]+)?\}")


def stack_in(partition: str, region: str, url_suffix: str, **overrides: str) -> Stack:
    template = pristine_template()
    parameters = parameter_values(template, {**EXAMPLE_PARAMETERS, **overrides})
    pseudo = {
        "AWS::Partition": partition,
        "AWS::Region": region,
        "AWS::AccountId": "123456789012",
        "AWS::StackName": "aegis",
        "AWS::URLSuffix": url_suffix,
    }
    return Stack(template, parameters, predicted_deployment(template, parameters, pseudo))


def deployed(stack: Stack) -> set[str]:
    """The logical ids CloudFormation would create: those without a condition or whose condition holds."""
    return {
        name
        for name, body in stack.template["Resources"].items()
        if "Condition" not in body or stack.resolver.condition(body["Condition"])
    }


def references(stack: Stack, value: Any) -> Iterator[str]:
    """Every logical id or parameter `value` names through Ref, GetAtt or Sub, following only the arm of each Fn::If
    its condition picks (as CloudFormation does)."""
    if isinstance(value, list):
        for item in value:
            yield from references(stack, item)
    elif isinstance(value, Mapping):
        if set(value) == {"Fn::If"}:
            condition, when_true, when_false = value["Fn::If"]
            yield from references(stack, when_true if stack.resolver.condition(condition) else when_false)
            return
        for key, item in value.items():
            if key == "Ref":
                yield str(item)
            elif key == "Fn::GetAtt":
                yield str(item[0]) if isinstance(item, list) else str(item).split(".")[0]
            elif key == "Fn::Sub":
                text, variables = (item, {}) if isinstance(item, str) else (item[0], item[1])
                yield from (name for name in _SUB_NAME.findall(text) if name not in variables)
                yield from references(stack, variables)
            else:
                yield from references(stack, item)


def dangling(stack: Stack) -> dict[str, set[str]]:
    """Deployed resources and outputs that name a resource the partition does not create."""
    created = deployed(stack)
    declared = set(stack.template["Resources"])
    problems: dict[str, set[str]] = {}
    bodies = {name: stack.template["Resources"][name] for name in created}
    bodies |= {
        f"Outputs.{name}": body
        for name, body in stack.template.get("Outputs", {}).items()
        if "Condition" not in body or stack.resolver.condition(body["Condition"])
    }
    for name, body in bodies.items():
        missing = {ref for ref in references(stack, body) if ref in declared and ref not in created}
        if missing:
            problems[name] = missing
    return problems


def csp_directives(policy: str) -> dict[str, list[str]]:
    directives: dict[str, list[str]] = {}
    for part in policy.split(";"):
        words = part.split()
        if words:
            directives[words[0]] = words[1:]
    return directives


@pytest.mark.parametrize(("partition", "region", "suffix"), WITHOUT_CLOUDFRONT, ids=PARTITION_IDS)
def test_a_partition_without_cloudfront_deploys_no_console_and_nothing_names_one(
    partition: str, region: str, suffix: str
) -> None:
    stack = stack_in(partition, region, suffix)
    assert stack.resolver.condition("ConsoleEnabled") is False
    assert not CONSOLE_RESOURCES & deployed(stack)
    outputs = {
        name
        for name, body in stack.template["Outputs"].items()
        if "Condition" not in body or stack.resolver.condition(body["Condition"])
    }
    assert not CONSOLE_OUTPUTS & outputs
    assert dangling(stack) == {}
    # The ops API still answers the origins an operator lists (a console served elsewhere).
    listed = stack_in(partition, region, suffix, ConsoleOrigins="https://console.example.org")
    assert listed.properties("OpsApi")["CorsConfiguration"]["AllowOrigins"] == ["https://console.example.org"]


def test_the_commercial_partition_deploys_the_console_unless_told_not_to(stack: Stack) -> None:
    assert deployed(stack) >= CONSOLE_RESOURCES
    assert dangling(stack) == {}
    without = build_stack(DeployConsole="false")
    assert not CONSOLE_RESOURCES & deployed(without)
    assert dangling(without) == {}
    assert "AllowOrigins" not in without.properties("OpsApi")["CorsConfiguration"]


def test_the_bucket_is_private_encrypted_versioned_and_tls_only(stack: Stack) -> None:
    bucket = stack.properties("ConsoleBucket")
    assert bucket["PublicAccessBlockConfiguration"] == dict.fromkeys(
        ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"), True
    )
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert bucket["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    policy = stack.properties("ConsoleBucketPolicy")
    assert policy["Bucket"] == stack.ref("ConsoleBucket")
    statements = policy["PolicyDocument"]["Statement"]
    tls = next(s for s in statements if s["Effect"] == "Deny")
    assert tls["Principal"] == "*"
    assert tls["Action"] == "s3:*"
    assert tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert set(tls["Resource"]) == {stack.arn("ConsoleBucket"), f"{stack.arn('ConsoleBucket')}/*"}


def test_only_this_distribution_reads_the_bucket_through_origin_access_control(stack: Stack) -> None:
    allows = [
        s for s in stack.properties("ConsoleBucketPolicy")["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"
    ]
    distribution_arn = f"arn:aws:cloudfront::123456789012:distribution/{stack.ref('ConsoleDistribution')}"
    assert allows == [
        {
            "Sid": "ThisDistributionReadsOnly",
            "Effect": "Allow",
            "Principal": {"Service": "cloudfront.amazonaws.com"},
            "Action": "s3:GetObject",
            "Resource": f"{stack.arn('ConsoleBucket')}/*",
            "Condition": {"StringEquals": {"AWS:SourceArn": distribution_arn}},
        }
    ]
    access = stack.properties("ConsoleOriginAccessControl")["OriginAccessControlConfig"]
    assert access["OriginAccessControlOriginType"] == "s3"
    assert access["SigningBehavior"] == "always"
    config = stack.properties("ConsoleDistribution")["DistributionConfig"]
    (origin,) = config["Origins"]
    assert origin["OriginAccessControlId"] == stack.resolver.attributes[("ConsoleOriginAccessControl", "Id")]
    assert origin["DomainName"] == stack.resolver.attributes[("ConsoleBucket", "RegionalDomainName")]
    # An empty OriginAccessIdentity: the legacy identity is not used besides the access control.
    assert origin["S3OriginConfig"] == {"OriginAccessIdentity": ""}


def test_the_distribution_serves_https_only_with_the_security_headers(stack: Stack) -> None:
    config = stack.properties("ConsoleDistribution")["DistributionConfig"]
    behaviour = config["DefaultCacheBehavior"]
    assert behaviour["ViewerProtocolPolicy"] == "redirect-to-https"
    assert behaviour["AllowedMethods"] == ["GET", "HEAD"]
    assert behaviour["ResponseHeadersPolicyId"] == stack.ref("ConsoleResponseHeadersPolicy")
    assert config["DefaultRootObject"] == "index.html"
    assert config["ViewerCertificate"] == {"CloudFrontDefaultCertificate": True}
    assert "Aliases" not in config
    custom = build_stack(
        ConsoleDomainName="console.example.org",
        ConsoleCertificateArn=CERTIFICATE_ARN,
    )
    custom_config = custom.properties("ConsoleDistribution")["DistributionConfig"]
    assert custom_config["ViewerCertificate"]["MinimumProtocolVersion"] == "TLSv1.2_2021"
    assert custom_config["ViewerCertificate"]["SslSupportMethod"] == "sni-only"
    assert custom_config["Aliases"] == ["console.example.org"]
    assert custom.resolver.resolve(custom.template["Outputs"]["ConsoleUrl"]["Value"]) == "https://console.example.org/"


def test_the_headers_policy_matches_the_local_console_server(stack: Stack) -> None:
    security = stack.properties("ConsoleResponseHeadersPolicy")["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]
    assert all(header["Override"] is True for header in security.values())
    deployed_csp = csp_directives(security["ContentSecurityPolicy"]["ContentSecurityPolicy"])
    issuer = EXAMPLE_PARAMETERS["Auth0Issuer"]
    api = stack.resolver.resolve(stack.template["Outputs"]["OpsApiUrl"]["Value"])
    local_csp = csp_directives(content_security_policy(issuer, api))
    # The same directives, each with the same sources except where the hosts differ in form (origin vs URL).
    assert set(deployed_csp) == set(local_csp)
    hosts = {"connect-src", "frame-src"}
    for directive in set(local_csp) - hosts:
        assert deployed_csp[directive] == local_csp[directive], directive
    assert deployed_csp["script-src"] == ["'self'"]
    assert deployed_csp["style-src"] == ["'self'"]
    assert deployed_csp["frame-src"] == [issuer]
    assert deployed_csp["connect-src"][:2] == ["'self'", issuer]
    # The API's own host matches the wildcard this policy names for it.
    wildcard = deployed_csp["connect-src"][2]
    assert re.fullmatch(wildcard.replace(".", r"\.").replace("*", r"[a-z0-9]+"), api), (wildcard, api)
    local = security_headers(issuer, api)
    assert security["FrameOptions"]["FrameOption"] == local["X-Frame-Options"] == "DENY"
    assert security["ReferrerPolicy"]["ReferrerPolicy"] == local["Referrer-Policy"] == "no-referrer"
    assert "ContentTypeOptions" in security
    assert local["X-Content-Type-Options"] == "nosniff"
    assert security["StrictTransportSecurity"]["AccessControlMaxAgeSec"] >= 31536000
    custom = stack.properties("ConsoleResponseHeadersPolicy")["ResponseHeadersPolicyConfig"]["CustomHeadersConfig"]
    assert {"Header": "Cross-Origin-Opener-Policy", "Value": local["Cross-Origin-Opener-Policy"], "Override": True} in (
        custom["Items"]
    )


def test_the_ops_api_allows_the_console_origin_and_the_listed_ones(stack: Stack) -> None:
    console_origin = "https://" + stack.resolver.attributes[("ConsoleDistribution", "DomainName")]
    assert stack.properties("OpsApi")["CorsConfiguration"]["AllowOrigins"] == [console_origin]
    listed = build_stack(ConsoleOrigins="https://a.example.org,https://b.example.org")
    assert listed.properties("OpsApi")["CorsConfiguration"]["AllowOrigins"] == [
        "https://a.example.org",
        "https://b.example.org",
        console_origin,
    ]
    assert stack.resolver.resolve(stack.template["Outputs"]["ConsoleUrl"]["Value"]) == console_origin + "/"


@pytest.mark.parametrize(
    "given",
    [
        {"ConsoleDomainName": "console.example.org"},
        {"ConsoleCertificateArn": CERTIFICATE_ARN},
    ],
    ids=["domain-without-certificate", "certificate-without-domain"],
)
def test_a_console_domain_and_its_certificate_come_together(given: dict[str, str]) -> None:
    with pytest.raises(TemplateError, match="ConsoleDomainHasItsCertificate"):
        build_stack(**given)
