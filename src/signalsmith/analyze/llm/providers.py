"""Provider presets (base URL, key variable, default model, structured-output support, prices)
and the resolution of settings into the ordered provider list. OpenAI-compatible vendors are
settings here, not modules.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from signalsmith.errors import ConfigError
from signalsmith.settings import PROVIDER_NAMES, ProviderSettings, Settings

Structured = Literal["json_schema", "json_object", "none"]


@dataclass(frozen=True, slots=True)
class Preset:
    """What a provider needs when the user sets nothing but its key."""

    name: str
    base_url: str
    model: str
    structured: Structured
    needs_key: bool = True
    price_in: float = 0.0  # USD per million tokens; approximate list prices, override per provider
    price_out: float = 0.0
    price_cached: float | None = None  # per million cached prompt tokens; None: as price_in
    # The most output tokens a request may ask for: one every preset's default model accepts.
    max_output_tokens: int = 8_192


PRESETS: Mapping[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "groq",
            "https://api.groq.com/openai/v1",
            "llama-3.3-70b-versatile",
            "json_object",
            price_in=0.59,
            price_out=0.79,
            price_cached=0.295,
        ),
        Preset(
            "openai",
            "https://api.openai.com/v1",
            "gpt-4o-mini",
            "json_schema",
            price_in=0.15,
            price_out=0.60,
            price_cached=0.075,
        ),
        Preset(
            "openrouter",
            "https://openrouter.ai/api/v1",
            "openai/gpt-4o-mini",
            "json_object",
            price_in=0.15,
            price_out=0.60,
            price_cached=0.075,
        ),
        Preset(
            "gemini",
            "https://generativelanguage.googleapis.com/v1beta/openai/",
            "gemini-2.5-flash",
            "json_schema",
            price_in=0.30,
            price_out=2.50,
            price_cached=0.075,
        ),
        Preset(
            "together",
            "https://api.together.xyz/v1",
            "meta-llama/Llama-3.3-70B-Instruct-Turbo",
            "json_object",
            price_in=0.88,
            price_out=0.88,
        ),
        Preset(
            "deepseek",
            "https://api.deepseek.com/v1",
            "deepseek-chat",
            "json_object",
            price_in=0.27,
            price_out=1.10,
            price_cached=0.07,
        ),
        Preset(
            "mistral",
            "https://api.mistral.ai/v1",
            "mistral-small-latest",
            "json_object",
            price_in=0.10,
            price_out=0.30,
        ),
        Preset(
            "nvidia",
            "https://integrate.api.nvidia.com/v1",
            "meta/llama-3.3-70b-instruct",
            "json_object",
        ),
        Preset("ollama", "http://127.0.0.1:11434/v1", "llama3.1", "json_object", needs_key=False),
        Preset("vllm", "http://127.0.0.1:8000/v1", "", "json_schema", needs_key=False),
        Preset("lmstudio", "http://127.0.0.1:1234/v1", "", "json_schema", needs_key=False),
        Preset("custom", "", "", "none", needs_key=False),
    )
}
assert tuple(PRESETS) == PROVIDER_NAMES  # one list of names, in settings and here


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    """One provider, fully resolved: what the client and the chain use."""

    name: str
    base_url: str
    model: str
    api_key: str  # never logged: the log scrubber knows every configured key
    structured: Structured
    timeout: float
    max_in_flight: int
    rpm: int | None
    tpm: int | None
    daily_tokens: int | None
    price_in: float
    price_out: float
    price_cached: float
    max_output_tokens: int = 8_192  # <NAME>_MAX_OUTPUT_TOKENS: no request asks for more

    def cost(self, tokens_in: int, tokens_out: int, tokens_cached: int = 0) -> float:
        """Estimated USD for one call; ``tokens_cached`` of ``tokens_in`` at the cached rate."""
        cached = min(tokens_cached, tokens_in)
        paid_in = (tokens_in - cached) * self.price_in + cached * self.price_cached
        return (paid_in + tokens_out * self.price_out) / 1_000_000


def provider_order(settings: Settings) -> tuple[str, ...]:
    """LLM_PROVIDERS, else LLM_PROVIDER, else every provider that has a key or a base URL set."""
    if settings.llm_providers:
        names = settings.llm_providers
        variable = "LLM_PROVIDERS"
    elif settings.llm_provider:
        names = (settings.llm_provider.strip().lower(),)
        variable = "LLM_PROVIDER"
    else:
        return tuple(name for name in PROVIDER_NAMES if _configured(settings, name))
    for name in names:
        if name not in PRESETS:
            known = ", ".join(PROVIDER_NAMES)
            raise ConfigError(variable, f"unknown provider {name!r}; known: {known}")
    return tuple(dict.fromkeys(names))


def _configured(settings: Settings, name: str) -> bool:
    given = settings.providers.get(name)
    return given is not None and (given.api_key is not None or given.base_url is not None)


def resolve_providers(settings: Settings) -> list[ProviderConfig]:
    """The providers to call, in priority order, each checked for what it cannot work without."""
    return [_resolve(settings, name) for name in provider_order(settings)]


def _resolve(settings: Settings, name: str) -> ProviderConfig:
    preset = PRESETS[name]
    given = settings.providers.get(name) or ProviderSettings()
    model = given.model or (settings.groq_model_name if name == "groq" else "") or preset.model
    base_url = given.base_url or preset.base_url
    key = given.api_key.get_secret_value() if given.api_key else ""
    upper = name.upper()
    if preset.needs_key and not key:
        raise ConfigError(f"{upper}_API_KEY", f"is required to use the {name} provider")
    if not base_url:
        raise ConfigError(f"{upper}_BASE_URL", f"is required to use the {name} provider")
    problem = _base_url_problem(base_url, f"{upper}_API_KEY")
    if problem:
        raise ConfigError(f"{upper}_BASE_URL", problem)
    if not model:
        raise ConfigError(f"{upper}_MODEL", f"is required to use the {name} provider")
    return ProviderConfig(
        name=name,
        base_url=base_url,
        model=model,
        api_key=key or "not-needed",  # local servers ignore it, the SDK insists on one
        structured=given.structured or preset.structured,
        timeout=given.timeout,
        max_in_flight=given.max_in_flight or settings.max_in_flight,
        rpm=given.rpm,
        tpm=given.tpm,
        daily_tokens=given.daily_tokens,
        price_in=preset.price_in if given.price_in is None else given.price_in,
        price_out=preset.price_out if given.price_out is None else given.price_out,
        price_cached=_cached_price(preset, given),
        max_output_tokens=given.max_output_tokens or preset.max_output_tokens,
    )


def _cached_price(preset: Preset, given: ProviderSettings) -> float:
    """<NAME>_PRICE_CACHED, else the preset's cached rate when the input price is the preset's,
    else the input price (a provider without prefix caching bills cached tokens in full)."""
    if given.price_cached is not None:
        return given.price_cached
    if given.price_in is None and preset.price_cached is not None:
        return preset.price_cached
    return preset.price_in if given.price_in is None else given.price_in


def _base_url_problem(url: str, key_variable: str) -> str:
    """Why a provider base URL can never work, or ""; never quotes the URL, which may hold a key.

    User info is refused rather than hidden: the HTTP client will not send it beside the API key's
    Authorization header, so every call would fail. Key-like query parameters are allowed (some
    gateways take their key there) and are masked wherever the URL is shown.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return "is not a valid URL"
    if parts.scheme not in {"http", "https"}:
        return "must be an http:// or https:// URL"
    if "@" in parts.netloc:
        return f"must not carry user:password@ (put the key in {key_variable})"
    if not parts.hostname:
        return "has no host"
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        return "the port must be a number from 1 to 65535"
    return ""
