"""`Auth0Emulator`: the emulated tenant served over real HTTP on 127.0.0.1 by uvicorn in a thread."""

from __future__ import annotations

import ipaddress
import time
from types import TracebackType
from typing import Any, Self

from aegis_local.asgi_thread import ThreadedServer, loopback_listener
from aegis_local.auth0.app import FaultInjector, ObservedRequest, RequestFault, build_app
from aegis_local.auth0.clock import Clock
from aegis_local.auth0.config import ClientConfig, EmulatorConfig
from aegis_local.auth0.tenant import ManagementEvent, Tenant


class EmulatorNotRunning(RuntimeError):
    """The emulator was used before `start()` or after `stop()`."""


class Auth0Emulator:
    """An Auth0 tenant on the wire. `start()` returns the base URL, which is also the issuer
    (`http://127.0.0.1:<port>/`, trailing slash like Auth0)."""

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Clock = time.time,
    ) -> None:
        if not ipaddress.ip_address(host).is_loopback or ipaddress.ip_address(host).version != 4:
            raise ValueError(f"the emulator listens on an IPv4 loopback address only, not {host!r}")
        self.config = config if config is not None else EmulatorConfig.default()
        self.clock = clock
        self._host = host
        self._requested_port = port
        self._faults = FaultInjector()
        self._tenant: Tenant | None = None
        self._server: ThreadedServer | None = None
        self._stopped = False

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> str:
        if self._tenant is not None or self._stopped:
            raise RuntimeError("an Auth0Emulator starts once")
        listener = loopback_listener(self._host, self._requested_port)
        issuer = f"http://{self._host}:{listener.getsockname()[1]}/"
        tenant = Tenant(self.config, issuer, self.clock)
        self._server = ThreadedServer(build_app(tenant, self._faults), listener, "Auth0 emulator")
        self._tenant = tenant
        return issuer

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
        self._server = None
        self._stopped = True

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def tenant(self) -> Tenant:
        if self._tenant is None or self._server is None:
            raise EmulatorNotRunning("start the Auth0 emulator first")
        return self._tenant

    # ----------------------------------------------------------------- where things are

    @property
    def issuer(self) -> str:
        return self.tenant.issuer

    @property
    def base_url(self) -> str:
        return self.tenant.issuer

    @property
    def management_audience(self) -> str:
        return self.tenant.management_audience

    @property
    def my_account_audience(self) -> str:
        return self.tenant.my_account_audience

    def provider_issuer(self, connection: str) -> str:
        return self.tenant.provider_issuer(connection)

    def endpoints(self) -> dict[str, str]:
        discovery = self.tenant.discovery()
        return {
            "issuer": self.issuer,
            "discovery": f"{self.issuer}.well-known/openid-configuration",
            "jwks": discovery["jwks_uri"],
            "token": discovery["token_endpoint"],
            "authorize": discovery["authorization_endpoint"],
            "device_authorization": discovery["device_authorization_endpoint"],
            "activate": f"{self.issuer}activate",
            "logout": discovery["end_session_endpoint"],
            "backchannel_authentication": discovery["backchannel_authentication_endpoint"],
            "revocation": discovery["revocation_endpoint"],
            "management_api": self.management_audience,
            "my_account_api": f"{self.issuer}me/v1/",
            "guardian": f"{self.issuer}__guardian/",
            **{
                f"provider:{connection.name}": self.provider_issuer(connection.name)
                for connection in self.config.connections
            },
        }

    def client_secret(self, client_id: str) -> str:
        return self.config.client(client_id).client_secret.get_secret_value()

    def user_password(self, email: str) -> str:
        """The login page's password of a user (generated at run time; see `EmulatorConfig.user_password`)."""
        return self.config.user_password(email)

    def register_application_urls(
        self,
        client_id: str,
        *,
        callbacks: tuple[str, ...] = (),
        web_origins: tuple[str, ...] = (),
        logout_urls: tuple[str, ...] = (),
    ) -> ClientConfig:
        """Allow more callback URLs, web origins (CORS, web_message) and logout URLs for an application, once the
        address it is served at is known (the console's port is chosen after the emulator started)."""
        updated = self.tenant.register_application_urls(
            client_id, callbacks=callbacks, web_origins=web_origins, logout_urls=logout_urls
        )
        self.config = self.tenant.config
        return updated

    # ----------------------------------------------------------------- the phone

    def pending(self, sub: str) -> list[dict[str, Any]]:
        return self.tenant.pending(sub)

    def approve(self, auth_req_id: str) -> None:
        self.tenant.decide(auth_req_id, approve=True)

    def deny(self, auth_req_id: str) -> None:
        self.tenant.decide(auth_req_id, approve=False)

    def lapse(self, auth_req_id: str) -> None:
        """Let a pending request expire now (the approver never answers it)."""
        self.tenant.lapse(auth_req_id)

    # ----------------------------------------------------------------- keys and accounts

    def rotate_keys(self) -> str:
        """Sign with a new key; publish it together with the previous one. Returns the new kid."""
        return self.tenant.keys.rotate()

    def retire_key(self, kid: str) -> None:
        self.tenant.keys.retire(kid)

    def signing_kid(self) -> str:
        return self.tenant.keys.current.kid

    def rotate_provider_keys(self, connection: str) -> str:
        return self.tenant.provider_keys[connection].rotate()

    def connect_account(self, sub: str, connection: str, scopes: tuple[str, ...] = ()) -> str:
        return self.tenant.connect_account(sub, connection, scopes)

    def is_blocked(self, sub: str) -> bool:
        return self.tenant.is_blocked(sub)

    # ----------------------------------------------------------------- audits and outages

    def issued_secrets(self) -> set[str]:
        """Every secret the tenant was configured with or issued: client secrets, access, ID, refresh,
        management and provider tokens."""
        return self.tenant.issued_secrets()

    def management_events(self) -> list[ManagementEvent]:
        return self.tenant.management_events()

    def set_down(self, down: bool = True) -> None:
        self._faults.set_down(down)

    def fail_next(self, count: int = 1, status: int = 500) -> None:
        self._faults.fail_next(count, status)

    def inject_fault(
        self,
        path: str,
        *,
        grant_type: str | None = None,
        status: int | None = None,
        delay_seconds: float = 0.0,
        count: int = 1,
    ) -> RequestFault:
        """Answer the next `count` requests to `path` (of `grant_type`, at the token endpoint) with `status`, after
        `delay_seconds`, or (a delay alone) late but normally: see `RequestFault`. The same as POST
        /__emulator/faults."""
        fault = RequestFault(path, grant_type, status, delay_seconds, count)
        self._faults.arm(fault)
        return fault

    def slow_down_storm(self, count: int) -> None:
        """Answer the next `count` CIBA polls 429 `slow_down` (POST /__emulator/slow-down)."""
        self._faults.slow_down_storm(count)

    def clear_faults(self) -> None:
        """Disarm every fault, outage and pending fail_next (DELETE /__emulator/faults)."""
        self._faults.clear()

    def armed_faults(self) -> list[tuple[RequestFault, int]]:
        """The faults still armed, each with how many requests it still answers."""
        return self._faults.armed()

    def observed_requests(self) -> list[ObservedRequest]:
        """The requests the tenant was sent (not the control plane nor the phone), oldest first, with the fault each
        met (GET /__emulator/faults)."""
        return self._faults.observed()
