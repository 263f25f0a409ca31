"""Canonical text, exact fingerprints and near-duplicate detection of reposts, in process."""

from __future__ import annotations

import pytest

from signalsmith.dedup import MemoryStoryIndex, canonical, fingerprint, signature, similarity

STORY = (
    "Loading up on $NVDA calls before earnings. Grabbed 10x Dec 20 160c this morning. Data "
    "center numbers are going to be stupid again and guidance will shut the bears up."
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("RT @trader: $NVDA to the MOON 🚀🚀🚀 https://t.co/abc", "nvda to the moon 🚀"),
        ("> quoted line\n>> nested", "quoted line nested"),
        ("QT @bob: #Bitcoin just broke $120k!!!", "bitcoin just broke 120k"),
        ("Rotating out of INTC (xpost r/stocks)", "rotating out of intc"),
        ("Don't   sell...   now", "dont sell now"),
        ("up 9.8% on 1,400 units", "up 9.8 on 1,400 units"),
    ],
)
def test_canonical_drops_repost_markers_links_and_punctuation(raw: str, expected: str) -> None:
    """Retweet/quote/cross-post markers, links, mentions, '#', '$', case, punctuation and spacing
    go; words, numbers and (deduplicated runs of) emoji stay."""
    assert canonical(raw) == expected


def test_emoji_are_kept_because_they_carry_the_sentiment() -> None:
    """🚀 and 📉 are different stories; a run of one emoji is the same as one."""
    assert fingerprint("$TSLA 🚀") != fingerprint("$TSLA 📉")
    assert fingerprint("$NKE shorting this 🐻🐻") == fingerprint("$nke Shorting this 🐻")


def test_exact_copies_share_a_fingerprint() -> None:
    """A retweet of a post with a link is an exact duplicate of the post."""
    assert fingerprint(f"RT @someone: {STORY} https://example.com/x") == fingerprint(STORY)


@pytest.mark.parametrize(
    "copy",
    [
        STORY + "\n\nEDIT: bought 5 more contracts at the close.",
        STORY.replace("this morning", "today").replace("stupid", "insane"),
        "Crossposting this, worth a read: " + STORY,
    ],
)
def test_a_repost_with_a_comment_or_a_few_words_changed_is_a_near_duplicate(copy: str) -> None:
    """The copy maps to the first post's story."""
    index = MemoryStoryIndex(min_similarity=0.6)
    first = index.lookup(STORY)
    again = index.lookup(copy)
    assert first.kind == "new"
    assert again.kind == "near"
    assert again.key == first.key
    assert again.similarity >= 0.6


@pytest.mark.parametrize(
    "other",
    [
        "Loading up on $AMD calls before earnings. MI400 ramp looks real and the guide was fine.",
        "Sold all my $NVDA this morning. Data center growth is peaking and guidance will "
        "disappoint.",
        "Grabbed puts on $SPY for December, CPI is running hot again.",
    ],
)
def test_different_posts_on_the_same_topic_are_different_stories(other: str) -> None:
    """Posts that share a ticker or phrases but not the text are not merged."""
    index = MemoryStoryIndex(min_similarity=0.6)
    first = index.lookup(STORY)
    second = index.lookup(other)
    assert second.kind == "new"
    assert second.key != first.key


def test_similarity_estimates_the_overlap() -> None:
    """Identical texts agree everywhere; unrelated ones almost nowhere."""
    same = signature(canonical(STORY))
    assert similarity(same, same) == 1.0
    assert similarity(same, signature(canonical("what a nice weekend at the lake"))) < 0.2
