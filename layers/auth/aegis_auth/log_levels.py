"""Library loggers that would write credentials, held at WARNING whatever level the function itself logs at.

Lambda's advanced logging controls (`ApplicationLogLevel: DEBUG`) set the root logger to DEBUG, and every library
logger left at NOTSET inherits it. At DEBUG, botocore logs each request's parameters (the web identity token of
`AssumeRoleWithWebIdentity`, the task token of `SendTaskSuccess`) and each response body (the STS credentials, a KMS
data key), and httpcore logs the identity provider's response headers. None of them says anything at WARNING or above
that could hold a credential, so that is where they stay; the functions' own loggers keep the level they are given.
"""

from __future__ import annotations

import logging

# Top-level names: their child loggers (botocore.endpoint, botocore.parsers, httpcore.http11...) are NOTSET and
# inherit from these rather than from the root.
PINNED_LOGGERS = ("botocore", "boto3", "s3transfer", "urllib3", "httpx", "httpcore")
PINNED_LEVEL = logging.WARNING


def pin_library_loggers() -> None:
    """Hold every logger of `PINNED_LOGGERS` at `PINNED_LEVEL`. Call at import, before the first AWS or HTTP call."""
    for name in PINNED_LOGGERS:
        logging.getLogger(name).setLevel(PINNED_LEVEL)
