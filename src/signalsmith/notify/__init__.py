"""Notifications: a fan-out consumer per channel (apprise URLs in NOTIFY_URLS) that sends each
record of the kinds in NOTIFY_KINDS once, and retries and dead-letters on its own."""

from signalsmith.notify.build import Notifiers, build_notifiers, notify_secrets
from signalsmith.notify.channels import Channel, parse_channels
from signalsmith.notify.config import NotifyConfig, NotifySettings
from signalsmith.notify.message import Notice, fit, read_notice

__all__ = [
    "Channel",
    "Notice",
    "Notifiers",
    "NotifyConfig",
    "NotifySettings",
    "build_notifiers",
    "fit",
    "notify_secrets",
    "parse_channels",
    "read_notice",
]
