"""Builds the notifier from the deployment's settings (app.py keeps one per Lambda container)."""

from __future__ import annotations

import boto3

from aegis_notifier.service import Notifier
from aegis_notifier.settings import NotifierSettings


def build_notifier(settings: NotifierSettings | None = None) -> Notifier:
    settings = settings or NotifierSettings.from_env()
    return Notifier(settings=settings, sns=boto3.client("sns"))
