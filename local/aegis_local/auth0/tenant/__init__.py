"""The emulated Auth0 tenant: all state and protocol rules, independent of HTTP.

`Tenant` is one object serving every API the emulator speaks, each in its own module: `oidc` (discovery, keys,
userinfo), `ciba` (bc-authorize and its grant), `tokens` (client authentication, client credentials, refresh,
Token Vault, revocation), `login` (`/authorize` with PKCE, the login page and session, the authorization code grant,
logout), `device` (the device authorization grant and the activation page's side), `management` (the Management
API), `my_account` (the My Account API) and `guardian` (the phone). They share the state and token minting of
`base`. Every public method takes already-parsed parameters, takes the tenant lock, and either returns the JSON body
of a success or raises one of the dialect errors of `errors.py` (the browser pages' outcomes are their own types).
"""

from aegis_local.auth0.tenant.ciba import CibaApi
from aegis_local.auth0.tenant.device import DeviceApi, DevicePrompt, UnknownUserCode
from aegis_local.auth0.tenant.guardian import GuardianApi
from aegis_local.auth0.tenant.login import (
    AuthorizationResponse,
    AuthorizeRefused,
    BrowserLoginApi,
    LoginFailed,
    LoginPrompt,
    LoginRequired,
    s256_challenge,
)
from aegis_local.auth0.tenant.management import ManagementApi
from aegis_local.auth0.tenant.my_account import MyAccountApi
from aegis_local.auth0.tenant.oidc import OidcApi
from aegis_local.auth0.tenant.records import ClientCredentials, ManagementEvent
from aegis_local.auth0.tenant.tokens import (
    FEDERATED_TOKEN_TYPE,
    SUBJECT_TOKEN_TYPE_ACCESS,
    SUBJECT_TOKEN_TYPE_REFRESH,
    TokenApi,
)

__all__ = [
    "FEDERATED_TOKEN_TYPE",
    "SUBJECT_TOKEN_TYPE_ACCESS",
    "SUBJECT_TOKEN_TYPE_REFRESH",
    "AuthorizationResponse",
    "AuthorizeRefused",
    "ClientCredentials",
    "DevicePrompt",
    "LoginFailed",
    "LoginPrompt",
    "LoginRequired",
    "ManagementEvent",
    "Tenant",
    "UnknownUserCode",
    "s256_challenge",
]


class Tenant(OidcApi, CibaApi, TokenApi, BrowserLoginApi, DeviceApi, ManagementApi, MyAccountApi, GuardianApi):
    """The tenant the emulator's HTTP app serves and the tests drive: one state, every API."""
