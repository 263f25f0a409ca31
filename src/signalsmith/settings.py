"""The one settings class: environment variables, optionally a TOML file; the environment wins.

Nothing else in signalsmith reads ``os.environ``. Seed-compatible names (``REDIS_ADDR``, ``STREAM``,
``GROUP``, ...) keep their meaning; nothing is required.
"""

from __future__ import annotations

import os
import socket
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from signalsmith.errors import ConfigError

CONFIG_FILE_VARIABLE = "SIGNALSMITH_CONFIG"
MAX_BASELINE_BUCKETS = 2_000  # the spike baseline is summed in one call in the commit script

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
OutputFormat = Literal["envelope", "legacy", "both"]
PublishPolicy = Literal["actionable", "all"]
NonEmpty = Annotated[str, Field(min_length=1, max_length=200)]


def _split_commas(value: object) -> object:
    if isinstance(value, str):
        return tuple(part.strip().lower() for part in value.split(",") if part.strip())
    return value


CommaList = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_split_commas)]

# Suffixes of the per-provider variables, <NAME>_<SUFFIX>, and the field each one sets.
PROVIDER_SUFFIXES = {
    "API_KEY": "api_key",
    "MODEL": "model",
    "BASE_URL": "base_url",
    "TIMEOUT": "timeout",
    "MAX_IN_FLIGHT": "max_in_flight",
    "RPM": "rpm",
    "TPM": "tpm",
    "DAILY_TOKENS": "daily_tokens",
    "STRUCTURED": "structured",
    "PRICE_IN": "price_in",
    "PRICE_OUT": "price_out",
    "PRICE_CACHED": "price_cached",
    "MAX_OUTPUT_TOKENS": "max_output_tokens",
}
PROVIDER_NAMES = (
    "groq",
    "openai",
    "openrouter",
    "gemini",
    "together",
    "deepseek",
    "mistral",
    "nvidia",
    "ollama",
    "vllm",
    "lmstudio",
    "custom",
)


class ProviderSettings(BaseModel):
    """One provider's knobs; anything left unset falls back to the provider's preset."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    api_key: SecretStr | None = None
    model: str | None = None
    base_url: str | None = None
    timeout: float = Field(default=30.0, gt=0, le=600)
    max_in_flight: int | None = Field(default=None, ge=1, le=1024)  # None: MAX_IN_FLIGHT's
    rpm: int | None = Field(default=None, ge=1)
    tpm: int | None = Field(default=None, ge=1)
    daily_tokens: int | None = Field(default=None, ge=1)
    structured: Literal["json_schema", "json_object", "none"] | None = None
    price_in: float | None = Field(default=None, ge=0)  # USD per million input tokens
    price_out: float | None = Field(default=None, ge=0)
    price_cached: float | None = Field(default=None, ge=0)  # per million cached prompt tokens
    # The most output tokens one request may ask of this provider (a batch's reply room
    # included); None: the preset's (8,192).
    max_output_tokens: int | None = Field(default=None, ge=16, le=1_000_000)


class ProviderEnvSource(PydanticBaseSettingsSource):
    """Collects <NAME>_API_KEY, <NAME>_MODEL, ... for every known provider into ``providers``."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[object, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, object]:
        providers: dict[str, dict[str, str]] = {}
        environ = {key.upper(): value for key, value in os.environ.items()}
        for name in PROVIDER_NAMES:
            for suffix, field in PROVIDER_SUFFIXES.items():
                value = environ.get(f"{name.upper()}_{suffix}")
                if value:
                    providers.setdefault(name, {})[field] = value
        return {"providers": providers} if providers else {}


def _default_consumer() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class Settings(BaseSettings):
    """Every knob signalsmith has. Field names are the environment variable names, lower-cased."""

    model_config = SettingsConfigDict(
        case_sensitive=False, extra="ignore", frozen=True, validate_default=True
    )

    # Redis: REDIS_URL wins over REDIS_ADDR; with neither, an embedded Redis is started.
    redis_url: SecretStr | None = None
    redis_addr: str | None = None
    redis_password: SecretStr | None = None
    # A refused password or a host name that does not resolve stops start-up (exit 2); false
    # waits them out like an outage (for a Redis whose DNS name or ACL appears after us).
    redis_strict_start: bool = True
    # REDIS_URL / REDIS_ADDR name one node of a Redis Cluster, from which the client learns the
    # others; the keys a commit touches together must then share one hash tag (checked at start).
    redis_cluster: bool = False
    state_dir: Path = Path(".signalsmith")

    # Streams and group (seed 000's names and defaults).
    stream: NonEmpty = "reddit-events"
    group: NonEmpty = "strategy-group"
    consumer: NonEmpty = Field(default_factory=_default_consumer)
    signal_stream: NonEmpty = "trade-signals"
    # Every decision (HOLD and error included) and spike, for the SQL store and other fan-out
    # consumers; "" turns the log off.
    decision_stream: str = "trade-decisions"
    dlq_stream: str = ""  # empty means "<STREAM>:dlq"
    legacy_stream: str = ""  # empty means SIGNAL_STREAM
    decision_hash_prefix: NonEmpty = "signalsmith:decisions"
    arena_id: str = "signalsmith"

    # What is published.
    output_format: OutputFormat = "envelope"
    publish: PublishPolicy = "actionable"

    # Reading and limits.
    read_count: int = Field(default=100, ge=1, le=10_000)
    block_ms: int = Field(default=1_000, ge=1, le=60_000)
    max_message_bytes: int = Field(default=65_536, ge=1_024, le=16 * 1024 * 1024)
    claim_idle_ms: int = Field(default=60_000, ge=100)
    max_in_flight: int = Field(default=64, ge=1, le=100_000)
    max_deliveries: int = Field(default=5, ge=1, le=1_000)
    max_tickers_per_post: int = Field(default=10, ge=1, le=1_000)
    drain_timeout: float = Field(default=8.0, ge=0, le=3_600)  # seconds
    heartbeat_prefix: NonEmpty = "signalsmith:heartbeat"
    heartbeat_ttl: float = Field(default=15.0, ge=1, le=3_600)  # seconds

    # Bounded storage.
    signal_maxlen: int = Field(default=1_000_000, ge=0)  # 0: never trim
    decision_maxlen: int = Field(default=1_000_000, ge=0)
    dlq_maxlen: int = Field(default=100_000, ge=0)
    decision_ttl_days: float = Field(default=7.0, ge=0)  # 0: never expire

    # Per-ticker rolling view and mention spikes (kept by the commit script).
    consensus_window_s: int = Field(default=3_600, ge=1, le=30 * 86_400)
    spike_bucket_s: int = Field(default=300, ge=1, le=86_400)
    spike_baseline_s: int = Field(default=86_400, ge=1, le=90 * 86_400)
    spike_factor: float = Field(default=5.0, ge=1)
    spike_min_mentions: float = Field(default=10.0, gt=0)

    # LLM analysis. Per provider: <NAME>_API_KEY, <NAME>_MODEL, <NAME>_BASE_URL, ... (see
    # ProviderSettings), gathered into ``providers`` by ProviderEnvSource.
    llm_providers: CommaList = ()
    llm_provider: str = ""  # one provider, as seed 004 named it; LLM_PROVIDERS wins
    providers: dict[str, ProviderSettings] = Field(default_factory=dict)
    groq_model_name: str = ""  # seed 000's name for GROQ_MODEL
    prompt_file: Path | None = None
    llm_policy: Literal["never", "uncertain", "always"] | None = None
    llm_failure: Literal["retry", "degrade"] = "retry"
    llm_cache: Literal["readwrite", "readonly", "off"] = "readwrite"
    llm_cache_ttl_days: float = Field(default=7.0, ge=0)
    llm_cache_prefix: NonEmpty = "signalsmith:llmcache"
    llm_max_wait_s: float = Field(default=10.0, ge=0)
    llm_attempts: int = Field(default=3, ge=1, le=10)
    llm_breaker_threshold: int = Field(default=5, ge=1)
    llm_breaker_cooldown_s: float = Field(default=30.0, ge=0)
    llm_uncertain_below: float = Field(default=0.55, ge=0, le=1)
    llm_contested_below: float = Field(default=0.7, ge=0, le=1)  # cues both ways, hedges, ...
    llm_max_output_tokens: int = Field(default=400, ge=16, le=32_000)
    llm_temperature: float = Field(default=0.0, ge=0, le=2)
    # Several independent questions in one provider request when they would otherwise wait.
    llm_batch_size: int = Field(default=40, ge=1, le=100)  # 1: never batch
    llm_batch_tokens: int = Field(default=8_000, ge=256, le=1_000_000)
    llm_batch_wait_ms: float = Field(default=5.0, ge=0, le=10_000)

    # Duplicate stories (reposts, cross-posts, quotes) share one LLM answer.
    dedup_enabled: bool = True
    dedup_prefix: NonEmpty = "signalsmith:dedup"
    dedup_ttl_s: int = Field(default=86_400, ge=1)
    dedup_similarity: float = Field(default=0.6, gt=0, le=1)  # MinHash agreement for a near copy

    # The SQL store: a fan-out consumer of DECISION_STREAM writing every decision to SQL.
    # DATABASE_URL: sqlite+aiosqlite:///path or postgresql://user:pass@host/db (a PostgreSQL
    # schema via ?options=-csearch_path%3Dname); none means a SQLite file in STATE_DIR.
    database_url: SecretStr | None = None
    store_enabled: bool = True
    store_group: NonEmpty = "signalsmith-store"
    store_batch: int = Field(default=500, ge=1, le=10_000)
    store_dlq_stream: str = ""  # empty means "<DECISION_STREAM>:store:dlq"

    # The market pipeline (seed 001): requests on MARKET_STREAM -> insights on INSIGHT_STREAM.
    # Its stream, group and dead letters follow the posts pipeline's pattern with a prefix.
    market_enabled: bool = True
    market_stream: NonEmpty = "market-requests"
    market_group: NonEmpty = "signalsmith-market"
    market_dlq_stream: str = ""  # empty means "<MARKET_STREAM>:dlq"
    market_max_in_flight: int = Field(default=64, ge=1, le=4_096)
    insight_stream: NonEmpty = "market-insights"
    insight_maxlen: int = Field(default=100_000, ge=0)
    # Candles when a request carries none: a file or directory, then a Redis stream per product
    # (<MARKET_CANDLE_PREFIX>:<PRODUCT>), then the exchange's public OHLCV API through ccxt.
    market_candles: Path | None = None  # a CSV/Parquet file, or a directory of <PRODUCT>.csv
    market_candle_prefix: NonEmpty = "candles"
    market_exchange: str = "coinbaseexchange"  # a ccxt exchange id; empty: no exchange
    market_exchange_url: str | None = None  # the exchange API's base URL (a proxy, a test server)
    market_candle_cache_s: float = Field(default=30.0, ge=0, le=3_600)
    market_granularity: Literal["1m", "5m", "15m", "1h", "6h", "1d"] = "1m"
    market_lookback: int = Field(default=300, ge=2, le=1_000)
    # The prompt asking a model for an insight ({placeholders} for the values; see the README);
    # none means the built-in one. A model is asked when providers are configured.
    market_prompt_file: Path | None = None
    market_short_window: int = Field(default=5, ge=2, le=500)
    market_long_window: int = Field(default=20, ge=2, le=500)
    # POST /api/insights: a request queued over HTTP is remembered this long under
    # <INSIGHT_REQUEST_PREFIX>:<correlation id>, so GET /api/insights/{id} can say "pending".
    insight_request_prefix: NonEmpty = "signalsmith:insight-requests"
    insight_request_ttl_s: int = Field(default=86_400, ge=60, le=30 * 86_400)
    # Requests made on a timer where the market pipeline runs: PRODUCTS@INTERVAL, several
    # separated by ';' (e.g. "BTC-USD,ETH-USD@15m;SOL-USD@1h"). Ticks are aligned to UTC and
    # each (product, tick) is queued by one process (market.scheduler); empty: none. Read at
    # start-up of `run`, where a malformed one stops it.
    insight_schedule: str = Field(default="", max_length=10_000)

    # The strategy pipeline (seed 002): a trading system's signals on STRATEGY_STREAM -> rated
    # signals on ENHANCED_STREAM. Its stream, group and dead letters follow the same pattern.
    strategy_enabled: bool = True
    strategy_stream: NonEmpty = "strategy-signals"
    strategy_group: NonEmpty = "signalsmith-strategy"
    strategy_dlq_stream: str = ""  # empty means "<STRATEGY_STREAM>:dlq"
    strategy_max_in_flight: int = Field(default=64, ge=1, le=4_096)
    enhanced_stream: NonEmpty = "enhanced-signals"
    enhanced_maxlen: int = Field(default=100_000, ge=0)
    strategy_max_age_s: float = Field(default=300.0, gt=0, le=30 * 86_400)
    strategy_max_bars: int = Field(default=500, ge=0, le=10_000)
    strategy_prompt_file: Path | None = None
    # The seed's three files, kept by a fan-out consumer of ENHANCED_STREAM; none means
    # <STATE_DIR>/llm_enhanced/.
    csv_enabled: bool = True  # with the strategy pipeline
    csv_output_dir: Path | None = None
    # POST /api/strategy-signals remembers a signal id this long (<prefix>:<signal id>): a
    # repeated POST of one signal is not queued twice.
    strategy_request_prefix: NonEmpty = "signalsmith:strategy-requests"
    strategy_request_ttl_s: int = Field(default=3_600, ge=60, le=30 * 86_400)
    csv_group: NonEmpty = "signalsmith-csv"
    # The SQL store's own group on STRATEGY_STREAM: a signal's pending task row as it arrives.
    strategy_store_group: NonEmpty = "signalsmith-store-strategy"

    # Notifications: a fan-out consumer per channel of NOTIFY_URLS (apprise URLs separated by
    # commas, semicolons or spaces; empty: none) on each stream of NOTIFY_STREAMS, sending each
    # record whose decision.kind is in NOTIFY_KINDS once per channel.
    notify_urls: SecretStr | None = None
    notify_kinds: CommaList = ("insight",)  # post, consensus, spike, insight, strategy
    notify_streams: str = ""  # comma separated, case kept; empty means INSIGHT_STREAM
    notify_group: NonEmpty = "signalsmith-notify"  # per channel: <NOTIFY_GROUP>:<channel id>
    notify_prefix: NonEmpty = "signalsmith:notify"  # <prefix>:sent:<channel id>:<correlation id>
    notify_sent_ttl_days: float = Field(default=7.0, gt=0)  # how long a send is remembered
    notify_start: Literal["new", "all"] = "new"  # a new channel's group starts at the stream end
    notify_max_in_flight: int = Field(default=1, ge=1, le=64)  # per channel: keeps order
    notify_backoff_s: float = Field(default=1.0, ge=0, le=600)  # first wait after a failure
    notify_backoff_max_s: float = Field(default=30.0, ge=0, le=3_600)
    # Which decisions are notified, as rules (notify.rules; empty: NOTIFY_KINDS decides), and
    # how long after a message about a ticker a channel hears nothing more about it.
    alert_rules: str = ""
    alert_cooldown_s: float = Field(default=300.0, ge=0, le=7 * 86_400)
    # GET /api/live: decisions as server-sent events, from DECISION_STREAM.
    live_max_clients: int = Field(default=100, ge=1, le=10_000)
    live_buffer: int = Field(default=4_096, ge=16, le=1_000_000)  # events kept in memory
    live_send_timeout_s: float = Field(default=10.0, gt=0, le=300)  # a stuck client is let go

    # HTTP and logging.
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=0, le=65_535)
    # Bearer token of the query API (/api); required when HTTP_HOST is not loopback.
    api_token: SecretStr | None = None
    log_level: LogLevel = "INFO"
    log_format: Literal["console", "json"] = "console"

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("output_format", "publish", mode="before")
    @classmethod
    def _lower_choice(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("redis_addr")
    @classmethod
    def _check_addr(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65_536:
            raise ValueError("expected host:port, e.g. localhost:6379")
        return value

    @field_validator("redis_url")
    @classmethod
    def _check_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        # The messages never quote the URL or urlsplit's own errors: both can carry the password.
        try:
            parts = urlsplit(value.get_secret_value())
        except ValueError:
            raise ValueError("not a valid URL") from None
        if parts.scheme not in {"redis", "rediss", "unix"}:
            raise ValueError("expected a redis://, rediss:// or unix:// URL")
        try:
            port = parts.port
        except ValueError:
            port = 0
        if port == 0:
            raise ValueError(
                "the port must be a number from 1 to 65535 (percent-encode / ? # in a password)"
            )
        return value

    @field_validator("redis_cluster")
    @classmethod
    def _check_cluster(cls, value: bool, info: ValidationInfo) -> bool:
        if not value:
            return value
        url, addr = info.data.get("redis_url"), info.data.get("redis_addr")
        if url is None and addr is None:
            raise ValueError("needs REDIS_URL or REDIS_ADDR, a node of the cluster")
        if isinstance(url, SecretStr):
            parts = urlsplit(url.get_secret_value())
            if parts.scheme == "unix":
                raise ValueError("a cluster is reached over TCP: use a redis:// or rediss:// URL")
            if parts.path.strip("/") not in {"", "0"}:
                raise ValueError("a cluster has database 0 only: drop the /N from REDIS_URL")
        return value

    @field_validator("prompt_file", "market_prompt_file")
    @classmethod
    def _check_prompt_file(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no such file: {value}")
        return value

    @model_validator(mode="after")
    def _check_streams(self) -> Settings:
        names = {self.stream, self.signal_stream, self.dead_letter_stream}
        if len(names) != 3:
            raise ValueError("STREAM, SIGNAL_STREAM and DLQ_STREAM must be three different streams")
        if self.decision_stream in names:
            raise ValueError("DECISION_STREAM must differ from STREAM, SIGNAL_STREAM, DLQ_STREAM")
        market = {self.market_stream, self.market_dead_letter_stream, self.insight_stream}
        if len(market) != 3 or market & (names | {self.decision_stream}):
            raise ValueError(
                "MARKET_STREAM, MARKET_DLQ_STREAM and INSIGHT_STREAM must be three streams of"
                " their own"
            )
        if self.strategy_store_group == self.strategy_group:
            raise ValueError(
                "STRATEGY_STORE_GROUP must differ from STRATEGY_GROUP (the store would take the "
                "pipeline's signals)"
            )
        if self.market_short_window >= self.market_long_window:
            raise ValueError("MARKET_SHORT_WINDOW must be shorter than MARKET_LONG_WINDOW")
        if self.spike_bucket_s > self.consensus_window_s:
            raise ValueError("SPIKE_BUCKET_S must not exceed CONSENSUS_WINDOW_S")
        if (
            not self.spike_bucket_s
            <= self.spike_baseline_s
            <= MAX_BASELINE_BUCKETS * self.spike_bucket_s
        ):
            raise ValueError(
                f"SPIKE_BASELINE_S must cover 1 to {MAX_BASELINE_BUCKETS} buckets of SPIKE_BUCKET_S"
            )
        return self

    @property
    def dead_letter_stream(self) -> str:
        return self.dlq_stream or f"{self.stream}:dlq"

    @property
    def market_dead_letter_stream(self) -> str:
        return self.market_dlq_stream or f"{self.market_stream}:dlq"

    @property
    def strategy_dead_letter_stream(self) -> str:
        return self.strategy_dlq_stream or f"{self.strategy_stream}:dlq"

    @property
    def strategy_store_dead_letter_streams(self) -> tuple[tuple[str, str], ...]:
        """(stream, where the store's reader of it puts an entry it could never store) for
        STRATEGY_STREAM and its dead-letter stream."""
        streams = (self.strategy_stream, self.strategy_dead_letter_stream)
        return tuple((stream, f"{stream}:store:dlq") for stream in streams)

    @property
    def csv_directory(self) -> Path:
        return self.csv_output_dir or self.state_dir / "llm_enhanced"

    @property
    def store_dead_letter_stream(self) -> str:
        return self.store_dlq_stream or f"{self.decision_stream}:store:dlq"

    @property
    def legacy_signal_stream(self) -> str:
        return self.legacy_stream or self.signal_stream

    @property
    def embedded_redis(self) -> bool:
        """True when no Redis was configured and signalsmith starts its own."""
        return self.redis_url is None and self.redis_addr is None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment first, then whatever the TOML file gave (passed as init values).
        return (env_settings, ProviderEnvSource(settings_cls), init_settings)


SECRET_FIELDS = frozenset({"redis_url", "redis_password", "providers", "database_url", "api_token"})


def load_settings(config_file: Path | None = None, **overrides: object) -> Settings:
    """Build settings from the environment and an optional TOML file, or raise ConfigError."""
    path = config_file or _config_file_from_env()
    values: dict[str, object] = _read_toml(path) if path else {}
    values.update(overrides)
    try:
        return Settings(**values)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise _config_error(exc) from None


def child_environment(overrides: Mapping[str, str]) -> dict[str, str]:
    """This process's environment with ``overrides``, for a worker process it starts."""
    return {**os.environ, **overrides}


def _config_file_from_env() -> Path | None:
    raw = os.environ.get(CONFIG_FILE_VARIABLE, "")
    return Path(raw) if raw else None


def _read_toml(path: Path) -> dict[str, object]:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise ConfigError("--config", f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("--config", f"{path} is not valid TOML: {exc}") from None
    section = data.get("signalsmith", data)
    if not isinstance(section, dict):
        raise ConfigError("--config", f"{path}: [signalsmith] must be a table")
    known = set(Settings.model_fields)
    unknown = sorted(key for key in section if key.lower() not in known)
    if unknown:
        raise ConfigError("--config", f"{path}: unknown setting {unknown[0]!r}")
    return {key.lower(): value for key, value in section.items()}


def _config_error(exc: ValidationError) -> ConfigError:
    first = exc.errors()[0]
    location = [str(part) for part in first["loc"]]
    field = location[0] if location else ""
    setting = field.upper() if field else "configuration"
    if field == "providers" and len(location) >= 3:
        suffix = {v: k for k, v in PROVIDER_SUFFIXES.items()}.get(location[2], location[2].upper())
        setting = f"{location[1].upper()}_{suffix}"
    message = first["msg"].removeprefix("Value error, ")
    if field and field not in SECRET_FIELDS and "input" in first:
        message = f"{message} (got {first['input']!r})"
    return ConfigError(setting, message)
