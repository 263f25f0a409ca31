"""Ticker extraction: which symbols a post mentions, via cashtags, bare tickers and names.

Owns the shipped symbol book (data/symbols.tsv, data/aliases.tsv) and the stoplist words."""

from __future__ import annotations

import re
import string
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Final, Literal

from signalsmith.raters import BROKERS, Mention, Rater, raters

AssetClass = Literal["equity", "etf", "crypto"]
AliasMode = Literal["any", "cap", "word"]

_ASSET_CLASSES: Final[Mapping[str, AssetClass]] = {
    "equity": "equity",
    "etf": "etf",
    "crypto": "crypto",
}
_ALIAS_MODES: Final[Mapping[str, AliasMode]] = {"any": "any", "cap": "cap", "word": "word"}


def _words(*groups: str) -> frozenset[str]:
    """A word set written as whitespace-separated text, one line of related words at a time."""
    return frozenset(word for group in groups for word in group.split())


# Upper-case words that are also listed symbols (or may become one) but that, written bare
# in chatter, almost always mean the word. A cashtag ($IT, $ALL) still counts as the ticker.
# The one stoplist: the lexicon reads it too, for the capitalised words it may take for tickers.
STOPLIST: Final[frozenset[str]] = _words(
    # Single letters: "Plan B", "Class A", "S&P", "U.S.", "T-Mobile"; the few companies that
    # trade as one letter (F, T, V, C) are still found by cashtag or by name.
    "A B C D E F G H I J K L M N O P Q R S T U V W X Y Z",
    # Function words and pronouns.
    """AM AN ARE AS AT BE BY DO FOR GO HAS HE HI IF IN IS IT ME MY NO OF OK ON OR SO TO UP US
    WE YOU ANY ALL CAN ONE TWO FOUR FIVE NINE TEN WHEN HERE ELSE AGO VIA VS OUT NOW WHO""",
    # Ordinary words people capitalise for emphasis ("ALL IN", "BUY the DIP", "NEW ATH").
    """ACT AD AIM AIR BACK BAND BAR BEAT BEST BIG BIT BOOM BRO CAR CASH CENT CON DAY DOC DOCS
    EARN EAT EVER EYE FACT FAST FAT FIX FLY FUN FUND GAIN GAME GAP GOLD GOOD GROW HELP HIT HOPE
    HOUR HUGE ICE IRON JOB KEY KIDS LAND LAW LIFE LINE LIVE LOAN LOT LOVE LOW MAIN MAN MAX MIN
    MIND MOVE NEW NEXT NICE ODD OPEN PAY PLAY PLUS POST RARE REAL RENT RUN SAFE SAY SEE SELF
    SHIP SITE SKY SPOT STEP SUN TALK TEAM TECH TOP TRIP TRUE UNIT WAY WELL ZONE HIGH ROCK SAVE
    WIN FREE HOT JUST ONLY VERY WILL YES YET EASY SURE FIRE WAVE""",
    # Trading and Reddit slang.
    """ALT ALTS APE APES BAG BAGS BEAR BETA BRR BTFD BULL BUY CALL CALLS DCA DD DIP DUMP DYOR
    FD FDS FOMO FTD FTDS FUD GUH HODL HOLD LAMBO LEAPS LFG LONG MOASS MOON NFA PUMP PUT PUTS
    REKT RIP SELL SHORT WSB YOLO RH RED GREEN DOWN""",
    # Chat abbreviations.
    """AMA ASAP BOT BS BTW DM EDIT FAQ FYI GG GL HF IDK IMHO IMO IRL JK LMAO LMFAO LOL MOD MODS
    NGL NSFW OG OMG OP PLS PSA ROFL RN SMH SOS TBH TIL TL DR TLDR WTF WOW EH FR GEN""",
    # Finance, markets and reporting acronyms.
    """AH ATH ATL ATM AUM AVG CC CD CF CPI DCF DTE EBIT EMA EOD EOW EOY EPS ETF ETFS EV EVS
    FA FCF FY GAAP GDP HV HY IG IPO IRA ITM IV MA MACD MC MOM NAV NFP OI OTC OTM PCE PE
    PCT PEG PL PM PPI PT Q1 Q2 Q3 Q4 QOQ ROE ROI ROIC RSI SMA SPAC TA VWAP YOY YTD ARR VC""",
    # Roles, institutions, places, currencies and tech acronyms.
    """CEO CFO CIO CMO COO CTO EVP SVP VP HR IR PR HQ SEC FED FOMC FDA FTC DOJ IRS CIA FBI NSA
    NASA EPA IMF UN NATO OPEC ECB BOJ NYSE CNBC WSJ USA UK EU NYC LA SF DC TX CA NY FL NC MD
    SA AZ AL USD EUR GBP JPY CNY CAD TV PC AI AGI API GPU CPU LLM ML AR VR IP OS UI IQ NA SR ED
    HP BJ FT ET PD III KC MI MED EMS CPA DEI""",
    # Tech and industry shorthand: "HBM is sold out", "GLP-1 drugs", "IoT", "BDC yields".
    "HBM SSD ASIC PCB SOC IOT GLP CAC NPV BDC MLP",
    # Futures roots, units and commodity shorthand that collide with listed symbols.
    "ES NQ YM RTY CL NG HG SI AG AU AA AB AP KG LB MB OZ EM DXY RPM WK WT LNG",
    # Coins whose symbol is an everyday word or a headline topic: "a TON of calls", "OP said",
    # "ETC", "NEAR highs", and DOGE the US government department.
    "TON NEAR ETC DOGE",
    # Headline furniture and topics written in capitals.
    "ALERT NEWS WATCH CHART TRUMP CHINA MAGA DEFI DAO",
    # News copy: company forms, meetings, units, regions, agencies and indexes ("Nokia Oyj",
    # "the AGM", "EUR 1.2 bn", "EMEA", "NHTSA", "the DOW"), and capitalised function words.
    """ABP AGM APAC ASA BN CEOS CO DOW EGM EMEA ESG EST FAA GPUS INC LLC LLMS MLN MN
    NHTSA NII NV OYJ PLC PST SPX AND BUT HAD IM NOT WAS""",
)

# In a shouting post every word is capitalised, so capitals stop marking tickers. There, a
# bare word must be 3+ letters and not an ordinary English word; these are the English words
# that are also listed symbols, plus the commonest shouted words in case they get listed.
SHOUTING_WORDS: Final[frozenset[str]] = _words(
    """ALLY AMP APEX APP ARM ASH BALL BARK BEAM BILL BIRD BOLD BOLT BOOT BOW BOX BRAG BUD CAKE
    CALM CAMP CAPS CARD CARE CARS CART CAST CAT CHEF COIN COLD COOK COP CORN COST CUBE CURB CUT
    DARE DASH DAWN DECK DOG DOT DRUG DULL DUO EGG EGO EXPO FANG FARM FATE FEED FLEX FOLD FORM
    FORTY FOX GIFT GIG GLAD GOLF GRAB GUTS HALO HOOD HOOK ICON JACK KEYS LAKE LINK LION LOOP
    LUCK MASK MASS MATH MINE NET NOTE ONTO PACK PARK PATH PAYS PINS PLUG POOL PROP PURE RACE
    RAIN RAMP RELY RIOT ROAD ROOT SEAT SEED SHOP SIGN SKIN SNAP SNOW SOAR SON SOUL TAP TASK
    TOPS TREE UPS WEN WEST WING WOLF WRAP ZIP""",
    """THE THIS THAT THESE THOSE WHAT WHY HOW GOING GONNA STOCK PRICE MONEY EVERY NEVER AGAIN
    STILL TODAY RIGHT LEFT THEY THEM THEIR WITH FROM INTO OVER UNDER ABOUT AFTER WANT NEED
    KNOW THINK LOOK MAKE TAKE GIVE COME TIME YEAR WEEK""",
)

# Name aliases that are ordinary words in a few fixed phrases: "price target", "Target $260",
# "block trade", "shell company". A name next to these words is not the company.
# Names are matched in lower-cased text, so the phrases are lower case.
_NAME_VETOES: Final[Mapping[str, str]] = {
    "target": r"(?<!price target)(?<!price-target)(?! (?:price\b|\$|\d))",
    "block": r"(?! (?:trades?|chain|size|buys?|sales?)\b)",
    "shell": r"(?! (?:company|companies|corp|game|script)\b)",
    "chase": r"(?! (?:the|it|this|that|price|green|red)\b)",
    "ripple": r"(?! effects?\b)",
    "avalanche": r"(?! of\b)",
    "united": r"(?! (?:states|kingdom|nations|arab|auto workers|steelworkers)\b)",
    "delta": r"(?! (?:and |, )?(?:gamma|theta|vega|hedg\w*|neutral|exposure|between|of)\b)",
    "gap": r"(?! (?:up|down|fill|filled|higher|lower|between|in)\b)",
    "snap": r"(?! (?:back|decision|judgment|judgement|election)\b)",
    "toast": r"(?! (?:to)\b)",
}

# A post is shouting when at least this many letters, outside recognised symbols, are
# mostly upper case; shorter posts ("NVDA AMD MU") are lists, not shouting.
_SHOUT_MIN_LETTERS: Final = 12
_SHOUT_RATIO: Final = 0.6

# "$TSLA", "$brk.b"; the "$" is matched before the look-behind because a literal fails
# fastest, and this pattern is tried at every position of every post.
_CASHTAG: Final = r"\$(?<![\w$]\$)([A-Za-z]{1,6}(?:[.-][A-Za-z]{1,2})?)(?![\w&])"
# "NVDA", "BRK.B", "BRK-B", "NVDA's"; not "U.S.", "T-Mobile", "AT&T", "GLP-1" or "DON'T".
_BARE: Final = (
    r"([A-Z](?<![\w$@&.][A-Z])[A-Z]{0,4}(?:[.-][A-Z])?)"
    r"(?![\w&]|\.[A-Za-z0-9]|-(?:[A-Z][a-z]|\d)|['’](?![sS]\b)\w)"
)
_SYMBOL_TOKENS: Final = re.compile(f"{_CASHTAG}|{_BARE}")
_UPPER_RUN: Final = re.compile(r"[A-Z]+")
_LOWER_RUN: Final = re.compile(r"[a-z]+")
_ASCII_LOWER: Final = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)

# A match: where it starts, the symbol, how many letters it took if it was a bare word (0 for
# cashtags and names, which shouting does not discredit), and where it ends.
_Hit = tuple[int, str, int, int]


@dataclass(frozen=True, slots=True)
class Alias:
    """A name people use for an asset; ``cap`` names only count when capitalised, ``word``
    names (ordinary words: "Target", "Gap", "Delta") only when capitalised in a company
    context (see ``_company_context``)."""

    name: str
    symbol: str
    mode: AliasMode


@dataclass(frozen=True, slots=True)
class SymbolBook:
    """Every symbol signalsmith recognises, its name and asset class, and name aliases."""

    names: Mapping[str, str]
    asset_classes: Mapping[str, AssetClass]
    aliases: Mapping[str, Alias] = field(default_factory=dict)

    def is_known(self, symbol: str) -> bool:
        """Whether ``symbol`` (canonical upper case, ``BRK-B`` style) is listed."""
        return symbol in self.names

    def asset_class(self, symbol: str) -> AssetClass:
        """The symbol's asset class; unknown symbols are treated as equities."""
        return self.asset_classes.get(symbol, "equity")


def _data_rows(filename: str, width: int) -> Iterator[tuple[int, list[str]]]:
    text = (resources.files("signalsmith") / "data" / filename).read_text(encoding="utf-8")
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        cells = line.split("\t")
        if len(cells) != width:
            raise ValueError(f"{filename}:{number}: expected {width} tab-separated fields")
        yield number, cells


def _read_symbols() -> tuple[dict[str, str], dict[str, AssetClass]]:
    names: dict[str, str] = {}
    classes: dict[str, AssetClass] = {}
    for number, (symbol, name, kind) in _data_rows("symbols.tsv", 3):
        if kind not in _ASSET_CLASSES:
            raise ValueError(f"symbols.tsv:{number}: unknown asset class {kind!r}")
        names[symbol] = name
        classes[symbol] = _ASSET_CLASSES[kind]
    return names, classes


def _read_aliases(known: Mapping[str, str]) -> dict[str, Alias]:
    aliases: dict[str, Alias] = {}
    for number, (raw_name, symbol, mode) in _data_rows("aliases.tsv", 3):
        name = " ".join(raw_name.lower().split())
        # A typo here would silently never match, so a bad row stops the load instead.
        if symbol not in known or mode not in _ALIAS_MODES or name in aliases:
            raise ValueError(f"aliases.tsv:{number}: bad or duplicate alias {raw_name!r}")
        aliases[name] = Alias(name, symbol, _ALIAS_MODES[mode])
    return aliases


@cache
def load_symbol_book() -> SymbolBook:
    """Load the symbol book shipped in the package (read once per process)."""
    names, classes = _read_symbols()
    aliases = _read_aliases(names)
    return SymbolBook(
        names=MappingProxyType(names),
        asset_classes=MappingProxyType(classes),
        aliases=MappingProxyType(aliases),
    )


class _Trie:
    """Character trie over alias names, rendered as a regex that tries one branch per letter."""

    __slots__ = ("children", "tail")

    def __init__(self) -> None:
        self.children: dict[str, _Trie] = {}
        self.tail: str | None = None  # regex to append where a name ends here

    def add(self, word: str, tail: str) -> None:
        node = self
        for char in word:
            node = node.children.setdefault(char, _Trie())
        node.tail = tail

    def pattern(self) -> str:
        branches = [re.escape(char) + child.pattern() for char, child in self.children.items()]
        if self.tail is not None:
            # Listed after the longer branches so "bitcoin cash" beats "bitcoin".
            branches.append(self.tail)
        if len(branches) == 1:
            return branches[0]
        return "(?:" + "|".join(branches) + ")"


def _names_regex(aliases: Iterable[Alias]) -> re.Pattern[str] | None:
    """One case-sensitive regex over lower-cased text for every alias name.

    Case-blind matching (``re.I``) is several times slower here, so the text is lower-cased
    once instead and ``cap`` names are checked against the original text afterwards.
    """
    trie = _Trie()
    for alias in aliases:
        trie.add(alias.name, _NAME_VETOES.get(alias.name, ""))
    if not trie.children:
        return None
    return re.compile(rf"(?<![\w$])(?:{trie.pattern()})(?![\w&])")


def _lower_in_place(text: str) -> str:
    """``text`` lower-cased without moving any character, so match offsets stay valid."""
    lowered = text.lower()
    # str.lower() can lengthen a string ("İ" becomes two characters); fall back to ASCII only.
    return lowered if len(lowered) == len(text) else text.translate(_ASCII_LOWER)


class TickerExtractor:
    """Finds the symbols a piece of chatter mentions, in order of first mention."""

    __slots__ = ("_aliases", "_book", "_names")

    def __init__(self, book: SymbolBook | None = None) -> None:
        self._book = book if book is not None else load_symbol_book()
        self._aliases = self._book.aliases
        self._names = _names_regex(self._aliases.values())

    @property
    def book(self) -> SymbolBook:
        """The symbol book this extractor matches against."""
        return self._book

    def normalize(self, raw: str) -> str | None:
        """Canonical listed symbol for ``raw`` ("$tsla", "BRK.B", "AAPL.US"), else None."""
        symbol = raw.strip().removeprefix("$").upper().replace(".", "-")
        if symbol in self._book.names:
            return symbol
        # An exchange or share-class suffix on a listed base ("AAPL.US") still names the base.
        base, separator, _ = symbol.partition("-")
        if separator and base in self._book.names:
            return base
        return None

    def extract(self, text: str) -> tuple[str, ...]:
        """The stocks ``text`` is about, in order of first mention: every symbol it mentions
        except the firms that only rate another one (see ``signalsmith.raters``)."""
        return self.roles(text)[0]

    def roles(self, text: str) -> tuple[tuple[str, ...], tuple[Rater, ...]]:
        """The symbols ``text`` is about, and the firms it names only as raters of them."""
        hits = self._hits(text)
        symbols = tuple(dict.fromkeys(symbol for _, symbol, _, _ in hits))
        if not symbols:
            return symbols, ()
        found = raters(text, [Mention(start, end, symbol) for start, symbol, _, end in hits])
        if not found:
            return symbols, ()
        rating = {rater.symbol for rater in found}
        return tuple(symbol for symbol in symbols if symbol not in rating), found

    def raters_among(self, text: str, symbols: Sequence[str]) -> tuple[Rater, ...]:
        """Which of ``symbols`` (a producer's tickers) ``text`` names only as raters."""
        if BROKERS.isdisjoint(symbols):
            return ()
        _, found = self.roles(text)
        return tuple(rater for rater in found if rater.symbol in symbols)

    def subjects(
        self, text: str, given: Sequence[str] = ()
    ) -> tuple[tuple[str, ...], tuple[Rater, ...]]:
        """The stocks to decide and the firms set aside as raters: the ``given`` tickers (a
        producer's) less those ``text`` names only as raters, else those it mentions."""
        if not given:
            return self.roles(text)
        raters = self.raters_among(text, given)
        rating = {rater.symbol for rater in raters}
        return tuple(ticker for ticker in given if ticker not in rating), raters

    def _hits(self, text: str) -> list[_Hit]:
        names, spans = self._name_hits(text)
        hits = self._symbol_hits(text, spans)
        if names:
            hits = sorted(hits + names)
        bare_letters = sum(hit[2] for hit in hits)
        if bare_letters and _is_shouting(text, bare_letters):
            hits = [hit for hit in hits if not _shouted_word(hit)]
        return hits

    def _name_hits(self, text: str) -> tuple[list[_Hit], list[tuple[int, int]]]:
        """Alias names in ``text`` as hits, plus the spans they cover."""
        if self._names is None:
            return [], []
        hits: list[_Hit] = []
        spans: list[tuple[int, int]] = []
        title_case: bool | None = None  # found out once, at the first "word" name
        for match in self._names.finditer(_lower_in_place(text)):
            start = match.start()
            alias = self._aliases[match.group()]
            if alias.mode != "any" and not text[start].isupper():
                continue
            if alias.mode == "word":
                title_case = _title_case(text) if title_case is None else title_case
                if not _company_context(text, start, match.end(), title_case):
                    continue
            hits.append((start, alias.symbol, 0, match.end()))
            spans.append((start, match.end()))
        return hits, spans

    def _symbol_hits(self, text: str, spans: list[tuple[int, int]]) -> list[_Hit]:
        """Cashtags and bare tickers in ``text``, skipping words already read as a name."""
        hits: list[_Hit] = []
        name_starts = [low for low, _ in spans]  # in order, apart: the names found
        for match in _SYMBOL_TOKENS.finditer(text):
            cashtag, bare = match.groups()
            if cashtag:
                symbol = self.normalize(cashtag)
                if symbol is not None:
                    hits.append((match.start(), symbol, 0, match.end()))
                continue
            symbol = bare.replace(".", "-")
            if symbol not in self._book.names or symbol in STOPLIST:
                continue
            start = match.start()
            # An all-caps name ("COKE" read as Coke, KO) wins over the same word as a ticker.
            k = bisect_right(name_starts, start) - 1
            if k < 0 or start >= spans[k][1]:
                hits.append((start, symbol, len(bare), match.end(2)))
        return hits


# The words after a name that make it a company: "Gap shares", "Delta beats", "Target's".
_COMPANY_NEXT: Final = re.compile(
    r"(?:['’]s\b|\s+(?:shares?|stock|stocks|earnings|revenue|sales|results|guidance|outlook"
    r"|profit|margins?|ceo|cfo|inc|corp|group|holdings|beats?|misses|missed|jumps?|jumped"
    r"|falls?|fell|sinks?|sank|slides?|slid|slumps?|slumped|soars?|soared|surges?|surged"
    r"|rallies|rallied|rises?|rose|drops?|dropped|plunges?|plunged|tumbles?|tumbled|gains?"
    r"|gained|climbs?|climbed|dips?|dipped|reports?|reported|posts?|posted|raises?|raised"
    r"|cuts?|lowers?|lowered|reaffirms?|upgraded|downgraded|stays|holds|loses|lost|to\s+buy"
    r"|to\s+acquire|agrees?|announces?|announced|calls|puts|sees|saw|names|named|moves|moved"
    r"|recalls?|recalled|reinstates?|reinstated|presents?|crushed|launches|launched|expects"
    r"|plans|warns|warned|tops|topped|trails|lags|outperforms|underperforms|wins|won|buys"
    r"|bought|sells|sold|acquires|acquired|completes|completed|files|filed|settles|settled"
    r"|shareholders|investors|bonds|dividend|buyback|deal|premiums|deliveries|subscribers"
    r"|stores|chief|executive|signs|signed|hires|appoints|sues|sued|explores|mulls|unveils"
    r"|unveiled|invests|slashes|trims|halts|suspends|resumes|rebounds|faces|considers"
    r"|in\s+talks|weighs(?!\s+on)|board\s+(?:approves|declares|names|backs|rejects|adopts))\b"
    # A period before the figure: "Progressive monthly premiums", "Gap first-quarter sales".
    r"|\s+(?:(?:first|second|third|fourth)[-\s]quarter|quarterly|monthly|annual"
    r"|full[-\s]year|q[1-4])\s+(?:profit|revenue|sales|earnings|results|premiums|deliveries"
    r"|loss|margins?|net)\b"
    r"|\s+(?:and|&|or|vs\.?|versus)\s+\$?[A-Z])",
    re.IGNORECASE,
)
# The words before a name that make it a company: "takeover of Capri", "upgrades Gap".
_COMPANY_BEFORE: Final = re.compile(
    r"(?:\b(?:shares|stock|stake|takeover|acquisition|purchase|bid|deal|merger|buyout|spinoff"
    r"|ipo|earnings|upgrades?|downgrades?|upgraded|downgraded|initiates?|acquires?|acquired"
    r"|buys?|bought|sells?|sold|long|short|calls|puts|and|vs|versus|or|&)\s+(?:of\s+|in\s+"
    r"|on\s+|for\s+)?|['’]s\s+)\Z",
    re.IGNORECASE,
)
_CASHTAG_SEEN: Final = re.compile(r"\$[A-Za-z]")  # "$TSLA" in the text, not "$50"
_SENTENCE_START: Final = re.compile(r"(?:^|[.!?:\n]\s*|[\"'“(]\s*)\Z")


def _title_case(text: str) -> bool:
    """Whether most words are capitalised, as in a headline: capitals then prove nothing."""
    words = text.split()
    return sum(word[:1].isupper() for word in words) * 2 >= len(words)


def _company_context(text: str, start: int, end: int, title_case: bool) -> bool:
    """Whether an ordinary word written as a name is the company: next to a market word or
    a company list, in a text with cashtags, or capitalised mid-sentence in a text that is
    not title-cased."""
    if _COMPANY_NEXT.match(text, end) is not None or _CASHTAG_SEEN.search(text) is not None:
        return True
    if _COMPANY_BEFORE.search(text[max(0, start - 24) : start]) is not None:
        return True
    before = text[max(0, start - 4) : start]
    if _SENTENCE_START.search(before) is not None:
        return False
    return not title_case


def _is_shouting(text: str, symbol_letters: int) -> bool:
    """Whether the text's ordinary letters (symbols excluded) are mostly upper case."""
    upper = sum(map(len, _UPPER_RUN.findall(text))) - symbol_letters
    letters = upper + sum(map(len, _LOWER_RUN.findall(text)))
    return letters >= _SHOUT_MIN_LETTERS and upper > _SHOUT_RATIO * letters


def _shouted_word(hit: _Hit) -> bool:
    """In a shouting post, whether a bare match is probably just a shouted word."""
    _, symbol, bare_letters, _ = hit
    return bare_letters > 0 and (bare_letters < 3 or symbol in SHOUTING_WORDS)
