"""Policy documents as the IAM kinds handle them: one digest per document whatever its spelling, and removing then
putting back statements by index gives the same document again."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from aegis.catalogue.policy_documents import (
    document_sha256,
    frame_of,
    parse_policy_document,
    policy_text,
    statements_of,
    with_statements,
    without_statements,
)

A = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}
B = {"Effect": "Allow", "Action": "*", "Resource": "*"}
C = {"Effect": "Deny", "Action": "s3:DeleteBucket", "Resource": "*"}
DOCUMENT = {"Version": "2012-10-17", "Id": "doc", "Statement": [A, B, C]}


def test_the_digest_ignores_spelling_but_not_content() -> None:
    respelled = json.loads(json.dumps({"Statement": [A, B, C], "Id": "doc", "Version": "2012-10-17"}, indent=4))
    assert document_sha256(respelled) == document_sha256(DOCUMENT)
    assert document_sha256({"Statement": A}) == document_sha256({"Statement": [A]})
    assert document_sha256({**DOCUMENT, "Statement": [A, C, B]}) != document_sha256(DOCUMENT)


@pytest.mark.parametrize("indices", [(0,), (1,), (2,), (0, 2), (1, 2)])
def test_removing_and_putting_back_statements_gives_the_document_again(indices: tuple[int, ...]) -> None:
    removed = {i: statements_of(DOCUMENT)[i] for i in indices}
    rest = without_statements(DOCUMENT, indices)
    assert len(statements_of(rest)) == 3 - len(indices)
    assert frame_of(rest) == {"Version": "2012-10-17", "Id": "doc"}
    assert with_statements(rest, removed) == DOCUMENT


def test_a_statement_put_back_outside_the_document_is_refused() -> None:
    with pytest.raises(ValueError, match="outside"):
        with_statements({"Statement": [A]}, {5: B})


def test_documents_are_read_from_dicts_or_url_encoded_json_and_written_as_json() -> None:
    assert parse_policy_document(quote(json.dumps(DOCUMENT))) == DOCUMENT
    assert json.loads(policy_text(DOCUMENT)) == DOCUMENT
    with pytest.raises(ValueError, match="policy document"):
        parse_policy_document(json.dumps([A]))
