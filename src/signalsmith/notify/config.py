"""What the notification consumers read from the settings, and the names they derive: one
consumer group, dead-letter stream and set of sent-marks per channel."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, Protocol

from pydantic import SecretStr

from signalsmith.errors import ConfigError
from signalsmith.notify.channels import Channel, parse_channels
from signalsmith.notify.message import KINDS
from signalsmith.notify.rules import Rule, parse_rules, rule_kinds

_SECONDS_PER_DAY: Final = 86_400
Start = Literal["new", "all"]


class NotifySettings(Protocol):
    """The settings ``NotifyConfig.from_settings`` reads (``signalsmith.settings.Settings``)."""

    @property
    def notify_urls(self) -> SecretStr | None: ...
    @property
    def notify_kinds(self) -> tuple[str, ...]: ...
    @property
    def notify_streams(self) -> str: ...
    @property
    def notify_group(self) -> str: ...
    @property
    def notify_prefix(self) -> str: ...
    @property
    def notify_sent_ttl_days(self) -> float: ...
    @property
    def notify_start(self) -> str: ...
    @property
    def notify_max_in_flight(self) -> int: ...
    @property
    def notify_backoff_s(self) -> float: ...
    @property
    def notify_backoff_max_s(self) -> float: ...
    @property
    def alert_rules(self) -> str: ...
    @property
    def alert_cooldown_s(self) -> float: ...
    @property
    def decision_stream(self) -> str: ...
    @property
    def insight_stream(self) -> str: ...
    @property
    def enhanced_stream(self) -> str: ...
    @property
    def consumer(self) -> str: ...
    @property
    def claim_idle_ms(self) -> int: ...
    @property
    def block_ms(self) -> int: ...
    @property
    def read_count(self) -> int: ...
    @property
    def max_deliveries(self) -> int: ...
    @property
    def dlq_maxlen(self) -> int: ...
    @property
    def drain_timeout(self) -> float: ...


@dataclass(frozen=True, slots=True)
class NotifyConfig:
    """Channels, what they are told, and how each one's consumer runs."""

    channels: tuple[Channel, ...]
    kinds: frozenset[str] = frozenset({"insight"})
    rules: tuple[Rule, ...] = ()  # ALERT_RULES: when given, a record must match one
    cooldown_s: float = 0.0  # with rules: per channel and ticker, quiet this long after a send
    streams: tuple[str, ...] = ("market-insights",)
    group: str = "signalsmith-notify"
    prefix: str = "signalsmith:notify"
    consumer: str = "notify"
    sent_ttl_s: int = 7 * _SECONDS_PER_DAY
    # "new": a channel's group starts at the stream's end (a new webhook is not sent the
    # stream's whole history); "all": from its start.
    start: Start = "new"
    max_in_flight: int = 1  # per channel: in order, and within the services' rate limits
    backoff_s: float = 1.0
    backoff_max_s: float = 30.0
    claim_idle_ms: int = 60_000
    block_ms: int = 1_000
    read_count: int = 100
    max_deliveries: int = 5
    dlq_maxlen: int = 100_000
    drain_timeout_s: float = 8.0

    @classmethod
    def from_settings(cls, settings: NotifySettings) -> NotifyConfig:
        """The configuration the settings describe; ``ConfigError`` naming the setting when
        one of them cannot work."""
        urls = settings.notify_urls.get_secret_value() if settings.notify_urls else ""
        rules = parse_rules(settings.alert_rules)
        kinds = rule_kinds(rules) if rules else _kinds(settings.notify_kinds)
        return cls(
            channels=parse_channels(urls),
            kinds=kinds,
            rules=rules,
            cooldown_s=settings.alert_cooldown_s if rules else 0.0,
            streams=_streams(settings.notify_streams, _outputs(settings, kinds, bool(rules))),
            group=settings.notify_group,
            prefix=settings.notify_prefix,
            consumer=settings.consumer,
            sent_ttl_s=max(1, round(settings.notify_sent_ttl_days * _SECONDS_PER_DAY)),
            start=_start(settings.notify_start),
            max_in_flight=settings.notify_max_in_flight,
            backoff_s=settings.notify_backoff_s,
            backoff_max_s=settings.notify_backoff_max_s,
            claim_idle_ms=settings.claim_idle_ms,
            block_ms=settings.block_ms,
            read_count=settings.read_count,
            max_deliveries=settings.max_deliveries,
            dlq_maxlen=settings.dlq_maxlen,
            drain_timeout_s=settings.drain_timeout,
        )

    def group_of(self, channel: Channel) -> str:
        """The channel's consumer group (the same name on every stream it reads)."""
        return f"{self.group}:{channel.id}"

    def dlq_of(self, stream: str, channel: Channel) -> str:
        """The channel's dead letters from ``stream``; named after the stream, so that on a
        cluster it shares the stream's hash tag (the commit touches both)."""
        return f"{stream}:notify:{channel.id}:dlq"

    def sent_key(self, channel: Channel, record_key: str) -> str:
        """The mark that ``channel`` was sent the record keyed ``record_key``."""
        return f"{self.prefix}:sent:{channel.id}:{record_key}"

    def cooldown_key(self, channel: Channel, ticker_key: str) -> str:
        """The mark that ``channel`` was told about a ticker less than ``cooldown_s`` ago."""
        return f"{self.prefix}:cooldown:{channel.id}:{ticker_key}"


def _kinds(kinds: tuple[str, ...]) -> frozenset[str]:
    unknown = sorted(set(kinds) - KINDS)
    if unknown:
        raise ConfigError(
            "NOTIFY_KINDS", f"unknown {', '.join(unknown)}; choose from {', '.join(sorted(KINDS))}"
        )
    if not kinds:
        raise ConfigError("NOTIFY_KINDS", "empty: name at least one kind, e.g. insight")
    return frozenset(kinds)


def _outputs(settings: NotifySettings, kinds: frozenset[str], rules: bool) -> tuple[str, ...]:
    """Where the kinds notified are published: with ALERT_RULES, DECISION_STREAM (every post,
    spike, insight and strategy decision); else INSIGHT_STREAM, and ENHANCED_STREAM when
    strategy signals notify (NOTIFY_KINDS=strategy)."""
    if rules and settings.decision_stream:
        return (settings.decision_stream,)
    enhanced = (settings.enhanced_stream,) if "strategy" in kinds else ()
    return (*((settings.insight_stream,) if kinds - {"strategy"} else ()), *enhanced)


def _streams(text: str, defaults: tuple[str, ...]) -> tuple[str, ...]:
    """NOTIFY_STREAMS (comma separated, case kept), else where the kinds are published."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    return tuple(dict.fromkeys(names)) or defaults


def _start(value: str) -> Start:
    if value == "new":
        return "new"
    if value == "all":
        return "all"
    raise ConfigError("NOTIFY_START", f"{value!r:.20}: choose new or all")
