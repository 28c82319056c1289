"""The AWS toolchain accepts the application: `sam validate --lint`, cfn-lint, `sam build`, `sam local invoke`.

aws-sam-cli and cfn-lint live in their own virtualenv (.venv-sam, `make setup-sam`); `make test` puts its bin
directory on PATH. Where they are missing the tests skip, except under CI (env CI set), where that is a failure.
`sam local invoke` runs each function in a container, so those tests skip where `docker info` fails.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest

from aegis_local.aws.template import load_template
from tests.support.stack import EVENTS_BY_FUNCTION, EVENTS_DIR, EXAMPLE_PARAMETERS, ROOT, TEMPLATE_PATH

REGION = "us-east-1"
BUILD_CACHE = ROOT / ".aws-sam" / "test-cache"
# Modules that must never be in the agent's deployment package (the boundary holds for the artifact too).
NOT_IN_AGENT_PACKAGE = ("aegis_auth", "aegis_approval", "aegis_executor", "aegis_killswitch", "jose")


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    reason = f"{name} is not on PATH (it lives in .venv-sam: run `make setup-sam`, or the tests via `make test`)"
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def _python313_dir() -> str | None:
    """The directory of a working python3.13 (pyenv's shim may exist and still say "command not found")."""
    candidates: list[str] = []
    pyenv = shutil.which("pyenv")
    if pyenv:
        prefix = subprocess.run([pyenv, "prefix", "3.13"], capture_output=True, text=True, check=False)
        if prefix.returncode == 0 and prefix.stdout.strip():
            candidates.append(str(Path(prefix.stdout.strip().splitlines()[0]) / "bin" / "python3.13"))
    on_path = shutil.which("python3.13")
    if on_path:
        candidates.append(on_path)
    for candidate in candidates:
        probe = subprocess.run(
            [candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 13))"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.stdout.strip() == "True":
            return str(Path(candidate).parent)
    return None


def _sam_env(extra_path: str | None = None) -> dict[str, str]:
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0", "AWS_DEFAULT_REGION": REGION}
    if extra_path:
        env["PATH"] = extra_path + os.pathsep + env.get("PATH", "")
    return env


def _run(command: list[str], env: dict[str, str], timeout: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False)


@cache
def _docker_unavailable() -> str | None:
    docker = shutil.which("docker")
    if docker is None:
        return (
            "no container runtime: the docker CLI is not installed, and sam local invoke runs functions in containers"
        )
    info = subprocess.run([docker, "info"], capture_output=True, text=True, timeout=60, check=False)
    if info.returncode != 0:
        return f"no container runtime: `docker info` failed ({(info.stderr or info.stdout).strip()[:200]})"
    return None


def test_sam_validate_lint_accepts_the_template() -> None:
    sam = _tool("sam")
    result = _run([sam, "validate", "--lint", "--template", str(TEMPLATE_PATH), "--region", REGION], _sam_env(), 300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout + result.stderr


def test_sam_validate_translates_the_template() -> None:
    """Without --lint, SAM runs its transform: the template must become valid CloudFormation."""
    sam = _tool("sam")
    result = _run([sam, "validate", "--template", str(TEMPLATE_PATH), "--region", REGION], _sam_env(), 300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_cfn_lint_reports_nothing() -> None:
    cfn_lint = _tool("cfn-lint")
    result = _run([cfn_lint, str(TEMPLATE_PATH)], _sam_env(), 300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


# Runs inside .venv-sam (samtranslator lives there): the SAM transform of template.yaml, as CloudFormation sees it.
_TRANSFORM = """
import json, sys
from samcli.yamlhelper import yaml_parse
from samtranslator.translator.transform import transform

class NoManagedPolicies:
    def load(self):
        return {}

template = yaml_parse(open(sys.argv[1]).read())
for resource in template["Resources"].values():
    for key in ("CodeUri", "ContentUri", "DefinitionUri"):
        if key in resource.get("Properties", {}):
            resource["Properties"][key] = "s3://artifacts/" + key
print(json.dumps(transform(template, {}, NoManagedPolicies())))
"""


def test_the_sam_transform_adds_no_permission_the_iam_matrix_does_not_see() -> None:
    """SAM can create roles and permissions on its own (Events, Policies, function URLs); only the expected ones."""
    sam = _tool("sam")
    python = Path(sam).parent / "python"
    result = _run([str(python), "-c", _TRANSFORM, str(TEMPLATE_PATH)], _sam_env(), 300)
    assert result.returncode == 0, result.stderr[-4000:]
    resources = json.loads(result.stdout)["Resources"]
    by_type: dict[str, set[str]] = {}
    for name, resource in resources.items():
        by_type.setdefault(resource["Type"], set()).add(name)
    source = load_template(TEMPLATE_PATH)["Resources"]
    assert by_type["AWS::IAM::Role"] == {n for n, r in source.items() if r["Type"] == "AWS::IAM::Role"}
    for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::User"):
        assert kind not in by_type, kind
    permissions = {
        name: (p["Properties"]["Action"], p["Properties"]["Principal"], p["Properties"]["FunctionName"])
        for name in by_type["AWS::Lambda::Permission"]
        for p in [resources[name]]
    }
    assert sorted(permissions.values(), key=str) == sorted(
        [
            ("lambda:InvokeFunction", "events.amazonaws.com", {"Ref": "AgentScanFunction"}),
            ("lambda:InvokeFunction", "events.amazonaws.com", {"Ref": "AgentScanFunction"}),
            ("lambda:InvokeFunctionUrl", "*", {"Ref": "KillSwitchFunction"}),
            ("lambda:InvokeFunction", "*", {"Ref": "KillSwitchFunction"}),
            # MissionEndedRule: an ended execution's unconsumed handoffs are purged by the kill switch.
            ("lambda:InvokeFunction", "events.amazonaws.com", {"Ref": "KillSwitchFunction"}),
        ],
        key=str,
    )
    public = [resources[n]["Properties"] for n in by_type["AWS::Lambda::Permission"]]
    public = [p for p in public if p["Principal"] == "*"]
    # The public may reach the kill switch only through its URL (which authenticates the caller itself).
    assert all(p.get("FunctionUrlAuthType") == "NONE" or p.get("InvokedViaFunctionUrl") is True for p in public)
    machine = resources["MissionStateMachine"]["Properties"]
    assert machine["LoggingConfiguration"]["IncludeExecutionData"] is False
    assert machine["RoleArn"] == {"Fn::GetAtt": ["StateMachineRole", "Arn"]}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`sam build` (no container) into a temporary directory, reusing dependencies cached in .aws-sam/test-cache."""
    sam = _tool("sam")
    python_dir = _python313_dir()
    if python_dir is None:
        reason = "sam build needs Python 3.13 (pyenv prefix 3.13, or python3.13 on PATH)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    build_dir = tmp_path_factory.mktemp("sam") / "build"
    # sam keeps its build graph (build.toml) beside the build dir; carrying it over lets --cached reuse the
    # dependencies of unchanged functions and layers from the persistent cache instead of reinstalling them.
    graph = BUILD_CACHE / "build.toml"
    command = [
        sam,
        "build",
        "--template",
        str(TEMPLATE_PATH),
        "--build-dir",
        str(build_dir),
        "--cached",
        "--cache-dir",
        str(BUILD_CACHE),
    ]
    BUILD_CACHE.mkdir(parents=True, exist_ok=True)
    # pytest-xdist may run this fixture in two workers at once; they share the cache, so they build in turn.
    with (BUILD_CACHE / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if graph.is_file():
            shutil.copy2(graph, build_dir.parent / "build.toml")
        result = _run(command, _sam_env(python_dir), 1800)
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
        shutil.copy2(build_dir.parent / "build.toml", graph)
    return build_dir


@pytest.mark.slow
def test_sam_build_packages_every_function_and_layer_and_no_credential_code_for_the_agent(built: Path) -> None:
    # One test for both properties, so that one build serves them even when pytest-xdist splits the module.
    resources = load_template(built / "template.yaml")["Resources"]
    functions = [name for name, r in resources.items() if r["Type"] == "AWS::Serverless::Function"]
    assert sorted(functions) == sorted(EVENTS_BY_FUNCTION)
    for name in functions:
        artifact = built / resources[name]["Properties"]["CodeUri"]
        handler_module = resources[name]["Properties"]["Handler"].split(".")[0]
        assert (artifact / f"{handler_module}.py").is_file(), f"{name}: no {handler_module}.py in {artifact}"
    aegis_layer = built / resources["AegisLayer"]["Properties"]["ContentUri"] / "python"
    auth_layer = built / resources["AuthLayer"]["Properties"]["ContentUri"] / "python"
    for package in ("aegis", "pydantic", "aws_lambda_powertools"):
        assert (aegis_layer / package).is_dir(), f"AegisLayer lacks {package}"
    for package in ("aegis_auth", "jose", "httpx"):
        assert (auth_layer / package).is_dir(), f"AuthLayer lacks {package}"
    assert not (aegis_layer / "aegis_auth").exists()
    assert not (aegis_layer / "jose").exists()

    for name in ("AgentScanFunction", "AgentResumeFunction"):
        artifact = built / resources[name]["Properties"]["CodeUri"]
        assert (artifact / "aegis_agent").is_dir()
        present = [module for module in NOT_IN_AGENT_PACKAGE if (artifact / module).exists()]
        assert present == [], f"{name} ships {present}"
        assert resources[name]["Properties"]["Layers"] == [{"Ref": "AegisLayer"}]


def _parameter_overrides() -> list[str]:
    # sam splits overrides on commas, so the list-valued parameter gets one approver here.
    values = {**EXAMPLE_PARAMETERS, "ApproverSubs": EXAMPLE_PARAMETERS["ApproverSubs"].split(",")[0]}
    return [f"{key}={value}" for key, value in values.items()]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("function", "event"), [(function, event) for function, events in EVENTS_BY_FUNCTION.items() for event in events]
)
def test_sam_local_invoke_runs_each_function_with_its_event(
    function: str, event: str, request: pytest.FixtureRequest
) -> None:
    unavailable = _docker_unavailable()
    if unavailable:
        pytest.skip(unavailable)
    built = request.getfixturevalue("built")
    sam = _tool("sam")
    command = [
        sam,
        "local",
        "invoke",
        function,
        "--template",
        str(built / "template.yaml"),
        "--event",
        str(EVENTS_DIR / event),
        "--region",
        REGION,
        "--parameter-overrides",
        *_parameter_overrides(),
    ]
    result = _run(command, _sam_env(), 900)
    output = result.stdout + result.stderr
    # There is no AWS account behind the invocation, so the function may well answer with an error from an AWS
    # call; what must hold is that the runtime found and ran the handler with the shipped code and layers.
    for broken in ("Runtime.ImportModuleError", "Runtime.HandlerNotFound", "Unable to import module"):
        assert broken not in output, output[-4000:]
    response = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    assert json.loads(response) is not None, output[-4000:]
