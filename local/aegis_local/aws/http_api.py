"""API Gateway HTTP APIs (`AWS::Serverless::HttpApi`) on 127.0.0.1, with the gateway's own rules.

moto records HTTP APIs but serves nothing. `HttpApiGateway` gives each HttpApi of the template its own loopback
listener (an HTTP API is the root of its own host, so one port per API) and applies what API Gateway applies before
a request reaches a function, all read from the template, never wired by hand:

- **Routes** come from the functions' `Type: HttpApi` events (`ApiId`, `Method`, `Path`): `{name}` matches one path
  segment, a final `{name+}` the rest of the path, `ANY` every method, `$default` whatever nothing else matches. The
  most specific route wins (literal segments over variables over a greedy variable, a method over `ANY`). No route:
  404 `{"message":"Not Found"}`.
- **JWT authorizers** (`Auth.Authorizers.<name>.JwtConfiguration`), with SAM's assignment rules: an event's `Auth`
  names an authorizer or `NONE` (only allowed with a `DefaultAuthorizer`), otherwise the default applies; the
  event's `AuthorizationScopes` replace the authorizer's. A request passes when the identity source (a header) holds
  a token, bare or `Bearer `-prefixed, signed RS256/RS384/RS512 by a key of the issuer's JWKS (found by `kid`,
  through the issuer's discovery document, cached), with `iss` equal to the issuer, `aud` (or `client_id` when
  there is no `aud`) one of the audiences, `exp` in the future, `nbf` and `iat` in the past, and, on a route with
  scopes, `scope`/`scp` holding at least one of them (Auth0's `permissions` claim is not read). Otherwise 401
  `{"message":"Unauthorized"}` with a `www-authenticate` header saying why, or 403 `{"message":"Forbidden"}` for a
  missing scope.
- **CORS** (`CorsConfiguration`): the gateway answers preflights (OPTIONS with an `Origin`) itself, and sets the
  CORS headers of every response for an allowed origin, ignoring those the function returns.
- **Lambda proxy integration, payload format 2.0** (`aegis_local.aws.lambda_proxy`), with the route key, path
  parameters and `requestContext.authorizer.jwt` (`claims` as strings, `scopes` a list, or null on a route without
  scopes). A function error, a timeout or an answer that is not a response is 500
  `{"message":"Internal Server Error"}`.

Anything in a template this emulation cannot honour (an OpenAPI definition, a Lambda or IAM authorizer, a named
stage, payload format 1.0) is a `HttpApiDefinitionError` naming it, never silently ignored. Settings that change
nothing a caller of the local stack can observe (access logs, throttling, tags) are accepted and not applied.
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import unquote

import httpx
from jose import jwt
from jose.exceptions import JOSEError

from aegis_local.aws.lambda_proxy import (
    IncomingRequest,
    LoopbackListener,
    ProxyResponse,
    RequestTooLarge,
    invoke_for_response,
    proxy_event,
    read_request,
    send_response,
)
from aegis_local.aws.lambdas import LambdaRouter
from aegis_local.aws.template import TemplateError

__all__ = [
    "DEFAULT_ROUTE",
    "CorsConfiguration",
    "HttpApi",
    "HttpApiDefinitionError",
    "HttpApiGateway",
    "HttpRoute",
    "JwksSource",
    "JwtAuthorizer",
    "TokenRejected",
    "claim_text",
    "token_scopes",
    "verify_token",
]

logger = logging.getLogger(__name__)

DEFAULT_ROUTE = "$default"
NO_AUTHORIZER = "NONE"
# API Gateway accepts RSA-signed tokens only.
RSA_ALGORITHMS = ("RS256", "RS384", "RS512")
# API Gateway caches an issuer's public keys for up to two hours.
JWKS_CACHE_SECONDS = 2 * 60 * 60
# A token naming an unknown kid re-reads the JWKS (keys rotate), at most this often per issuer.
JWKS_MIN_REFETCH_SECONDS = 5.0
HTTP_TIMEOUT_SECONDS = 5.0
_SEGMENT_VARIABLE = re.compile(r"^\{([A-Za-z0-9._-]+)(\+?)\}$")
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY"})

_NOT_FOUND = ProxyResponse.json(404, {"message": "Not Found"})
_FORBIDDEN = ProxyResponse.json(403, {"message": "Forbidden"})
_TOO_LARGE = ProxyResponse.json(413, {"message": "Request Entity Too Large"})
_UNAVAILABLE = ProxyResponse.json(503, {"message": "Service Unavailable"})
_INTEGRATION_FAILED = ProxyResponse.json(500, {"message": "Internal Server Error"})


class HttpApiDefinitionError(TemplateError):
    """An HttpApi or HttpApi event the template declares in a way SAM rejects or this emulation cannot honour."""


class TokenRejected(Exception):
    """The JWT authorizer refuses the request's token; the message is what `www-authenticate` reports."""


# ----------------------------------------------------------------------------------------------------------------
# The definition, read from the template


@dataclass(frozen=True)
class JwtAuthorizer:
    name: str
    issuer: str
    audiences: tuple[str, ...]
    # Lower-cased name of the request header that holds the token ($request.header.<Name>).
    identity_header: str
    # Scopes of routes that name no scopes of their own.
    default_scopes: tuple[str, ...] = ()

    @classmethod
    def from_properties(cls, name: str, properties: Mapping[str, Any]) -> JwtAuthorizer:
        if "FunctionArn" in properties or "JwtConfiguration" not in properties:
            raise HttpApiDefinitionError(f"authorizer {name}: only JWT authorizers are emulated locally")
        configuration = properties["JwtConfiguration"] or {}
        issuer = configuration.get("issuer")
        audiences = configuration.get("audience") or []
        if not isinstance(issuer, str) or not issuer:
            raise HttpApiDefinitionError(f"authorizer {name}: JwtConfiguration needs an issuer")
        if isinstance(audiences, str):
            audiences = [audiences]
        audiences = [str(audience) for audience in audiences if str(audience)]
        if not audiences:
            raise HttpApiDefinitionError(f"authorizer {name}: JwtConfiguration needs at least one audience")
        source = properties.get("IdentitySource")
        if not isinstance(source, str) or not source.startswith("$request.header."):
            # SAM requires it; the emulation reads tokens from headers only.
            raise HttpApiDefinitionError(
                f"authorizer {name}: IdentitySource must be $request.header.<Name>, not {source!r}"
            )
        return cls(
            name=name,
            issuer=issuer,
            audiences=tuple(audiences),
            identity_header=source.removeprefix("$request.header.").lower(),
            default_scopes=tuple(str(scope) for scope in properties.get("AuthorizationScopes") or ()),
        )


@dataclass(frozen=True)
class CorsConfiguration:
    allow_origins: tuple[str, ...] = ()
    allow_methods: tuple[str, ...] = ()
    allow_headers: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    allow_credentials: bool = False
    max_age: int | None = None

    @classmethod
    def from_property(cls, value: Any) -> CorsConfiguration | None:
        """SAM's `CorsConfiguration`: `true` (any origin, method and header), one origin, or the full object."""
        if value is None or value is False:
            return None
        if value is True:
            return cls(allow_origins=("*",), allow_methods=("*",), allow_headers=("*",))
        if isinstance(value, str):
            return cls(allow_origins=(value,))
        if not isinstance(value, Mapping):
            raise HttpApiDefinitionError(f"CorsConfiguration must be a boolean, an origin or an object: {value!r}")
        max_age = value.get("MaxAge")
        return cls(
            # A list parameter left empty resolves to [""]: no origin.
            allow_origins=_strings(value.get("AllowOrigins")),
            allow_methods=tuple(method.upper() for method in _strings(value.get("AllowMethods"))),
            allow_headers=tuple(header.lower() for header in _strings(value.get("AllowHeaders"))),
            expose_headers=_strings(value.get("ExposeHeaders")),
            allow_credentials=str(value.get("AllowCredentials", False)).lower() == "true",
            max_age=int(max_age) if max_age is not None else None,
        )

    def allows(self, origin: str) -> bool:
        return "*" in self.allow_origins or origin in self.allow_origins

    def response_headers(self, origin: str | None) -> dict[str, str]:
        """The headers of a simple (non-preflight) response: none unless `origin` is allowed."""
        if origin is None or not self.allows(origin):
            return {}
        headers = {"access-control-allow-origin": "*" if "*" in self.allow_origins else origin}
        if self.allow_credentials:
            headers["access-control-allow-credentials"] = "true"
        if self.expose_headers:
            headers["access-control-expose-headers"] = ",".join(self.expose_headers)
        return headers

    def preflight_headers(self, origin: str) -> dict[str, str]:
        headers = self.response_headers(origin)
        if not headers:
            return {}
        if self.allow_methods:
            headers["access-control-allow-methods"] = ",".join(self.allow_methods)
        if self.allow_headers:
            headers["access-control-allow-headers"] = ",".join(self.allow_headers)
        if self.max_age is not None:
            headers["access-control-max-age"] = str(self.max_age)
        return headers


@dataclass(frozen=True)
class HttpRoute:
    method: str  # upper case, or "ANY"
    path: str  # SAM syntax ("/missions/{mission_id}"), or "$default"
    function_name: str
    authorizer: str | None
    scopes: tuple[str, ...] = ()
    function_id: str = ""

    def __post_init__(self) -> None:
        if self.path != DEFAULT_ROUTE:
            _segments(self.path)  # raises on a malformed path

    @property
    def route_key(self) -> str:
        return DEFAULT_ROUTE if self.path == DEFAULT_ROUTE else f"{self.method} {self.path}"

    def match(self, method: str, path: str) -> dict[str, str] | None:
        """The path parameters if this route takes the request, else None."""
        if self.method not in ("ANY", method):
            return None
        if self.path == DEFAULT_ROUTE:
            return {}
        wanted = _segments(self.path)
        given = path.split("/")[1:]
        parameters: dict[str, str] = {}
        for index, (kind, text) in enumerate(wanted):
            if kind == "greedy":
                rest = given[index:]
                if not rest or not rest[0]:
                    return None
                parameters[text] = unquote("/".join(rest))
                return parameters
            if index >= len(given):
                return None
            if kind == "literal":
                if given[index] != text:
                    return None
            elif not given[index]:
                return None
            else:
                parameters[text] = unquote(given[index])
        return parameters if len(given) == len(wanted) else None

    def specificity(self) -> tuple[int, tuple[int, ...], int]:
        """Sort key, most specific first: no greedy variable, literal segments leftmost, a method over ANY."""
        if self.path == DEFAULT_ROUTE:
            return (2, (), 1)
        kinds = tuple({"literal": 0, "variable": 1, "greedy": 2}[kind] for kind, _ in _segments(self.path))
        return (1 if 2 in kinds else 0, kinds, 1 if self.method == "ANY" else 0)


@dataclass
class HttpApi:
    """One HttpApi of the template and the routes its functions' events give it."""

    logical_id: str
    api_id: str
    authorizers: dict[str, JwtAuthorizer] = field(default_factory=dict)
    default_authorizer: str | None = None
    cors: CorsConfiguration | None = None
    routes: list[HttpRoute] = field(default_factory=list)

    @classmethod
    def from_properties(cls, logical_id: str, api_id: str, properties: Mapping[str, Any]) -> HttpApi:
        for unsupported in ("DefinitionBody", "DefinitionUri"):
            if unsupported in properties:
                raise HttpApiDefinitionError(
                    f"{logical_id}: {unsupported} is not emulated locally (routes come from the functions' events)"
                )
        stage = properties.get("StageName", DEFAULT_ROUTE)
        if stage != DEFAULT_ROUTE:
            raise HttpApiDefinitionError(f"{logical_id}: only the $default stage is emulated locally, not {stage!r}")
        auth = properties.get("Auth") or {}
        if auth.get("EnableIamAuthorizer"):
            raise HttpApiDefinitionError(f"{logical_id}: the IAM authorizer is not emulated locally")
        authorizers = {
            name: JwtAuthorizer.from_properties(name, body or {})
            for name, body in (auth.get("Authorizers") or {}).items()
        }
        default = auth.get("DefaultAuthorizer")
        if default is not None and default not in authorizers:
            raise HttpApiDefinitionError(f"{logical_id}: DefaultAuthorizer {default!r} is not one of its Authorizers")
        return cls(
            logical_id=logical_id,
            api_id=api_id,
            authorizers=authorizers,
            default_authorizer=default,
            cors=CorsConfiguration.from_property(properties.get("CorsConfiguration")),
        )

    def add_event_route(
        self, function_id: str, event_name: str, function_name: str, properties: Mapping[str, Any]
    ) -> HttpRoute:
        """Register a function's `Type: HttpApi` event as SAM would translate it."""
        where = f"{function_id}: event {event_name}"
        version = str(properties.get("PayloadFormatVersion", "2.0"))
        if version != "2.0":
            raise HttpApiDefinitionError(f"{where}: payload format {version} is not emulated locally (only 2.0)")
        method = properties.get("Method")
        path = properties.get("Path")
        if method is None and path is None:
            method, path = "ANY", DEFAULT_ROUTE
        if method is None or path is None:
            raise HttpApiDefinitionError(f"{where}: an HttpApi event needs both Method and Path (or neither)")
        method = str(method).upper()
        if method == "X-AMAZON-APIGATEWAY-ANY-METHOD":
            method = "ANY"
        if method not in _METHODS:
            raise HttpApiDefinitionError(f"{where}: unknown method {method!r}")
        if str(path) in ("/$default", DEFAULT_ROUTE):
            path = DEFAULT_ROUTE
        authorizer, scopes = self._route_auth(where, properties.get("Auth"))
        try:
            route = HttpRoute(method, str(path), function_name, authorizer, scopes, function_id)
        except ValueError as error:
            raise HttpApiDefinitionError(f"{where}: {error}") from error
        if any(existing.route_key == route.route_key for existing in self.routes):
            raise HttpApiDefinitionError(f"{where}: route {route.route_key} is declared twice on {self.logical_id}")
        self.routes.append(route)
        return route

    def _route_auth(self, where: str, auth: Any) -> tuple[str | None, tuple[str, ...]]:
        if auth is None:
            if self.default_authorizer is None:
                return None, ()
            return self.default_authorizer, self.authorizers[self.default_authorizer].default_scopes
        name = auth.get("Authorizer")
        if name == NO_AUTHORIZER:
            if self.default_authorizer is None:
                raise HttpApiDefinitionError(f"{where}: Authorizer NONE needs a DefaultAuthorizer on the API")
            return None, ()
        if name is None:
            if self.default_authorizer is None:
                raise HttpApiDefinitionError(f"{where}: Auth names no Authorizer and the API has no default")
            name = self.default_authorizer
        if name not in self.authorizers:
            raise HttpApiDefinitionError(f"{where}: unknown authorizer {name!r}")
        scopes = auth.get("AuthorizationScopes")
        if scopes is None:
            return name, self.authorizers[name].default_scopes
        return name, tuple(str(scope) for scope in scopes)

    def select(self, method: str, path: str) -> tuple[HttpRoute, dict[str, str]] | None:
        for route in sorted(self.routes, key=HttpRoute.specificity):
            parameters = route.match(method, path)
            if parameters is not None:
                return route, parameters
        return None


def _strings(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else list(value)
    return tuple(str(item) for item in items if str(item))


def _segments(path: str) -> list[tuple[str, str]]:
    """("literal" | "variable" | "greedy", text) per segment of a route path."""
    if not path.startswith("/"):
        raise ValueError(f"route path {path!r} must start with /")
    segments: list[tuple[str, str]] = []
    parts = path.split("/")[1:]
    for index, part in enumerate(parts):
        variable = _SEGMENT_VARIABLE.match(part)
        if variable is None:
            if "{" in part or "}" in part:
                raise ValueError(f"route path {path!r}: a path variable must be a whole segment")
            segments.append(("literal", part))
        elif variable.group(2):
            if index != len(parts) - 1:
                raise ValueError(f"route path {path!r}: a greedy variable must be the last segment")
            segments.append(("greedy", variable.group(1)))
        else:
            segments.append(("variable", variable.group(1)))
    return segments


# ----------------------------------------------------------------------------------------------------------------
# The JWT authorizer


class JwksSource:
    """Each issuer's signing keys, found through its discovery document and cached as API Gateway caches them."""

    def __init__(self, http: httpx.Client | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self._http = http or httpx.Client(timeout=HTTP_TIMEOUT_SECONDS)
        self._clock = clock
        self._keys: dict[str, tuple[float, dict[str, dict[str, Any]]]] = {}
        self._lock = threading.Lock()

    def key(self, issuer: str, kid: str) -> dict[str, Any]:
        """The JWK of `kid` (raises TokenRejected when the issuer does not publish it)."""
        with self._lock:
            fetched_at, keys = self._keys.get(issuer, (float("-inf"), {}))
            age = self._clock() - fetched_at
            if age > JWKS_CACHE_SECONDS or (kid not in keys and age > JWKS_MIN_REFETCH_SECONDS):
                keys = self._fetch(issuer)
                self._keys[issuer] = (self._clock(), keys)
        if kid not in keys:
            raise TokenRejected("signing key not found in the issuer's JWKS")
        return keys[kid]

    def _fetch(self, issuer: str) -> dict[str, dict[str, Any]]:
        try:
            discovery = self._http.get(f"{issuer.rstrip('/')}/.well-known/openid-configuration")
            discovery.raise_for_status()
            jwks = self._http.get(str(discovery.json()["jwks_uri"]))
            jwks.raise_for_status()
            published = jwks.json()["keys"]
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as error:
            logger.warning("HTTP API authorizer: cannot read the signing keys of %s: %s", issuer, error)
            raise TokenRejected("unable to retrieve the issuer's signing keys") from error
        return {
            str(key["kid"]): key
            for key in published
            if isinstance(key, dict) and key.get("kty") == "RSA" and "kid" in key
        }

    def close(self) -> None:
        self._http.close()


def verify_token(authorizer: JwtAuthorizer, header_value: str | None, keys: JwksSource, now: float) -> dict[str, Any]:
    """The token's claims if `authorizer` accepts it (raises TokenRejected saying why)."""
    if not header_value or not header_value.strip():
        raise TokenRejected("the token is missing")
    token = header_value.strip()
    if token[:7].lower() == "bearer ":
        token = token[7:].strip()
    try:
        header = jwt.get_unverified_header(token)
    except JOSEError as error:
        raise TokenRejected("the token is malformed") from error
    algorithm = header.get("alg")
    if algorithm not in RSA_ALGORITHMS:
        raise TokenRejected(f"the token's algorithm {algorithm!r} is not supported")
    kid = header.get("kid")
    if not isinstance(kid, str):
        raise TokenRejected("the token names no signing key (kid)")
    key = keys.key(authorizer.issuer, kid)
    try:
        # python-jose checks the signature; the claims are checked below, by API Gateway's rules.
        claims = jwt.decode(
            token,
            key,
            algorithms=[algorithm],
            options={
                "verify_aud": False,
                "verify_iss": False,
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
                "verify_sub": False,
                "verify_jti": False,
                "verify_at_hash": False,
            },
        )
    except JOSEError as error:
        raise TokenRejected("the token signature is invalid") from error
    if claims.get("iss") != authorizer.issuer:
        raise TokenRejected("the token has an invalid issuer")
    audiences = claims.get("aud") if "aud" in claims else claims.get("client_id")
    presented = [audiences] if isinstance(audiences, str) else list(audiences or [])
    if not any(audience in authorizer.audiences for audience in presented):
        raise TokenRejected("the token does not have a valid audience")
    expires = _numeric(claims, "exp")
    if expires is None or expires <= now:
        raise TokenRejected("the token has expired")
    not_before = _numeric(claims, "nbf")
    if not_before is not None and not_before > now:
        raise TokenRejected("the token is not valid yet")
    issued = _numeric(claims, "iat")
    if issued is not None and issued > now:
        raise TokenRejected("the token was issued in the future")
    return claims


def _numeric(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TokenRejected(f"the token's {name} is not a number")
    return float(value)


def token_scopes(claims: Mapping[str, Any]) -> list[str]:
    """The token's scopes, from `scope` (space-separated) and `scp` (a list or a space-separated string)."""
    found: list[str] = []
    for name in ("scope", "scp"):
        value = claims.get(name)
        items = value.split() if isinstance(value, str) else list(value) if isinstance(value, list) else []
        found += [str(item) for item in items if str(item) not in found]
    return found


def claim_text(value: Any) -> str:
    """A claim as API Gateway passes it to the function: every value a string (lists as `[a b]`)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + " ".join(claim_text(item) for item in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{key}:{claim_text(item)}" for key, item in sorted(value.items())) + "]"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# ----------------------------------------------------------------------------------------------------------------
# The gateway


class HttpApiGateway:
    """One loopback listener per HttpApi; `router()` is looked up per request (it exists once the stack runs)."""

    def __init__(
        self,
        router: Callable[[], LambdaRouter | None],
        account_id: str,
        *,
        keys: JwksSource | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._router = router
        self.account_id = account_id
        self.keys = keys or JwksSource()
        self.clock = clock
        self._apis: dict[str, HttpApi] = {}
        self._listeners: dict[str, LoopbackListener] = {}
        self._lock = threading.Lock()

    def serve(self, api: HttpApi) -> str:
        """Start `api`'s listener; returns its URL (`http://127.0.0.1:<port>/`). Routes added to `api` later (as
        the functions that declare them are created) are served too."""

        class Handler(_HttpApiHandler):
            pass

        Handler.gateway = self
        Handler.api = api
        listener = LoopbackListener(Handler, f"http-api-{api.logical_id}")
        with self._lock:
            self._apis[api.logical_id] = api
            self._listeners[api.logical_id] = listener
        return listener.url

    @property
    def urls(self) -> dict[str, str]:
        """Logical id of each HttpApi -> its local URL."""
        with self._lock:
            return {logical_id: listener.url for logical_id, listener in self._listeners.items()}

    @property
    def apis(self) -> dict[str, HttpApi]:
        with self._lock:
            return dict(self._apis)

    def close(self) -> None:
        with self._lock:
            listeners = list(self._listeners.values())
            self._listeners.clear()
            self._apis.clear()
        for listener in listeners:
            listener.close()
        self.keys.close()

    def answer(self, api: HttpApi, request: IncomingRequest) -> ProxyResponse:
        """What API Gateway answers `request` on `api` (the CORS headers of the response aside)."""
        origin = request.headers.get("origin")
        if api.cors is not None and request.method == "OPTIONS" and origin is not None:
            return ProxyResponse(204, api.cors.preflight_headers(origin))
        selected = api.select(request.method, request.path)
        if selected is None:
            return _NOT_FOUND
        route, parameters = selected
        authorizer_context: dict[str, Any] | None = None
        if route.authorizer is not None:
            authorizer = api.authorizers[route.authorizer]
            try:
                claims = verify_token(
                    authorizer, request.headers.get(authorizer.identity_header), self.keys, self.clock()
                )
            except TokenRejected as rejection:
                challenge = f'Bearer scope="" error="invalid_token" error_description="{rejection}"'
                return ProxyResponse.json(401, {"message": "Unauthorized"}, {"www-authenticate": challenge})
            scopes = token_scopes(claims)
            if route.scopes and not set(route.scopes) & set(scopes):
                return _FORBIDDEN
            authorizer_context = {
                "jwt": {
                    "claims": {name: claim_text(value) for name, value in claims.items()},
                    # null on a route without scopes, as API Gateway sends it.
                    "scopes": scopes if route.scopes else None,
                }
            }
        router = self._router()
        if router is None:
            return _UNAVAILABLE
        event = proxy_event(
            request,
            route_key=route.route_key,
            api_id=api.api_id,
            account_id=self.account_id,
            path_parameters=parameters,
            authorizer=authorizer_context,
        )
        response = invoke_for_response(
            router,
            route.function_name,
            event,
            failed=_INTEGRATION_FAILED,
            door=f"HTTP API {api.logical_id} {route.route_key}",
        )
        if api.cors is not None:
            # With CorsConfiguration, the gateway's CORS headers replace the function's.
            kept = {k: v for k, v in response.headers.items() if not k.lower().startswith("access-control-")}
            response = ProxyResponse(response.status, kept, response.body, response.cookies)
        return response


class _HttpApiHandler(BaseHTTPRequestHandler):
    gateway: HttpApiGateway
    api: HttpApi
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("HTTP API %s: " + format, self.api.logical_id, *args)

    def do_GET(self) -> None:
        try:
            request = read_request(self)
        except RequestTooLarge:
            send_response(self, _TOO_LARGE)
            return
        response = self.gateway.answer(self.api, request)
        headers = dict(response.headers)
        cors = self.api.cors
        if cors is not None and "access-control-allow-origin" not in headers:
            headers.update(cors.response_headers(request.headers.get("origin")))
        headers["apigw-requestid"] = secrets.token_urlsafe(12)
        send_response(self, ProxyResponse(response.status, headers, response.body, response.cookies))

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET
