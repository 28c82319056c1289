"""The notifier's settings, read once from the environment the template sets. An invalid setting names the
variable, never its value."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from aegis.partitions import PARTITION_PATTERN
from aegis.settings import Environment
from aegis_notifier.errors import InvalidSettings

TOPIC_ARN_PATTERN = rf"^arn:{PARTITION_PATTERN}:sns:[a-z0-9-]+:[0-9]{{12}}:[A-Za-z0-9_-]{{1,256}}$"
# A stack name (CloudFormation's own rule): it prefixes every subject, so an operator with several deployments
# knows which one speaks.
DEPLOYMENT_NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9-]{0,127}$"


@dataclass(frozen=True)
class NotifierSettings:
    topic_arn: str
    deployment_name: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> NotifierSettings:
        env = Environment(InvalidSettings, environ)
        topic_arn = env.required("NOTIFICATIONS_TOPIC_ARN")
        if not re.fullmatch(TOPIC_ARN_PATTERN, topic_arn):
            raise env.invalid("NOTIFICATIONS_TOPIC_ARN must be the ARN of an SNS topic")
        deployment = env.required("DEPLOYMENT_NAME")
        if not re.fullmatch(DEPLOYMENT_NAME_PATTERN, deployment):
            raise env.invalid("DEPLOYMENT_NAME must be a stack name")
        return cls(topic_arn=topic_arn, deployment_name=deployment)
