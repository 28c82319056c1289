"""Build the console into `console/dist/` when its inputs changed: `npm ci` (only when the lockfile changed), `npm run
build` (type check, then esbuild) and `roles.json` from template.yaml (`aegis_local.console.roles`).

A digest of every input (the npm project, the sources, the template and the roles generator) is kept beside the
build; an unchanged digest means nothing to do. The Makefile's `console` target, the browser tests, the local server
and the bundle bench all go through `ensure_built`, so they agree on what "built" means.

    python -m aegis_local.console.build [--force]
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from aegis_local.console.roles import write_roles

__all__ = [
    "CONSOLE_DIR",
    "DIST_DIR",
    "ConsoleBuildError",
    "ensure_built",
    "inputs_digest",
    "is_current",
]

PROJECT_ROOT = Path(__file__).resolve().parents[3]
CONSOLE_DIR = PROJECT_ROOT / "console"
DIST_DIR = CONSOLE_DIR / "dist"
TEMPLATE = PROJECT_ROOT / "template.yaml"
BUILD_STAMP = DIST_DIR / ".inputs-sha256"
# npm ci rewrites node_modules; it runs again only when the lockfile it installed from changed.
INSTALL_STAMP = CONSOLE_DIR / "node_modules" / ".aegis-lock-sha256"
LOCK_FILE = CONSOLE_DIR / ".build-lock"
PROJECT_FILES = ("package.json", "package-lock.json", "tsconfig.json", "build.mjs")
SOURCE_DIRS = ("src", "static")
# What the build produces; a build missing one of them is not current, whatever the stamp says.
OUTPUTS = ("index.html", "app.js", "app.css", "roles.json")
NPM_TIMEOUT_SECONDS = 600


class ConsoleBuildError(RuntimeError):
    """The console could not be built; the message says what is missing or which step failed."""


def _inputs() -> Iterator[Path]:
    for name in PROJECT_FILES:
        yield CONSOLE_DIR / name
    for directory in SOURCE_DIRS:
        yield from sorted(path for path in (CONSOLE_DIR / directory).rglob("*") if path.is_file())
    yield TEMPLATE
    yield Path(__file__).with_name("roles.py")


def inputs_digest() -> str:
    digest = hashlib.sha256()
    for path in _inputs():
        digest.update(path.relative_to(PROJECT_ROOT).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def is_current() -> bool:
    if not all((DIST_DIR / name).is_file() for name in OUTPUTS) or not BUILD_STAMP.is_file():
        return False
    return BUILD_STAMP.read_text(encoding="utf-8").strip() == inputs_digest()


def _npm() -> str:
    npm = shutil.which("npm")
    if npm is None:
        raise ConsoleBuildError(
            "npm is needed to build the console (make console installs it as root; else apt-get install nodejs npm)"
        )
    return npm


def _run(command: list[str], what: str) -> None:
    try:
        finished = subprocess.run(
            command, cwd=CONSOLE_DIR, capture_output=True, text=True, timeout=NPM_TIMEOUT_SECONDS, check=False
        )
    except subprocess.TimeoutExpired as error:
        raise ConsoleBuildError(f"{what} took longer than {NPM_TIMEOUT_SECONDS} s") from error
    if finished.returncode != 0:
        output = (finished.stdout + finished.stderr).strip()[-4000:]
        raise ConsoleBuildError(f"{what} failed (exit {finished.returncode}):\n{output}")


def _lock_digest() -> str:
    return hashlib.sha256((CONSOLE_DIR / "package-lock.json").read_bytes()).hexdigest()


def ensure_built(*, force: bool = False, log: Callable[[str], None] = print) -> Path:
    """`console/dist`, built now unless it is already built from the same inputs. Raises ConsoleBuildError."""
    LOCK_FILE.touch()
    # Two test workers (or make and a test) may ask at once: one builds, the other then finds it current.
    with LOCK_FILE.open("r") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not force and is_current():
            return DIST_DIR
        npm = _npm()
        if not INSTALL_STAMP.is_file() or INSTALL_STAMP.read_text(encoding="utf-8").strip() != _lock_digest():
            log("console: npm ci (the lockfile changed)")
            _run([npm, "ci", "--no-audit", "--no-fund"], "npm ci")
            INSTALL_STAMP.write_text(_lock_digest() + "\n", encoding="utf-8")
        log("console: npm run build")
        _run([npm, "run", "build"], "npm run build")
        write_roles(DIST_DIR / "roles.json", TEMPLATE)
        BUILD_STAMP.write_text(inputs_digest() + "\n", encoding="utf-8")
        log(f"console: built {DIST_DIR}")
        return DIST_DIR


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aegis_local.console.build", description=__doc__.split("\n")[0])
    parser.add_argument("--force", action="store_true", help="build even when the inputs did not change")
    args = parser.parse_args(argv)
    try:
        ensure_built(force=args.force)
    except ConsoleBuildError as error:
        print(f"console: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
