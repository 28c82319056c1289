"""boto3 sessions of their own (own credentials, own event hooks) that share the process's service models.

Every scan and every change uses a fresh session: the agent's scan of its own account (a boto3 Session is not
thread-safe, and the default credentials refresh), an organization member's assumed scan role, the executor's
one-change credential. A plain `boto3.Session()` brings a new botocore loader, which reads and parses every service
model, endpoint ruleset and partition file its clients need again: about half a second of CPU for EC2 alone, in
every mission of a warm container. `fresh_session` gives the new session the model loader of boto3's default session
instead, which has those files already (the loader caches what it parsed, and parsed models are never changed).

boto3 adds its own data directory to a session's loader each time a Session is made around it; on a shared loader
that list would grow by one path per session, for the container's life, and every model not yet loaded would be
looked up in each copy. It is kept to one copy.
"""

from __future__ import annotations

import threading
from functools import cache
from typing import Any

import boto3
import botocore.session

__all__ = ["fresh_session", "shared_data_loader"]

_search_paths_lock = threading.Lock()


@cache
def shared_data_loader() -> Any:
    """The model loader of boto3's default session (made here if nothing made it yet)."""
    if boto3.DEFAULT_SESSION is None:
        boto3.setup_default_session()
    # boto3 has no public accessor for its botocore session.
    return boto3.DEFAULT_SESSION._session.get_component("data_loader")


def _fresh_botocore_session() -> botocore.session.Session:
    """A botocore session of its own that reads service models through the shared loader."""
    session = botocore.session.get_session()
    session.register_component("data_loader", shared_data_loader())
    return session


def fresh_session(**session_arguments: Any) -> boto3.Session:
    """`boto3.Session(**session_arguments)` (credentials, region...), its models read through the shared loader."""
    session = boto3.Session(botocore_session=_fresh_botocore_session(), **session_arguments)
    loader = shared_data_loader()
    with _search_paths_lock:
        paths = loader.search_paths
        if len(set(paths)) != len(paths):
            paths[:] = list(dict.fromkeys(paths))
    return session
