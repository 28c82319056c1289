"""The invocation image `sam local invoke` runs the functions in, built on this machine from parts it can reach.

SAM's default images (`public.ecr.aws/lambda/python:3.13`) come from a registry; where none can be reached, SAM is
given this one with `--invoke-image` and `--skip-pull-image`. SAM builds its own image FROM it (adding its Runtime
Interface Emulator at /var/rapid and the layers at /opt; samcli/local/docker/lambda_image.py), so the base needs:

- a root filesystem with /bin/sh, `mv`, `chmod` and `cp` for SAM's Dockerfile: Debian `--variant=minbase` from
  `debootstrap`, of the host's release (the copied Python was built against the host's glibc);
- the project's Python 3.13 at /var/lang, as on Lambda: the interpreter, libpython and the standard library of the
  install the project's virtualenv was made from, without its tests, IDLE, Tk and site-packages;
- at /var/runtime what Lambda's runtime directory holds: `awslambdaric` (the runtime interface client, from PyPI) and
  boto3 at the version requirements-dev.txt pins ("Lambda provides boto3");
- /var/runtime/bootstrap, which the emulator starts when the container has no command: it runs
  `python -m awslambdaric "$_HANDLER"` with the function's code (/var/task) and layers (/opt/python) on the path.

`docker import` turns the tree into the image. Its tag carries a hash of everything that decides its content (this
file, the Python version, the Debian release, the awslambdaric and boto3 versions), so a second build with the same
inputs finds the image and does nothing. Building needs root (debootstrap and chroot) and a running Docker daemon.

    python -m aegis_local.lambda_image [--python PATH]     build unless present; prints the tag last
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "AWSLAMBDARIC_VERSION",
    "BOOTSTRAP",
    "IMAGE_REPOSITORY",
    "BuiltImage",
    "CannotBuildHere",
    "ImageBuildError",
    "ImageInputs",
    "debian_release",
    "ensure_image",
    "main",
    "pinned_boto3",
]

IMAGE_REPOSITORY = "aegis-lambda-python"
# The tag without the hash, moved to each new build: what a person types for `sam local invoke --invoke-image`.
CURRENT_TAG = f"{IMAGE_REPOSITORY}:3.13"
AWSLAMBDARIC_VERSION = "4.2.2"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
# Shared libraries the standard library's extension modules load that minbase lacks (ssl/hashlib, ctypes, sqlite3,
# pyexpat); zlib, bz2, lzma, uuid and ncurses' tinfo come with minbase.
EXTRA_PACKAGES = ("libssl3", "libffi8", "libsqlite3-0", "libexpat1")
# Importing these in the finished image proves the copied interpreter found every library it links.
SMOKE_IMPORTS = (
    "awslambdaric, boto3, ssl, hashlib, ctypes, sqlite3, pyexpat, zlib, bz2, lzma, uuid, decimal, json, zoneinfo"
)
# Parts of the standard library a function never uses (about 220 MB of the install: tests, the static library...).
STDLIB_LEFT_OUT = frozenset({"test", "idlelib", "tkinter", "turtledemo", "ensurepip", "site-packages"})
# Left out of the root filesystem once installed: apt's caches and lists, documentation.
ROOTFS_LEFT_OUT = (
    "var/cache/apt",
    "var/lib/apt/lists",
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
)
REQUIREMENTS = Path(__file__).resolve().parents[2] / "requirements-dev.txt"
OS_RELEASE = Path("/etc/os-release")
# Two builds of one image at once (two test workers, say) would do the same work twice; the second waits.
BUILD_LOCK = Path(tempfile.gettempdir()) / "aegis-lambda-image.lock"

BOOTSTRAP = """\
#!/bin/sh
# Lambda's runtime bootstrap for Python 3.13. The Runtime Interface Emulator (`sam local` mounts it at
# /var/rapid/aws-lambda-rie) starts this file when the container has no command, with _HANDLER set to the
# function's Handler and AWS_LAMBDA_RUNTIME_API to its own address. The search path is Lambda's: the function's
# code, then its layers, then the runtime (awslambdaric, boto3).
export LAMBDA_TASK_ROOT=/var/task LAMBDA_RUNTIME_DIR=/var/runtime AWS_EXECUTION_ENV=AWS_Lambda_python3.13
export PYTHONPATH=/var/task:/opt/python/lib/python3.13/site-packages:/opt/python:/var/runtime
exec /var/lang/bin/python3.13 -m awslambdaric "$_HANDLER"
"""
IMAGE_CHANGES = (
    "ENV PATH=/var/lang/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    "ENV TZ=:/etc/localtime",
    "ENV LAMBDA_TASK_ROOT=/var/task",
    "ENV LAMBDA_RUNTIME_DIR=/var/runtime",
    "WORKDIR /var/task",
)


class ImageBuildError(Exception):
    """A step of the build failed; the message names the step and what it printed."""


class CannotBuildHere(ImageBuildError):
    """This machine lacks what the build needs (root, debootstrap, a Docker daemon, Python 3.13)."""


@dataclass(frozen=True)
class ImageInputs:
    """Everything that decides the image's content. Equal inputs, equal image: the tag is their hash."""

    python_prefix: Path
    python_version: str
    debian_release: str
    awslambdaric_version: str
    boto3_version: str
    recipe_digest: str

    @classmethod
    def discover(cls, python: Path | None = None, os_release: str | None = None) -> ImageInputs:
        """The inputs for `python` (default: the installation this interpreter, or its virtualenv, comes from) on the
        system /etc/os-release describes (or `os_release`, its text)."""
        prefix, version = _python_install(python)
        return cls(
            python_prefix=prefix,
            python_version=version,
            debian_release=debian_release(os_release if os_release is not None else _read(OS_RELEASE)),
            awslambdaric_version=AWSLAMBDARIC_VERSION,
            boto3_version=pinned_boto3(_read(REQUIREMENTS)),
            recipe_digest=hashlib.sha256(Path(__file__).read_bytes()).hexdigest(),
        )

    @property
    def key(self) -> str:
        """The content hash: where the interpreter is installed on this machine is not part of it."""
        decisive = {
            "python": self.python_version,
            "debian": self.debian_release,
            "awslambdaric": self.awslambdaric_version,
            "boto3": self.boto3_version,
            "recipe": self.recipe_digest,
        }
        return hashlib.sha256(json.dumps(decisive, sort_keys=True).encode("utf-8")).hexdigest()[:16]

    @property
    def tag(self) -> str:
        return f"{IMAGE_REPOSITORY}:3.13-{self.key}"


@dataclass
class BuiltImage:
    """The image `ensure_image` found or built, and how long each step took (seconds)."""

    tag: str
    cached: bool
    timings: dict[str, float] = field(default_factory=dict)
    size_bytes: int = 0


def ensure_image(python: Path | None = None, *, docker: str = "docker", report: bool = False) -> BuiltImage:
    """The tag of the invocation image for `python`: found by its content hash, or built now."""
    began = time.monotonic()
    inputs = ImageInputs.discover(python)
    _require_daemon(docker)
    if not _image_exists(docker, inputs.tag):
        _require_build_tools()
        with BUILD_LOCK.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not _image_exists(docker, inputs.tag):
                built = _build(inputs, docker, report)
                _remove_superseded(docker, keep=inputs.tag)
                built.timings["total"] = time.monotonic() - began
                return built
    _run([docker, "tag", inputs.tag, CURRENT_TAG], "docker tag")
    return BuiltImage(inputs.tag, cached=True, timings={"total": time.monotonic() - began})


def _require_build_tools() -> None:
    if os.geteuid() != 0:
        raise CannotBuildHere("building the invocation image needs root (debootstrap and chroot): run it with sudo")
    if shutil.which("debootstrap") is None:
        raise CannotBuildHere("debootstrap is not installed (apt-get install debootstrap)")


def _build(inputs: ImageInputs, docker: str, report: bool) -> BuiltImage:
    debootstrap = shutil.which("debootstrap") or "debootstrap"
    timings: dict[str, float] = {}

    def step(name: str, began: float) -> None:
        timings[name] = time.monotonic() - began
        if report:
            print(f"{name}: {timings[name]:.1f} s", file=sys.stderr)

    work = Path(tempfile.mkdtemp(prefix="aegis-lambda-image-"))
    rootfs = work / "rootfs"
    try:
        began = time.monotonic()
        _run(
            [
                debootstrap,
                "--variant=minbase",
                f"--include={','.join(EXTRA_PACKAGES)}",
                inputs.debian_release,
                str(rootfs),
                DEBIAN_MIRROR,
            ],
            "debootstrap",
        )
        step("debootstrap", began)
        began = time.monotonic()
        _install_python(inputs.python_prefix, rootfs)
        _install_runtime(inputs, rootfs)
        _trim(rootfs)
        step("python and runtime", began)
        began = time.monotonic()
        _import(docker, rootfs, inputs)
        smoke = ["--rm", "--entrypoint", "/var/lang/bin/python3.13", "-e", "PYTHONPATH=/var/runtime", inputs.tag]
        _run([docker, "run", *smoke, "-c", f"import {SMOKE_IMPORTS}"], "the image's smoke test")
        _run([docker, "tag", inputs.tag, CURRENT_TAG], "docker tag")
        step("docker import and smoke test", began)
    finally:
        began = time.monotonic()
        _unmount_below(rootfs)
        shutil.rmtree(work, ignore_errors=True)
        step("removing the build tree", began)
    size = _run([docker, "image", "inspect", "--format", "{{.Size}}", inputs.tag], "docker image inspect")
    return BuiltImage(inputs.tag, cached=False, timings=timings, size_bytes=int(size.strip()))


def _install_python(prefix: Path, rootfs: Path) -> None:
    """The interpreter, libpython and the standard library at /var/lang, found by the dynamic loader there."""
    lang = rootfs / "var" / "lang"
    (lang / "bin").mkdir(parents=True)
    shutil.copy2(prefix / "bin" / "python3.13", lang / "bin" / "python3.13")
    for alias in ("python3", "python"):
        (lang / "bin" / alias).symlink_to("python3.13")
    (lang / "lib").mkdir()
    for library in (prefix / "lib").glob("libpython3*.so*"):
        shutil.copy2(library, lang / "lib" / library.name, follow_symlinks=False)

    def left_out(directory: str, names: list[str]) -> set[str]:
        if Path(directory) == prefix / "lib" / "python3.13":
            return {name for name in names if name in STDLIB_LEFT_OUT or name.startswith("config-3.13")}
        if Path(directory).name == "lib-dynload":
            return {name for name in names if name.startswith("_tkinter")}
        return set()

    shutil.copytree(prefix / "lib" / "python3.13", lang / "lib" / "python3.13", symlinks=True, ignore=left_out)
    (lang / "lib" / "python3.13" / "site-packages").mkdir()
    # The interpreter's RPATH names its install prefix on this machine; the loader finds libpython through this.
    (rootfs / "etc" / "ld.so.conf.d" / "var-lang.conf").write_text("/var/lang/lib\n", encoding="utf-8")
    _run(["chroot", str(rootfs), "/sbin/ldconfig"], "ldconfig in the root filesystem")


def _install_runtime(inputs: ImageInputs, rootfs: Path) -> None:
    runtime = rootfs / "var" / "runtime"
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--only-binary=:all:",
            "--target",
            str(runtime),
            f"awslambdaric=={inputs.awslambdaric_version}",
            f"boto3=={inputs.boto3_version}",
        ],
        "pip install awslambdaric boto3",
    )
    bootstrap = runtime / "bootstrap"
    bootstrap.write_text(BOOTSTRAP, encoding="utf-8")
    bootstrap.chmod(0o755)


def _trim(rootfs: Path) -> None:
    for relative in ROOTFS_LEFT_OUT:
        target = rootfs / relative
        if target.is_dir():
            shutil.rmtree(target)
            target.mkdir()


def _import(docker: str, rootfs: Path, inputs: ImageInputs) -> None:
    changes = [*IMAGE_CHANGES, f"LABEL org.aegiscloud.lambda-image.key={inputs.key}"]
    command = [docker, "import", *(arg for change in changes for arg in ("--change", change)), "-", inputs.tag]
    with subprocess.Popen(
        ["tar", "--numeric-owner", "-C", str(rootfs), "-cf", "-", "."], stdout=subprocess.PIPE
    ) as archive:
        imported = subprocess.run(command, stdin=archive.stdout, capture_output=True, text=True, check=False)
        if archive.stdout is not None:
            archive.stdout.close()
    if archive.returncode != 0 or imported.returncode != 0:
        raise ImageBuildError(f"docker import failed: {(imported.stderr or imported.stdout).strip()[-2000:]}")


def _python_install(python: Path | None) -> tuple[Path, str]:
    """The installation prefix and version of `python` (of a virtualenv's base interpreter for a virtualenv's)."""
    interpreter = str(python) if python is not None else sys.executable
    probe = subprocess.run(
        [interpreter, "-c", "import platform, sys; print(sys.base_prefix); print(platform.python_version())"],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        raise CannotBuildHere(f"{interpreter} does not run: {probe.stderr.strip()[-500:]}")
    prefix_text, version = probe.stdout.split()
    prefix = Path(prefix_text)
    if not version.startswith("3.13."):
        raise CannotBuildHere(f"{interpreter} is Python {version}; the functions run on 3.13")
    if not (prefix / "bin" / "python3.13").is_file() or not (prefix / "lib" / "python3.13" / "os.py").is_file():
        raise CannotBuildHere(f"{prefix} is not a self-contained Python install (bin/python3.13, lib/python3.13)")
    return prefix, version


def debian_release(os_release: str) -> str:
    """The Debian release named by /etc/os-release: the host's, whose glibc the copied Python was built against."""
    fields = dict(line.split("=", 1) for line in os_release.splitlines() if "=" in line)
    release = fields.get("VERSION_CODENAME", "").strip('"')
    if fields.get("ID", "").strip('"') != "debian" or not release:
        raise CannotBuildHere("the image is built on Debian (debootstrap of the host's own release)")
    return release


def pinned_boto3(requirements: str) -> str:
    """The boto3 version requirements-dev.txt pins: the one Lambda's runtime provides to the functions here."""
    found = re.search(r"^boto3==([\w.]+)\s*$", requirements, flags=re.MULTILINE)
    if found is None:
        raise ImageBuildError("requirements-dev.txt pins no boto3 version (boto3==X.Y.Z)")
    return found.group(1)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as error:
        raise CannotBuildHere(f"cannot read {path}: {error}") from error


def _require_daemon(docker: str) -> None:
    if shutil.which(docker) is None:
        raise CannotBuildHere(f"{docker} is not installed")
    info = subprocess.run([docker, "info"], capture_output=True, text=True, check=False)
    if info.returncode != 0:
        raise CannotBuildHere(f"no Docker daemon answers: {(info.stderr or info.stdout).strip()[-500:]}")


def _image_exists(docker: str, tag: str) -> bool:
    found = subprocess.run([docker, "image", "inspect", tag], capture_output=True, check=False)
    return found.returncode == 0


def _remove_superseded(docker: str, keep: str) -> None:
    """Remove the images earlier inputs built (other hashes of this repository): each is some 200 MB."""
    listed = _run([docker, "image", "ls", IMAGE_REPOSITORY, "--format", "{{.Repository}}:{{.Tag}}"], "docker image ls")
    superseded = [tag for tag in listed.split() if re.fullmatch(rf"{IMAGE_REPOSITORY}:3\.13-[0-9a-f]{{16}}", tag)]
    superseded = [tag for tag in superseded if tag != keep]
    if superseded:
        # Best effort: an image a stopped container still uses stays, and is no reason to fail the build.
        subprocess.run([docker, "image", "rm", *superseded], capture_output=True, timeout=120, check=False)


def _unmount_below(path: Path) -> None:
    """Unmount what a failed debootstrap left mounted in the tree (/proc, /sys), before the tree is removed."""
    try:
        mounts = Path("/proc/mounts").read_text(encoding="utf-8").splitlines()
    except OSError:
        return
    below = [line.split()[1] for line in mounts if line.split()[1].startswith(f"{path}/")]
    for mountpoint in sorted(below, key=len, reverse=True):
        subprocess.run(["umount", "-l", mountpoint], capture_output=True, check=False)


def _run(command: Sequence[str], what: str) -> str:
    result = subprocess.run(list(command), capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ImageBuildError(
            f"{what} failed ({result.returncode}): {(result.stderr or result.stdout).strip()[-2000:]}"
        )
    return result.stdout


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aegis_local.lambda_image", description=__doc__.split("\n")[0])
    parser.add_argument("--python", type=Path, help="the Python 3.13 to install (default: this one's base install)")
    arguments = parser.parse_args(argv)
    try:
        built = ensure_image(arguments.python, report=True)
    except ImageBuildError as error:
        print(f"lambda image: {error}", file=sys.stderr)
        return 1
    if built.cached:
        print(f"lambda image: {built.tag} is present ({built.timings['total']:.1f} s)", file=sys.stderr)
    else:
        print(
            f"lambda image: built {built.tag} in {built.timings['total']:.1f} s, {built.size_bytes / 1e6:.0f} MB",
            file=sys.stderr,
        )
    print(built.tag)
    return 0


if __name__ == "__main__":
    sys.exit(main())
