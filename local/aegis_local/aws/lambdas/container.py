"""A function's execution environment: a private module instance of its handler file, loaded at the cold start.

Each function gets its own module instance of its `app.py`, loaded by file path under a unique module name (every
function's file is called `app.py`). Module globals therefore behave as they do on Lambda: shared by warm
invocations of one function, never across functions.
"""

from __future__ import annotations

import importlib.util
import itertools
import sys
import threading
import uuid
from datetime import UTC, datetime
from types import ModuleType

from aegis_local.aws.lambdas.spec import FunctionSpec, Handler

# Cold starts run one at a time. Two threads importing different handlers can each start a package import chain
# that reaches a module the other is still executing; CPython's import-deadlock detection then hands one of them the
# partially initialized module ("cannot import name ... (most likely due to a circular import)"). On Lambda every
# function has a process of its own, so serializing imports here removes a failure that cannot happen there.
_COLD_START_LOCK = threading.RLock()


class HandlerLoadError(Exception):
    """Lambda could not import the handler: reported with the runtime's own error type."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


class Container:
    """One execution environment: a private module instance of the function's handler file."""

    _serial = itertools.count(1)

    def __init__(self, spec: FunctionSpec) -> None:
        self.spec = spec
        self.module: ModuleType | None = None
        self.handler: Handler | None = None
        self.log_stream_name = f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"

    def load(self) -> Handler:
        """Import the handler file (the cold start). Runs in the function's environment."""
        if self.handler is not None:
            return self.handler
        spec = self.spec
        path = spec.handler_file
        if not path.is_file():
            raise HandlerLoadError(
                "Runtime.ImportModuleError",
                f"Unable to import module '{spec.handler_module}': No module named '{spec.handler_module}'",
            )
        module_name = f"aegis_local_functions.{spec.logical_id}_{next(self._serial)}"
        import_spec = importlib.util.spec_from_file_location(module_name, path)
        if import_spec is None or import_spec.loader is None:  # pragma: no cover - only for non-.py paths
            raise HandlerLoadError("Runtime.ImportModuleError", f"Unable to import module '{spec.handler_module}'")
        module = importlib.util.module_from_spec(import_spec)
        # Registered before running, as an import would be: dataclasses and pickling look modules up by name.
        sys.modules[module_name] = module
        try:
            with _COLD_START_LOCK:
                import_spec.loader.exec_module(module)
        except Exception as error:
            sys.modules.pop(module_name, None)
            raise HandlerLoadError(
                "Runtime.ImportModuleError", f"Unable to import module '{spec.handler_module}': {error}"
            ) from error
        handler = getattr(module, spec.handler_attribute, None)
        if not callable(handler):
            sys.modules.pop(module_name, None)
            raise HandlerLoadError(
                "Runtime.HandlerNotFound",
                f"Handler '{spec.handler_attribute}' missing on module '{spec.handler_module}'",
            )
        self.module = module
        self.handler = handler
        return handler

    def discard(self) -> None:
        if self.module is not None:
            sys.modules.pop(self.module.__name__, None)
        self.module = None
        self.handler = None
