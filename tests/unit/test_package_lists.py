"""The package lists that builds install without resolving dependencies (lambda_package.mk, included by the layers'
and the agent's Makefiles): each must be complete but for what it leaves out on purpose (what Lambda's Python runtime
provides, what a layer the function always has ships, an optional dependency it says why it drops), must never ship
what the runtime or the layer provides (a copy would shadow it: a botocore of ours under the runtime's boto3, a
pydantic of the agent's over the layer's), and must be exactly what the tests run with."""

from __future__ import annotations

import importlib.metadata as metadata
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support.stack import ROOT

AEGIS_LAYER = ROOT / "layers" / "aegis" / "requirements.txt"
JWT_LAYER = ROOT / "layers" / "jwt" / "requirements.txt"
AGENT = ROOT / "functions" / "agent" / "requirements.txt"
DEV_REQUIREMENTS = ROOT / "requirements-dev.txt"


def pins(path: Path) -> dict[str, str]:
    """`name==version` lines, by canonical name; comments left out."""
    found = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        requirement = Requirement(line)
        (specifier,) = requirement.specifier
        assert specifier.operator == "==", f"{path.name}: {line}: pin an exact version"
        found[canonicalize_name(requirement.name)] = specifier.version
    return found


def needs(name: str) -> set[str]:
    """What an installed distribution requires at run time on Linux (no extras), by canonical name."""
    required = set()
    for line in metadata.requires(name) or []:
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
            required.add(canonicalize_name(requirement.name))
    return required


def closure(names: set[str]) -> set[str]:
    found: set[str] = set()
    pending = list(names)
    while pending:
        name = pending.pop()
        if name not in found:
            found.add(name)
            pending.extend(needs(name))
    return found


def runtime_provided() -> set[str]:
    """boto3 at the version requirements-dev.txt pins (the one the runtime provides, see aegis_local.lambda_image),
    with everything it needs."""
    (boto3,) = re.findall(r"^boto3==([\w.]+)\s*$", DEV_REQUIREMENTS.read_text(), flags=re.MULTILINE)
    assert metadata.version("boto3") == boto3
    return closure({"boto3"})


@dataclass(frozen=True)
class PackageList:
    path: Path
    # Besides the runtime's: what the package's layers ship.
    provided_by_layers: frozenset[str]
    # Dependencies left out on purpose (the list's comment says why).
    omitted: frozenset[str]

    def provided(self) -> set[str]:
        return runtime_provided() | self.provided_by_layers


PACKAGE_LISTS = {
    "AegisLayer": PackageList(AEGIS_LAYER, frozenset(), frozenset()),
    # Every function with the JwtLayer has the AegisLayer (tests/unit/template/test_functions_tables_triggers.py).
    "JwtLayer": PackageList(JWT_LAYER, frozenset(pins(AEGIS_LAYER)), frozenset()),
    "agent": PackageList(AGENT, frozenset(pins(AEGIS_LAYER)), frozenset({"zstandard"})),
}


@pytest.mark.parametrize("name", sorted(PACKAGE_LISTS))
def test_a_list_holds_every_package_it_needs_but_what_is_provided_or_left_out_on_purpose(name: str) -> None:
    package_list = PACKAGE_LISTS[name]
    listed = set(pins(package_list.path))
    covered = listed | package_list.provided() | package_list.omitted
    missing = {(package, needed) for package in listed for needed in needs(package) if needed not in covered}
    assert missing == set(), "each (package, what it needs) is neither listed, provided, nor left out on purpose"


@pytest.mark.parametrize("name", sorted(PACKAGE_LISTS))
def test_a_list_ships_nothing_the_runtime_or_its_layers_provide(name: str) -> None:
    package_list = PACKAGE_LISTS[name]
    listed = set(pins(package_list.path))
    assert listed & package_list.provided() == set()
    assert listed & package_list.omitted == set()
    assert {"boto3", "botocore"} <= runtime_provided()


@pytest.mark.parametrize("name", sorted(PACKAGE_LISTS))
def test_the_tests_run_with_exactly_the_versions_a_list_ships(name: str) -> None:
    for package, version in pins(PACKAGE_LISTS[name].path).items():
        assert metadata.version(package) == version, package


def test_the_aegis_layer_names_powertools_tracer_dependency_itself() -> None:
    # Powertools' Tracer needs the X-Ray SDK (its `tracer` extra); the list names it since no extra is resolved.
    assert {"aws-lambda-powertools", "aws-xray-sdk", "pydantic", "pydantic-core"} <= set(pins(AEGIS_LAYER))


def test_the_agent_runs_without_zstandard() -> None:
    # The agent's package leaves zstandard out: its graph, checkpointer and handler must import and LangSmith's
    # client must still be usable without it (langsmith compresses trace uploads with it only when present).
    probe = (
        "import sys; sys.modules['zstandard'] = None; "
        f"sys.path.insert(0, {str(ROOT / 'functions' / 'agent')!r}); "
        "import aegis_agent.graph, aegis_agent.checkpointer, aegis_agent.service, langsmith.client; "
        "from langsmith._internal import _compressed_traces; print('ok')"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=False, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "ok"
