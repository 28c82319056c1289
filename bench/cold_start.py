"""Cold start: import time and peak memory of each handler module in a fresh interpreter.

Each run starts a new Python process (as a Lambda cold start does), imports the function's app.py by path and
reports the wall time of that import, the process's peak RSS, whether LangGraph was imported, and `-X importtime`'s
heaviest imports. Median over several runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.common import ROOT, argument_parser, function_environment, functions, median, print_table

TARGET_MS = {"agent": 1500.0}
DEFAULT_TARGET_MS = 300.0

_PROBE = r"""
import importlib.util, json, resource, sys, time
path, handler = sys.argv[1], sys.argv[2]
sys.path.insert(0, str(__import__("pathlib").Path(path).parent))
started = time.perf_counter()
spec = importlib.util.spec_from_file_location("lambda_app", path)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
elapsed = (time.perf_counter() - started) * 1000
getattr(module, handler)
print(json.dumps({"import_ms": elapsed, "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "langgraph": any(m == "langgraph" or m.startswith("langgraph.") for m in sys.modules)}))
"""


def _environment(props: dict[str, Any]) -> dict[str, str]:
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


def measure(app: Path, handler: str, runs: int, props: dict[str, Any]) -> dict[str, Any]:
    samples, rss, langgraph, stderr = [], [], False, ""
    for _ in range(runs):
        proc = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", _PROBE, str(app), handler],
            capture_output=True,
            text=True,
            env=_environment(props),
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


def main(argv: list[str] | None = None) -> int:
    parser = argument_parser(__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    rows, tops, missed = [], [], []
    for name, props in functions().items():
        code_uri = ROOT / props["CodeUri"]
        module, _, handler = props["Handler"].rpartition(".")
        app = code_uri / f"{module}.py"
        domain = Path(props["CodeUri"]).name
        target = TARGET_MS.get(domain, DEFAULT_TARGET_MS)
        result = measure(app, handler, args.runs, props)
        met = result["import_ms"] <= target and (domain == "agent" or not result["langgraph"])
        if not met:
            missed.append(name)
        rows.append(
            [
                name,
                result["import_ms"],
                target,
                result["peak_mb"],
                "yes" if result["langgraph"] else "no",
                "met" if met else "MISSED",
            ]
        )
        tops.append([name, ", ".join(f"{n} {ms:.0f}ms" for n, ms in result["top"])])
    print_table(
        f"Cold start (median of {args.runs} fresh processes)",
        ["function", "import ms", "target ms", "peak RSS MB", "langgraph", "target"],
        rows,
    )
    print_table("Heaviest imports (cumulative, last run)", ["function", "top 5"], tops)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
