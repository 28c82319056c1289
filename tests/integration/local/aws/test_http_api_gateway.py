"""The local stack's HTTP API emulation (aegis_local.aws.http_api) on a small template of its own: an HttpApi with a
JWT authorizer on the Auth0 emulator and CORS for one console origin, and the fixture's echo function behind routes
of every kind. Tokens come from the emulator's token endpoint; the bad ones are signed with the tenant's own key so
that exactly one claim is wrong, and the gateway's www-authenticate must name that claim."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from aegis_local.auth0 import DEFAULT_OPS_API_AUDIENCE, EmulatorConfig
from aegis_local.auth0.keys import SigningKey
from aegis_local.aws.stack import LocalStack
from tests.support.http_api_probe import (
    TIMEOUT,
    assert_unauthorized,
    probe_token,
    tenant_signed_token,
    with_probe_client,
)

FUNCTIONS = Path(__file__).parent / "stack_fixture" / "functions"
CONSOLE_ORIGIN = "http://127.0.0.1:5999"
PROBE_CLIENT_ID = "aegis-gateway-probe"
SCOPES = ("aegis:read", "aegis:audit", "aegis:killswitch", "aegis:rearm")


def http_api_event(path: str, method: str, scopes: list[str] | None = None, **auth: Any) -> dict[str, Any]:
    properties: dict[str, Any] = {"ApiId": {"Ref": "ProbeApi"}, "Method": method, "Path": path}
    if scopes is not None:
        auth["AuthorizationScopes"] = scopes
    if auth:
        properties["Auth"] = auth
    return {"Type": "HttpApi", "Properties": properties}


TEMPLATE: dict[str, Any] = {
    "AWSTemplateFormatVersion": "2010-09-09",
    "Transform": "AWS::Serverless-2016-10-31",
    "Parameters": {
        "Auth0Issuer": {"Type": "String"},
        "OpsApiAudience": {"Type": "String"},
        "ConsoleOrigins": {"Type": "CommaDelimitedList", "Default": ""},
    },
    "Resources": {
        "ProbeApi": {
            "Type": "AWS::Serverless::HttpApi",
            "Properties": {
                "Auth": {
                    "Authorizers": {
                        "Auth0Jwt": {
                            "IdentitySource": "$request.header.Authorization",
                            "JwtConfiguration": {
                                "issuer": {"Ref": "Auth0Issuer"},
                                "audience": [{"Ref": "OpsApiAudience"}],
                            },
                        }
                    },
                    "DefaultAuthorizer": "Auth0Jwt",
                },
                "CorsConfiguration": {
                    "AllowOrigins": {"Ref": "ConsoleOrigins"},
                    "AllowHeaders": ["authorization", "content-type"],
                    "AllowMethods": ["GET", "POST"],
                    "MaxAge": 600,
                },
            },
        },
        "EchoFunction": {
            "Type": "AWS::Serverless::Function",
            "Properties": {
                "CodeUri": "functions/echo/",
                "Handler": "app.handler",
                "Runtime": "python3.13",
                "Events": {
                    "Item": http_api_event("/items/{item_id}", "GET", ["aegis:read"]),
                    "ItemReport": http_api_event("/items/{item_id}/report.html", "GET", ["aegis:read"]),
                    "Files": http_api_event("/files/{path+}", "ANY", ["aegis:read"]),
                    "Kill": http_api_event("/kill", "POST", ["aegis:killswitch", "aegis:rearm"]),
                    "Me": http_api_event("/me", "GET"),
                    "Health": http_api_event("/health", "GET", Authorizer="NONE"),
                },
            },
        },
    },
    "Outputs": {
        "ProbeApiUrl": {"Value": {"Fn::Sub": "https://${ProbeApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}"}}
    },
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    directory = tmp_path_factory.mktemp("http_api")
    (directory / "functions").symlink_to(FUNCTIONS)
    (directory / "template.yaml").write_text(yaml.safe_dump(TEMPLATE, sort_keys=False))
    config = with_probe_client(EmulatorConfig.default(), PROBE_CLIENT_ID, DEFAULT_OPS_API_AUDIENCE, SCOPES)
    with LocalStack(
        template_path=directory / "template.yaml",
        stack_name="http-api",
        emulator_config=config,
        console_origins=[CONSOLE_ORIGIN],
    ) as running:
        yield running


def token(stack: LocalStack, *scopes: str) -> str:
    return probe_token(stack, PROBE_CLIENT_ID, DEFAULT_OPS_API_AUDIENCE, scopes)


def tenant_signed(stack: LocalStack, **claims: Any) -> str:
    """Good claims for the probe client (aegis:read), changed by `claims`, signed with the tenant's own key."""
    return tenant_signed_token(stack, PROBE_CLIENT_ID, DEFAULT_OPS_API_AUDIENCE, "aegis:read", **claims)


def call(stack: LocalStack, method: str, path: str, bearer: str | None = None, **kwargs: Any) -> httpx.Response:
    headers = dict(kwargs.pop("headers", {}))
    if bearer is not None:
        headers["Authorization"] = f"Bearer {bearer}"
    return httpx.request(method, stack.http_api_url("ProbeApi") + path, headers=headers, timeout=TIMEOUT, **kwargs)


def event_of(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return dict(response.json()["event"])


def test_a_route_with_its_scope_reaches_the_function_with_a_payload_2_event(stack: LocalStack) -> None:
    response = call(
        stack,
        "GET",
        "/items/item%201?tag=a&tag=b&empty=",
        token(stack, "aegis:read", "aegis:audit"),
        headers={"X-Probe": "yes"},
    )

    event = event_of(response)
    assert event["version"] == "2.0"
    assert event["routeKey"] == "GET /items/{item_id}"
    assert event["rawPath"] == "/items/item%201"
    assert event["rawQueryString"] == "tag=a&tag=b&empty="
    assert event["queryStringParameters"] == {"tag": "a,b", "empty": ""}
    assert event["pathParameters"] == {"item_id": "item 1"}
    assert event["headers"]["x-probe"] == "yes"
    assert event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["routeKey"] == "GET /items/{item_id}"
    assert context["stage"] == "$default"
    assert context["accountId"] == stack.identity.account_id
    assert context["apiId"] == stack.physical_id("ProbeApi")
    assert context["http"]["method"] == "GET"
    assert context["http"]["sourceIp"] == "127.0.0.1"
    jwt_context = context["authorizer"]["jwt"]
    assert jwt_context["scopes"] == ["aegis:read", "aegis:audit"]
    claims = jwt_context["claims"]
    assert claims["sub"] == f"{PROBE_CLIENT_ID}@clients"
    assert claims["aud"] == DEFAULT_OPS_API_AUDIENCE
    # Every claim value is a string, as API Gateway passes them.
    assert all(isinstance(value, str) for value in claims.values()), claims
    assert claims["exp"].isdigit()


def test_the_token_may_be_bare_and_a_body_is_passed_through(stack: LocalStack) -> None:
    response = httpx.post(
        stack.http_api_url("ProbeApi") + "/kill",
        headers={"Authorization": token(stack, "aegis:rearm")},
        json={"reason": "drill"},
        timeout=TIMEOUT,
    )

    event = event_of(response)
    assert event["routeKey"] == "POST /kill"
    assert event["body"] == '{"reason":"drill"}'
    assert "pathParameters" not in event


def test_no_token_or_a_token_the_authorizer_refuses_is_401(stack: LocalStack) -> None:
    assert_unauthorized(call(stack, "GET", "/items/a"), "the token is missing")
    assert_unauthorized(call(stack, "GET", "/items/a", "not-a-jwt"), "malformed")
    assert_unauthorized(call(stack, "GET", "/items/a", tenant_signed(stack, exp=int(time.time()) - 1)), "expired")
    assert_unauthorized(
        call(stack, "GET", "/items/a", tenant_signed(stack, aud="https://aegis.local/api")), "valid audience"
    )
    assert_unauthorized(
        call(stack, "GET", "/items/a", tenant_signed(stack, iss=stack.emulator.issuer.rstrip("/"))), "invalid issuer"
    )
    assert_unauthorized(
        call(stack, "GET", "/items/a", tenant_signed(stack, nbf=int(time.time()) + 300)), "not valid yet"
    )
    assert_unauthorized(
        call(stack, "GET", "/items/a", tenant_signed(stack, iat=int(time.time()) + 300)), "issued in the future"
    )
    # The tenant's kid on a key the tenant never published.
    stranger = SigningKey.generate("stranger")
    forged = SigningKey(stranger.private_key, stack.emulator.signing_kid(), stranger.public_jwk)
    good_claims = {
        "iss": stack.emulator.issuer,
        "aud": DEFAULT_OPS_API_AUDIENCE,
        "exp": int(time.time()) + 600,
        "scope": "aegis:read",
    }
    assert_unauthorized(call(stack, "GET", "/items/a", forged.sign(good_claims)), "signature is invalid")
    assert_unauthorized(call(stack, "GET", "/items/a", stranger.sign(good_claims)), "signing key not found")
    # A good tenant-signed token passes: the refusals above are each about their one claim.
    assert event_of(call(stack, "GET", "/items/a", tenant_signed(stack)))["pathParameters"] == {"item_id": "a"}


def test_a_valid_token_without_one_of_the_route_scopes_is_403(stack: LocalStack) -> None:
    refused = call(stack, "GET", "/items/a", token(stack, "aegis:audit"))
    assert refused.status_code == 403, refused.text
    assert refused.json() == {"message": "Forbidden"}
    # The permissions claim is not read: only scope/scp count.
    assert call(stack, "GET", "/items/a", tenant_signed(stack, scope="", permissions=["aegis:read"])).status_code == 403
    # `scp` counts like `scope`; one of the route's scopes is enough.
    assert event_of(call(stack, "GET", "/items/a", tenant_signed(stack, scope=None, scp=["aegis:read"])))
    assert event_of(call(stack, "POST", "/kill", token(stack, "aegis:killswitch")))


def test_a_route_without_scopes_takes_any_valid_token_and_an_open_route_takes_none(stack: LocalStack) -> None:
    me = event_of(call(stack, "GET", "/me", token(stack, "aegis:audit")))
    assert me["requestContext"]["authorizer"]["jwt"]["scopes"] is None
    assert_unauthorized(call(stack, "GET", "/me"), "missing")

    health = event_of(call(stack, "GET", "/health"))
    assert "authorizer" not in health["requestContext"]


def test_routes_match_like_api_gateway(stack: LocalStack) -> None:
    read = token(stack, "aegis:read")
    # The literal segment route wins over the shorter variable one; a greedy variable takes the rest of the path.
    assert event_of(call(stack, "GET", "/items/a/report.html", read))["routeKey"] == "GET /items/{item_id}/report.html"
    files = event_of(call(stack, "DELETE", "/files/a/b/c.txt", read))
    assert files["routeKey"] == "ANY /files/{path+}"
    assert files["pathParameters"] == {"path": "a/b/c.txt"}
    for method, path in (("GET", "/nothing"), ("POST", "/items/a"), ("GET", "/items/a/b"), ("GET", "/files/")):
        missing = call(stack, method, path, read)
        assert missing.status_code == 404, (method, path, missing.text)
        assert missing.json() == {"message": "Not Found"}


def test_cors_preflights_are_answered_by_the_gateway_for_the_console_origin_only(stack: LocalStack) -> None:
    preflight = call(
        stack,
        "OPTIONS",
        "/items/a",
        headers={"Origin": CONSOLE_ORIGIN, "Access-Control-Request-Method": "GET"},
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == CONSOLE_ORIGIN
    assert preflight.headers["access-control-allow-methods"] == "GET,POST"
    assert preflight.headers["access-control-allow-headers"] == "authorization,content-type"
    assert preflight.headers["access-control-max-age"] == "600"

    stranger = call(
        stack, "OPTIONS", "/items/a", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}
    )
    assert stranger.status_code == 204
    assert "access-control-allow-origin" not in stranger.headers

    allowed = call(stack, "GET", "/items/a", token(stack, "aegis:read"), headers={"Origin": CONSOLE_ORIGIN})
    assert allowed.headers["access-control-allow-origin"] == CONSOLE_ORIGIN
    # A refusal carries them too, so that the console can read it.
    refused = call(stack, "GET", "/items/a", headers={"Origin": CONSOLE_ORIGIN})
    assert refused.status_code == 401
    assert refused.headers["access-control-allow-origin"] == CONSOLE_ORIGIN
    assert (
        "access-control-allow-origin"
        not in call(stack, "GET", "/health", headers={"Origin": "https://evil.example"}).headers
    )


def test_the_functions_cors_headers_are_replaced_and_its_failures_are_500(stack: LocalStack) -> None:
    def permissive(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return {"statusCode": 201, "headers": {"Access-Control-Allow-Origin": "*", "X-Kept": "1"}, "body": "made"}

    with stack.lambdas.override("EchoFunction", permissive):
        made = call(stack, "GET", "/health", headers={"Origin": "https://evil.example"})
    assert (made.status_code, made.text, made.headers["x-kept"]) == (201, "made", "1")
    assert "access-control-allow-origin" not in made.headers

    def failing(event: dict[str, Any], context: Any) -> dict[str, Any]:
        raise RuntimeError("the function broke")

    def malformed(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return {"statusCode": "two hundred"}

    for handler in (failing, malformed):
        with stack.lambdas.override("EchoFunction", handler):
            broken = call(stack, "GET", "/health")
        assert broken.status_code == 500, handler.__name__
        assert broken.json() == {"message": "Internal Server Error"}


def test_the_api_is_recorded_like_a_deployed_one(stack: LocalStack) -> None:
    api_id = stack.physical_id("ProbeApi")
    apis = stack.client("apigatewayv2").get_apis()["Items"]
    assert [api["ProtocolType"] for api in apis if api["ApiId"] == api_id] == ["HTTP"]
    assert stack.resources.attribute("ProbeApi", "ApiEndpoint") == stack.http_api_url("ProbeApi")
    assert stack.outputs["ProbeApiUrl"] == f"https://{api_id}.execute-api.us-east-1.amazonaws.com"
    assert stack.parameters["ConsoleOrigins"] == [CONSOLE_ORIGIN]
    routes = {route.route_key: route for route in stack.http_apis()["ProbeApi"].routes}
    assert routes["GET /health"].authorizer is None
    assert {key for key, route in routes.items() if route.authorizer == "Auth0Jwt"} == set(routes) - {"GET /health"}
    policy = stack.client("lambda").get_policy(FunctionName=stack.physical_id("EchoFunction"))["Policy"]
    assert "apigateway.amazonaws.com" in policy
    with pytest.raises(LookupError, match="not an HttpApi"):
        stack.http_api_url("OpsApi")
