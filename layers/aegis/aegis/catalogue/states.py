"""The four S3 Block Public Access switches, shared by the account- and bucket-level kinds."""

from __future__ import annotations

from aegis.catalogue.base import WideningChange
from aegis.models import Frozen


class PublicAccessBlock(Frozen):
    configured: bool = True
    block_public_acls: bool = False
    ignore_public_acls: bool = False
    block_public_policy: bool = False
    restrict_public_buckets: bool = False

    @classmethod
    def all_on(cls) -> PublicAccessBlock:
        return cls(
            block_public_acls=True,
            ignore_public_acls=True,
            block_public_policy=True,
            restrict_public_buckets=True,
        )

    @classmethod
    def from_aws(cls, config: dict[str, bool] | None) -> PublicAccessBlock:
        if config is None:
            return cls(configured=False)
        return cls(
            block_public_acls=bool(config.get("BlockPublicAcls")),
            ignore_public_acls=bool(config.get("IgnorePublicAcls")),
            block_public_policy=bool(config.get("BlockPublicPolicy")),
            restrict_public_buckets=bool(config.get("RestrictPublicBuckets")),
        )

    def to_aws(self) -> dict[str, bool]:
        return {
            "BlockPublicAcls": self.block_public_acls,
            "IgnorePublicAcls": self.ignore_public_acls,
            "BlockPublicPolicy": self.block_public_policy,
            "RestrictPublicBuckets": self.restrict_public_buckets,
        }

    @property
    def switches(self) -> tuple[bool, bool, bool, bool]:
        return (
            self.block_public_acls,
            self.ignore_public_acls,
            self.block_public_policy,
            self.restrict_public_buckets,
        )

    @property
    def fully_on(self) -> bool:
        return all(self.switches)

    def describe(self) -> str:
        if not self.configured:
            return "no public access block"
        names = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
        return ", ".join(f"{n}={'on' if v else 'off'}" for n, v in zip(names, self.switches, strict=True))


def assert_blocks_more(before: PublicAccessBlock, after: PublicAccessBlock) -> None:
    if not after.fully_on:
        raise WideningChange("after must turn on all four Block Public Access settings")
    if after == before:
        raise WideningChange("the change changes nothing")
