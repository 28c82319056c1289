"""Package size: `sam build` output per function and layer, unzipped, against Lambda's 250 MB limit.

The limit applies to a function's code plus all of its layers, unzipped, so each function's row adds its layers.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from bench.common import ROOT, TEMPLATE, argument_parser, functions, print_table

LAMBDA_LIMIT_MB = 250.0


def directory_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1024 / 1024


def sam_build(build_dir: Path) -> None:
    sam = shutil.which("sam")
    if sam is None:
        raise SystemExit("sam not on PATH: run through `make bench` (it puts .venv-sam/bin first)")
    subprocess.run(
        [sam, "build", "--template", str(TEMPLATE), "--build-dir", str(build_dir), "--cached", "--parallel"],
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
        env={**os.environ, "SAM_CLI_TELEMETRY": "0"},
    )


def main(argv: list[str] | None = None) -> int:
    parser = argument_parser(__doc__)
    parser.add_argument("--build-dir", type=Path, help="reuse an existing `sam build` output")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        build_dir = args.build_dir or Path(scratch) / "build"
        if args.build_dir is None:
            sam_build(build_dir)
        rows = []
        for name, props in functions().items():
            own = directory_mb(build_dir / name)
            layers = [layer["Ref"] for layer in props.get("Layers", []) if isinstance(layer, dict) and "Ref" in layer]
            layer_mb = sum(directory_mb(build_dir / layer) for layer in layers)
            total = own + layer_mb
            rows.append([name, own, ", ".join(layers), layer_mb, total, LAMBDA_LIMIT_MB - total])
        print_table(
            "Package size (sam build, unzipped)",
            ["function", "code MB", "layers", "layers MB", "total MB", "margin to 250 MB"],
            rows,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
