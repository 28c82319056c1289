"""Corrections where moto 5.2.5 (or talking to a local endpoint) differs from AWS in a way the application relies on.

- **A task token answered before the heartbeat watch starts is missed.** For a `waitForTaskToken` task with a
  heartbeat, the interpreter registers the token, invokes the function, and only then creates the heartbeat
  endpoint that `SendTaskSuccess`/`SendTaskFailure` wake. An answer that arrives in between (an approval function
  that fails at once, e.g. `Approval.Halted` when the kill switch is engaged) is stored but wakes nobody, so the
  execution sleeps a whole heartbeat interval before it notices. On AWS the answer is taken at once. The fix wakes
  a heartbeat endpoint that is created after the outcome is already known.

- **S3 Control puts the account id in the host name.** botocore sends S3 Control calls to
  `<account-id>.<endpoint host>`, which exists on AWS but not for `http://127.0.0.1:<port>`, so every
  `s3control` call of a handler (the account public access block) would fail locally with a connection error.
  `S3ControlEndpointFix` drops that label again, for the moto server's host only, in every botocore session of the
  process (the sessions handlers create themselves included), so handler code needs no local workaround.

Applied by the local stack while it runs (process-wide, like moto's own state) and removed by `uninstall()`.
"""

from __future__ import annotations

import re
import threading
from typing import Any
from urllib.parse import urlsplit, urlunsplit

__all__ = ["S3ControlEndpointFix", "StepFunctionsFixes"]

_ACCOUNT_LABEL = re.compile(r"^\d{12}\.")
_S3_CONTROL_EVENT = "before-sign.s3-control.*"


class StepFunctionsFixes:
    _lock = threading.Lock()
    _original_setup_heartbeat: Any = None

    @classmethod
    def install(cls) -> None:
        from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackEndpoint

        with cls._lock:
            if cls._original_setup_heartbeat is not None:
                return
            original = CallbackEndpoint.setup_heartbeat_endpoint
            cls._original_setup_heartbeat = original

            def setup_heartbeat_endpoint(endpoint: Any, heartbeat_seconds: int) -> Any:
                heartbeat = original(endpoint, heartbeat_seconds)
                if endpoint.get_outcome() is not None:
                    heartbeat.notify()
                return heartbeat

            CallbackEndpoint.setup_heartbeat_endpoint = setup_heartbeat_endpoint  # type: ignore[method-assign,assignment]

    @classmethod
    def uninstall(cls) -> None:
        from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackEndpoint

        with cls._lock:
            if cls._original_setup_heartbeat is None:
                return
            CallbackEndpoint.setup_heartbeat_endpoint = cls._original_setup_heartbeat  # type: ignore[method-assign]
            cls._original_setup_heartbeat = None


class S3ControlEndpointFix:
    _lock = threading.Lock()
    _handler: Any = None
    _default_session: Any = None

    @classmethod
    def install(cls, endpoint_url: str) -> None:
        import boto3
        from botocore import handlers

        endpoint_host = urlsplit(endpoint_url).netloc

        def drop_account_label(request: Any, **_: Any) -> None:
            parts = urlsplit(request.url)
            if parts.netloc != endpoint_host and _ACCOUNT_LABEL.sub("", parts.netloc) == endpoint_host:
                request.url = urlunsplit(parts._replace(netloc=endpoint_host))

        with cls._lock:
            if cls._handler is not None:
                raise RuntimeError("the S3 Control endpoint fix is already installed")
            cls._handler = drop_account_label
            # Every botocore session created from now on registers it; the default session may exist already.
            handlers.BUILTIN_HANDLERS.append((_S3_CONTROL_EVENT, drop_account_label))
            default = boto3.DEFAULT_SESSION
            if default is not None:
                default._session.register(_S3_CONTROL_EVENT, drop_account_label)
                cls._default_session = default

    @classmethod
    def uninstall(cls) -> None:
        from botocore import handlers

        with cls._lock:
            handler = cls._handler
            if handler is None:
                return
            handlers.BUILTIN_HANDLERS[:] = [spec for spec in handlers.BUILTIN_HANDLERS if spec[1] is not handler]
            if cls._default_session is not None:
                cls._default_session._session.unregister(_S3_CONTROL_EVENT, handler)
            cls._handler = None
            cls._default_session = None
