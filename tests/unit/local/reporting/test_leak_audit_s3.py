"""`s3_places`: every object of the named buckets (or of every bucket) is a place of the leak audit, named by bucket
and key, counted per bucket."""

from __future__ import annotations

import secrets

import boto3

from aegis_local.reporting.leak_audit import audit, fingerprint, place_kind, s3_places


def test_every_object_is_searched_and_a_hit_names_its_bucket_and_key(aws: boto3.Session) -> None:
    s3 = aws.client("s3")
    token = secrets.token_urlsafe(32)
    for bucket in ("org-scans", "other"):
        s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket="org-scans", Key="org-scan-results/SUCCEEDED_0.json", Body=f'{{"x": "{token}"}}'.encode())
    s3.put_object(Bucket="org-scans", Key="org-scans/org-1/items.json", Body=b"[]")
    s3.put_object(Bucket="other", Key="clean.txt", Body=b"nothing here")

    result = audit({token}, s3_places(aws))

    assert result.places_searched == 3
    assert result.places == {"bucket org-scans": 2, "bucket other": 1}
    assert [(hit.place, hit.fingerprint) for hit in result.hits] == [
        ("s3:org-scans/org-scan-results/SUCCEEDED_0.json", fingerprint(token))
    ]
    assert [place for place, _ in s3_places(aws, ["other"])] == ["s3:other/clean.txt"]
    assert place_kind("s3:b/k/with/slashes") == "bucket b"
