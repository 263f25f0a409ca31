"""Ticker extraction: cashtags, bare tickers, names, stoplist, shouting, and the shipped data."""

from __future__ import annotations

import importlib.util
from importlib import resources
from pathlib import Path
from types import ModuleType

import pytest

from signalsmith.tickers import (
    SHOUTING_WORDS,
    STOPLIST,
    SymbolBook,
    TickerExtractor,
    load_symbol_book,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
SEC_FILE = REPO_ROOT.parent / "shared" / "data" / "sec_company_tickers.json"
BUILD_SCRIPT = REPO_ROOT / "scripts" / "build_symbols.py"


@pytest.fixture(scope="module")
def extractor() -> TickerExtractor:
    return TickerExtractor()


def _load_build_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_symbols", BUILD_SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cashtags_any_case(extractor: TickerExtractor) -> None:
    """Cashtags name a known symbol whatever their case, equities and coins alike."""
    assert extractor.extract("Loaded $TSLA and $btc, trimmed $Aapl") == ("TSLA", "BTC", "AAPL")


def test_stoplist_words_count_as_cashtags(extractor: TickerExtractor) -> None:
    """A "$" makes a stoplisted word a ticker: $A, $IT, $ALL and $DD are symbols."""
    assert extractor.extract("$A $IT $ALL $DD") == ("A", "IT", "ALL", "DD")


def test_bare_upper_case_symbols(extractor: TickerExtractor) -> None:
    """Upper-case known symbols without a "$" are tickers, possessives included."""
    assert extractor.extract("Loading up on NVDA and AMD; NVDA's guide was huge") == (
        "NVDA",
        "AMD",
    )


def test_lower_case_bare_words_are_not_symbols(extractor: TickerExtractor) -> None:
    """Lower- or mixed-case symbol spellings without a "$" are ordinary words."""
    assert extractor.extract("amd and nvda look cheap, Tsla too") == ()


@pytest.mark.parametrize("word", ["A", "I", "IT", "ALL", "DD", "CEO", "YOLO", "USA"])
def test_stoplist_words_are_not_bare_symbols(extractor: TickerExtractor, word: str) -> None:
    """Common capitalised words that are also tickers are not read as tickers bare."""
    assert word in STOPLIST
    assert extractor.extract(f"Honestly {word} think this is {word} for now") == ()


@pytest.mark.parametrize(
    ("text", "symbol"),
    [
        ("Nvidia crushed it", "NVDA"),
        ("Nvidia's margins", "NVDA"),
        ("NVIDIA’s margins", "NVDA"),
        ("nvidia guidance", "NVDA"),
        ("Bitcoin broke out", "BTC"),
        ("Bank of America upgraded it", "BAC"),
        ("Berkshire Hathaway sold more", "BRK-B"),
        ("Taiwan Semi fabs", "TSM"),
        ("Super Micro filed late", "SMCI"),
        ("Google and Alphabet are one", "GOOGL"),
        ("Facebook rebranded", "META"),
        ("Ether and ethereum", "ETH"),
        ("Solana congestion", "SOL"),
        ("Dogecoin pumps", "DOGE"),
    ],
)
def test_names_map_to_symbols(extractor: TickerExtractor, text: str, symbol: str) -> None:
    """Company and coin names, multi-word names and possessives map to their symbol."""
    assert extractor.extract(text) == (symbol,)


def test_capitalised_only_names(extractor: TickerExtractor) -> None:
    """A name that is also an ordinary word only counts when capitalised."""
    assert extractor.extract("Apple beat on services") == ("AAPL",)
    assert extractor.extract("an apple a day keeps the doctor away") == ()


def test_name_vetoed_in_fixed_phrase(extractor: TickerExtractor) -> None:
    """ "Price Target" in a headline is not Target Corp, but "Target" alone is."""
    assert extractor.extract("Goldman Raises Nvidia Price Target") == ("GS", "NVDA")
    assert extractor.extract("Raised AMD to overweight, Target $260") == ("AMD",)
    assert extractor.extract("Target beat estimates") == ("TGT",)


def test_order_of_first_appearance_and_uniqueness(extractor: TickerExtractor) -> None:
    """Each symbol appears once, ordered by where it is first mentioned, however it is named."""
    text = "Bitcoin ripped, $TSLA lagged, NVDA flat; Tesla and $BTC again, nvidia too"
    assert extractor.extract(text) == ("BTC", "TSLA", "NVDA")


def test_prices_are_not_tickers(extractor: TickerExtractor) -> None:
    """Dollar amounts ($400, $1.5B, $5M, US$5) are never read as tickers."""
    assert extractor.extract("Bought $400 calls after the $1.5B buyback, $5M and US$5") == ()


def test_unknown_cashtag_ignored(extractor: TickerExtractor) -> None:
    """A cashtag that is not a listed symbol is dropped, not invented."""
    assert extractor.extract("$FAKEZZ to the moon, also $NVDA") == ("NVDA",)


def test_shouting_text_keeps_only_real_tickers(extractor: TickerExtractor) -> None:
    """In an all-caps post, shouted English words are not tickers but NVDA still is."""
    assert extractor.extract("THIS STOCK IS GOING TO THE MOON, NVDA CALLS") == ("NVDA",)


def test_ticker_list_is_not_shouting(extractor: TickerExtractor) -> None:
    """A post that is just tickers is a list, so short symbols like MU survive."""
    assert extractor.extract("NVDA AMD TSLA MU") == ("NVDA", "AMD", "TSLA", "MU")


def test_abbreviations_and_compounds_are_not_tickers(extractor: TickerExtractor) -> None:
    """U.S., S&P, GLP-1 and T-Mobile's "T" are not tickers; AT&T and T-Mobile are names."""
    assert extractor.extract("U.S. stocks and the S&P 500 fell") == ()
    assert extractor.extract("AT&T and T-Mobile cut prices") == ("T", "TMUS")
    assert extractor.extract("GLP-1 demand and COVID-19 fallout") == ()


def test_share_class_normalization(extractor: TickerExtractor) -> None:
    """BRK.B, $brk.b and BRK-B are one symbol, BRK-B, in text and via normalize()."""
    assert extractor.extract("BRK.B vs $brk.b vs BRK-B") == ("BRK-B",)
    assert extractor.normalize("BRK.B") == "BRK-B"
    assert extractor.normalize("$brk.b") == "BRK-B"


def test_normalize(extractor: TickerExtractor) -> None:
    """normalize() accepts "$" and any case, keeps stoplist words, and rejects unknowns."""
    assert extractor.normalize("$tsla") == "TSLA"
    assert extractor.normalize(" tsla ") == "TSLA"
    assert extractor.normalize("IT") == "IT"
    assert extractor.normalize("AAPL.US") == "AAPL"
    assert extractor.normalize("FAKEZZ") is None
    assert extractor.normalize("") is None


def test_crypto_symbols_and_asset_class(extractor: TickerExtractor) -> None:
    """Coins are found by cashtag, bare symbol or name, and the book tags them crypto."""
    assert extractor.extract("$ETH, SOL and Dogecoin ripping") == ("ETH", "SOL", "DOGE")
    book = extractor.book
    assert book.asset_class("BTC") == "crypto"
    assert book.asset_class("NVDA") == "equity"
    assert book.asset_class("NOT-LISTED") == "equity"


def test_load_symbol_book_is_large_and_cached() -> None:
    """The shipped book lists over 10,000 symbols and is loaded once per process."""
    book = load_symbol_book()
    assert len(book.names) > 10_000
    assert book.is_known("NVDA")
    assert not book.is_known("FAKEZZ")
    assert load_symbol_book() is book


def test_word_lists_are_canonical() -> None:
    """Stoplist and shouting words are upper case, disjoint, and short enough to be bare."""
    for word in STOPLIST | SHOUTING_WORDS:
        assert word == word.upper()
        assert len(word) <= 5
    assert not STOPLIST & SHOUTING_WORDS


def test_cap_names_never_extend_any_names() -> None:
    """No capitalised-only alias extends a case-blind one, so longest match is never lost."""
    aliases = load_symbol_book().aliases
    for name, alias in aliases.items():
        for other in aliases.values():
            if other.mode != "any" and alias.mode == "any" and other.name != name:
                assert not other.name.startswith(name + " ")


def test_custom_book_without_aliases() -> None:
    """An extractor over a hand-made book with no aliases still reads cashtags and tickers."""
    book = SymbolBook(names={"ABC": "Abc Corp", "XYZ": "Xyz"}, asset_classes={})
    extractor = TickerExtractor(book)
    assert extractor.extract("ABC and $xyz but not Nvidia") == ("ABC", "XYZ")


@pytest.mark.skipif(not SEC_FILE.exists(), reason="SEC ticker list not present beside repo")
def test_shipped_symbols_match_build_script() -> None:
    """The shipped symbols.tsv is exactly what scripts/build_symbols.py makes from the SEC list."""
    built = _load_build_script().render_from_file(SEC_FILE)
    shipped = resources.files("signalsmith") / "data" / "symbols.tsv"
    assert shipped.read_text(encoding="utf-8") == built


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Lululemon sinks on weak US demand as Gap shares soar", ("LULU", "GAP")),
        ("Target and Best Buy both cut guidance", ("TGT", "BBY")),
        ("Judge blocks Tapestry's takeover of Capri", ("TPR", "CPRI")),
        ("Snap and Pinterest both jump after earnings", ("SNAP", "PINS")),
        ("I bought a target date fund", ()),
        ("Gap up this morning, nice", ()),
        ("Mind the Gap", ()),
        ("Delta between my cost basis and price", ()),
        ("Match on my 401k is 5%", ()),
        ("Tariffs will hurt the United States economy badly", ()),
        ("Delta and Gamma exposure is huge, dealers will have to buy", ()),
        ("Gap up on $TSLA this morning", ("TSLA",)),
        ("Gap up this morning, bought 10 shares at $50", ()),
        # Company news verbs and a reporting period before the figure; "LNG" is the gas.
        ("Shell in talks over LNG supply deal with Japanese utility", ("SHEL",)),
        ("Progressive monthly premiums grow in line with last year's pace", ("PGR",)),
        ("Target first-quarter sales beat estimates", ("TGT",)),
        ("I left my shell on the beach", ()),
        ("The Progressive Era in American Politics", ()),
        ("Target faces lawsuit over data breach", ("TGT",)),
        ("Delta board approves buyback", ("DAL",)),
        ("Delta weighs on dealers into opex", ()),
        ("Target customers are millennials", ()),
    ],
)
def test_a_name_that_is_an_ordinary_word_counts_only_as_a_company(
    text: str, expected: tuple[str, ...]
) -> None:
    """ "word" names (Gap, Target, Delta, Match) are the company only when capitalised in a
    company context: a market word next to them, a company list, a cashtag, mid-sentence."""
    assert TickerExtractor().extract(text) == expected
