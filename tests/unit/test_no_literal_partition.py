"""No code or template names the commercial partition literally: every ARN is built in the partition of its region
(aegis.partitions) or of the stack (`AWS::Partition`), so AegisCloud runs in aws, aws-us-gov and aws-cn alike.

Tests, the `events/` samples and `bench/` may use commercial ARNs as data; they are not searched.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from tests.support.stack import ROOT

SEARCHED = ("layers", "functions", "local", "statemachine", "template.yaml")
LITERAL = "arn:aws:"
_NOT_SOURCE = {"__pycache__", ".pyc"}


def _files(roots: Iterable[Path]) -> Iterator[Path]:
    for root in roots:
        candidates = [root] if root.is_file() else sorted(root.rglob("*"))
        for path in candidates:
            if path.is_file() and not _NOT_SOURCE & {*path.parts, path.suffix}:
                yield path


def literal_partitions(roots: Iterable[Path], base: Path) -> list[str]:
    """`path:line: text` for every line under `roots` naming the commercial partition in an ARN."""
    found = []
    for path in _files(roots):
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError:
            continue  # not text: nothing in it is an ARN a reader would copy
        for number, line in enumerate(lines, start=1):
            if LITERAL in line:
                found.append(f"{path.relative_to(base)}:{number}: {line.strip()}")
    return found


def test_no_code_template_or_definition_names_the_commercial_partition() -> None:
    assert literal_partitions([ROOT / name for name in SEARCHED], ROOT) == []


def test_the_search_names_the_file_and_line_of_a_literal_partition(tmp_path: Path) -> None:
    (tmp_path / "layers" / "pkg").mkdir(parents=True)
    (tmp_path / "layers" / "pkg" / "arns.py").write_text(
        'OK = f"arn:{partition}:s3:::bucket"\nBAD = "arn:aws:s3:::bucket"\n', encoding="utf-8"
    )
    (tmp_path / "template.yaml").write_text("Resource: !Sub arn:aws:sns:${AWS::Region}:x\n", encoding="utf-8")
    (tmp_path / "layers" / "pkg" / "__pycache__").mkdir()
    (tmp_path / "layers" / "pkg" / "__pycache__" / "arns.pyc").write_bytes(b"arn:aws:s3:::bucket")

    found = literal_partitions([tmp_path / "layers", tmp_path / "template.yaml"], tmp_path)

    assert found == [
        'layers/pkg/arns.py:2: BAD = "arn:aws:s3:::bucket"',
        "template.yaml:1: Resource: !Sub arn:aws:sns:${AWS::Region}:x",
    ]
