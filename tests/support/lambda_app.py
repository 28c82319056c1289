"""A function's handler module, `functions/<function>/app.py`, loaded by path the way a Lambda container loads it."""

from __future__ import annotations

import importlib.util
import itertools
import sys
from types import ModuleType

from tests.support.stack import ROOT

_loads = itertools.count()


def load_app(function: str) -> ModuleType:
    """A fresh module of the function's handler: a cold container, with its own service objects and caches.

    Every function's handler module is called `app`, so each load gets a name of its own; it stays registered in
    sys.modules, where dataclasses and pydantic look a module's names up."""
    name = f"{function}_app_{next(_loads)}"
    spec = importlib.util.spec_from_file_location(name, ROOT / "functions" / function / "app.py")
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load functions/{function}/app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
