"""The analyst's cost: model calls, input and output tokens, the wall time it adds to a mission, and the estimated
Bedrock price, per mission on the seeded account and on accounts with more findings (default 200).

Each account is built in an in-process moto, scanned with the real scanner and checks (the seeded account:
`aegis_local.scenario.seed`; the larger ones: public buckets, half public through their ACL and half through their
policy, so that every finding has two candidate fixes), and the real analyst (`aegis_agent.analyst`) decides its
findings against the local Bedrock runtime emulator (`aegis_local.bedrock`), once per emulated model (`scripted`,
`adversarial`; with the demo's prompt injection planted, the adversarial model's answers fall back where they do not
stand). The emulator's tokens are an estimate (a quarter of the characters); a real model's tokenizer
differs, so the price is an order of magnitude, not a quote.

The goal: one call per batch of findings, never per finding (at most one call per 25 findings). The exit status is 1
when a run makes more calls than that.

Prices, USD per million tokens, on-demand in us-east-1. AWS's pricing page renders them dynamically and none was read
from it; these are secondary sources (see the reference notes), as of the dates given:
- Amazon Nova Lite: 0.06 in / 0.24 out (tokenmix.ai, 2026-04-10);
- Anthropic Claude 3.5 Haiku: 0.80 in / 4.00 out (deploybase.ai, citing AWS, 2026-03-21).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import boto3

from bench.common import add_sizes, argument_parser, chosen_sizes, print_table

REGION = "us-east-1"
MODELS = ("scripted", "adversarial")
# (name, USD per million input tokens, USD per million output tokens, source and date)
PRICES = (
    ("nova-lite", 0.06, 0.24, "tokenmix.ai, 2026-04-10"),
    ("claude-3.5-haiku", 0.80, 4.00, "deploybase.ai citing AWS, 2026-03-21"),
)
FULL_SIZES = (200,)
SMALL_SIZES = (30,)


@dataclass(frozen=True)
class Measured:
    account: str
    model: str
    findings: int
    sent: int
    calls: int
    input_tokens: int
    output_tokens: int
    seconds: float
    fallbacks: dict[str, int]

    @property
    def call_limit(self) -> int:
        return math.ceil(self.sent / 25)

    def cost(self, input_price: float, output_price: float) -> float:
        return (self.input_tokens * input_price + self.output_tokens * output_price) / 1_000_000


def seeded_findings(*, injections: bool = False) -> list[Any]:
    """The seeded account's findings, scanned by the real scanner (one region); with `injections`, also the prompt
    injection the demo plants in resource names for the analyst (`aegis_local.scenario.injections`)."""
    from moto import mock_aws

    from aegis_local.scenario.injections import DEMO_INJECTIONS, plant
    from aegis_local.scenario.seed import seed_account

    with mock_aws():
        session = boto3.Session(region_name=REGION)
        seed_account(session, REGION)
        if injections:
            plant(session, REGION, DEMO_INJECTIONS)
        return _scan(session)


def public_bucket_findings(count: int) -> list[Any]:
    """`count` public buckets, alternately through a public-read ACL and a policy granting everyone GetObject."""
    import json

    from moto import mock_aws

    with mock_aws():
        session = boto3.Session(region_name=REGION)
        s3 = session.client("s3")
        for index in range(count):
            name = f"bench-public-{index:04d}"
            s3.create_bucket(Bucket=name)
            s3.delete_public_access_block(Bucket=name)
            if index % 2:
                statement = {
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": "s3:GetObject",
                    "Resource": f"arn:aws:s3:::{name}/*",
                }
                s3.put_bucket_policy(
                    Bucket=name, Policy=json.dumps({"Version": "2012-10-17", "Statement": [statement]})
                )
            else:
                s3.put_bucket_acl(Bucket=name, ACL="public-read")
        return _scan(session, check_ids=["s3-bucket-public"])


def _scan(session: boto3.Session, check_ids: Sequence[str] | None = None) -> list[Any]:
    from aegis.checks.base import PlanConfig
    from aegis_agent.scanner import AwsScanner, screen

    scanner = AwsScanner(lambda: session, PlanConfig())
    return list(screen(scanner.scan([REGION], check_ids)).findings)


def measure(account: str, findings: Sequence[Any], model: str, endpoint: str) -> Measured:
    from aegis.checks.base import PlanConfig
    from aegis_agent.analyst import Analyst, AnalystSettings, overview
    from aegis_agent.graph import analyst_item
    from aegis_agent.scanner import AwsScanner

    scanner = AwsScanner(boto3.Session, PlanConfig())
    items = [item for f in findings if f.remediation and (item := analyst_item(f, scanner)) is not None]
    client = boto3.client(
        "bedrock-runtime",
        region_name=REGION,
        endpoint_url=endpoint,
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
    )
    analyst = Analyst(AnalystSettings(model_id=model), client)
    started = time.perf_counter()
    run = analyst.analyse(items, overview(findings))
    seconds = time.perf_counter() - started
    fallbacks: dict[str, int] = {}
    for finding in run.findings:
        if finding.note.fallback:
            fallbacks[finding.note.fallback] = fallbacks.get(finding.note.fallback, 0) + 1
    return Measured(
        account=account,
        model=model,
        findings=len(findings),
        sent=len(items),
        calls=len(run.exchanges),
        input_tokens=sum(e.record.input_tokens for e in run.exchanges),
        output_tokens=sum(e.record.output_tokens for e in run.exchanges),
        seconds=seconds,
        fallbacks=fallbacks,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argument_parser(__doc__)
    add_sizes(parser, "--findings", "findings per larger account", FULL_SIZES, SMALL_SIZES)
    args = parser.parse_args(argv)
    from aegis_local.bedrock import BedrockEmulator

    accounts: list[tuple[str, list[Any]]] = [
        ("seeded", seeded_findings()),
        ("seeded + injections", seeded_findings(injections=True)),
    ]
    accounts += [
        (f"{n} public buckets", public_bucket_findings(n))
        for n in chosen_sizes(args.findings, args.small, FULL_SIZES, SMALL_SIZES)
    ]
    results: list[Measured] = []
    with BedrockEmulator() as emulator:
        for account, findings in accounts:
            for model in MODELS:
                results.append(measure(account, findings, model, emulator.url))

    print_table(
        "The analyst per mission (local Bedrock emulator; tokens estimated as characters / 4)",
        ["account", "model", "findings", "sent", "calls", "limit", "input tok", "output tok", "ms added", "fallbacks"],
        [
            [
                r.account,
                r.model,
                r.findings,
                r.sent,
                r.calls,
                r.call_limit,
                r.input_tokens,
                r.output_tokens,
                round(r.seconds * 1000),
                ", ".join(f"{k} {v}" for k, v in sorted(r.fallbacks.items())) or "-",
            ]
            for r in results
        ],
    )
    print_table(
        "Estimated Bedrock cost per mission, USD (prices and their sources in bench/analyst.py)",
        ["account", "model", *[name for name, *_ in PRICES]],
        [[r.account, r.model, *[f"{r.cost(i, o):.5f}" for _, i, o, _ in PRICES]] for r in results],
    )
    over = [r for r in results if r.calls > r.call_limit]
    for r in over:
        print(f"over the goal: {r.account} / {r.model}: {r.calls} calls for {r.sent} findings (limit {r.call_limit})")
    return 1 if over else 0


if __name__ == "__main__":
    raise SystemExit(main())
