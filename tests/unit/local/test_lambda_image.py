"""aegis_local.lambda_image without Docker: what decides the image's tag, what its bootstrap runs, where its parts
come from. Building and running the image is tests/integration/test_sam.py's part (`sam local` on the local stack)."""

from __future__ import annotations

import dataclasses
import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from aegis_local import lambda_image
from aegis_local.lambda_image import (
    AWSLAMBDARIC_VERSION,
    BOOTSTRAP,
    IMAGE_REPOSITORY,
    REQUIREMENTS,
    CannotBuildHere,
    ImageBuildError,
    ImageInputs,
    debian_release,
    pinned_boto3,
)

INPUTS = ImageInputs(
    python_prefix=Path("/opt/python-3.13"),
    python_version="3.13.0",
    debian_release="bookworm",
    awslambdaric_version="4.2.2",
    boto3_version="1.44.8",
    recipe_digest="0" * 64,
)
BOOKWORM = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n'


@pytest.mark.parametrize(
    ("field", "other"),
    [
        ("python_version", "3.13.1"),
        ("debian_release", "trixie"),
        ("awslambdaric_version", "4.2.3"),
        ("boto3_version", "1.44.9"),
        ("recipe_digest", "1" * 64),
    ],
)
def test_each_input_of_the_content_changes_the_tag(field: str, other: str) -> None:
    changed = ImageInputs(**{**dataclasses.asdict(INPUTS), field: other})
    assert changed.tag != INPUTS.tag
    assert changed.tag.startswith(f"{IMAGE_REPOSITORY}:3.13-")


def test_where_the_interpreter_is_installed_here_does_not_change_the_tag() -> None:
    assert dataclasses.replace(INPUTS, python_prefix=Path("/usr/local")).tag == INPUTS.tag


def test_the_inputs_of_this_checkout_name_its_pins_and_this_file() -> None:
    inputs = ImageInputs.discover(os_release=BOOKWORM)
    assert inputs.python_version.startswith("3.13.")
    assert inputs.awslambdaric_version == AWSLAMBDARIC_VERSION
    assert inputs.boto3_version == pinned_boto3(REQUIREMENTS.read_text(encoding="utf-8"))
    assert inputs.recipe_digest == hashlib.sha256(Path(lambda_image.__file__).read_bytes()).hexdigest()
    # The tag is the same for any process that asks (make lambda-image, the tests).
    assert ImageInputs.discover(os_release=BOOKWORM).tag == inputs.tag


def test_the_interpreter_is_the_base_install_of_a_virtualenv() -> None:
    inputs = ImageInputs.discover(Path(sys.executable), os_release=BOOKWORM)
    assert inputs.python_prefix == Path(sys.base_prefix)
    assert (inputs.python_prefix / "bin" / "python3.13").is_file()


def test_a_python_other_than_3_13_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "python"
    other.write_text("#!/bin/sh\necho /usr\necho 3.12.7\n", encoding="utf-8")
    other.chmod(0o755)
    with pytest.raises(CannotBuildHere, match=r"3\.12\.7"):
        ImageInputs.discover(other, os_release=BOOKWORM)


def test_boto3_is_the_version_requirements_dev_pins() -> None:
    assert pinned_boto3("pytest==9.2.0\nboto3==1.44.8\nmoto[server]==5.2.5\n") == "1.44.8"
    with pytest.raises(ImageBuildError, match="pins no boto3"):
        pinned_boto3("boto3>=1.40\n")


def test_the_root_filesystem_is_of_the_hosts_debian_release() -> None:
    assert debian_release(BOOKWORM) == "bookworm"
    with pytest.raises(CannotBuildHere, match="Debian"):
        debian_release("ID=ubuntu\nVERSION_CODENAME=noble\n")
    with pytest.raises(CannotBuildHere, match="Debian"):
        debian_release("ID=debian\n")


def test_the_bootstrap_runs_the_runtime_client_on_the_handler_with_lambdas_search_path(tmp_path: Path) -> None:
    """Run the bootstrap with a stand-in for the interpreter that prints what it was given."""
    lang = tmp_path / "var" / "lang" / "bin"
    lang.mkdir(parents=True)
    script = BOOTSTRAP.replace("/var/lang/bin/python3.13", str(lang / "python3.13"))
    (lang / "python3.13").write_text('#!/bin/sh\necho "$PYTHONPATH"\necho "$@"\necho "$AWS_EXECUTION_ENV"\n')
    (lang / "python3.13").chmod(0o755)
    bootstrap = tmp_path / "bootstrap"
    bootstrap.write_text(script, encoding="utf-8")
    bootstrap.chmod(0o755)
    ran = subprocess.run(
        [str(bootstrap)], env={"_HANDLER": "app.scan_handler"}, capture_output=True, text=True, check=True
    )
    path, arguments, execution_env = ran.stdout.splitlines()
    assert path.split(":") == ["/var/task", "/opt/python/lib/python3.13/site-packages", "/opt/python", "/var/runtime"]
    assert arguments == "-m awslambdaric app.scan_handler"
    assert execution_env == "AWS_Lambda_python3.13"
