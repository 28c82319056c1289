"""The chainer's settings, read once from the environment the template sets."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aegis.settings import Environment
from aegis_auditchain.errors import InvalidSettings


@dataclass(frozen=True)
class ChainSettings:
    audit_table: str
    missions_table: str
    # The Object Lock bucket a finished mission's trail is exported to; "" when export is off.
    export_bucket: str = ""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ChainSettings:
        env = Environment(InvalidSettings, environ)
        return cls(
            audit_table=env.required("AUDIT_TABLE"),
            missions_table=env.required("MISSIONS_TABLE"),
            export_bucket=env.optional("AUDIT_EXPORT_BUCKET"),
        )
