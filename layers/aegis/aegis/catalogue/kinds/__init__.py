"""The forward remediation kinds, one module each: `kinds/<kind>.py`, the kind's name in snake case, defines the
kind's change class and the state models only it uses (shared ones are in `aegis.catalogue.states`).

The package finds its kinds itself, so adding a kind is adding its file. Every kind module is imported anyway (the
static `ForwardChange` union names each class), so finding them costs one directory listing.
"""

from __future__ import annotations

import importlib
import pkgutil

from aegis.catalogue.base import ChangeBase


def kind_of(module_name: str) -> str:
    """The kind a module of this package defines: its file name with dashes (`detach_policy` -> `detach-policy`)."""
    return module_name.rsplit(".", 1)[-1].replace("_", "-")


def _change_class(module_name: str) -> type[ChangeBase]:
    module = importlib.import_module(f"{__name__}.{module_name}")
    kind = kind_of(module_name)
    classes = [
        value
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, ChangeBase)
        and value.__module__ == module.__name__
        and value.model_fields["kind"].default == kind
    ]
    if len(classes) != 1:
        raise TypeError(f"{module.__name__} must define exactly one ChangeBase subclass of kind {kind!r}")
    return classes[0]


FORWARD_KINDS: tuple[type[ChangeBase], ...] = tuple(
    _change_class(module.name) for module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name)
)
