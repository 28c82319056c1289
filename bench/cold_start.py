"""Cold start: init plus the first invocation, as Lambda bills it, for every function a mission invokes; beside it a
floor measured in the same run, and each function's import alone with its heaviest imports.

**Init plus the first invocation.** Each round starts a fresh local stack (the demo's: moto, the Auth0 emulator, every
function of template.yaml), seeds the demo account and runs one mission on it (checks `CHECKS`, every request approved
on the emulated phones). The first invocation of each function in the round does not run in the stack's process: it
runs in a fresh interpreter, as a Lambda sandbox's first invocation does, with the environment the function has in the
stack (its template variables and Lambda's runtime variables), the event the mission gave it and a context with its
deadline. That process imports the handler (init), calls it once, and hands its answer back, so the mission goes on
with it: the sample event is the real one, against moto and the emulator. Later invocations run in the stack as usual.

The figure compared is CPU time: the interpreter's start, the import and the first invocation, in that process. Its
wall time is printed too, but a first invocation also waits on others (the approval function polls Auth0 while the
approver's phone answers; the agent's scan waits on moto, which shares this machine's cores with the mission): the
wait is not the function's start-up cost, its CPU is.

**The floor**, in the same round and environment: a fresh interpreter that imports boto3 and Powertools'
Logger/Tracer/Metrics and handles one trivial event through their three decorators. **LangGraph's own import** is a
floor process that also imports the LangGraph modules the agent imports (`LANGGRAPH_MODULES`), less the floor.

Goals, as ratios of the CPU time to the floor's (medians over the rounds): approval and kill switch <= x1.3, executor
<= x1.6 (pydantic, httpx, jose and cryptography are its own floor), the agent's scan and resume <= the floor plus 1.2
times LangGraph's own import. The other functions are printed without a goal. The exit status is 1 when a goal is
missed or a round's mission or first invocation failed.

**Import only** (every function, a mission's or not): the handler module imported in a fresh interpreter under
`-X importtime`, its wall time, peak RSS, whether LangGraph was imported, and its five heaviest direct imports.
"""

from __future__ import annotations

import functools
import io
import json
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import ROOT, argument_parser, function_environment, functions, median, print_table

CHECKS = ("ec2-admin-port-open-ipv4", "ec2-ebs-default-encryption-off")
# What the agent imports of LangGraph (functions/agent/aegis_agent).
LANGGRAPH_MODULES = (
    "langgraph.graph",
    "langgraph.graph.state",
    "langgraph.types",
    "langgraph.checkpoint.base",
    "langgraph.checkpoint.serde.jsonplus",
)
FLOOR = "floor"
FLOOR_WITH_LANGGRAPH = "floor + LangGraph"
# Goals: the most CPU time of init plus the first invocation, as a multiple of the floor's.
RATIO_GOALS = {"ApprovalFunction": 1.3, "KillSwitchFunction": 1.3, "ExecutorFunction": 1.6}
AGENT_FUNCTIONS = ("AgentScanFunction", "AgentResumeFunction")
LANGGRAPH_FACTOR = 1.2
MISSION_TIMEOUT_SECONDS = 300.0


class BenchError(RuntimeError):
    """The bench could not measure what it says (a mission or a first invocation failed)."""


# A fresh interpreter's start, as Lambda's runtime starts a sandbox: argv is the answer file, the handler file and its
# attribute, the event file and the context (JSON). The answer file gets the times, and the handler's result or error.
_INVOKE_PROBE = r"""
import importlib.util, json, sys, time
answer_path, app_path, attribute, event_path, context_json = sys.argv[1:6]
started = time.perf_counter()
sys.path.insert(0, str(__import__("pathlib").Path(app_path).parent))
spec = importlib.util.spec_from_file_location("lambda_app", app_path)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
handler = getattr(module, attribute)
init_ms = (time.perf_counter() - started) * 1000
init_cpu_ms = time.process_time() * 1000

class Context:
    def __init__(self, fields):
        self.__dict__.update(fields)
        self._deadline = time.monotonic() + fields.pop("remaining_ms") / 1000
    def get_remaining_time_in_millis(self):
        return max(0, int((self._deadline - time.monotonic()) * 1000))

with open(event_path) as stream:
    event = json.load(stream)
context = Context(json.loads(context_json))
invoked = time.perf_counter()
answer = {}
try:
    answer["result"] = handler(event, context)
except Exception as error:
    answer["error"] = {"type": type(error).__name__, "message": str(error)}
answer.update(
    init_ms=init_ms,
    init_cpu_ms=init_cpu_ms,
    invoke_ms=(time.perf_counter() - invoked) * 1000,
    cpu_ms=time.process_time() * 1000,
    langgraph=any(name == "langgraph" or name.startswith("langgraph.") for name in sys.modules),
)
with open(answer_path, "w") as stream:
    json.dump(answer, stream, default=str)
"""

# The floor: boto3 and Powertools' Logger/Tracer/Metrics imported, one trivial event handled through their decorators.
# argv: the answer file, then modules to import as well (LangGraph's, for its own import).
_FLOOR_PROBE = r"""
import importlib, json, sys, time
answer_path, extra = sys.argv[1], [name for name in sys.argv[2:] if name]
started = time.perf_counter()
import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
for name in extra:
    importlib.import_module(name)
logger, tracer, metrics = Logger(), Tracer(), Metrics()

@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event, context):
    logger.info("pong")
    return {"pong": event["ping"]}

init_ms = (time.perf_counter() - started) * 1000
init_cpu_ms = time.process_time() * 1000

class Context:
    function_name, memory_limit_in_mb, aws_request_id = "floor", "128", "00000000-0000-0000-0000-000000000000"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:floor"
    def get_remaining_time_in_millis(self):
        return 30000

invoked = time.perf_counter()
result = handler({"ping": 1}, Context())
with open(answer_path, "w") as stream:
    json.dump({"result": result, "init_ms": init_ms, "init_cpu_ms": init_cpu_ms,
               "invoke_ms": (time.perf_counter() - invoked) * 1000, "cpu_ms": time.process_time() * 1000,
               "langgraph": bool(extra)}, stream)
"""

_IMPORT_PROBE = r"""
import importlib.util, json, sys, time
path, handler = sys.argv[1], sys.argv[2]
sys.path.insert(0, str(__import__("pathlib").Path(path).parent))
started = time.perf_counter()
spec = importlib.util.spec_from_file_location("lambda_app", path)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
elapsed = (time.perf_counter() - started) * 1000
getattr(module, handler)
# VmHWM, not ru_maxrss: after exec, ru_maxrss still carries the high-water mark of the process that forked this one.
peak_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"import_ms": elapsed, "peak_rss_kb": peak_kb,
                  "langgraph": any(m == "langgraph" or m.startswith("langgraph.") for m in sys.modules)}))
"""


@dataclass(frozen=True)
class Sample:
    """One fresh interpreter: its init and first invocation."""

    init_ms: float
    init_cpu_ms: float
    invoke_ms: float
    cpu_ms: float
    langgraph: bool

    @classmethod
    def from_answer(cls, answer: Mapping[str, Any]) -> Sample:
        return cls(
            init_ms=float(answer["init_ms"]),
            init_cpu_ms=float(answer["init_cpu_ms"]),
            invoke_ms=float(answer["invoke_ms"]),
            cpu_ms=float(answer["cpu_ms"]),
            langgraph=bool(answer["langgraph"]),
        )


@dataclass
class Samples:
    """Every round's samples, by function (and the floor's two rows)."""

    by_name: dict[str, list[Sample]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def add(self, name: str, sample: Sample) -> None:
        self.by_name.setdefault(name, []).append(sample)

    def median_cpu_ms(self, name: str) -> float:
        return median([sample.cpu_ms for sample in self.by_name[name]])


class FirstInvocationFailed(Exception):
    """The out-of-process first invocation answered with an error (raised under the handler's own error type)."""


def _error_of_type(error_type: str, message: str) -> Exception:
    # The local runtime reports `type(error).__name__` as the invocation's errorType: keep the handler's.
    kind = type(error_type, (FirstInvocationFailed,), {}) if error_type.isidentifier() else FirstInvocationFailed
    return kind(message)


def run_fresh(probe: str, arguments: Sequence[str], environment: Mapping[str, str]) -> dict[str, Any]:
    """Run `probe` in a fresh interpreter; the answer it writes to its first argument, as JSON."""
    with tempfile.TemporaryDirectory(prefix="aegis-cold-") as directory:
        answer_path = Path(directory) / "answer.json"
        proc = subprocess.run(
            [sys.executable, "-c", probe, str(answer_path), *arguments],
            capture_output=True,
            text=True,
            env=dict(environment),
            cwd=ROOT,
            check=False,
        )
        if proc.returncode != 0 or not answer_path.is_file():
            raise BenchError(f"the fresh interpreter exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
        answer: dict[str, Any] = json.loads(answer_path.read_text())
        return answer


class FirstInvocationsOutOfProcess:
    """The local runtime's interceptor: the first invocation of each function runs in a fresh interpreter."""

    def __init__(self, samples: Samples) -> None:
        self._samples = samples
        self._lock = threading.Lock()
        self._taken: set[str] = set()
        self.environment: dict[str, str] | None = None

    def intercept(self, logical_id: str, event: Any, context: Any, handler: Any) -> Any:
        with self._lock:
            first = logical_id not in self._taken
            self._taken.add(logical_id)
        if not first:
            return handler(event, context)
        # The interceptor runs in the invocation's thread, which sees the function's own environment.
        environment = dict(os.environ.items())
        with self._lock:
            if self.environment is None:
                self.environment = environment
        answer = self._run(logical_id, event, context, environment)
        if "error" in answer:
            failure = answer["error"]
            self._samples.failures.append(f"{logical_id}: {failure['type']}: {failure['message'][:300]}")
            raise _error_of_type(str(failure["type"]), str(failure["message"]))
        self._samples.add(logical_id, Sample.from_answer(answer))
        return answer.get("result")

    def _run(self, logical_id: str, event: Any, context: Any, environment: Mapping[str, str]) -> dict[str, Any]:
        props = functions()[logical_id]
        module, _, attribute = str(props["Handler"]).rpartition(".")
        app = ROOT / str(props["CodeUri"]) / f"{module.replace('.', '/')}.py"
        fields = {
            "function_name": context.function_name,
            "function_version": context.function_version,
            "invoked_function_arn": context.invoked_function_arn,
            "memory_limit_in_mb": context.memory_limit_in_mb,
            "aws_request_id": context.aws_request_id,
            "log_group_name": context.log_group_name,
            "log_stream_name": context.log_stream_name,
            "remaining_ms": context.get_remaining_time_in_millis(),
        }
        with tempfile.TemporaryDirectory(prefix="aegis-cold-event-") as directory:
            event_path = Path(directory) / "event.json"
            event_path.write_text(json.dumps(event))
            return run_fresh(_INVOKE_PROBE, [str(app), attribute, str(event_path), json.dumps(fields)], environment)


def measure_round(samples: Samples, report_dir: Path) -> None:
    """One fresh stack, one mission, each function's first invocation in a fresh interpreter; then the floor."""
    from aegis_local.aws.stack import LocalStack
    from aegis_local.scenario.demo import Console, DemoOptions, run_on_stack, stack_arguments
    from aegis_local.scenario.phone import ApprovalPolicy

    options = DemoOptions(
        policy=ApprovalPolicy(approve_all=True),
        checks=CHECKS,
        report_dir=report_dir,
        timeout_seconds=MISSION_TIMEOUT_SECONDS,
    )
    interceptor = FirstInvocationsOutOfProcess(samples)
    with LocalStack(**stack_arguments(options)) as stack:
        with _intercepting_all(stack, interceptor):
            result = run_on_stack(stack, options, Console(io.StringIO()))
        if result.exit_code != 0:
            raise BenchError(f"the round's mission failed: {'; '.join(result.problems) or 'no reason given'}")
        if interceptor.environment is None:
            raise BenchError("no function was invoked")
        # The floor in the same environment as the functions (Powertools' settings are the template's Globals).
        environment = interceptor.environment
        samples.add(FLOOR, Sample.from_answer(run_fresh(_FLOOR_PROBE, [""], environment)))
        samples.add(FLOOR_WITH_LANGGRAPH, Sample.from_answer(run_fresh(_FLOOR_PROBE, LANGGRAPH_MODULES, environment)))


@contextmanager
def _intercepting_all(stack: Any, interceptor: FirstInvocationsOutOfProcess) -> Iterator[None]:
    with ExitStack() as scopes:
        for logical_id in functions():
            scopes.enter_context(
                stack.lambdas.intercept(logical_id, functools.partial(interceptor.intercept, logical_id))
            )
        yield


@dataclass(frozen=True)
class Goal:
    """The most CPU time a function's cold start may take (ms), and how the goal reads."""

    limit_ms: float
    text: str


def goals(samples: Samples) -> dict[str, Goal]:
    floor = samples.median_cpu_ms(FLOOR)
    langgraph_own = max(0.0, samples.median_cpu_ms(FLOOR_WITH_LANGGRAPH) - floor)
    found = {name: Goal(floor * ratio, f"<= x{ratio:g}") for name, ratio in RATIO_GOALS.items()}
    agent_limit = floor + LANGGRAPH_FACTOR * langgraph_own
    for name in AGENT_FUNCTIONS:
        found[name] = Goal(agent_limit, f"<= floor + {LANGGRAPH_FACTOR:g} x LangGraph (x{agent_limit / floor:.2f})")
    return found


def cold_start_rows(samples: Samples) -> tuple[list[list[Any]], list[str]]:
    """The table's rows (floor first) and the functions whose goal was missed."""
    floor = samples.median_cpu_ms(FLOOR)
    targets = goals(samples)
    rows: list[list[Any]] = []
    missed: list[str] = []
    names = [FLOOR, FLOOR_WITH_LANGGRAPH, *sorted(set(samples.by_name) - {FLOOR, FLOOR_WITH_LANGGRAPH})]
    for name in names:
        runs = samples.by_name[name]
        cpu = samples.median_cpu_ms(name)
        goal = targets.get(name)
        verdict = ""
        if goal is not None:
            verdict = "met" if cpu <= goal.limit_ms else "MISSED"
            if verdict == "MISSED":
                missed.append(name)
        rows.append(
            [
                name,
                len(runs),
                median([sample.init_ms for sample in runs]),
                median([sample.invoke_ms for sample in runs]),
                median([sample.init_cpu_ms for sample in runs]),
                cpu,
                f"x{cpu / floor:.2f}",
                goal.text if goal is not None else "",
                verdict,
                "yes" if any(sample.langgraph for sample in runs) else "no",
            ]
        )
    return rows, missed


def heaviest_imports(stderr: str, count: int = 5) -> list[tuple[str, float]]:
    """The `count` imports made directly by the handler module with the largest cumulative time (ms).

    `-X importtime` lines read `import time: <self us> | <cumulative us> | <indent><module>`; the indent (two spaces a
    level) says who imported whom, and level 0 is what app.py itself imported.
    """
    rows: list[tuple[str, float]] = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative_us, name = line.removeprefix("import time:").split("|")
        if len(name) - len(name.lstrip()) <= 1:
            rows.append((name.strip(), int(cumulative_us) / 1000))
    return sorted(rows, key=lambda row: -row[1])[:count]


def _import_environment(props: dict[str, Any]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(function_environment(props))
    env.update(
        AWS_DEFAULT_REGION="us-east-1",
        AWS_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        POWERTOOLS_SERVICE_NAME="bench",
        POWERTOOLS_METRICS_NAMESPACE="AegisCloud",
        POWERTOOLS_TRACE_DISABLED="true",
        PYTHONDONTWRITEBYTECODE="0",
    )
    return env


def measure_import(app: Path, handler: str, runs: int, props: dict[str, Any]) -> dict[str, Any]:
    samples, rss, langgraph, stderr = [], [], False, ""
    for _ in range(runs):
        proc = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", _IMPORT_PROBE, str(app), handler],
            capture_output=True,
            text=True,
            env=_import_environment(props),
            cwd=ROOT,
            check=True,
        )
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        samples.append(result["import_ms"])
        rss.append(result["peak_rss_kb"] / 1024)
        langgraph = langgraph or result["langgraph"]
        stderr = proc.stderr
    return {
        "import_ms": median(samples),
        "peak_mb": median(rss),
        "langgraph": langgraph,
        "top": heaviest_imports(stderr),
    }


def import_rows(runs: int) -> tuple[list[list[Any]], list[list[Any]]]:
    rows, tops = [], []
    for name, props in functions().items():
        module, _, handler = props["Handler"].rpartition(".")
        app = ROOT / props["CodeUri"] / f"{module}.py"
        result = measure_import(app, handler, runs, props)
        rows.append([name, result["import_ms"], result["peak_mb"], "yes" if result["langgraph"] else "no"])
        tops.append([name, ", ".join(f"{n} {ms:.0f}ms" for n, ms in result["top"])])
    return rows, tops


def main(argv: list[str] | None = None) -> int:
    parser = argument_parser(__doc__)
    parser.add_argument("--rounds", type=int, default=3, help="fresh stacks and missions (default 3)")
    parser.add_argument("--runs", type=int, default=3, help="import-only runs per function (default 3)")
    parser.add_argument("--no-missions", action="store_true", help="the import-only table alone")
    args = parser.parse_args(argv)
    failed = False
    if not args.no_missions:
        samples = Samples()
        load_average = os.getloadavg()[0]
        with tempfile.TemporaryDirectory(prefix="aegis-cold-report-") as report_dir:
            for round_number in range(1, args.rounds + 1):
                print(f"round {round_number} of {args.rounds}: a fresh stack and a mission ...", file=sys.stderr)
                try:
                    measure_round(samples, Path(report_dir))
                except BenchError as error:
                    samples.failures.append(f"round {round_number}: {error}")
        if FLOOR not in samples.by_name:
            print("no round completed: " + "; ".join(samples.failures))
            return 1
        rows, missed = cold_start_rows(samples)
        print_table(
            f"Cold start: init + first invocation in a fresh interpreter, during a mission (medians of {args.rounds} "
            f"rounds; 1-minute load average at the start {load_average:.1f})",
            [
                "function",
                "samples",
                "init ms",
                "1st invoke ms",
                "init CPU ms",
                "CPU ms (init + 1st)",
                "x floor",
                "goal",
                "verdict",
                "langgraph",
            ],
            rows,
        )
        langgraph_own = samples.median_cpu_ms(FLOOR_WITH_LANGGRAPH) - samples.median_cpu_ms(FLOOR)
        print(
            f"LangGraph's own import: {langgraph_own:.0f} CPU ms ({', '.join(LANGGRAPH_MODULES)}); CPU ms include "
            "the interpreter's start; wall times include waiting on moto, the emulator and the phone"
        )
        for failure in samples.failures:
            print(f"FAILED: {failure}")
        if missed:
            print("goal missed: " + ", ".join(missed))
        failed = bool(missed or samples.failures)
    rows, tops = import_rows(args.runs)
    print_table(
        f"Import only (median of {args.runs} fresh processes)",
        ["function", "import ms", "peak RSS MB", "langgraph"],
        rows,
    )
    print_table("Heaviest imports (cumulative, last run)", ["function", "top 5"], tops)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
