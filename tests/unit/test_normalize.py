"""Normalization: each accepted input form becomes a Post; anything else is poison."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from signalsmith.errors import PoisonInput
from signalsmith.normalize import decode_fields, to_post


def test_seed_000_flat_fields_become_a_post() -> None:
    """title/body/url/author/subreddit/created keep their meaning; created is epoch seconds."""
    post = to_post(
        {
            "title": "NVDA calls",
            "body": "Loading up",
            "url": "https://r/x",
            "author": "u1",
            "subreddit": "wallstreetbets",
            "created": "1763640000",
        },
        "1-0",
    )
    assert post.id == "1-0"
    assert post.text == "NVDA calls\n\nLoading up"
    assert post.created == datetime.fromtimestamp(1763640000, tz=UTC)
    assert (post.url, post.author, post.subreddit) == ("https://r/x", "u1", "wallstreetbets")


def test_text_id_source_and_tickers_fields_are_accepted() -> None:
    """The alternative form: text instead of title/body, an explicit id, source and tickers."""
    post = to_post(
        {"id": "st-9", "text": "long here", "source": "stocktwits", "tickers": "$nvda, AMD"}, "2-0"
    )
    assert (post.id, post.body, post.source, post.tickers) == (
        "st-9",
        "long here",
        "stocktwits",
        ("NVDA", "AMD"),
    )


def test_data_field_json_is_unwrapped_and_unknown_fields_kept_as_metadata() -> None:
    """One ``data`` field holding the same fields as JSON works; unknown keys become metadata."""
    payload = {"title": "t", "body": "b", "score": 12, "flair": "DD"}
    post = to_post({"data": json.dumps(payload)}, "3-0")
    assert post.title == "t"
    assert post.metadata == {"score": "12", "flair": "DD"}


def test_iso_and_millisecond_timestamps() -> None:
    """created may be ISO-8601 or epoch milliseconds."""
    iso = to_post({"text": "x", "created": "2026-11-20T10:00:00Z"}, "1-0").created
    millis = to_post({"text": "x", "created": "1795168800000"}, "1-0").created
    assert iso == millis == datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"title": "", "body": "  "}, "no_text"),
        ({"author": "someone"}, "no_text"),
        ({"data": "{not json"}, "bad_json"),
        ({"data": "[1, 2]"}, "wrong_type"),
        ({"data": '{"title": ["a"], "body": 5}'}, "wrong_type"),
        ({"text": "x", "created": "yesterday-ish"}, "bad_timestamp"),
        ({"text": "x", "tickers": "N@VDA"}, "wrong_type"),
        ({"data": "[" * 10_000 + "]" * 10_000}, "too_deep"),
        ({"data": '{"text": "x", "meta": ' + "[" * 40 + "]" * 40 + "}"}, "too_deep"),
        ({"data": '{"text": "x", "created": ' + "9" * 400 + "}"}, "bad_timestamp"),
        ({"data": '{"text": "x", "created": ' + "9" * 5_000 + "}"}, "bad_json"),
        ({"data": '{"text": "x", "created": 1e400}'}, "bad_timestamp"),
        ({"data": '{"text": "x", "created": NaN}'}, "bad_timestamp"),
        ({"text": "x", "created": "9" * 5_000}, "bad_timestamp"),
        ({"text": "x", "created": "Infinity"}, "bad_timestamp"),
        ({"text": "x", "created": "0001-01-01T00:00:00Z"}, "bad_timestamp"),
        ({"text": "x", "created": "9999-12-31T00:00:00Z"}, "bad_timestamp"),
        ({"text": "x", "created": "1999-12-31T23:59:59Z"}, "bad_timestamp"),
        ({"text": "x", "created": "-1"}, "bad_timestamp"),
        ({"text": "x", "tickers": ",".join(f"T{i}" for i in range(1_001))}, "too_many_tickers"),
    ],
)
def test_malformed_entries_are_poison_with_a_reason(fields: dict[str, str], reason: str) -> None:
    """Each kind of malformed entry names its own reason, used for dead-lettering and metrics."""
    with pytest.raises(PoisonInput) as caught:
        to_post(fields, "1-0")
    assert caught.value.reason == reason


def test_created_is_bounded_to_2000_through_a_day_after_now() -> None:
    """A post from 2000 on, up to a day ahead of the clock (drift, time zones), is accepted;
    a day and a minute ahead is poison."""
    now = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
    assert to_post({"text": "x", "created": "2000-01-01T00:00:00Z"}, "1-0", now=now).created
    ahead = to_post({"text": "x", "created": "2026-12-05T12:00:00Z"}, "1-0", now=now).created
    assert ahead == datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
    with pytest.raises(PoisonInput, match="outside 2000-01-01 to now"):
        to_post({"text": "x", "created": "2026-12-05T12:01:00Z"}, "1-0", now=now)


def test_an_entry_of_too_many_fields_is_poison_before_decoding() -> None:
    """More than 1,000 fields is poison (the fields travel into scripts and dead letters)."""
    fields = {f"f{i}".encode(): b"x" for i in range(1_001)}
    with pytest.raises(PoisonInput, match="too_many_fields"):
        decode_fields(fields, 65_536)
    assert len(decode_fields(dict(list(fields.items())[:1_000]), 65_536)) == 1_000


def test_oversize_and_bad_encoding_are_poison() -> None:
    """The size bound is checked before decoding; invalid UTF-8 is poison too."""
    with pytest.raises(PoisonInput, match="oversize"):
        decode_fields({b"body": b"x" * 70_000}, 65_536)
    with pytest.raises(PoisonInput, match="bad_encoding"):
        decode_fields({b"body": b"\xff\xfe"}, 65_536)
    assert decode_fields({b"body": "é".encode()}, 65_536) == {"body": "é"}


def test_lone_utf16_surrogates_in_json_become_replacement_characters() -> None:
    """Half of an escaped UTF-16 pair (text cut inside an emoji) cannot be written as UTF-8: it
    becomes U+FFFD, in keys too; a whole pair is the character it encodes."""
    data = r'{"title": "$NVDA \ud800 up", "\udfff": "\udc00", "e": "\ud83d\ude80"}'
    post = to_post({"data": data}, "1-0")
    assert post.title == "$NVDA \ufffd up"
    assert post.metadata == {"\ufffd": "\ufffd", "e": "🚀"}
