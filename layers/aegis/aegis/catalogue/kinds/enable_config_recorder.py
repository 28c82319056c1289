"""Turn AWS Config recording on in one region (CIS 3.3 / 4.3): a recorder of every supported resource type delivering
to the configured bucket, and recording. Without a configured bucket the finding is notify-only: the agent never
invents where the configuration history goes.

The change does only what the region lacks, and its undo takes back exactly that: where no recorder exists it creates
recorder `default` (every supported type; global types such as IAM only in IAM's home region, so they are recorded
once) with AWS Config's service-linked role; where no delivery channel exists it creates channel `default` to the
bucket; then it starts the recorder. An existing recorder is only started, never changed, and an existing channel is
kept as it is (the approver sees where it delivers). Undo stops the recorder and deletes what apply created.

The service-linked role `AWSServiceRoleForConfig` is created when the account has none. It is shared by every
region's recorder, so undo leaves it (IAM refuses to delete it while a recorder uses it anyway).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from aegis.catalogue.base import ChangeBase, Phase, WideningChange
from aegis.models import Frozen
from aegis.partitions import PARTITION_PATTERN, arn_partition, home_region_of, partition_of
from aegis.secrets_guard import BUCKET_NAME, display_text

CONFIG_SERVICE = "config.amazonaws.com"
SERVICE_LINKED_ROLE_PATH = f"aws-service-role/{CONFIG_SERVICE}/AWSServiceRoleForConfig"
# What the catalogue names the recorder and the channel it creates (the console's names).
DEFAULT_NAME = "default"
# Recorder and channel names the change can carry: AWS allows up to 256 characters of almost anything, but a name
# outside this shape is left to a human (the finding stays notify-only).
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$"


def config_recorders_arn(region: str, account_id: str) -> str:
    """The finding's resource: the region's configuration recorders (at most one per region is the account's)."""
    return f"arn:{partition_of(region)}:config:{region}:{account_id}:configuration-recorder/*"


def service_linked_role_arn(partition: str, account_id: str) -> str:
    return f"arn:{partition}:iam::{account_id}:role/{SERVICE_LINKED_ROLE_PATH}"


class Recorder(Frozen):
    name: str = Field(pattern=NAME_PATTERN)
    # A role of any partition here; the change checks that it is its own partition's.
    role_arn: str = Field(pattern=rf"^arn:{PARTITION_PATTERN}:iam::\d{{12}}:role/[A-Za-z0-9_+=,.@/-]+$")
    all_supported: bool
    include_global_resource_types: bool
    recording: bool

    def describe(self) -> str:
        what = "all supported types" if self.all_supported else "some types only"
        scope = ", global types" if self.include_global_resource_types else ""
        role = "Config's service-linked role" if self.role_arn.endswith(SERVICE_LINKED_ROLE_PATH) else "own role"
        state = "recording" if self.recording else "stopped"
        return f"recorder {display_text(self.name)} ({what}{scope}, {role}) {state}"


class DeliveryChannel(Frozen):
    name: str = Field(pattern=NAME_PATTERN)
    # The delivery bucket is an identifier whatever it looks like (the secret guard keeps it).
    s3_bucket: Annotated[str, BUCKET_NAME] = Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")

    def describe(self) -> str:
        return f"channel {display_text(self.name)} -> s3 {self.s3_bucket}"


class ConfigRecording(Frozen):
    """A region's AWS Config recording: its recorder and its delivery channel, each absent or present."""

    recorder: Recorder | None = None
    delivery_channel: DeliveryChannel | None = None

    def describe(self) -> str:
        recorder = self.recorder.describe() if self.recorder else "no recorder"
        channel = self.delivery_channel.describe() if self.delivery_channel else "no delivery channel"
        return f"{recorder}; {channel}"


class EnableConfigRecorder(ChangeBase):
    kind: Literal["enable-config-recorder"] = "enable-config-recorder"
    before: ConfigRecording
    after: ConfigRecording

    TITLE = "Record resource configurations with AWS Config"
    APPLY_ACTIONS = (
        "config:PutConfigurationRecorder",
        "config:PutDeliveryChannel",
        "config:StartConfigurationRecorder",
        "iam:CreateServiceLinkedRole",
        "iam:PassRole",
    )
    READ_ACTIONS = (
        "config:DescribeConfigurationRecorderStatus",
        "config:DescribeConfigurationRecorders",
        "config:DescribeDeliveryChannels",
    )
    UNDO_ACTIONS = (
        "config:DeleteConfigurationRecorder",
        "config:DeleteDeliveryChannel",
        "config:StopConfigurationRecorder",
    )
    # The delivery channel actions take no resource; the reads list every recorder of the region.
    UNSCOPED_ACTIONS = ("config:PutDeliveryChannel", "config:DeleteDeliveryChannel", *READ_ACTIONS)
    REGION_SCOPE = "scanned"

    @property
    def recorder(self) -> Recorder:
        """The recorder the change starts (after: always present)."""
        assert self.after.recorder is not None
        return self.after.recorder

    @property
    def channel(self) -> DeliveryChannel:
        assert self.after.delivery_channel is not None
        return self.after.delivery_channel

    @property
    def creates_recorder(self) -> bool:
        return self.before.recorder is None

    @property
    def creates_channel(self) -> bool:
        return self.before.delivery_channel is None

    def assert_narrows(self) -> None:
        if self.resource_arn != config_recorders_arn(self.region, self.account_id):
            raise ValueError("resource_arn must be the configuration recorders of the change's region")
        after = self.after.recorder
        if after is None or self.after.delivery_channel is None or not (after.recording and after.all_supported):
            raise WideningChange("after must record every supported resource type and deliver it")
        before = self.before.recorder
        if before is not None:
            if before.recording:
                raise WideningChange("the recorder is recording already")
            if after != before.model_copy(update={"recording": True}):
                raise WideningChange("an existing recorder is only started, never changed")
        else:
            if after.name != DEFAULT_NAME:
                raise ValueError(f"a recorder the catalogue creates is named {DEFAULT_NAME}")
            if after.role_arn != service_linked_role_arn(self.partition, self.account_id):
                raise ValueError("a recorder the catalogue creates uses AWS Config's service-linked role")
            if after.include_global_resource_types != (self.region == home_region_of(self.region)):
                raise ValueError("global resource types are recorded in IAM's home region only")
        if arn_partition(after.role_arn) != self.partition:
            raise ValueError("the recorder's role must be in the partition of the change's region")
        if self.before.delivery_channel is not None:
            if self.after.delivery_channel != self.before.delivery_channel:
                raise WideningChange("an existing delivery channel is kept as it is")
        elif self.after.delivery_channel.name != DEFAULT_NAME:
            raise ValueError(f"a delivery channel the catalogue creates is named {DEFAULT_NAME}")

    def summary(self) -> str:
        return f"Record AWS Config in {self.region}"

    def describe_after(self) -> str:
        made = [
            "create " if self.creates_recorder else "start ",
            self.recorder.describe(),
            "; create " if self.creates_channel else "; keep ",
            self.channel.describe(),
        ]
        return "".join(made)

    def session_policy_statements(self, phase: Phase = "apply") -> list[dict[str, Any]]:
        # The recorder by name: its ARN ends in an id AWS assigns (configuration-recorder/<name>/<id>).
        prefix = f"arn:{self.partition}:config:{self.region}:{self.account_id}:configuration-recorder"
        recorder = [f"{prefix}/{self.recorder.name}", f"{prefix}/{self.recorder.name}/*"]
        region_only = {"StringEquals": {"aws:RequestedRegion": self.region}}
        channel_action = "config:PutDeliveryChannel" if phase == "apply" else "config:DeleteDeliveryChannel"
        recorder_actions = (
            ["config:PutConfigurationRecorder", "config:StartConfigurationRecorder"]
            if phase == "apply"
            else ["config:DeleteConfigurationRecorder", "config:StopConfigurationRecorder"]
        )
        statements: list[dict[str, Any]] = [
            {"Sid": "ThisRecorderOnly", "Effect": "Allow", "Action": recorder_actions, "Resource": recorder},
            {
                "Sid": "UnscopedActionsInRegion",
                "Effect": "Allow",
                "Action": sorted([channel_action, *self.READ_ACTIONS]),
                "Resource": "*",
                "Condition": region_only,
            },
        ]
        if phase == "apply":
            role = service_linked_role_arn(self.partition, self.account_id)
            statements += [
                {
                    "Sid": "CreateConfigServiceLinkedRoleOnly",
                    "Effect": "Allow",
                    "Action": ["iam:CreateServiceLinkedRole"],
                    "Resource": role,
                    "Condition": {"StringEquals": {"iam:AWSServiceName": CONFIG_SERVICE}},
                },
                # Passed only by PutConfigurationRecorder, only for a recorder the change creates, which uses the
                # service-linked role: an existing recorder is started, never given a role.
                {
                    "Sid": "PassConfigServiceLinkedRoleToConfigOnly",
                    "Effect": "Allow",
                    "Action": ["iam:PassRole"],
                    "Resource": role,
                    "Condition": {"StringEquals": {"iam:PassedToService": CONFIG_SERVICE}},
                },
            ]
        return statements
