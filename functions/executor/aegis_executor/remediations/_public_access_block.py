"""Reading and writing S3 Block Public Access, shared by the account-level and the bucket-level remediations: the two
APIs differ only in the client and the parameters that name what is blocked."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from aegis.catalogue.states import PublicAccessBlock

NO_CONFIGURATION = "NoSuchPublicAccessBlockConfiguration"


def read_block(get: Callable[..., Any], **where: Any) -> PublicAccessBlock:
    """The block `get` (GetPublicAccessBlock) answers for `where`; "no configuration" is a state, not an error."""
    try:
        config = get(**where)["PublicAccessBlockConfiguration"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == NO_CONFIGURATION:
            return PublicAccessBlock.from_aws(None)
        raise
    return PublicAccessBlock.from_aws(config)


def write_block(put: Callable[..., Any], delete: Callable[..., Any], state: PublicAccessBlock, **where: Any) -> None:
    """Make the block for `where` exactly `state`: put its four switches, or delete the block when `state` is none."""
    if state.configured:
        put(PublicAccessBlockConfiguration=state.to_aws(), **where)
    else:
        delete(**where)
