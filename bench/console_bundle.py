"""Console bundle: the JavaScript a browser loads before the console's first page, gzipped (goal: at most 150 KB).

Builds the console first when its inputs changed (`aegis_local.console.build`), then counts every script
`index.html` loads (`<script src>` and `<link rel="modulepreload">`), raw and gzipped at level 9.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

from aegis_local.console.build import ConsoleBuildError, ensure_built
from bench.common import argument_parser, print_table

GOAL_GZIPPED_KB = 150.0
_SCRIPT = re.compile(r"<script\b[^>]*\bsrc=\"([^\"]+)\"", re.IGNORECASE)
_PRELOAD = re.compile(r"<link\b[^>]*\brel=\"modulepreload\"[^>]*\bhref=\"([^\"]+)\"", re.IGNORECASE)


def first_load_scripts(dist: Path) -> list[Path]:
    """The build's files `index.html` loads as scripts, in page order; an external script is refused by name."""
    page = (dist / "index.html").read_text(encoding="utf-8")
    sources = [*_SCRIPT.findall(page), *_PRELOAD.findall(page)]
    scripts = []
    for source in dict.fromkeys(sources):
        if "://" in source or source.startswith("//"):
            raise ValueError(f"index.html loads {source} from elsewhere: the console serves its own scripts only")
        scripts.append(dist / source.lstrip("/"))
    return scripts


def gzipped_kb(data: bytes) -> float:
    return len(gzip.compress(data, compresslevel=9, mtime=0)) / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argument_parser(__doc__)
    parser.add_argument("--dist", type=Path, help="measure this build instead of building console/dist")
    args = parser.parse_args(argv)
    try:
        dist = args.dist or ensure_built(log=lambda line: print(line, flush=True))
    except ConsoleBuildError as error:
        print(f"the console could not be built: {error}")
        return 1
    rows = []
    total_raw = total_gzipped = 0.0
    for script in first_load_scripts(dist):
        data = script.read_bytes()
        raw, packed = len(data) / 1024, gzipped_kb(data)
        total_raw += raw
        total_gzipped += packed
        rows.append([script.name, raw, packed])
    rows.append(["first load", total_raw, total_gzipped])
    print_table(
        f"Console first-load JavaScript (goal <= {GOAL_GZIPPED_KB:.0f} KB gzipped)", ["file", "KB", "KB gzipped"], rows
    )
    if total_gzipped > GOAL_GZIPPED_KB:
        print(f"over the goal by {total_gzipped - GOAL_GZIPPED_KB:.1f} KB")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
