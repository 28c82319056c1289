"""`sam local invoke` of the built application, in the locally built invocation image, against a running LocalStack.

What SAM needs to run a function against the local stack rather than AWS, and why each piece is here:

- **the image**: `aegis_local.lambda_image` (no registry to pull SAM's default from), given with `--invoke-image` and
  `--skip-pull-image`;
- **the function's environment**: SAM resolves `!Ref`s of resources to logical ids, so `--env-vars` gives each
  function the environment the local stack resolved for it (physical table names, secret ARNs, the state machine's
  ARN, the issuer: `LocalStack.function(...).environment`), and `--parameter-overrides` the stack's parameter values;
- **the AWS endpoint**: SAM passes a function only the variables its template declares
  (samcli/local/lambdafn/env_vars.py), and AWS_ENDPOINT_URL belongs to the local stack, never to the deployed
  template. So the invocation uses a copy of the *built* template whose `Globals` also declare it;
- **the network**: the stack listens on 127.0.0.1 and the functions accept plain http on loopback only, while SAM
  1.170 leaves the container on Docker's bridge even with `--docker-network host` (it never sets a network mode).
  Docker's client proxy configuration (`proxies` in $DOCKER_CONFIG/config.json, which SAM applies to every Lambda
  container: `use_config_proxy=True`) points the container's HTTP clients at `LoopbackRelay`, which forwards their
  `http://127.0.0.1:<port>` requests to the stack's ports on this machine.

`sam local start-lambda` serves every function with one warm container each (`--warm-containers EAGER`): SAM builds
each function's image (the runtime image plus its layers) and starts its container once, all of them at start and in
parallel, instead of once per `sam local invoke`. Invocations go through the Lambda API of that server (boto3,
`endpoint_url`). Measured on 2 CPUs, tests/integration/test_sam.py took 128 s with EAGER and 166 s with LAZY (each
image built at its function's first invocation); one `sam local invoke` takes 9 to 20 s, SAM rebuilding the
function's image with its layers every time.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from aegis_local.aws.stack import LocalStack
from aegis_local.aws.template import load_template
from tests.support.loopback_relay import LoopbackRelay

# What the derived template declares on every function, so that --env-vars can set it.
LOCAL_STACK_VARIABLES = ("AWS_ENDPOINT_URL",)
START_TIMEOUT_SECONDS = 600.0
# What SAM logs for each container it creates.
CONTAINER_ID = re.compile(r"SAM_CONTAINER_ID: ([0-9a-f]{64})")
# ioctl(2) request for an interface's IPv4 address (linux/sockios.h).
SIOCGIFADDR = 0x8915


@dataclass(frozen=True)
class Answer:
    """What one invocation returned: the payload, and Lambda's FunctionError when the handler raised."""

    payload: Any
    function_error: str | None


def bridge_gateway(docker: str) -> str:
    """The address of this machine on Docker's default bridge, where a container reaches the host: the network's
    gateway, or (the default bridge of Docker 20.10 lists none) the address of the bridge's interface."""
    inspected = subprocess.run(
        [docker, "network", "inspect", "bridge"], capture_output=True, text=True, timeout=60, check=True
    )
    [bridge] = json.loads(inspected.stdout)
    for config in bridge["IPAM"]["Config"] or []:
        if config.get("Gateway"):
            return str(config["Gateway"])
    return _interface_address(bridge["Options"]["com.docker.network.bridge.name"])


def _interface_address(name: str) -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        answer = fcntl.ioctl(probe.fileno(), SIOCGIFADDR, struct.pack("256s", name.encode("ascii")[:15]))
    return socket.inet_ntoa(answer[20:24])


def local_stack_ports(stack: LocalStack) -> set[int]:
    """The ports of the servers a function calls: moto and the Auth0 emulator."""
    urls = [stack.endpoints.moto_url, stack.endpoints.issuer or ""]
    return {int(url.rstrip("/").rsplit(":", 1)[1]) for url in urls if url}


def derived_template(built_template: Path, destination: Path) -> Path:
    """The built template with `LOCAL_STACK_VARIABLES` declared for every function, beside it (CodeUri stays valid)."""
    template = load_template(built_template)
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    for name in LOCAL_STACK_VARIABLES:
        variables.setdefault(name, "")
    destination.write_text(json.dumps(template, indent=1), encoding="utf-8")
    return destination


def function_environments(stack: LocalStack, functions: Iterable[str]) -> dict[str, dict[str, str]]:
    """--env-vars: each function's environment as the local stack resolved it, plus the stack's AWS endpoint."""
    return {
        function: {**stack.function(function).environment, "AWS_ENDPOINT_URL": stack.endpoints.moto_url}
        for function in functions
    }


def sam_environment(stack: LocalStack, docker_config: Path, functions: Iterable[str]) -> dict[str, str]:
    """The SAM process's environment: this one's, without what SAM would pass on to the functions by itself (the
    stack's variables, which SAM reads from its own environment for declared names, and AWS settings), plus the
    stack's fake credentials (SAM gives the container the credentials it resolves) and the proxy configuration."""
    declared = {name for function in functions for name in stack.function(function).environment}
    kept = {name: value for name, value in os.environ.items() if name not in declared and not name.startswith("AWS_")}
    session = stack.session().get_credentials()
    assert session is not None
    return {
        **kept,
        "AWS_ACCESS_KEY_ID": session.access_key,
        "AWS_SECRET_ACCESS_KEY": session.secret_key,
        "AWS_DEFAULT_REGION": stack.endpoints.region,
        "SAM_CLI_TELEMETRY": "0",
        "DOCKER_CONFIG": str(docker_config),
    }


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class Wiring:
    """What one SAM command needs to run functions against the stack: its options and its environment."""

    options: list[str]
    environment: dict[str, str]
    workdir: Path


@contextmanager
def wired(
    built_template: Path, stack: LocalStack, image: str, functions: Iterable[str], docker: str = "docker"
) -> Iterator[Wiring]:
    """The relay, the Docker proxy configuration, the derived template, --env-vars and --parameter-overrides files
    for `functions`, for as long as the block runs."""
    names = list(functions)
    workdir = Path(tempfile.mkdtemp(prefix="aegis-sam-local-"))
    relay = LoopbackRelay(bridge_gateway(docker), local_stack_ports(stack))
    try:
        (workdir / "docker").mkdir()
        proxies = {"proxies": {"default": {"httpProxy": relay.url}}}
        (workdir / "docker" / "config.json").write_text(json.dumps(proxies), encoding="utf-8")
        (workdir / "env.json").write_text(json.dumps(function_environments(stack, names)), encoding="utf-8")
        # SAM reads a parameters file as YAML only; JSON is YAML.
        (workdir / "parameters.yaml").write_text(json.dumps(dict(stack.parameters)), encoding="utf-8")
        template = derived_template(built_template, built_template.parent / "template.sam-local.json")
        options = [
            "--template",
            str(template),
            "--invoke-image",
            image,
            "--skip-pull-image",
            "--env-vars",
            str(workdir / "env.json"),
            "--parameter-overrides",
            f"file://{workdir / 'parameters.yaml'}",
            "--region",
            stack.endpoints.region,
        ]
        yield Wiring(options, sam_environment(stack, workdir / "docker", names), workdir)
    finally:
        relay.close()
        shutil.rmtree(workdir, ignore_errors=True)


@dataclass
class SamLocalLambda:
    """A running `sam local start-lambda` and the Lambda client that invokes its functions."""

    process: subprocess.Popen[str]
    endpoint: str
    log: Path
    client: Any

    def invoke(self, function: str, event: Any) -> Answer:
        answer = self.client.invoke(FunctionName=function, Payload=json.dumps(event).encode("utf-8"))
        body = answer["Payload"].read()
        return Answer(
            payload=json.loads(body) if body else None,
            function_error=answer.get("FunctionError"),
        )


@contextmanager
def start_lambda(
    sam: str, built_template: Path, stack: LocalStack, image: str, functions: Iterable[str], docker: str = "docker"
) -> Iterator[SamLocalLambda]:
    """`sam local start-lambda` on a free port, every function's container started ahead and kept warm."""
    with wired(built_template, stack, image, functions, docker) as wiring:
        port = _free_port()
        log = wiring.workdir / "sam.log"
        command = [sam, "local", "start-lambda", "--host", "127.0.0.1", "--port", str(port), *wiring.options]
        with log.open("w", encoding="utf-8") as sink:
            process = subprocess.Popen(
                [*command, "--warm-containers", "EAGER"],
                cwd=built_template.parent,
                env=wiring.environment,
                stdout=sink,
                stderr=subprocess.STDOUT,
                text=True,
            )
        try:
            _wait_until_serving(process, port, log)
            client = boto3.client(
                "lambda",
                endpoint_url=f"http://127.0.0.1:{port}",
                region_name=stack.endpoints.region,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
                config=Config(read_timeout=900, retries={"max_attempts": 0}),
            )
            yield SamLocalLambda(process=process, endpoint=f"http://127.0.0.1:{port}", log=log, client=client)
        finally:
            _stop(process)
            _remove_left_behind(docker, log)


def _remove_left_behind(docker: str, log: Path) -> None:
    """Remove the containers this SAM created (it logs each id) and left running: SAM 1.170 starts the EAGER
    containers concurrently and loses track of some of them, which its own shutdown then does not remove."""
    created = CONTAINER_ID.findall(log.read_text(encoding="utf-8", errors="replace"))
    if created:
        subprocess.run([docker, "rm", "--force", *created], capture_output=True, timeout=120, check=False)


def _wait_until_serving(process: subprocess.Popen[str], port: int, log: Path) -> None:
    """SAM builds every function's image and starts its container before it listens: wait for the port."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sam local start-lambda exited ({process.returncode}):\n{log.read_text()[-4000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(
        f"sam local start-lambda did not listen within {START_TIMEOUT_SECONDS} s:\n{log.read_text()[-4000:]}"
    )


def _stop(process: subprocess.Popen[str]) -> None:
    """Ctrl-C, as a person would stop it: SAM then stops and removes its containers."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def run_invoke(
    sam: str,
    built_template: Path,
    stack: LocalStack,
    image: str,
    function: str,
    event: Mapping[str, Any],
    docker: str = "docker",
) -> Answer:
    """One `sam local invoke`: SAM builds the function's image and runs a container for this one event."""
    with wired(built_template, stack, image, [function], docker) as wiring:
        (wiring.workdir / "event.json").write_text(json.dumps(event), encoding="utf-8")
        result = subprocess.run(
            [sam, "local", "invoke", function, "--event", str(wiring.workdir / "event.json"), *wiring.options],
            cwd=built_template.parent,
            env=wiring.environment,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
    lines = result.stdout.strip().splitlines()
    if not lines:
        raise RuntimeError(f"sam local invoke failed ({result.returncode}):\n{result.stderr[-4000:]}")
    # SAM prints the function's answer as the last line; a handler's error is answered as errorType/errorMessage.
    payload = json.loads(lines[-1])
    failed = isinstance(payload, dict) and "errorType" in payload
    return Answer(payload=payload, function_error="Unhandled" if failed else None)
