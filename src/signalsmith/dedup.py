"""Exact and near-duplicate detection of posts (reposts, cross-posts, quotes), and the story
index that maps every copy of one story to the story key of its first copy.

Near duplicates use MinHash over word bigrams with banded (LSH) lookup, verified against the
stored signature. MinHash estimates the Jaccard similarity of the two texts' bigram sets, which
is what "the same post with a short comment added or a few words changed" changes only a little;
SimHash on posts of a few dozen words moves too many bits when a sentence is appended, and needs
many more band tables for the same recall. 32 hashes in 8 bands of 4 find a pair with Jaccard 0.7
with probability ~0.9 and one with 0.3 with ~0.06; the candidate is then accepted only if its
signature agrees on at least ``similarity`` of the 32 positions.
"""

from __future__ import annotations

import hashlib
import re
import struct
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass
from typing import Final, Literal, Protocol, cast

from redis.exceptions import RedisError

from signalsmith.redisclient import RedisClient

__all__ = [
    "MemoryStoryIndex",
    "RedisStoryIndex",
    "Story",
    "StoryIndex",
    "canonical",
    "fingerprint",
    "quick_fingerprint",
    "signature",
    "similarity",
]

HASHES: Final = 32
BANDS: Final = 8
ROWS: Final = HASHES // BANDS
_FINGERPRINT_HEX: Final = 32  # story keys are fixed-length so the Lua side can split members
_PRIME: Final = (1 << 61) - 1
_MASK32: Final = (1 << 32) - 1
_BAND_CAP: Final = 8  # stories remembered per band bucket: bounds Redis memory and Lua work

# --- Canonical text ---------------------------------------------------------------------------

_URL: Final = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_RETWEET: Final = re.compile(r"\b(?:rt|qt|via)\s+@\w+:?", re.IGNORECASE)
_MENTION: Final = re.compile(r"(?<![\w@])@\w+")
_QUOTE_LINE: Final = re.compile(r"(?m)^\s*(?:>\s*)+")
_CROSSPOST: Final = re.compile(
    r"\(?\b(?:x-?post(?:ed)?|cross-?post(?:ed)?)\b(?:\s+(?:from|to))?(?:\s+/?r/\w+)?\)?",
    re.IGNORECASE,
)
_SUBREDDIT: Final = re.compile(r"(?<!\w)/?r/\w+", re.IGNORECASE)
_TOKEN: Final = re.compile(r"\d+(?:[.,]\d+)*[^\W_]*|[^\W_]+(?:['’][^\W_]+)*")
_STANDALONE_MARKERS: Final = frozenset({"rt", "qt"})


def _is_emoji(char: str) -> bool:
    return unicodedata.category(char) == "So"


def _tokens(text: str) -> list[str]:
    """Words, numbers and emoji, in order; a run of one emoji counts once ("🐻🐻" is "🐻")."""
    tokens: list[str] = []
    position = 0
    for match in _TOKEN.finditer(text):
        tokens += _emoji_between(text[position : match.start()], tokens)
        tokens.append(match.group().replace("'", "").replace("’", ""))
        position = match.end()
    tokens += _emoji_between(text[position:], tokens)
    return [t for t in tokens if t not in _STANDALONE_MARKERS]


def _emoji_between(gap: str, before: list[str]) -> list[str]:
    found: list[str] = []
    for char in gap:
        last = found[-1] if found else (before[-1] if before else "")
        if _is_emoji(char) and char != last:
            found.append(char)
    return found


def canonical(text: str) -> str:
    """The text as a story: case, links, retweet/quote/cross-post markers, @mentions, '#' and '$'
    signs, punctuation and spacing removed; emoji kept (🚀 and 📉 say opposite things) but a run
    of one emoji counts once."""
    text = unicodedata.normalize("NFKC", text).casefold()
    for pattern in (_URL, _RETWEET, _CROSSPOST, _SUBREDDIT, _MENTION):
        text = pattern.sub(" ", text)
    text = _QUOTE_LINE.sub(" ", text)
    return " ".join(_tokens(text))


def fingerprint(text: str) -> str:
    """The exact-duplicate key: a hash of the canonical text."""
    return _fingerprint_of(canonical(text))


_LINKS: Final = re.compile(r"(?:https?://|www\.)\S+|\b(?:rt|qt|via)\s+@\w+:?|@\w+", re.IGNORECASE)
_WORD: Final = re.compile(r"[^\W_]+")


def quick_fingerprint(text: str) -> str:
    """A cheaper exact-copy key for every post (the consensus discounts copies): links,
    retweet markers, @mentions, punctuation, emoji and case ignored. ``fingerprint`` is the
    careful one, for the LLM tier."""
    if "@" in text or "/" in text or "www." in text:
        text = _LINKS.sub(" ", text)
    words = _WORD.findall(text.casefold())
    return hashlib.blake2b(" ".join(words).encode(), digest_size=12).hexdigest()


def _fingerprint_of(canonical_text: str) -> str:
    digest = hashlib.blake2b(canonical_text.encode(), digest_size=_FINGERPRINT_HEX // 2)
    return digest.hexdigest()


# --- MinHash -----------------------------------------------------------------------------------


def _coefficients() -> tuple[tuple[int, int], ...]:
    # Fixed, derived from a constant: every process (and every version) hashes the same way.
    seed = hashlib.sha256(b"signalsmith-minhash-v1").digest()
    pairs = []
    for i in range(HASHES):
        block = hashlib.sha256(seed + i.to_bytes(2, "big")).digest()
        a = int.from_bytes(block[:8], "big") % (_PRIME - 1) + 1
        b = int.from_bytes(block[8:16], "big") % _PRIME
        pairs.append((a, b))
    return tuple(pairs)


_COEFFICIENTS: Final = _coefficients()


def _shingles(words: list[str]) -> set[int]:
    grams = [" ".join(words[i : i + 2]) for i in range(len(words) - 1)] or words
    return {
        int.from_bytes(hashlib.blake2b(gram.encode(), digest_size=8).digest(), "big")
        for gram in grams
    }


def signature(canonical_text: str) -> bytes:
    """The MinHash signature (HASHES 32-bit values, big-endian) of a canonical text's bigrams."""
    shingles = _shingles(canonical_text.split()) or {0}
    values = [min((a * x + b) % _PRIME for x in shingles) & _MASK32 for a, b in _COEFFICIENTS]
    return struct.pack(f">{HASHES}I", *values)


def similarity(left: bytes, right: bytes) -> float:
    """The share of signature positions that agree: an estimate of the bigram Jaccard."""
    width = 4
    same = sum(left[i : i + width] == right[i : i + width] for i in range(0, len(left), width))
    return same / HASHES


def _band_ids(sig: bytes) -> list[str]:
    width = ROWS * 4
    rows = (sig[band * width : (band + 1) * width] for band in range(BANDS))
    return [
        f"{band}:{hashlib.blake2b(row, digest_size=8).hexdigest()}" for band, row in enumerate(rows)
    ]


# --- The story index ----------------------------------------------------------------------------

StoryKind = Literal["new", "exact", "near"]


@dataclass(frozen=True, slots=True)
class Story:
    """Which story a post belongs to: ``key`` is the first copy's fingerprint."""

    key: str
    kind: StoryKind
    similarity: float = 1.0


class StoryIndex(Protocol):
    """Finds the story a text belongs to and registers it, in one step."""

    async def story_of(self, text: str) -> Story: ...


class MemoryStoryIndex:
    """The story index in this process only (``analyze``, ``eval``, tests): bounded, LRU."""

    def __init__(self, *, min_similarity: float, capacity: int = 50_000) -> None:
        self._min = min_similarity
        self._capacity = capacity
        self._exact: OrderedDict[str, str] = OrderedDict()
        self._bands: dict[str, list[tuple[str, bytes]]] = {}

    async def story_of(self, text: str) -> Story:
        return self.lookup(text)

    def lookup(self, text: str) -> Story:
        """The same as ``story_of``, synchronously."""
        flat = canonical(text)
        own = _fingerprint_of(flat)
        known = self._exact.get(own)
        if known is not None:
            self._exact.move_to_end(own)
            return Story(known, "exact")
        sig = signature(flat)
        bands = _band_ids(sig)
        best = max(
            (
                (similarity(sig, other), key)
                for band in bands
                for key, other in self._bands.get(band, ())
            ),
            default=(0.0, ""),
        )
        if best[0] >= self._min:
            self._remember(own, best[1])
            return Story(best[1], "near", best[0])
        self._remember(own, own)
        for band in bands:
            self._bands[band] = [(own, sig), *self._bands.get(band, [])][:_BAND_CAP]
        return Story(own, "new")

    def _remember(self, fingerprint_: str, story: str) -> None:
        self._exact[fingerprint_] = story
        if len(self._exact) > self._capacity:
            self._exact.popitem(last=False)  # band buckets are capped; stale members are harmless


# One round trip: check the exact key, then every band's recent stories against the signature,
# then register the post (as a copy of the best match, or as a new story). Atomic, so two
# workers seeing two copies at once agree on which one came first.
_LOOKUP_SCRIPT: Final = """
local ttl = tonumber(ARGV[3])
local found = redis.call('GET', KEYS[1])
if found then
  redis.call('EXPIRE', KEYS[1], ttl)
  return {found, 'exact', ARGV[5]}
end
local sig = ARGV[2]
local width = 4
local positions = #sig / width
local idlen = #ARGV[1]
local cap = tonumber(ARGV[6])
local best, best_same = false, -1
for i = 2, #KEYS do
  for _, member in ipairs(redis.call('LRANGE', KEYS[i], 0, cap - 1)) do
    local other = string.sub(member, idlen + 1)
    local same = 0
    for j = 0, positions - 1 do
      local at = j * width + 1
      if string.sub(sig, at, at + width - 1) == string.sub(other, at, at + width - 1) then
        same = same + 1
      end
    end
    if same > best_same then
      best, best_same = string.sub(member, 1, idlen), same
    end
  end
end
if best and best_same >= tonumber(ARGV[4]) then
  redis.call('SET', KEYS[1], best, 'EX', ttl)
  return {best, 'near', tostring(best_same)}
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ttl)
for i = 2, #KEYS do
  redis.call('LPUSH', KEYS[i], ARGV[1] .. sig)
  redis.call('LTRIM', KEYS[i], 0, cap - 1)
  redis.call('EXPIRE', KEYS[i], ttl)
end
return {ARGV[1], 'new', ARGV[5]}
"""


class RedisStoryIndex:
    """The story index shared by every worker process, in Redis under ``prefix`` with a TTL.

    Keys: ``<prefix>:fp:<fingerprint>`` -> story key, and ``<prefix>:band:<n>:<hash>`` -> the
    most recent stories (key + signature) in that band bucket. In Redis Cluster, put a hash tag in
    the prefix (``{signalsmith:dedup}``) so the script's keys share a slot. A Redis failure makes
    the post its own story: dedup only saves cost, it never fails an analysis.
    """

    def __init__(
        self, redis: RedisClient, *, prefix: str, ttl_s: int, min_similarity: float
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._ttl = ttl_s
        self._min_same = max(1, round(min_similarity * HASHES))
        self._script = redis.register_script(_LOOKUP_SCRIPT)

    async def story_of(self, text: str) -> Story:
        flat = canonical(text)
        own = _fingerprint_of(flat)
        sig = signature(flat)
        keys = [f"{self._prefix}:fp:{own}"] + [
            f"{self._prefix}:band:{band}" for band in _band_ids(sig)
        ]
        args: list[bytes | str | int] = [own, sig, self._ttl, self._min_same, HASHES, _BAND_CAP]
        try:
            reply = cast(list[bytes], await self._script(keys=keys, args=args))
        except RedisError:
            return Story(own, "new")
        key, kind, same = (part.decode() for part in reply)
        return Story(key, cast(StoryKind, kind), int(same) / HASHES)
