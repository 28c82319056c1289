"""Read-only inventory collectors, one per service, shared by the checks of one scan.

Collectors fetch lazily and at most once: a check asks for what it needs (`inventory.ec2.security_group_rules()`),
the first asker makes the paginated listing, the others reuse it. Nothing here mutates anything, and collectors keep
only the fields the checks need (never descriptions or policy texts beyond the checked documents).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3

from aegis.collectors.base import Clients, error_name
from aegis.collectors.cloudtrail import CloudTrailCollector
from aegis.collectors.config import ConfigCollector
from aegis.collectors.ec2 import Ec2Collector
from aegis.collectors.iam import IamCollector
from aegis.collectors.kms import KmsCollector
from aegis.collectors.rds import RdsCollector
from aegis.collectors.s3 import S3Collector
from aegis.models import ScanError
from aegis.partitions import home_region_of, partition_of

# Threads one check may use for its per-resource reads (`Inventory.each`). The two bucket checks run at once and share
# the S3 client, whose connection pool holds Clients' `max_pool_connections` (at least 10): 2 x 4 stays within it.
PER_RESOURCE_WORKERS = 4


class Collectors:
    """The collectors of one scan, keyed by service and region, plus what the checks report besides findings:
    notes (e.g. calls skipped and why) and per-resource errors that did not stop a check."""

    def __init__(self, clients: Clients, account_id: str) -> None:
        self.clients = clients
        self.account_id = account_id
        self._lock = threading.Lock()
        # Making a collector makes its client, which can take a tenth of a second: under a lock of its own, so that
        # notes, counts and errors of the other checks do not wait for it.
        self._make_lock = threading.Lock()
        self._collectors: dict[tuple[str, str], Any] = {}
        self._notes: list[str] = []
        self._errors: list[ScanError] = []
        self._counts: dict[tuple[str, str], int] = {}

    def get(self, service: str, region: str) -> Any:
        key = (service, region)
        made = self._collectors.get(key)  # made once, never replaced: a dict read needs no lock
        if made is not None:
            return made
        with self._make_lock:
            if key not in self._collectors:
                self._collectors[key] = self._make(service, region)
            return self._collectors[key]

    def _make(self, service: str, region: str) -> Any:
        client = self.clients.client
        match service:
            case "ec2":
                return Ec2Collector(client("ec2", region))
            case "kms":
                return KmsCollector(client("kms", region))
            case "cloudtrail":
                return CloudTrailCollector(client("cloudtrail", region))
            case "config":
                return ConfigCollector(client("config", region))
            case "iam":
                return IamCollector(client("iam", region))
            case "rds":
                return RdsCollector(client("rds", region))
            case "s3":
                return S3Collector(client("s3", region), client("s3control", region), self.account_id)
        raise ValueError(f"no collector for service {service!r}")

    def note(self, text: str) -> None:
        with self._lock:
            if text not in self._notes:
                self._notes.append(text)

    def record_error(self, check_id: str, region: str, exc: BaseException, resource_arn: str) -> None:
        with self._lock:
            self._errors.append(
                ScanError(check_id=check_id, region=region, error=error_name(exc), message=f"{resource_arn}: {exc}")
            )

    def count(self, resource_type: str, region: str, resources: int) -> None:
        """How many resources of a type a check evaluated in a region; checks of the same type agree or the largest
        (most complete) count wins."""
        with self._lock:
            key = (resource_type, region)
            self._counts[key] = max(self._counts.get(key, 0), resources)

    @property
    def resource_counts(self) -> dict[str, int]:
        """Resources evaluated per resource type, summed over regions."""
        totals: dict[str, int] = {}
        with self._lock:
            for (resource_type, _), resources in sorted(self._counts.items()):
                totals[resource_type] = totals.get(resource_type, 0) + resources
        return totals

    @property
    def notes(self) -> list[str]:
        with self._lock:
            return list(self._notes)

    @property
    def errors(self) -> list[ScanError]:
        with self._lock:
            return list(self._errors)


class Inventory:
    """What the checks read for one region of one account.

    IAM and S3 are global: their collectors are one per scan, through IAM's home region of the region's partition
    (`home_region`: us-east-1 in the commercial partition), which is also where their findings are."""

    def __init__(self, collectors: Collectors, region: str) -> None:
        self._collectors = collectors
        self.region = region
        self.account_id = collectors.account_id

    @classmethod
    def from_session(cls, session: boto3.Session, region: str) -> Inventory:
        """An inventory of its own (own clients, own call counts), e.g. for evaluating one check."""
        clients = Clients(session)
        account_id = clients.client("sts", region).get_caller_identity()["Account"]
        return cls(Collectors(clients, account_id), region)

    @property
    def collectors(self) -> Collectors:
        return self._collectors

    @property
    def partition(self) -> str:
        """The partition of the inventory's region ("aws", "aws-us-gov", "aws-cn" ...): that of every ARN in it."""
        return partition_of(self.region)

    @property
    def home_region(self) -> str:
        return home_region_of(self.region)

    @property
    def ec2(self) -> Ec2Collector:
        return self._collectors.get("ec2", self.region)

    @property
    def kms(self) -> KmsCollector:
        return self._collectors.get("kms", self.region)

    @property
    def cloudtrail(self) -> CloudTrailCollector:
        return self._collectors.get("cloudtrail", self.region)

    @property
    def config(self) -> ConfigCollector:
        return self._collectors.get("config", self.region)

    @property
    def rds(self) -> RdsCollector:
        return self._collectors.get("rds", self.region)

    @property
    def iam(self) -> IamCollector:
        return self._collectors.get("iam", self.home_region)

    @property
    def s3(self) -> S3Collector:
        return self._collectors.get("s3", self.home_region)

    def each[T, R](self, read: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """`[read(item) for item in items]`, up to PER_RESOURCE_WORKERS items at a time.

        For the checks that need calls per resource (S3 has no listing with the buckets' settings): one after the
        other, a check waits out each call's round trip in turn, and the scan's pool cannot help since the whole
        loop is one of its tasks. `read` must only read through the collectors (they fetch each value once,
        whichever thread asks first), so the calls made, and the results, are those of the plain loop, in order.
        An exception `read` lets out is raised here, as the loop would have raised it, but only once every item has
        been read: `read` should record a resource's failure and go on, as the bucket checks do.
        """
        if len(items) <= 1:
            return [read(item) for item in items]
        workers = min(PER_RESOURCE_WORKERS, len(items))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="aegis-each") as pool:
            return list(pool.map(read, items))

    def note(self, text: str) -> None:
        self._collectors.note(text)

    def count(self, resource_type: str, resources: int, region: str | None = None) -> None:
        """Record how many resources of `resource_type` the check evaluated (the planner's blast-radius base)."""
        self._collectors.count(resource_type, region or self.region, resources)

    def record_error(self, check_id: str, exc: BaseException, resource_arn: str, region: str | None = None) -> None:
        """A failure on one resource that the check skipped; the check's other resources still count."""
        self._collectors.record_error(check_id, region or self.region, exc, resource_arn)


__all__ = ["Clients", "Collectors", "Inventory"]
