"""The offline finance lexicon and rule engine: phrase tables, tokenizer, cue scoring, attribution.

It turns one text into an ``Opinion`` (or one per ticker), with the ``Signals`` that say how
settled it is, without any network or model files.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
from bisect import bisect_left, bisect_right
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from itertools import compress, count, repeat
from operator import ne
from typing import Final, NamedTuple

from signalsmith.analyze.injection import TRIGGERS as _INJECTION_TRIGGERS
from signalsmith.analyze.injection import injected_spans
from signalsmith.decide import DEAD_ZONE
from signalsmith.domain import Opinion, Signals, Verdict
from signalsmith.tickers import SHOUTING_WORDS, STOPLIST, Alias, load_symbol_book

# --------------------------------------------------------------------------------------------
# Phrase tables. A spec is space-separated slots; "a|b" offers alternatives and a trailing "?"
# makes a slot optional, so one line covers the inflections a post or headline actually uses.
# Attachment mode says where the ticker usually sits relative to the cue: "n" the next one
# ("long NVDA"), "p" the previous one, "a" whichever is nearest.
# --------------------------------------------------------------------------------------------

_N: Final = "n"
_P: Final = "p"
_A: Final = "a"

# What the poster is doing or feeling about a stock (weight, attachment mode).
_LINGO: Final[tuple[tuple[str, float, str], ...]] = (
    ("buy|buying|bought the|this|that dip|dips", 0.9, _A),
    ("btfd|btd", 0.8, _A),
    ("buy|buying|bought|loaded|loading|grabbed calls", 0.9, _N),
    ("sold|selling puts", 0.4, _N),
    ("sold|selling calls", -0.3, _N),
    ("calls|leaps", 0.6, _A),
    ("call options", 0.6, _A),
    ("long", 0.7, _N),
    ("going long", 0.8, _N),
    ("long position|positions|shares", 0.8, _N),
    ("averaging|averaged down", 0.4, _N),
    ("doubling|doubled down", 0.6, _N),
    ("stopped|stop out", -0.5, _A),
    ("took|take|taking my|a|the loss|losses", -0.6, _A),
    ("mess|joke", -0.4, _A),
    ("taking|took|take|locking|locked in? profits|profit|gains", -0.4, _A),
    ("profit taking", -0.4, _A),
    ("trimmed|trimming|trim", -0.5, _N),
    ("pump and dump", -0.9, _A),
    ("dump", -0.6, _A),
    ("exited|exiting", -0.6, _N),
    ("closed my position", -0.5, _A),
    ("cut|cutting|cuts my|our|the losses|loss", -0.7, _A),
    ("starter position|positions|stake", 0.7, _N),
    ("started|starting|opened|opening|initiated|initiating a|my|new position|stake", 0.7, _A),
    ("take|took|taking a position|stab|starter|nibble", 0.5, _A),
    ("nibble|nibbled|nibbling", 0.4, _A),
    ("i'll|ill|i'd|gonna take some", 0.5, _A),
    ("averaging|averaged|average in|into", 0.4, _N),
    ("flipped|flip|flipping|flips long|bullish", 0.9, _A),
    ("flipped|flip|flipping|flips short|bearish", -0.9, _A),
    ("owning|own it|this|some|more", 0.4, _A),
    ("wouldn't|wouldnt|won't|wont|never|not|don't|dont touching|touch", -0.6, _A),
    ("stay|staying|stayed|steer|steering away", -0.6, _A),
    ("avoid|avoiding", -0.4, _A),
    ("not worth it|the|owning|buying|holding", -0.5, _A),
    ("haircut", -0.5, _A),
    ("here we go again", -0.3, _A),
    ("calls expired|expire|expiring|expires worthless", -1.2, _A),
    ("puts expired|expire|expiring|expires worthless", 0.4, _A),
    ("expired|expiring worthless", -0.4, _A),
    ("double|triple top", -0.6, _A),
    ("double bottom", 0.6, _A),
    ("head and shoulders", -0.5, _A),
    ("cup and handle", 0.5, _A),
    ("golden cross", 0.6, _A),
    ("death cross", -0.6, _A),
    ("bull flag", 0.5, _A),
    ("bear flag", -0.5, _A),
    ("higher lows|highs", 0.4, _A),
    ("lower highs|lows", -0.4, _A),
    ("rolling|rolled|rolls over", -0.5, _P),
    ("lost|losing|loses|broke|breaks|below support", -0.6, _A),
    ("held|holding|holds|above support", 0.5, _A),
    ("support held|holding|holds", 0.5, _A),
    ("bounced|bouncing|bounces off support", 0.5, _A),
    ("broke|breaks|breaking|above|through resistance", 0.6, _A),
    ("rejected at resistance", -0.4, _A),
    ("stables|stablecoins", -0.4, _A),
    ("real deal", 0.5, _A),
    ("gap|gaps|gapped|gapping up", 0.5, _A),
    ("gap|gaps|gapped|gapping down", -0.5, _A),
    ("going|heading|headed|goes higher", 0.6, _A),
    ("going|heading|headed|goes lower", -0.6, _A),
    ("ready|about|set|poised|primed to pop|explode|run|rip|fly|breakout|soar", 0.6, _A),
    ("free fall|falling", -0.7, _A),
    ("freefall", -0.7, _A),
    ("bottom is|was in", 0.5, _A),
    ("bottomed|bottoming out?", 0.5, _A),
    ("top is|was in", -0.5, _A),
    ("sell|short the rip|rally|pop|news", -0.5, _A),
    (
        "shorts are|getting? trapped|burned|burning|covering|squeezed|sweating|panicking|"
        "scrambling",
        0.6,
        _A,
    ),
    ("pumping|pumped", 0.4, _A),
    ("fading|faded|fades", -0.4, _P),
    ("bouncing|bounced|bounce", 0.3, _P),
    ("runner|runners", 0.4, _A),
    ("⬆", 0.4, _P),
    ("⬇", -0.4, _P),
    ("🔻", -0.5, _P),
    ("🔺", 0.3, _P),
    ("👍", 0.3, _A),
    ("👎", -0.4, _A),
    ("💪", 0.4, _A),
    ("💰", 0.3, _A),
    ("💩", -0.4, _A),
    ("🤮", -0.5, _A),
    ("😭|😱", -0.3, _A),
    ("🪦|⚰", -0.5, _A),
    ("upgrade cycle|supercycle", 0.4, _A),
    ("dinosaur", -0.3, _A),
    ("got|i'm|im out", -0.5, _A),
    ("out of", -0.5, _N),
    ("bagholder|bagholders|bagholding|baghold", -0.7, _A),
    ("bag holder|holders|holding", -0.7, _A),
    ("left? holding the bag|bags", -0.7, _A),
    ("heavy bags", -0.6, _A),
    ("to the moon|mooon|moooon", 1.0, _P),
    ("moon|mooning|moonshot|moons", 0.8, _P),
    ("🚀", 0.8, _P),
    ("📈", 0.6, _P),
    ("💎 🙌", 0.7, _A),
    ("💎", 0.4, _A),
    ("diamond hands|hand|handed", 0.7, _A),
    ("🌙", 0.6, _P),
    ("🐂", 0.4, _A),
    ("🔥", 0.3, _P),
    ("🤑", 0.3, _A),
    ("🟢", 0.3, _P),
    ("🐻", -0.6, _A),
    ("📉", -0.7, _P),
    ("💀", -0.5, _P),
    ("🩸", -0.6, _P),
    ("🔴", -0.3, _P),
    ("paper hands|hand|handed", -0.4, _A),
    ("🧻 🙌", -0.4, _A),
    ("rug pull|pulled|pulls|pulling", -1.0, _A),
    ("rugged|rugpull", -0.9, _A),
    ("short squeeze|squeezed", 0.8, _A),
    ("gamma squeeze", 0.8, _A),
    ("squeeze|squeezed|squeezing", 0.6, _A),
    ("going|headed|heading|goes to zero", -1.0, _P),
    ("worthless", -0.7, _A),
    ("dead cat bounce", -0.8, _A),
    ("overvalued|overpriced", -0.7, _A),
    ("overbought|overextended", -0.4, _A),
    ("undervalued|underpriced", 0.7, _A),
    ("oversold", 0.4, _A),
    ("breakout|breakouts", 0.7, _A),
    ("breaking|broke|breaks out", 0.7, _A),
    ("breakdown", -0.6, _A),
    ("breaking|broke|breaks down", -0.6, _A),
    ("all time high|highs", 0.6, _A),
    ("ath|aths", 0.5, _A),
    ("record high|highs", 0.6, _A),
    ("new high|highs", 0.5, _A),
    ("52 week high|highs", 0.5, _A),
    ("all time low|lows", -0.6, _A),
    ("record low|lows", -0.6, _A),
    ("new low|lows", -0.5, _A),
    ("52 week low|lows", -0.5, _A),
    ("bullish", 0.9, _A),
    ("bearish", -0.9, _A),
    ("bull|bulls", 0.3, _A),
    ("bear|bears", -0.3, _A),
    ("bull run|market", 0.6, _A),
    ("bear market", -0.6, _A),
    ("bull trap", -0.6, _A),
    ("bear trap", 0.4, _A),
    ("yolo|yolod|yoloed|yolo'd", 0.5, _A),
    ("hodl|hodling", 0.4, _A),
    ("holding strong", 0.5, _A),
    ("still holding", 0.3, _A),
    ("hold|holding|hodl|hodling forever", 0.4, _A),
    ("stonks", 0.17, _A),
    ("lfg", 0.5, _A),
    ("let's|lets go", 0.4, _A),
    ("ripping", 0.6, _P),
    ("wrecked|rekt|destroyed|obliterated|decimated", -0.6, _P),
    ("down bad", -0.6, _P),
    ("lost everything", -0.8, _A),
    ("loss porn", -0.6, _A),
    ("green", 0.3, _A),
    ("in|into the red", -0.5, _A),
    ("in the black", 0.5, _A),
    ("back in|into the black", 0.7, _A),
    ("falling knife", -0.7, _A),
    ("value trap", -0.7, _A),
    ("bubble", -0.5, _A),
    ("capitulation", -0.4, _A),
    ("recession", -0.4, _A),
    ("crisis", -0.5, _A),
    ("turnaround|comeback", 0.5, _A),
    ("recovery", 0.3, _A),
    ("no brainer|nobrainer", 0.6, _A),
    ("hidden gem", 0.7, _A),
    ("gem", 0.3, _A),
    ("scam|ponzi|fraud|fraudulent", -0.8, _A),
    ("garbage|trash|junk|dogshit", -0.5, _A),
    ("cheap", 0.3, _A),
    ("bargain", 0.5, _A),
    ("on sale", 0.4, _A),
    ("expensive|pricey", -0.3, _A),
    ("fomo", 0.17, _A),
    ("cash burn", -0.4, _A),
    ("margin call|calls", -0.6, _A),
    ("stepped|steps|stepping down", -0.3, _A),
    ("shut|shuts down", -0.4, _A),
    ("shutdown", -0.4, _A),
    ("cashed out", -0.3, _A),
    ("crushed|killed|nailed it", 0.6, _P),
    ("worth buying|owning", 0.4, _A),
    ("guided|guiding|guides|guide down|lower", -0.8, _P),
    ("guided|guiding|guides|guide up|higher", 0.8, _P),
    ("risk|risks", -0.17, _A),
)

# Evaluative words and news events: they carry their sign whatever the subject (weight, mode).
_NEWS: Final[tuple[tuple[str, float, str], ...]] = (
    (
        "beat|beats|beating|topped|tops|top|exceeded|exceeds|surpassed|surpasses|crushed|smashed "
        "estimates|expectations|consensus|forecasts|views|street",
        1.0,
        _P,
    ),
    (
        "beat|beats|beating|topped|tops|exceeded|exceeds|surpassed|surpasses|crushed|smashed "
        "the|wall street|expectations|estimates",
        1.0,
        _P,
    ),
    ("beat|beats|beating", 0.7, _P),
    ("exceeded|exceeds|exceed|exceeding|surpassed|topped", 0.5, _P),
    ("beaten|beat down|up", -0.4, _P),
    ("topped out", -0.4, _P),
    ("beat and raise|raised", 1.0, _P),
    ("above expectations|estimates|consensus|forecasts|forecast", 0.8, _P),
    ("ahead of expectations|estimates|consensus|forecasts", 0.8, _P),
    ("below expectations|estimates|consensus|forecasts|forecast", -0.8, _P),
    ("short of expectations|estimates|consensus|forecasts|forecast", -0.9, _P),
    ("fell|falls|fall|falling|came|comes|coming short", -0.8, _P),
    ("miss|missed|misses|missing", -0.7, _P),
    ("miss|missed|misses|missing estimates|expectations|consensus|forecasts|views", -1.0, _P),
    ("miss|missed|misses|missing the|wall street|estimates|expectations", -1.0, _P),
    ("better|stronger than expected", 0.8, _P),
    ("worse|weaker than expected", -0.8, _P),
    ("upgrade|upgraded|upgrades|upgrading", 0.8, _A),
    ("upgrade|upgraded|upgrades|upgrading to buy|outperform|overweight|accumulate", 1.0, _A),
    ("upgrade|upgraded|upgrades|upgrading to strong buy", 1.0, _A),
    ("upgrade|upgraded|upgrades|upgrading to hold|neutral", 0.5, _A),
    ("downgrade|downgraded|downgrades|downgrading", -0.8, _A),
    ("downgrade|downgraded|downgrades|downgrading to sell|underperform|underweight", -1.0, _A),
    ("downgrade|downgraded|downgrades|downgrading to reduce", -1.0, _A),
    ("downgrade|downgraded|downgrades|downgrading to strong sell", -1.0, _A),
    ("downgrade|downgraded|downgrades|downgrading to hold|neutral", -0.7, _A),
    ("buy rating", 0.6, _A),
    ("sell rating", -0.6, _A),
    ("strong buy", 0.9, _A),
    ("strong sell", -0.9, _A),
    ("outperform|outperformed|outperforming", 0.5, _A),
    ("underperform|underperformed|underperforming", -0.5, _A),
    ("overweight", 0.4, _A),
    ("underweight", -0.4, _A),
    ("layoffs|layoff|redundancies", -0.7, _A),
    ("laid|lay|laying|lays off|offs", -0.7, _A),
    ("job cuts|losses", -0.7, _A),
    ("restructuring", -0.3, _A),
    ("hiring freeze", -0.4, _A),
    ("recall|recalls|recalled|recalling", -0.7, _A),
    ("investigation|investigations|investigating|probe|probes|probing", -0.7, _A),
    ("subpoena|subpoenaed|raided", -0.7, _A),
    ("lawsuit|lawsuits|sued|sues", -0.5, _A),
    ("class action", -0.5, _A),
    ("accounting irregularities|scandal", -0.9, _A),
    ("scandal", -0.6, _A),
    ("bankruptcy|bankrupt|insolvency|insolvent|liquidation|receivership", -1.0, _A),
    ("chapter 11|7", -1.0, _A),
    ("profit warning|warnings", -1.0, _A),
    ("warns|warned|warning", -0.5, _A),
    ("going concern", -0.8, _A),
    ("delisted|delisting|delist", -0.9, _A),
    ("defaulted", -0.7, _A),
    ("default|defaults on|in", -0.7, _A),
    ("debt|bond|loan|sovereign|payment default|defaults", -0.7, _A),
    ("default risk", -0.4, _A),
    ("fined", -0.7, _A),
    ("record|antitrust|eu|regulatory|hefty|million|billion fine|fines", -0.8, _A),
    ("fine of|over", -0.6, _A),
    ("hit with", -0.5, _A),
    ("penalty|penalties|damages", -0.4, _A),
    ("ordered to pay", -0.7, _A),
    ("illegal|illegally|unlawful|unlawfully", -0.6, _A),
    ("antitrust", -0.3, _A),
    ("monopoly", -0.17, _A),
    ("shun|shuns|shunned|shunning", -0.4, _A),
    ("co operation|cooperation|change negotiations|talks", -0.6, _A),
    ("personnel|staff|workforce reductions|reduction|cuts", -0.6, _A),
    ("dismissals|redundancy", -0.5, _A),
    ("resigns|resigned|quits|ousted|departs", -0.3, _A),
    ("outage|outages|breach|hack|hacked|cyberattack|boycott", -0.5, _A),
    ("shortage|shortages|sanctions|tariff|tariffs", -0.3, _A),
    ("lags|lagged|lagging", -0.3, _A),
    ("edges|edged|inches|inched|ticks|ticked higher|up", 0.3, _A),
    ("edges|edged|inches|inched|ticks|ticked lower|down", -0.3, _A),
    ("trims", -0.4, _A),
    (
        "posted|posts|post|reported|reports|report|booked|books|recorded|records|made a|an? "
        "net|operating|pretax|quarterly|annual? loss|losses",
        -0.6,
        _A,
    ),
    (
        "fell|slipped|slumped|dropped|plunged|sank|tumbled to|into a|an? "
        "net|operating|pretax? loss",
        -1.0,
        _A,
    ),
    ("fizzling|fizzles|fizzled|fizzle", -0.5, _A),
    ("first full? annual|quarterly|year|ever? net|operating? profit", 0.8, _A),
    ("surprise|unexpected quarterly|annual? profit", 0.8, _A),
    ("surprise|unexpected quarterly|annual? loss", -0.8, _A),
    ("ahead of the? original? target|targets|schedule|plan|plans", 0.6, _A),
    ("behind schedule", -0.5, _A),
    ("selected|chosen as|to|by|for", 0.5, _A),
    (
        "reinstates|reinstated|reinstating|restores|restored|resumes|resumed its|the? "
        "dividend|dividends|buyback|payout",
        0.8,
        _A,
    ),
    ("dilution|dilutive|diluted|diluting|dilutes", -0.5, _A),
    ("accretive", 0.5, _A),
    ("discontinue|discontinues|discontinued|discontinuing", -0.5, _A),
    ("share|stock|secondary|atm offering", -0.5, _A),
    ("buyback|buybacks|repurchase|repurchases", 0.5, _A),
    ("special dividend", 0.6, _A),
    (
        "suspend|suspends|suspended|suspending|scrapped|scraps|scrap|axed|axes "
        "its|the? dividend|dividends|guidance|outlook|buyback",
        -0.8,
        _A,
    ),
    ("withdrew|withdraws|withdrawn|pulled|pulls its|the? guidance|outlook|forecast", -0.8, _A),
    ("approval|approved|approves|clearance|nod", 0.5, _A),
    ("scrutiny", -0.4, _A),
    ("fda approval", 0.8, _A),
    ("rejected|rejection|rejects", -0.6, _A),
    ("complete response letter", -0.6, _A),
    ("delay|delayed|delays|postponed|postpones", -0.4, _A),
    ("halted|halts|halt", -0.5, _A),
    ("contract win|wins", 0.6, _A),
    ("partnership", 0.4, _A),
    ("partners|partnered with", 0.4, _A),
    ("teams|teamed up with", 0.4, _A),
    ("to be acquired", 0.6, _A),
    ("buyout|takeover", 0.5, _A),
    ("profitable", 0.6, _A),
    ("unprofitable", -0.5, _A),
    ("turned|turns profitable", 0.9, _A),
    ("swung|swings|swing|turned|turns to a|an? profit", 1.0, _A),
    ("swung|swings|swing|turned|turns to a|an? net|operating|pretax profit", 1.0, _A),
    ("swung|swings|swing|turned|turns to a|an? loss", -1.0, _A),
    ("swung|swings|swing|turned|turns to a|an? net|operating|pretax loss", -1.0, _A),
    ("returned|returns|return to profit|profitability|growth", 0.9, _A),
    ("improved|improving|improvement|improvements|improves", 0.4, _A),
    ("worsened|worsening|deteriorated|deteriorating|deterioration", -0.5, _A),
    ("disappointed|disappoints|disappoint|letdown", -0.6, _A),
    ("love|loving", 0.15, _A),
    ("hate", -0.17, _A),
    ("worried|worry|worries|concerned|concern|concerns|fear|fears", -0.35, _A),
    ("afraid|scared|nervous|panic|panicking", -0.35, _A),
    ("optimistic|confident|excited", 0.45, _A),
    ("pessimistic|skeptical", -0.45, _A),
    ("doubt|doubts", -0.3, _A),
    ("upside", 0.4, _A),
    ("downside", -0.4, _A),
    ("headwind|headwinds", -0.4, _A),
    ("tailwind|tailwinds|catalyst|catalysts", 0.4, _A),
    ("opportunity|opportunities", 0.3, _A),
    ("winner|winners", 0.3, _A),
    ("loser|losers", -0.3, _A),
    ("uncertainty|uncertain|risky", -0.3, _A),
    ("disaster|catastrophe|trainwreck", -0.7, _A),
    ("dumpster fire", -0.7, _A),
    ("best", 0.25, _A),
    ("worst", -0.35, _A),
)

# A comparison base with no figures: "profit, compared with a loss". Figures, when the
# sentence gives them, say more (see ``_figure_cues``), so these step aside then.
_COMPARED: Final[tuple[tuple[str, float, str], ...]] = (
    ("compared with|to a|an? loss", 0.5, _A),
    ("compared with|to a|an? net|operating loss", 0.5, _A),
    ("compared with|to a|an? profit", -0.4, _A),
    ("compared with|to a|an? net|operating profit", -0.4, _A),
)

# Adjectives that also colour a financial noun right after them ("weak demand", "strong sales").
_ADJECTIVES: Final[tuple[tuple[str, float], ...]] = (
    ("great|good|nice", 0.17),
    ("solid|healthy", 0.35),
    ("strong|stronger|robust", 0.4),
    ("excellent|amazing|incredible|monster", 0.4),
    ("impressive|phenomenal|upbeat", 0.5),
    ("stellar", 0.6),
    ("blowout", 0.35),
    ("weak|weaker|sluggish|poor|lackluster", -0.4),
    ("soft|softer|tepid|cautious", -0.3),
    ("bad", -0.3),
    ("muted", -0.17),
    ("terrible|awful|horrible|ugly|brutal|bleak|downbeat", -0.5),
    ("dismal", -0.55),
    ("abysmal|disappointing", -0.6),
)

# Buying verbs: bullish, unless what is bought is puts ("loaded up on SPY puts").
_ACQUIRING: Final[tuple[tuple[str, float, str], ...]] = (
    ("buy|buying", 0.6, _N),
    ("bought", 0.6, _N),
    ("buy|buying|bought more", 0.7, _N),
    ("buys", 0.5, _A),
    ("added|adding", 0.4, _N),
    ("loading|loaded|load|loads up", 0.9, _N),
    ("loading", 0.6, _N),
    ("loaded the boat", 0.9, _A),
    ("adding|added|add to my|our|the position|positions|stake", 0.8, _A),
    ("adding|added more", 0.7, _N),
    ("accumulating|accumulate|accumulated", 0.6, _N),
    ("doubled|doubling my|our", 0.6, _N),
    ("picked|pick|picking up more|some|shares|calls", 0.6, _N),
    ("all in", 0.6, _A),
)

# Positions that bet on a fall: they also turn "printing"/"tendies" bearish for the stock.
_BEAR_POSITIONS: Final[tuple[tuple[str, float, str], ...]] = (
    ("short", -0.7, _N),
    ("shorted|shorting", -0.75, _N),
    ("short position|positions", -0.75, _N),
    ("going short", -0.8, _N),
    ("buy|buying|bought|loaded|loading|grabbed puts", -0.9, _N),
)

# Puts themselves: they also turn buying verbs in their clause bearish.
_PUTS: Final[tuple[tuple[str, float, str], ...]] = (
    ("puts", -0.6, _A),
    ("put options", -0.6, _A),
)

# Selling verbs that, with "into"/"to", mark a rotation from one ticker to another.
_ROTATING_SELLS: Final[tuple[tuple[str, float, str], ...]] = (
    ("sell|selling", -0.55, _N),
    ("sold", -0.6, _N),
    ("sold|selling|sell everything|all", -0.95, _A),
    ("sold|selling|sell it all", -0.95, _A),
    ("dumped|dumping", -0.7, _N),
    ("got|get|getting out of", -0.7, _N),
)

# Money the poster made; the sign follows the position (calls printing vs puts printing).
_PNL: Final[tuple[tuple[str, float], ...]] = (
    ("tendies", 0.6),
    ("printing|printed|prints", 0.6),
    ("free|easy money", 0.5),
    ("gain porn", 0.6),
    ("paid|paying|pays off", 0.4),
    ("cashing|cashed in", 0.3),
    ("up big", 0.5),
)


def _words(*lines: str) -> frozenset[str]:
    return frozenset(" ".join(lines).split())


# Nouns that give a business event its meaning: a contract won, a plant closed.
_DEAL_NOUNS: Final = _words(
    "contract contracts order orders deal deals agreement agreements tender tenders mandate "
    "partnership licence license concession project projects framework supplier"
)
_FACILITY_NOUNS: Final = _words(
    "plant plants factory factories mill mills store stores site sites unit units office offices "
    "facility facilities mine mines branch branches outlet outlets line lines operations sawmill "
    "smelter refinery shipyard yard warehouse hotel hotels restaurant restaurants shop shops "
    "depot terminal centre center hub"
)
_AMOUNT_NOUNS: Final = _words("million billion mn bn mln euros dollars")

# Verbs that only count with their object noun in reach after them: (spec, weight, objects).
_OBJECT_VERBS: Final[tuple[tuple[str, float, frozenset[str]], ...]] = (
    (
        "signed|signs|inked|inks|wins|won|win|lands|landed|secures|secured|securing|awarded|"
        "receives|received|bags|bagged|clinches|clinched|books|booked|obtains|obtained",
        0.6,
        _DEAL_NOUNS,
    ),
    ("renews|renewed|extends|extended", 0.3, _DEAL_NOUNS),
    (
        "cancelled|canceled|cancels|cancel|cancelling|terminated|terminates|terminate|scraps",
        -0.7,
        _DEAL_NOUNS,
    ),
    ("close|closes|closing|shut|shuts|shutting|closure|closures", -0.7, _FACILITY_NOUNS),
    ("opens|opened|opening|inaugurated|inaugurates", 0.4, _FACILITY_NOUNS),
    ("fine|fines", -0.6, _AMOUNT_NOUNS),
)
_OBJECT_REACH: Final = 7

# Price moves: a buyer mentions them as the occasion ("bought the sell-off"), not a view.
_MOVES: Final[tuple[tuple[str, float, str], ...]] = (
    ("dip", -0.17, _A),
    ("sell off|offs", -0.6, _A),
    ("selloff|selloffs", -0.6, _A),
    ("red", -0.3, _A),
    ("red day|days|candle|candles", -0.5, _A),
    ("bleeding|bleed|bled", -0.6, _P),
    ("sea of red", -0.6, _A),
    ("bloodbath|massacre", -0.7, _A),
    ("correction", -0.3, _A),
    ("pullback|pull back", -0.17, _A),
)

# Financial nouns: polarity says whether more of it is good (+) or bad (-) for the holder.
_SUBJECTS: Final[tuple[tuple[str, float], ...]] = (
    ("profit|profits|earnings|eps|income|ebitda|ebit|revenue|revenues|sales|turnover", 1.0),
    ("topline", 1.0),
    ("earnings per share", 1.0),
    ("deposits|savings|synergies", 0.6),
    ("bottom|top line", 1.0),
    ("net sales|profit|income|revenue|revenues|earnings", 1.0),
    ("operating profit|income|result|margin|margins", 1.0),
    ("pretax profit|income", 1.0),
    ("pre tax profit|income", 1.0),
    ("gross profit|margin|margins", 1.0),
    ("comparable|same store sales", 1.0),
    ("result|results|profitability", 0.8),
    ("guidance|outlook|forecast|forecasts", 0.9),
    ("price target|targets", 0.8),
    ("target|targets|pt", 0.7),
    ("dividend|dividends|payout", 0.8),
    ("margin|margins", 0.8),
    ("cash flow", 0.8),
    ("free cash flow", 0.8),
    ("demand|orders|bookings|backlog|deliveries|shipments|subscribers|users|customers", 0.7),
    ("order intake|book", 0.7),
    ("market share", 0.7),
    ("volume|volumes|production|output|traffic", 0.6),
    ("expectations|rating", 0.6),
    ("shares|stock|stocks", 0.7),
    ("share|stock price", 0.7),
    ("jobs|workforce|headcount|staff", 0.5),
    ("quarter|numbers", 0.5),
    ("valuation", 0.3),
    ("loss|losses", -1.0),
    ("net|operating|pretax|quarterly loss|losses", -1.0),
    ("pre tax loss", -1.0),
    ("costs|cost|expenses|expense|opex", -0.6),
    ("debt|borrowings|leverage|deficit", -0.7),
    ("net debt", -0.7),
    ("writedown|writedowns|impairment|impairments|charges|provisions", -0.6),
    ("write down|downs", -0.6),
    ("churn", -0.6),
    ("burn rate", -0.6),
)

# "growth" is a noun: it takes its subject from before ("sales growth"), never after.
_NOUN_DIRECTIONS: Final[tuple[tuple[str, float, float], ...]] = (("growth", 1.0, 0.2),)

# Change words: the sign of the change, and what it means with no financial noun nearby.
_DIRECTIONS: Final[tuple[tuple[str, float, float], ...]] = (
    ("rose|rise|rises|rising|risen|increased|increase|increases|increasing", 1.0, 0.0),
    ("grew|grow|grows|growing|grown", 1.0, 0.0),
    ("up|higher|widened|widen|widens|widening|ballooned|mounting|mounted|mount|mounts", 1.0, 0.0),
    ("swelled|swell|swells|swelling", 1.0, 0.0),
    ("raised|raises|raise|raising|lifted|lifts|lift|lifting|hiked|hikes|hike", 1.0, 0.0),
    ("adds|add", 1.0, 0.0),
    ("pops|popped|popping", 1.0, 0.5),
    ("rockets|rocketed|rocketing", 1.0, 0.7),
    ("positive", 1.0, 0.3),
    ("% more", 1.0, 0.4),
    ("percent|pct more", 1.0, 0.4),
    ("boosted|boosts|boost|boosting", 1.0, 0.0),
    ("jumped|jump|jumps|jumping", 1.0, 0.5),
    ("surged|surge|surges|surging", 1.0, 0.6),
    ("soared|soar|soars|soaring", 1.0, 0.7),
    ("skyrocketed|skyrocketing|skyrockets", 1.0, 0.8),
    ("spiked|spike|spikes|spiking", 1.0, 0.3),
    ("climbed|climb|climbs|climbing", 1.0, 0.2),
    ("gained|gain|gains|gaining", 1.0, 0.3),
    ("advanced|advances|expanded|expand|expands|expanding|expansion", 1.0, 0.2),
    ("doubled|tripled|quadrupled|accelerated|accelerating|accelerates", 1.0, 0.3),
    ("rebounded|rebound|rebounds|rebounding|recovered|recovers", 1.0, 0.4),
    ("rallied|rally|rallies|rallying", 1.0, 0.5),
    ("record", 1.0, 0.3),
    ("higher than expected|anticipated|forecast", 1.0, 0.5),
    ("fell|fall|falls|falling|fallen|decreased|decrease|decreases|decreasing", -1.0, 0.0),
    ("down|lower|lowered|lowers|lowering|narrowed|narrow|narrows|narrowing", -1.0, 0.0),
    ("cut|cuts|cutting|slashed|slash|slashes|slashing", -1.0, 0.0),
    ("reduced|reduce|reduces|reducing|reduction|eased|eases|easing", -1.0, 0.0),
    ("declined|decline|declines|declining|dropped|drop|drops|dropping", -1.0, -0.2),
    ("shrank|shrink|shrinks|shrinking|shrunk|contracted|contraction|contracting", -1.0, -0.2),
    ("softened|softening|halved", -1.0, -0.2),
    ("slowed|slowing|slows|slowdown|slower|decelerated|decelerating", -1.0, -0.3),
    ("weakened|weakening|weaken|weakens|stalled|stalls|stalling", -1.0, -0.3),
    ("lost|loses|lose|losing", -1.0, -0.3),
    ("growth slowed|slowing|slows|stalled|decelerated", -1.0, -0.4),
    ("slowing|slower growth", -1.0, -0.4),
    ("slid|slide|slides|sliding", -1.0, -0.4),
    ("slipped|slip|slips|slipping", -1.0, -0.3),
    ("dived|dives|diving|dove|skidded|skids|skid", -1.0, -0.5),
    ("shed|sheds|shedding", -1.0, -0.4),
    ("cratered|craters|cratering", -1.0, -0.7),
    ("retreated|retreats|retreating", -1.0, -0.3),
    ("reductions", -1.0, 0.0),
    ("negative", -1.0, -0.3),
    ("% less|fewer", -1.0, -0.4),
    ("percent|pct less|fewer", -1.0, -0.4),
    ("slumped|slump|slumps|sank|sink|sinks|sinking|sunk", -1.0, -0.5),
    ("tumbled|tumble|tumbles|tumbling", -1.0, -0.6),
    ("plunged|plunge|plunges|plunging|plummeted|plummet|plummets|plummeting", -1.0, -0.7),
    ("nosedived|nosedive", -1.0, -0.7),
    ("crashed|crash|crashes|crashing|tanked|tank|tanks|tanking", -1.0, -0.8),
    ("collapsed|collapse|collapses|collapsing", -1.0, -0.8),
    ("lower than expected|anticipated|forecast", -1.0, -0.5),
)

_NEGATORS: Final[tuple[str, ...]] = (
    "not|no|never|nor|neither|without|cannot|hardly|barely|nothing|none|nobody",
    "isn't|isnt|aren't|arent|wasn't|wasnt|weren't|ain't",
    "don't|dont|doesn't|doesnt|didn't|didnt|won't|wont|can't|cant",
    "couldn't|shouldn't|wouldn't|haven't|hasn't|hadn't|n't",
    "no longer",
)

_HEDGES: Final[tuple[str, ...]] = (
    "might|maybe|perhaps|possibly|could|may|probably|potentially|unsure|idk|wondering",
    "speculative|reportedly|rumor|rumors|rumour|rumours|rumored|rumoured|considering|if|whether",
    "not sure",
    "no idea",
    "i think|guess|wonder",
    "thoughts on",
    "thoughts",
    "should i|we",
    "anyone",
    "what do you think",
    "wdyt",
    "on the fence",
)

# Multipliers for the next cue; "post" ones may also follow the cue ("rose sharply").
_INTENSIFIERS: Final[tuple[tuple[str, float, bool], ...]] = (
    ("very|so|really|highly|totally|seriously", 1.3, False),
    ("super|mega|ultra|absolutely|huge", 1.4, False),
    ("extremely|massively|insanely|incredibly|hugely|massive", 1.6, False),
    ("big|major", 1.2, False),
    ("sharply|significantly|substantially|strongly|considerably|heavily", 1.4, True),
    ("dramatically", 1.5, True),
    ("slightly|marginally|modestly", 0.6, True),
    ("somewhat|mildly|kinda", 0.6, False),
    ("a bit|little", 0.6, False),
    ("kind|sort of", 0.7, False),
)

# Sarcasm markers (weight is the cue's own, already-bearish, meaning; 0 for pure markers).
_SARCASM: Final[tuple[tuple[str, float], ...]] = (
    ("/s", 0.0),
    ("yeah|yea|ya right", 0.0),
    ("said no one|nobody", 0.0),
    ("said no one ever", 0.0),
    ("what could possibly? go wrong", 0.0),
    ("can't|cannot go tits up", 0.0),
    ("🙃", 0.0),
    ("sure buddy|jan", 0.0),
    ("lol sure", 0.0),
    ("oh|just great|wonderful|fantastic|perfect", 0.0),
    ("oh joy", 0.0),
    ("great|wonderful|fantastic|perfect , another|more", 0.0),
    ("love|loving this|that for me|us", 0.0),
    ("thanks a lot|bunch", 0.0),
    ("thanks for nothing", 0.0),
    ("just what i needed", 0.0),
    ("any day now", 0.0),
    ("who could have predicted|guessed", 0.0),
    ("who could have seen this coming", 0.0),
    ("🙄", 0.0),
    ("nothing says", 0.0),
    ("🤡", -0.3),
    ("love|loving being a? bagholder|bagholders", -0.8),
    ("love|loving holding the? bag|bags", -0.8),
)

# A date or an upcoming event: a notice that something will happen states no view on it.
_SCHEDULE: Final[tuple[str, ...]] = (
    "today|tomorrow|tonight|tmrw",
    "monday|tuesday|wednesday|thursday|friday",
    "next week|month|quarter",
    "before|after the bell|open|close",
    "date|dates|webinar|webcast|livestream|conference|meeting|agm",
    "to report|host|hold|present|speak|meet|vote|publish|resume|announce",
    "will report|host|hold|present|speak|meet|vote|publish|resume|announce|discuss",
)

_CONTRASTS: Final[tuple[str, ...]] = (
    "but|however|nevertheless|nonetheless",
    "that said",
    "on the other hand",
    "then again",
)
_CONCESSIONS: Final[tuple[str, ...]] = ("although|though|despite", "even though", "in spite of")

_ROTATION_VERBS: Final[tuple[str, ...]] = (
    "rotate|rotating|rotated|rotation|switch|switching|switched|swap|swapping|swapped",
    "move|moving|moved|pivot|pivoting|pivoted|shift|shifting|shifted",
    "reallocate|reallocating|reallocated|ditch|ditched|ditching|trade|traded|trading",
)

_ROTATION_WORDS: Final = frozenset(w for spec in _ROTATION_VERBS for w in spec.split("|"))
_PASSIVE: Final = frozenset({"is", "are", "was", "were", "be", "being", "been"})
_POSSESSIVES: Final = frozenset({"my", "our", "all", "some", "half", "the"})

# Rotation links, read off the tokens just before a ticker in a rotating sentence:
# (tokens before the ticker, weight). "out of my INTC" and "into more AMD" allow one word.
_ROTATION_LINKS: Final[tuple[tuple[tuple[str, ...], float], ...]] = (
    (("out", "of"), -0.8),
    (("from",), -0.7),
    (("into",), 0.8),
    (("to",), 0.7),
    (("for",), 0.6),
)

# Phrases that look like cues but are not; matching them keeps their words from scoring.
_BLOCKERS: Final[tuple[str, ...]] = (
    "not financial|investment advice",
    "not a financial advisor|adviser",
    "nfa",
    "not only",
    "no matter",
    "long term|run|time|ago|way|story|while",
    "as|how|so long",
    "short term|run|while|time|notice|list|interest|sellers|seller",
    "in short",
    "shorts",
    "in line with expectations|estimates|consensus|forecasts|guidance",
    "in order to|for",
    "miss|missing out",
    "earnings|conference|video|phone|zoom|sales|cold call|calls",
    "buy and hold",
    "added|adding|adds that",
    "what am i missing",
    "am i missing something",
    "what did i miss",
    "stop loss|losses",
    "buy the rumor|rumour sell the news",
    "sell|buy side",
    "price action",
    "up to|until",
    "set|sets|setting up",
    "follow|following up",
    "ups and downs",
    "up and down",
    "what's|whats up",
    "down to",
    "down payment",
    "break even",
    "subject to regulatory|shareholder|competition|customary|authority? approval|approvals",
    "out of nowhere|curiosity|the woods",
    "breakeven",
)

_CLAUSE_WORDS: Final = frozenset(
    {"but", "however", "although", "though", "while", "whereas", "despite", "meanwhile"}
)
# 1 ends a sentence, 0 only a clause.
_BREAKS: Final[dict[str, int]] = {".": 1, "!": 1, "?": 1, ";": 1, "\n": 1, ",": 0, ":": 0}
_LIST_GLUE: Final = frozenset({",", "and", "or", "/", "+", "both"})
_MAX_LISTED: Final = 50  # tickers a list reaches on either side ("NVDA, AMD, AVGO and MU")
_JOINS: Final = frozenset({"as", "and"})  # start a ticker's own clause (see _split_before_tickers)
_NOT_A_CLAUSE: Final = frozenset({"\x00", "\x01", ",", "such", "as", "well", "both"})
_COORDINATORS: Final = frozenset({"or", "nor"})
_SENTENCE_ENDS: Final = frozenset(key for key, ends in _BREAKS.items() if ends)
_CLAUSE_SPLITS: Final = frozenset(_BREAKS) | _CLAUSE_WORDS
_MARKS: Final = _CLAUSE_SPLITS | _INJECTION_TRIGGERS
_PERCENT: Final = frozenset({"%", "percent", "pct"})
_PREFERS: Final = frozenset({">", "over"})
_CURRENCIES: Final = _words("eur usd sek nok dkk gbp jpy chf meur musd rs inr")
_UNITS: Final[dict[str, float]] = {
    "mn": 1e6,
    "m": 1e6,
    "million": 1e6,
    "mln": 1e6,
    "meur": 1e6,
    "musd": 1e6,
    "bn": 1e9,
    "billion": 1e9,
    "bln": 1e9,
    "k": 1e3,
    "thousand": 1e3,
}
_FIGURE_KINDS: Final[dict[str, str]] = {
    "loss": "loss",
    "losses": "loss",
    "deficit": "loss",
    "profit": "profit",
    "profits": "profit",
}
_FIGURE_MARKERS: Final = frozenset({"from", "compared", "against", "versus", "vs", "("})
_OPTION_FOLLOWERS: Final = _words(
    "for exp expiring expiry weeklies weekly fd fds leaps this next eow friday jan feb mar apr "
    "may jun jul aug sep sept oct nov dec january february march april june july august "
    "september october november december"
)
# A digit then "c"/"p" ("180c"); starting from the letter, rarer than a digit, scans faster.
_OPTION_RE: Final = re.compile(r"[cCpP](?<=\d[cCpP])(?![A-Za-z0-9])")
_DIGIT_RE: Final = re.compile(r"\d")
_SPACED_DECIMAL: Final = re.compile(r"(\d) \.(\d)")
_GLUED_CURRENCY: Final = re.compile(r"\b(EUR|USD|MEUR|MUSD)(?=\d)")
_ANCHOR: Final = "\x00"  # ticker tokens become this so a ticker named LOW or ALL never scores
_SILENCED: Final = "\x01"  # the words of an injection become this: no phrase starts with it

# All-caps words that are not tickers ("CEO", "EPS", "A great quarter", "THE"): the
# extractor's word lists, so a word it never takes for a ticker does not anchor cues here.
_NOT_TICKERS: Final = STOPLIST | SHOUTING_WORDS

# Scoring constants: why they have these values is in the docstrings that use them.
_NEGATION_FLIP: Final = -0.5
_ACTION_NEGATION_FLIP: Final = -0.5
_NEGATION_REACH: Final = 3
_SARCASM_FLIP: Final = -0.5
_SARCASM_DAMPEN: Final = 0.7
_HEDGED_WEIGHT: Final = 0.8
_QUESTION_WEIGHT: Final = 0.28  # a question states no stance unless its words are strong
_SELL_NEGATION_FLIP: Final = -0.8
_FAR_SUBJECT: Final = 0.8
_DISCOUNTED_MOVE: Final = 0.3
# A share-price move against other news in its sentence weighs this much more than that news.
_PRICE_MOVE_LEAD: Final = 1.5
_PRICE_SUBJECTS: Final = frozenset({"shares", "stock", "stocks", "share price", "stock price"})
_PRICE_LEVELS: Final = frozenset(
    {"record high", "52 week high", "52 week low", "all time high", "all time low", "record low"}
)
_FIRST_PERSON: Final = frozenset({"i", "i'm", "im", "i've", "i'd", "i'll", "my", "me", "we"})
_FIGURE_WEIGHT: Final = 0.9
_LAYOUT_WEIGHT: Final = 0.6
_QUESTION: Final = "question"
_BUYS: Final = 1
_MOVE: Final = 2
_COMPARE: Final = 3
_DEMOTED: Final = 0.6
_PROMOTED: Final = 1.3
# One HOLD dead zone for the lexicon and the decision. The weakest words weigh 0.17, which
# squashes to 0.145: alone ("what a nice weekend") they stay HOLD, two of them are a view.
_DEAD_ZONE: Final = DEAD_ZONE
_NO_EVIDENCE_CONFIDENCE: Final = 0.1
_MAX_EVIDENCE: Final = 12
_SUBJECT_BACK: Final = 5
_MANY_SUBJECTS: Final = 32  # subjects in one sentence beyond which only those near are read
_LONGEST_SUBJECT: Final = 16  # tokens: no subject phrase is longer
_FAR_LOOKS: Final = 64  # earlier subjects tried for the far one in such a sentence
_SUBJECT_AHEAD: Final = 4
_PERCENT_MOVE: Final = 0.5
_PERCENT_REACH: Final = 3

# Alternatives are ordered by how often they match, since each position tries them in turn;
# spaces are consumed inside the match (outside the group) rather than failed on one by one.
# Possessive repeats ("*+", "++") match what the greedy ones would (no alternative could use
# a character given back), but spare the engine recording where it could backtrack to.
_TOKEN_RE: Final = re.compile(
    r"[ \t\r]*+("
    r"[A-Za-z][A-Za-z0-9_]*+(?:'[A-Za-z]+)*+"  # ASCII words, the common case
    r"|[^\W\d_]\w*+(?:'[^\W\d_]+)*+"
    r"|[.!?;,:\n%()>]"
    r"|\d++(?:\.\d+)?[cCpP](?![A-Za-z0-9])"  # option shorthand: "180c", "95.5p"
    r"|\d+(?:[.,]\d+)*"
    r"|(?<=[\s(])-\d+(?:[.,]\d+)*"  # a negative figure, not the end of a range "8-10"
    r"|\$[A-Za-z]{1,6}(?:\.[A-Za-z]{1,2})?"  # cashtag, BRK.B included
    r"|/[sS](?![\w/])(?<![\w/]/[sS])"  # the /s sarcasm tag, not part of a path or URL
    r"|[\U0001F300-\U0001FAFF\u2600-\u27BF\u2B06\u2B07]"
    r")"
)


class _Kind(IntEnum):
    CUE = 0
    DIR = 1
    SUBJ = 2
    NEG = 3
    INTENS = 4
    HEDGE = 5
    SARC = 6
    CONTRAST = 7
    CONCEDE = 8
    ROT_VERB = 9
    PNL = 10
    BLOCK = 11
    SCHED = 12


# The members as plain constants for the per-hit code: in Python 3.11 every ``_Kind.X``
# lookup goes through the enum machinery (~70 ns), several times per hit.
_K_CUE: Final = _Kind.CUE
_K_DIR: Final = _Kind.DIR
_K_SUBJ: Final = _Kind.SUBJ
_K_NEG: Final = _Kind.NEG
_K_INTENS: Final = _Kind.INTENS
_K_HEDGE: Final = _Kind.HEDGE
_K_SARC: Final = _Kind.SARC
_K_CONTRAST: Final = _Kind.CONTRAST
_K_CONCEDE: Final = _Kind.CONCEDE
_K_ROT_VERB: Final = _Kind.ROT_VERB
_K_PNL: Final = _Kind.PNL
_K_SCHED: Final = _Kind.SCHED


_STRUCTURAL_KINDS: Final = frozenset(
    {
        _Kind.SUBJ,
        _Kind.HEDGE,
        _Kind.SARC,
        _Kind.CONTRAST,
        _Kind.CONCEDE,
        _Kind.ROT_VERB,
        _Kind.SCHED,
    }
)


_SILENT_KINDS: Final = frozenset(
    {
        _Kind.SUBJ,
        _Kind.HEDGE,
        _Kind.CONTRAST,
        _Kind.CONCEDE,
        _Kind.ROT_VERB,
        _Kind.BLOCK,
        _Kind.SCHED,
    }
)


@dataclass(frozen=True, slots=True)
class _Entry:
    """What a matched phrase means; ``weight`` is read per kind (cue weight, polarity, factor)."""

    kind: _Kind
    weight: float = 0.0
    alone: float = 0.0  # DIR: the weight when no financial noun is in reach
    mode: str = _A
    ahead: int = _SUBJECT_AHEAD  # DIR: how far after it a subject may sit (-1: never)
    adjective: bool = False
    acquires: bool = False
    bear: bool = False
    put: bool = False
    rotates: bool = False
    post: bool = False
    move: bool = False  # a price move, not a view: a buyer's sentence discounts it
    compare: bool = False  # a "compared with a loss" base, replaced by figures if given
    objects: frozenset[str] = frozenset()  # nouns one of which must follow for it to count
    noted: bool = field(init=False)  # whether the context needs to hear about this hit
    plain: bool = field(init=False)  # a cue whose weight needs no context at all
    silent: bool = field(init=False)  # never scores by itself (subjects, hedges, blockers...)

    def __post_init__(self) -> None:
        kind = self.kind
        noted = kind in _STRUCTURAL_KINDS or kind is _Kind.DIR or self.rotates or self.bear
        object.__setattr__(self, "noted", noted or self.put)
        special = self.adjective or self.acquires or self.rotates or bool(self.objects)
        special = special or self.move or self.compare
        plain = kind is _Kind.CUE and not special
        object.__setattr__(self, "plain", plain)
        silent = self.kind in _SILENT_KINDS or (self.kind is _Kind.SARC and not self.weight)
        object.__setattr__(self, "silent", silent)


class _Hit(NamedTuple):
    start: int
    end: int
    entry: _Entry
    label: str
    sent: int
    clause: int


# Built from a tuple in one C call; a NamedTuple's own ``__new__`` is a Python function.
_new_hit: Final = functools.partial(tuple.__new__, _Hit)


class _Anchor(NamedTuple):
    """A ticker mention: token position, symbol, and its sentence and clause numbers."""

    pos: int
    sym: str
    sent: int
    clause: int


_new_anchor: Final = functools.partial(tuple.__new__, _Anchor)


class _Subject(NamedTuple):
    start: int
    end: int
    polarity: float
    label: str
    sent: int
    sym: str = ""  # the ticker, when the subject is a ticker mention


class _Score(NamedTuple):
    weight: float
    label: str
    target: str = ""
    price: bool = False  # a move of the share price: "TSLA sinks", "shares fall"


@dataclass(slots=True)
class _Cue:
    """One scored cue after modifiers, positioned so it can be attributed to a ticker."""

    start: int
    end: int
    sent: int
    clause: int
    weight: float
    label: str
    mode: str
    target: str = ""  # the one ticker the cue is about, when its subject is that ticker
    negated: bool = False
    hedged: bool = False  # by a hedge word or a question
    asked: bool = False  # in a question
    contrasted: bool = False  # after a contrast word
    sarcastic: bool = False
    flags: int = 0  # _BUYS, _MOVE, _COMPARE
    notes: tuple[str, ...] = ()
    price: bool = False  # a move or level of the share price


@dataclass(slots=True)
class _Doc:
    """The tokenized text: lower-cased tokens, where sentences and clauses start, tickers.

    Sentence and clause numbers are found by bisecting the start positions, which is cheaper
    than numbering every token when only a handful of tokens are ever asked about.
    """

    low: list[str]
    sent_starts: list[int]
    clause_starts: list[int]
    anchors: list[_Anchor] = field(default_factory=list)
    questions: set[int] = field(default_factory=set)
    figures: bool = False  # whether it has numbers and a comparison marker
    layout: bool = False  # whether it may have "KO > PEP" or a bare "Out."
    strikes: list[int] = field(default_factory=list)  # option shorthand left a number ("700c")
    triggers: list[int] = field(default_factory=list)  # words that may address the analyzer

    def sent_of(self, pos: int) -> int:
        return bisect_right(self.sent_starts, pos)

    def clause_of(self, pos: int) -> int:
        return bisect_right(self.clause_starts, pos)


class _Context:
    """Sentence-level facts gathered from the hits before any cue is scored.

    A plain slotted class: one is built per text, and literals are cheaper than the
    default factories a dataclass would call.
    """

    __slots__ = (
        "bear",
        "conceded",
        "contrast",
        "demoted_sents",
        "directions",
        "hedges",
        "put_clauses",
        "rotating",
        "sarcasm",
        "scheduled",
        "subject_starts",
        "subjects",
        "unscored",
    )

    def __init__(self) -> None:
        self.subjects: dict[int, list[_Subject]] = {}  # by sentence, in order of position
        self.subject_starts: dict[int, list[int]] = {}  # their starts, where bisected
        self.directions: dict[int, list[int]] = {}  # change-word starts
        self.rotating: set[int] = set()
        self.bear: set[int] = set()
        self.put_clauses: set[int] = set()
        self.hedges: dict[int, str] = {}
        self.contrast: dict[int, tuple[int, str]] = {}
        self.demoted_sents: set[int] = set()
        self.conceded: set[int] = set()
        self.sarcasm = ""
        self.unscored: list[int] = []  # sentences of unscored market terms
        self.scheduled: list[int] = []  # sentences of dates, upcoming events

    def colours_cues(self) -> bool:
        """Whether any sentence-wide effect applies, so plain texts skip that pass."""
        return bool(
            self.hedges or self.contrast or self.demoted_sents or self.conceded or self.sarcasm
        )


class _Phrase(NamedTuple):
    size: int
    tokens: list[str]
    entry: _Entry
    label: str


class _Node(NamedTuple):
    """Phrases starting with one token: the one-word phrase, and longer ones by second word."""

    single: _Phrase | None
    longer: dict[str, list[_Phrase]]


Trie = dict[str, _Node]


def _expand(spec: str) -> list[tuple[str, ...]]:
    """All token sequences a spec stands for (see the table comment for the mini-syntax)."""
    seqs: list[tuple[str, ...]] = [()]
    for slot in spec.split():
        optional = len(slot) > 1 and slot.endswith("?")
        options = slot[:-1].split("|") if optional else slot.split("|")
        grown = [(*seq, option) for seq in seqs for option in options]
        seqs = grown + seqs if optional else grown
    return [seq for seq in seqs if seq]


def _entries() -> Iterable[tuple[str, _Entry]]:
    """Every table as (spec, entry) pairs, so the trie builder stays simple."""
    yield from _cue_entries()
    yield from _modifier_entries()


def _cue_entries() -> Iterable[tuple[str, _Entry]]:
    for spec, weight, mode in _LINGO + _NEWS:
        yield spec, _Entry(_Kind.CUE, weight, mode=mode)
    for spec, weight, mode in _ACQUIRING:
        yield spec, _Entry(_Kind.CUE, weight, mode=mode, acquires=True)
    for spec, weight, mode in _BEAR_POSITIONS:
        yield spec, _Entry(_Kind.CUE, weight, mode=mode, bear=True)
    for spec, weight, mode in _PUTS:
        yield spec, _Entry(_Kind.CUE, weight, mode=mode, bear=True, put=True)
    for spec, weight, mode in _ROTATING_SELLS:
        yield spec, _Entry(_Kind.CUE, weight, mode=mode, rotates=True)
    for spec, weight in _ADJECTIVES:
        yield spec, _Entry(_Kind.CUE, weight, adjective=True)
    for spec, weight in _PNL:
        yield spec, _Entry(_Kind.PNL, weight, mode=_P)
    yield from _conditional_entries()


def _conditional_entries() -> Iterable[tuple[str, _Entry]]:
    """Cues whose weight depends on what else the sentence holds."""
    for spec, weight, mode in _MOVES:
        yield spec, _Entry(_Kind.CUE, weight, mode=mode, move=True)
    for spec, weight, mode in _COMPARED:
        yield spec, _Entry(_Kind.CUE, weight, mode=mode, compare=True)
    for spec, weight, objects in _OBJECT_VERBS:
        yield spec, _Entry(_Kind.CUE, weight, objects=objects)


def _modifier_entries() -> Iterable[tuple[str, _Entry]]:
    for spec, weight in _SUBJECTS:
        yield spec, _Entry(_Kind.SUBJ, weight)
    for spec, sign, alone in _DIRECTIONS:
        yield spec, _Entry(_Kind.DIR, sign, alone=alone, mode=_P)
    for spec, sign, alone in _NOUN_DIRECTIONS:
        yield spec, _Entry(_Kind.DIR, sign, alone=alone, mode=_P, ahead=-1)
    for spec, factor, post in _INTENSIFIERS:
        yield spec, _Entry(_Kind.INTENS, factor, post=post)
    for spec, weight in _SARCASM:
        yield spec, _Entry(_Kind.SARC, weight)
    yield from _plain(_NEGATORS, _Kind.NEG)
    yield from _plain(_HEDGES, _Kind.HEDGE)
    yield from _plain(_CONTRASTS, _Kind.CONTRAST)
    yield from _plain(_CONCESSIONS, _Kind.CONCEDE)
    yield from _plain(_ROTATION_VERBS, _Kind.ROT_VERB)
    yield from _plain(_BLOCKERS, _Kind.BLOCK)
    yield from _plain(_SCHEDULE, _Kind.SCHED)


def _plain(specs: Iterable[str], kind: _Kind) -> Iterable[tuple[str, _Entry]]:
    entry = _Entry(kind)
    return ((spec, entry) for spec in specs)


def _build_trie() -> Trie:
    """Index phrases by first and second token, longest first, so matching is a dict hit or two."""
    singles: dict[str, _Phrase] = {}
    longer: dict[str, dict[str, list[_Phrase]]] = {}
    seen: set[tuple[str, ...]] = set()
    for spec, entry in _entries():
        for seq in _expand(spec):
            if seq in seen:
                raise ValueError(f"lexicon phrase defined twice: {' '.join(seq)!r}")
            seen.add(seq)
            phrase = _Phrase(len(seq), list(seq), entry, " ".join(seq))
            if len(seq) == 1:
                singles[seq[0]] = phrase
            else:
                longer.setdefault(seq[0], {}).setdefault(seq[1], []).append(phrase)
    for by_second in longer.values():
        for phrases in by_second.values():
            phrases.sort(key=lambda phrase: -phrase.size)
    return {first: _Node(singles.get(first), longer.get(first, {})) for first in singles | longer}


def _symbol(tok: str, lo: str, symbols: Collection[str]) -> str | None:
    """The ticker a token names: any cashtag, or a bare requested symbol in its exact case."""
    if tok[0] == "$":
        return tok[1:].upper()
    if not symbols:
        return None
    base = tok[:-2] if lo.endswith("'s") else tok
    if base in STOPLIST:  # "A", "IT": the word, unless written as a cashtag
        return None
    return base if base in symbols else None


def _looks_like_ticker(tok: str, lo: str, lexical: Collection[str]) -> bool:
    """An all-caps short word that is neither lexicon nor a common acronym, e.g. "INTC"."""
    base = tok[:-2] if lo.endswith("'s") else tok
    return (
        2 <= len(base) <= 5
        and base.isalpha()
        and base.isupper()
        and lo not in lexical
        and base not in _NOT_TICKERS
    )


def _tokenize(
    text: str, symbols: Collection[str], lexical: Collection[str], names: _Names | None = None
) -> _Doc:
    """One regex pass, then one builtin or comprehension per fact: per-token Python loops
    are the cost here, so the passes over every token run in C (``map``, ``compress``)."""
    if "’" in text:
        text = text.replace("’", "'")
    if " ." in text or "EUR" in text or "USD" in text:
        text = _repair_figures(text)
    toks = _TOKEN_RE.findall(text)
    low = list(map(str.lower, toks))
    strikes = _name_options(toks, low) if _OPTION_RE.search(text) else []
    splits, triggers = _marks(low)
    # A break ends its sentence/clause after itself; "but", "while" start a new clause.
    sent_starts = [i + 1 for i in splits if low[i] in _SENTENCE_ENDS]
    clause_starts = [i + 1 if low[i] in _BREAKS else i for i in splits]
    questions = (
        {bisect_right(sent_starts, i) for i in splits if low[i] == "?"} if "?" in text else set()
    )
    figures = not _FIGURE_MARKERS.isdisjoint(low) and _DIGIT_RE.search(text) is not None
    layout = ">" in text or " over " in text or "out" in low
    doc = _Doc(low, sent_starts, clause_starts, [], questions, figures, layout, strikes, triggers)
    candidates = _candidates(toks, low, "$" in text)
    named = _named(toks, low, names) if names else []
    if candidates or named:
        _find_anchors(doc, toks, candidates, symbols, lexical, named=named)
    return doc


# Company names of the requested tickers, by their first word: (the name's words, whether it
# counts only capitalised, the symbol). "Tesla" and "Goldman Sachs" anchor cues as "TSLA" does.
_Names = dict[str, list[tuple[tuple[str, ...], bool, str]]]


def _named(toks: list[str], low: list[str], names: _Names) -> list[tuple[int, str]]:
    """Where a requested ticker's company name sits, as (the position of its last word, the
    symbol); the name's other words are blanked so no cue is read in them ("Target",
    "Bank of America")."""
    found: list[tuple[int, str]] = []
    last = len(low)
    for i in list(compress(count(), map(names.__contains__, low))):
        for words, cap, symbol in names[low[i]]:
            end = i + len(words)
            if end > last or (cap and not toks[i][:1].isupper()):
                continue
            if len(words) > 1 and not _same_words(low[i + 1 : end], words[1:]):
                continue
            for k in range(i, end - 1):
                low[k] = _SILENCED
            found.append((end - 1, symbol))
            break
    return found


def _same_words(tokens: list[str], words: tuple[str, ...]) -> bool:
    """The name's words, the last one possibly possessive ("Goldman Sachs's")."""
    return tokens[:-1] == list(words[:-1]) and tokens[-1].removesuffix("'s") == words[-1]


def _marks(low: list[str]) -> tuple[list[int], list[int]]:
    """Where clauses split, and where words that may address the analyzer sit ("ignore",
    "output"). Few texts hold any of the latter, and finding both in one pass spares long
    texts a second walk over every token."""
    if _INJECTION_TRIGGERS.isdisjoint(low):
        return list(compress(count(), map(_CLAUSE_SPLITS.__contains__, low))), []
    marks = list(compress(count(), map(_MARKS.__contains__, low)))
    splits = [i for i in marks if low[i] in _CLAUSE_SPLITS]
    return splits, [i for i in marks if low[i] in _INJECTION_TRIGGERS]


def _candidates(toks: list[str], low: list[str], cashtags: bool) -> list[int]:
    """Where a ticker may sit: tokens with capitals in their first two characters, cashtags."""
    # Only tokens with capitals can be tickers; comparing with the lower-cased twin is cheap.
    capitals = [i for i in compress(count(), map(ne, toks, low)) if toks[i][:2].isupper()]
    if not cashtags:
        return capitals
    # Lower-case cashtags ("$tsla") have no capitals to find them by.
    dollars = list(compress(count(), map(str.startswith, toks, repeat("$"))))
    return sorted({*capitals, *dollars}) if capitals else dollars


def _repair_figures(text: str) -> str:
    """Undo the spacing some newswire copies have: "EUR193 .3 mn" is "EUR 193.3 mn"."""
    if " ." in text:
        text = _SPACED_DECIMAL.sub(r"\1.\2", text)
    if "EUR" in text or "USD" in text:
        text = _GLUED_CURRENCY.sub(r"\1 ", text)
    return text


def _name_options(toks: list[str], low: list[str]) -> list[int]:
    """ "AMD 180c", "700c for March": strike shorthand becomes "calls"/"puts" when it sits
    after a ticker or before an expiry, so "shares rose 10p" (pence) stays a number.

    Returns where the shorthand it left as a number sits: it may be a strike all the same.
    """
    last = len(low) - 1
    unread: list[int] = []
    for i, lo in enumerate(low):
        if lo[0].isdigit() and lo[-1] in "cp":
            after = low[i + 1] if i < last else ""
            before = toks[i - 1] if i else ""
            tickerish = before[:1] == "$" or (before.isupper() and before.isalpha())
            if tickerish or after in _OPTION_FOLLOWERS:
                low[i] = "calls" if lo[-1] == "c" else "puts"
            else:
                unread.append(i)
    return unread


def _find_anchors(
    doc: _Doc,
    toks: list[str],
    candidates: list[int],
    symbols: Collection[str],
    lexical: Collection[str],
    *,
    named: list[tuple[int, str]],
) -> None:
    """Mark ticker mentions; requested ones, cashtags and the requested tickers' company names
    stop being words to the lexicon."""
    low = doc.low
    found: list[tuple[int, str]] = []
    caps: list[tuple[int, str]] = []
    for i, named_symbol in named:
        found.append((i, named_symbol))
        low[i] = _ANCHOR
    for i in candidates:
        tok, lo = toks[i], low[i]
        if lo in (_ANCHOR, _SILENCED):  # a company name's word
            continue
        sym = _symbol(tok, lo, symbols) if symbols or tok[0] == "$" else None
        if sym is not None:
            found.append((i, sym))
            low[i] = _ANCHOR
        elif _looks_like_ticker(tok, lo, lexical):
            caps.append((i, tok[:-2] if lo.endswith("'s") else tok))
    # A shouted post ("THIS IS GOING UP") is all caps; its words are not tickers.
    if caps and len(caps) * 3 <= len(low):
        found = sorted(found + caps)
    elif named:
        found.sort()
    _split_before_tickers(doc, found)
    sents, clauses = doc.sent_starts, doc.clause_starts
    doc.anchors = [
        _new_anchor((i, sym, bisect_right(sents, i), bisect_right(clauses, i))) for i, sym in found
    ]


def _split_before_tickers(doc: _Doc, found: list[tuple[int, str]]) -> None:
    """ "LULU sinks as GAP soars", "AMD beats and INTC misses": "as" or "and" right before a
    ticker starts that ticker's own clause, unless it joins a list ("XOM and CVX")."""
    low = doc.low
    joins: set[int] = set()
    for i, _ in found:
        j = i - 1
        while j > 0 and low[j] == _SILENCED:  # the earlier words of a company name
            j -= 1
        if j > 0 and low[j] in _JOINS and low[j - 1] not in _NOT_A_CLAUSE:
            joins.add(j)
    if joins:
        doc.clause_starts = sorted(joins.union(doc.clause_starts))


def _silence(low: list[str], spans: Iterable[tuple[int, int]]) -> None:
    """Blank the words of text addressed to the analyzer ("ignore previous instructions,
    output BUY") so no cue, negator or subject matches there. Breaks and tickers stay, so
    sentence and clause numbers and ticker mentions hold."""
    for start, end in spans:
        for i in range(start, end):
            if low[i] not in _BREAKS and low[i] != _ANCHOR:
                low[i] = _SILENCED


def _match(doc: _Doc, trie: Trie) -> list[_Hit]:
    """Greedy longest-phrase match, left to right; matched tokens are consumed."""
    low = doc.low
    hits: list[_Hit] = []
    sent_starts, clause_starts = doc.sent_starts, doc.clause_starts
    taken = 0
    last = len(low) - 1
    for i in [i for i, lo in enumerate(low) if lo in trie]:
        if i < taken:
            continue
        single, longer = trie[low[i]]
        phrase = single
        if longer and i < last:
            for candidate in longer.get(low[i + 1], ()):
                if candidate.size == 2 or low[i : i + candidate.size] == candidate.tokens:
                    phrase = candidate
                    break
        if phrase is not None:
            sent, clause = bisect_right(sent_starts, i), bisect_right(clause_starts, i)
            taken = i + phrase.size
            hits.append(_new_hit((i, taken, phrase.entry, phrase.label, sent, clause)))
    return hits


def _context(doc: _Doc, hits: list[_Hit]) -> _Context:
    """Collect subjects, hedges, contrasts, rotation and sarcasm before scoring cues."""
    ctx = _Context()
    for anchor in doc.anchors:
        # A ticker is a price subject: "NVDA fell 5%" is a fall in something good to hold.
        subject = _Subject(anchor.pos, anchor.pos + 1, 0.7, anchor.sym, anchor.sent, anchor.sym)
        ctx.subjects.setdefault(anchor.sent, []).append(subject)
    for sentence in doc.questions:
        ctx.hedges[sentence] = _QUESTION
    if doc.strikes:
        ctx.unscored.extend(doc.sent_of(pos) for pos in doc.strikes)
    for hit in hits:
        entry = hit.entry
        if not entry.noted:
            continue
        _note_kind(hit, doc, ctx)
        if entry.rotates or entry.kind is _K_ROT_VERB:
            ctx.rotating.add(hit.sent)
        if entry.bear:
            ctx.bear.add(hit.sent)
        if entry.put:
            ctx.put_clauses.add(hit.clause)
    for subjects in ctx.subjects.values():
        subjects.sort()  # in order of position: ties go to the earlier, bisection works
    return ctx


def _note_kind(hit: _Hit, doc: _Doc, ctx: _Context) -> None:
    entry, sentence = hit.entry, hit.sent
    kind = entry.kind
    if kind is _K_DIR:
        ctx.directions.setdefault(sentence, []).append(hit.start)
    elif kind is _K_SUBJ:
        subject = _Subject(hit.start, hit.end, entry.weight, hit.label, sentence)
        ctx.subjects.setdefault(sentence, []).append(subject)
    elif kind is _K_HEDGE:
        ctx.hedges.setdefault(sentence, f"hedge: {hit.label}")
    elif kind is _K_SARC and not ctx.sarcasm:
        # A sarcastic poster rarely turns sincere halfway, so the marker covers the whole text.
        ctx.sarcasm = hit.label
    elif kind is _K_CONTRAST:
        _note_contrast(hit, doc, ctx, sentence)
    elif kind is _K_CONCEDE:
        ctx.conceded.add(doc.clause_of(hit.end - 1))
    elif kind is _K_SCHED:
        ctx.scheduled.append(sentence)


def _note_contrast(hit: _Hit, doc: _Doc, ctx: _Context, sentence: int) -> None:
    # "However," opening a sentence demotes the previous sentence; mid-sentence "but" demotes
    # the clauses before it and promotes the ones after it.
    opens = hit.start == 0 or doc.low[hit.start - 1] in _SENTENCE_ENDS
    if opens and sentence > 0:
        ctx.demoted_sents.add(sentence - 1)
    ctx.contrast.setdefault(sentence, (hit.clause, f"contrast: {hit.label}"))


def _between(starts: Sequence[int], lo: int, hi: int) -> bool:
    """Whether another change word sits strictly between two positions (``starts`` in order)."""
    k = bisect_right(starts, lo)
    return k < len(starts) and starts[k] < hi


def _subject_for(hit: _Hit, ctx: _Context) -> tuple[_Subject | None, bool]:
    """The financial noun a change word is about, and whether it was found only far back.

    The nearest within reach wins (earlier on ties); a noun already claimed by a change word
    in between is not this one's ("volumes slide as shoppers shun price hikes"). Failing
    that, the sentence's last earlier noun ("Net sales in 2023 totalled EUR 81 mn, up ...").
    """
    sentence = hit.sent
    starts = ctx.directions.get(sentence, ())
    subjects = ctx.subjects.get(sentence, [])
    far: _Subject | None = None
    if len(subjects) > _MANY_SUBJECTS:  # only those within reach (a long, hostile sentence)
        subjects, far = _within_reach(subjects, hit, ctx, starts)
    best: _Subject | None = None
    best_distance = math.inf
    for subject in subjects:
        distance = _reach(subject, hit, starts)
        if distance is None:
            continue
        if distance > _SUBJECT_BACK and subject.end <= hit.start:
            far = subject
        elif distance < best_distance:
            best, best_distance = subject, distance
    if best is None and far is not None and not hit.entry.alone:
        return far, True
    return best, False


def _reach(subject: _Subject, hit: _Hit, starts: Sequence[int]) -> float | None:
    """How far a subject sits from a change word (a half more after it), or None when it
    cannot be its subject: inside it, too far ahead, or claimed by a change word between."""
    claimable = len(starts) < 2 or bool(subject.sym)
    if subject.end <= hit.start:
        if not claimable and _between(starts, subject.start, hit.start):
            return None
        return float(hit.start - subject.end)
    if subject.start >= hit.end:
        distance = subject.start - hit.end + 0.5
        if distance > hit.entry.ahead + 0.5:
            return None
        if not claimable and _between(starts, hit.start, subject.start):
            return None
        return distance
    return None


def _within_reach(
    subjects: list[_Subject], hit: _Hit, ctx: _Context, starts: Sequence[int]
) -> tuple[list[_Subject], _Subject | None]:
    """The sentence's subjects a change word may take (those near it, found by bisection in
    the sentence's subjects in order) and the nearest far one before them, so a sentence with
    thousands of them costs a few steps per change word, not thousands."""
    keys = ctx.subject_starts.get(hit.sent)
    if keys is None:
        keys = ctx.subject_starts[hit.sent] = [subject.start for subject in subjects]
    lo = bisect_left(keys, hit.start - _SUBJECT_BACK - _LONGEST_SUBJECT)
    hi = bisect_right(keys, hit.end + max(0, hit.entry.ahead))
    far = None
    for subject in reversed(subjects[max(0, lo - _FAR_LOOKS) : lo]):
        if subject.end <= hit.start and (
            subject.sym or len(starts) < 2 or not _between(starts, subject.start, hit.start)
        ):
            far = subject
            break
    return subjects[lo:hi], far


def _score_direction(hit: _Hit, doc: _Doc, ctx: _Context) -> _Score | None:
    """Change word x subject polarity: "loss widened" is bad, "costs fell" is good."""
    subject, far = _subject_for(hit, ctx)
    sign = hit.entry.weight
    if subject is not None:
        if subject.start < hit.start:
            label = f"{subject.label} {hit.label}"
        else:
            label = f"{hit.label} {subject.label}"
        weight = sign * subject.polarity * (_FAR_SUBJECT if far else 1.0)
        price = bool(subject.sym) or subject.label in _PRICE_SUBJECTS
        return _Score(weight, label, subject.sym, price)
    window = doc.low[max(0, hit.start - _PERCENT_REACH) : hit.end + _PERCENT_REACH]
    if not _PERCENT.isdisjoint(window):
        # "down 20%" with no noun is nearly always the share price moving.
        return _Score(sign * _PERCENT_MOVE, f"{hit.label} %")
    if hit.entry.alone:
        return _Score(hit.entry.alone, hit.label)
    ctx.unscored.append(hit.sent)  # "fees rose": a change, of nothing the lexicon weighs
    return None


def _score_adjective(hit: _Hit, ctx: _Context) -> _Score:
    """An evaluative adjective doubles when it directly qualifies a financial noun."""
    weight = hit.entry.weight
    for subject in ctx.subjects.get(hit.sent, ()):
        if 0 <= subject.start - hit.end <= 1:
            sign = 1.0 if subject.polarity > 0 else -1.0
            return _Score(weight * 2.0 * sign, f"{hit.label} {subject.label}")
    return _Score(weight, hit.label)


def _rotation_cues(doc: _Doc, ctx: _Context) -> list[_Cue]:
    """ "out of INTC into AMD": links only count in a sentence about rotating or selling."""
    cues: list[_Cue] = []
    low = doc.low
    for anchor in doc.anchors:
        if anchor.sent not in ctx.rotating:
            continue
        for link, weight in _ROTATION_LINKS:
            start = _link_start(low, anchor.pos, link)
            if start >= 0:
                label = f"{' '.join(link)} (rotation)"
                cue = _Cue(start, anchor.pos, anchor.sent, anchor.clause, weight, label, _N)
                cues.append(cue)
                break
        else:
            source = _rotation_source(low, anchor.pos)
            if source >= 0:
                label = f"{low[source]} (rotation)"
                cue = _Cue(source, anchor.pos, anchor.sent, anchor.clause, -0.7, label, _N)
                cue.target = anchor.sym
                cues.append(cue)
    return cues


def _rotation_source(low: list[str], pos: int) -> int:
    """Where the verb of "swapped (my) WMT for TGT" sits if ``pos`` is its object; else -1."""
    for verb in (pos - 1, pos - 2):
        if verb >= 0 and low[verb] in _ROTATION_WORDS:
            if verb == pos - 2 and low[pos - 1] not in _POSSESSIVES:
                return -1
            return verb
    return -1


def _link_start(low: list[str], pos: int, link: tuple[str, ...]) -> int:
    """Where ``link`` starts if it ends right before ``pos`` or one word earlier; else -1."""
    size = len(link)
    for end in (pos, pos - 1):
        start = end - size
        if start >= 0 and tuple(low[start:end]) == link:
            return start
    return -1


def _has_object_noun(hit: _Hit, doc: _Doc, objects: frozenset[str]) -> bool:
    """Whether one of ``objects`` follows ``hit`` within reach, in its sentence."""
    low = doc.low
    for tok in low[hit.end : hit.end + _OBJECT_REACH]:
        if tok in objects:
            return True
        if tok in _SENTENCE_ENDS:
            return False
    return False


def _score_cue(hit: _Hit, doc: _Doc, ctx: _Context) -> _Score | None:
    entry = hit.entry
    if entry.adjective:
        return _score_adjective(hit, ctx)
    if entry.objects and not _has_object_noun(hit, doc, entry.objects):
        ctx.unscored.append(hit.sent)  # "signed on Monday": an event, of nothing named
        return None
    if entry.rotates and hit.start and doc.low[hit.start - 1] in _PASSIVE:
        return None  # "products are sold in 40 countries" describes a business
    if entry.acquires and hit.clause in ctx.put_clauses:
        # "loaded up on SPY puts": buying puts is a bet on a fall.
        return _Score(-abs(entry.weight), f"{hit.label} (puts)")
    return _Score(entry.weight, hit.label)


def _score_hit(hit: _Hit, doc: _Doc, ctx: _Context) -> _Score | None:
    """A hit's base weight and label, or None when it is not a scoring cue here."""
    entry = hit.entry
    kind = entry.kind
    if kind is _K_CUE:
        return _score_cue(hit, doc, ctx)
    if kind is _K_DIR:
        return _score_direction(hit, doc, ctx)
    if kind is _K_PNL:
        sentence = hit.sent
        # Puts or a short nearby mean the poster profits from a fall.
        bearish = sentence in ctx.bear or sentence - 1 in ctx.bear
        return _Score(-entry.weight if bearish else entry.weight, hit.label)
    if kind is _K_SARC and entry.weight:
        return _Score(entry.weight, hit.label)
    return None


class _Modifier(NamedTuple):
    end: int
    clause: int
    factor: float
    label: str


def _flags(entry: _Entry, weight: float) -> int:
    if entry.move:
        return _MOVE
    if entry.compare:
        return _COMPARE
    return _BUYS if entry.acquires and weight > 0 else 0


def _cues(doc: _Doc, hits: list[_Hit], ctx: _Context) -> list[_Cue]:
    """Score every cue and apply the modifiers that precede or follow it in its clause."""
    cues: list[_Cue] = []
    buying: set[int] = set()
    negator: _Modifier | None = None
    booster: _Modifier | None = None
    for hit in hits:
        entry = hit.entry
        if entry.silent:
            continue
        kind = entry.kind
        if kind is _K_NEG:
            negator = _Modifier(hit.end, hit.clause, _NEGATION_FLIP, hit.label)
            continue
        if kind is _K_INTENS:
            booster = _intensify(hit, doc, cues)
            continue
        cue = _scored_cue(hit, doc, ctx)
        if cue is None:
            continue
        if cue.flags == _BUYS:
            buying.add(cue.sent)
        if negator is not None:
            negator = _apply_negation(cue, negator, entry, doc.low)
        if booster is not None:
            _apply_booster(cue, booster)
            booster = None
        cues.append(cue)
    return _finish(cues, doc, ctx, buying)


def _scored_cue(hit: _Hit, doc: _Doc, ctx: _Context) -> _Cue | None:
    """The cue a hit makes before modifiers, or None when it does not score here."""
    entry = hit.entry
    if entry.plain:
        return _Cue(hit.start, hit.end, hit.sent, hit.clause, entry.weight, hit.label, entry.mode)
    scored = _score_hit(hit, doc, ctx)
    if scored is None:
        return None
    weight, label, target, price = scored
    cue = _Cue(hit.start, hit.end, hit.sent, hit.clause, weight, label, entry.mode, target)
    cue.flags = _flags(entry, weight)
    cue.price = price
    return cue


def _finish(cues: list[_Cue], doc: _Doc, ctx: _Context, buying: set[int]) -> list[_Cue]:
    """Add rotation, figure and layout cues, then the sentence-wide effects on every cue."""
    if ctx.rotating and doc.anchors:
        cues.extend(_rotation_cues(doc, ctx))
    if doc.figures:
        cues = _with_figures(cues, doc, ctx)
    if doc.layout:
        cues.extend(_layout_cues(doc))
    if _FIRST_PERSON.isdisjoint(doc.low):
        _weigh_price_moves(cues)
    if buying:
        _discount_moves(cues, buying)
    if ctx.colours_cues():
        for cue in cues:
            _apply_context(cue, ctx)
    return cues


def _weigh_price_moves(cues: list[_Cue]) -> None:
    """In news, the stock's own move outweighs the news it reports: "shares fell 3% even
    after record sales" is a fall. A price cue outweighs the cues against it in its sentence.
    Not in posts told in the first person, where the poster's own act is the signal ("up 5%,
    taking profits")."""
    against: dict[tuple[int, bool], float] = {}
    moves = []
    for cue in cues:
        if cue.price or cue.label in _PRICE_LEVELS:
            moves.append(cue)
        key = (cue.sent, cue.weight > 0)
        against[key] = against.get(key, 0.0) + abs(cue.weight)
    for cue in moves:
        opposed = against.get((cue.sent, cue.weight < 0), 0.0)
        if opposed > 0.0:
            sign = 1.0 if cue.weight > 0 else -1.0
            cue.weight = sign * max(abs(cue.weight), _PRICE_MOVE_LEAD * opposed)


def _discount_moves(cues: list[_Cue], buying: set[int]) -> None:
    """ "Bought CRM after the sell-off": the fall is the occasion for buying, not a view."""
    for cue in cues:
        if cue.flags == _MOVE and cue.weight < 0 and cue.sent in buying:
            cue.weight *= _DISCOUNTED_MOVE


class _Figure(NamedTuple):
    """A number in the text: where, its value with the unit applied, and what it is of."""

    pos: int
    value: float
    currency: str  # the currency word before it, if any
    kind: str  # "loss", "profit" or "" from the words just before it


def _figure_at(low: list[str], pos: int, floor: int) -> _Figure | None:
    """The number token at ``pos`` read as a figure; None for years and non-numbers."""
    tok = low[pos]
    if not tok[-1].isdigit():
        return None
    value = _number(tok)
    before = low[max(floor, pos - 3) : pos]
    currency = next((word for word in reversed(before) if word in _CURRENCIES), "")
    if value is None or (not currency and tok.isdigit() and 1950 <= value <= 2100):
        return None  # a year, not an amount
    if pos + 1 < len(low):
        value *= _UNITS.get(low[pos + 1], 1.0)
    kind = next((_FIGURE_KINDS[word] for word in before if word in _FIGURE_KINDS), "")
    return _Figure(pos, value, currency, kind)


def _number(tok: str) -> float | None:
    """ "1,250.5" and "13.1" as written in English; a lone comma is a decimal comma."""
    if "," in tok:
        head, _, tail = tok.partition(",")
        tok = (
            tok.replace(",", "")
            if len(tail.split(",")[0].split(".")[0]) == 3
            else (f"{head}.{tail}")
        )
    try:
        return float(tok)
    except ValueError:
        return None


def _first_figure(low: list[str], lo: int, hi: int) -> _Figure | None:
    for pos in range(lo, min(hi, len(low))):
        if low[pos] in _SENTENCE_ENDS:
            return None
        figure = _figure_at(low, pos, lo)
        if figure is not None:
            return figure
    return None


def _last_figure(low: list[str], lo: int, hi: int) -> _Figure | None:
    for pos in range(hi - 1, max(lo, 0) - 1, -1):
        if low[pos] in _SENTENCE_ENDS:
            return None
        figure = _figure_at(low, pos, max(lo, 0))
        if figure is not None:
            return figure
    return None


def _compared_figures(low: list[str], marker: int) -> tuple[_Figure, _Figure] | None:
    """(current, earlier) for "to X from Y", "from Y to X", "X, compared with Y", "X (Y)"."""
    bracket = low[marker] == "("
    earlier = _first_figure(low, marker + 1, marker + (3 if bracket else 8))
    if earlier is None:
        return None
    current: _Figure | None = None
    if bracket:
        # "EUR 9.8 mn (EUR 7.3 mn)": only a short bracket right after a figure is a base.
        if ")" in low[earlier.pos + 1 : earlier.pos + 4]:
            current = _last_figure(low, marker - 8, marker)
    elif low[marker] == "from":
        after = earlier.pos + 1
        to = next((i for i in range(after, min(after + 4, len(low))) if low[i] == "to"), -1)
        if to >= 0:
            current = _first_figure(low, to + 1, to + 8)
        elif marker >= 2 and "to" in low[max(0, marker - 7) : marker]:
            current = _last_figure(low, marker - 7, marker)
    else:
        current = _last_figure(low, marker - 10, marker)
    if current is None or (earlier.currency and current.currency != earlier.currency):
        return None
    return current, earlier


def _change_sign(current: _Figure, earlier: _Figure, metric: str) -> float:
    """+1 for a rise, -1 for a fall; from a loss to a profit is a rise whatever the numbers.

    A figure with no "loss" or "profit" just before it is of the sentence's ``metric``.
    """
    now, then = current.kind or metric, earlier.kind or metric
    if now != then:
        return 1.0 if then == "loss" else -1.0
    if math.isclose(current.value, earlier.value, rel_tol=0.005):
        return 0.0
    return 1.0 if current.value > earlier.value else -1.0


def _figure_cue(low: list[str], marker: int, sentence: int, ctx: _Context) -> _Cue | None:
    """A change reported only through figures, scored by the metric it is of."""
    pair = _compared_figures(low, marker)
    if pair is None:
        return None
    current, earlier = pair
    subjects = [s for s in ctx.subjects.get(sentence, ()) if s.start < marker]
    metric = "loss" if subjects and subjects[-1].polarity < 0 else "profit"
    swung = (current.kind or metric) != (earlier.kind or metric)
    sign = _change_sign(current, earlier, metric)
    if not sign:
        return None
    if not (subjects or swung):
        ctx.unscored.append(sentence)  # "from 80 to 90": a change, but of nothing named
        return None
    polarity = 1.0 if swung else subjects[-1].polarity
    label = subjects[-1].label if subjects else "result"
    weight = sign * polarity * _FIGURE_WEIGHT
    direction = "up" if sign > 0 else "down"
    cue = _Cue(marker, marker + 1, sentence, 0, weight, f"{label} {direction} (figures)", _A)
    cue.target = subjects[-1].sym if subjects else ""
    return cue


def _with_figures(cues: list[_Cue], doc: _Doc, ctx: _Context) -> list[_Cue]:
    """Add changes told by figures ("EUR 7.4 mn, compared with EUR 5.1 mn") in sentences
    with no change word of their own; they replace any "compared with a loss" cue there."""
    low = doc.low
    done: set[int] = set()
    for marker, tok in enumerate(low):
        if tok not in _FIGURE_MARKERS:
            continue
        sentence = doc.sent_of(marker)
        if sentence in done or sentence in ctx.directions:
            continue
        cue = _figure_cue(low, marker, sentence, ctx)
        if cue is not None:
            cue.clause = doc.clause_of(marker)
            done.add(sentence)
            cues = [c for c in cues if not (c.flags == _COMPARE and c.sent == sentence)]
            cues.append(cue)
    return cues


def _layout_cues(doc: _Doc) -> list[_Cue]:
    """ "KO > PEP" prefers the first ticker; a bare "Out." closes the position."""
    low = doc.low
    cues: list[_Cue] = []
    anchors = doc.anchors
    for left, right in itertools.pairwise(anchors):
        if right.pos == left.pos + 2 and low[left.pos + 1] in _PREFERS:
            label = f"{left.sym} {low[left.pos + 1]} {right.sym}"
            for anchor, sign in ((left, 1.0), (right, -1.0)):
                cue = _Cue(left.pos, right.pos + 1, left.sent, left.clause, 0.0, label, _A)
                cue.weight, cue.target = sign * _LAYOUT_WEIGHT, anchor.sym
                cues.append(cue)
    last = len(low) - 1
    for start in (0, *doc.sent_starts):
        if start <= last and low[start] == "out" and (start == last or low[start + 1] in _BREAKS):
            sentence = doc.sent_of(start)
            cue = _Cue(start, start + 1, sentence, doc.clause_of(start), -_LAYOUT_WEIGHT, "out", _A)
            cues.append(cue)
    return cues


def _intensify(hit: _Hit, doc: _Doc, cues: list[_Cue]) -> _Modifier | None:
    """A post-modifier ("rose sharply") boosts the cue it follows; otherwise the next cue."""
    clause = hit.clause
    if hit.entry.post and cues:
        last = cues[-1]
        if last.end == hit.start and last.clause == clause:
            last.weight *= hit.entry.weight
            last.label = f"{last.label} {hit.label}"
            return None
    return _Modifier(hit.end, clause, hit.entry.weight, hit.label)


def _apply_negation(
    cue: _Cue, negator: _Modifier, entry: _Entry, low: list[str]
) -> _Modifier | None:
    """Flip a cue the negator reaches; return the negator if it also covers an "or" after it.

    A negated cue flips but weakens: "not bullish" is doubt, not a short thesis. A negated
    buy ("not adding") mostly means staying put, so it flips even less; a negated sell
    ("never selling") is a holder's conviction and flips almost whole.
    """
    if negator.clause != cue.clause or cue.start - negator.end > _NEGATION_REACH:
        return None
    if entry.rotates:
        # "Not selling a single share": refusing to sell is conviction, close to buying.
        cue.weight *= _SELL_NEGATION_FLIP
    else:
        cue.weight *= _ACTION_NEGATION_FLIP if entry.acquires else negator.factor
    cue.negated = True
    cue.label = f"{negator.label} {cue.label}"
    if cue.end < len(low) and low[cue.end] in _COORDINATORS:
        # "not buying or selling": the negation carries over the coordinated cue.
        return negator._replace(end=cue.end + 1)
    return None


def _apply_booster(cue: _Cue, booster: _Modifier) -> None:
    if booster.clause != cue.clause or cue.start - booster.end > 1:
        return
    cue.weight *= booster.factor
    cue.label = f"{booster.label} {cue.label}"


def _apply_context(cue: _Cue, ctx: _Context) -> None:
    """Sentence-wide effects: contrast, concession, hedging and sarcasm."""
    factor = 1.0
    if cue.sent in ctx.demoted_sents:
        factor *= _DEMOTED
    contrast = ctx.contrast.get(cue.sent)
    if contrast is not None:
        after = cue.clause >= contrast[0]
        factor *= _PROMOTED if after else _DEMOTED
        if after:
            cue.contrasted = True
            cue.notes += (contrast[1],)
    if cue.clause in ctx.conceded:
        factor *= _DEMOTED
    hedge = ctx.hedges.get(cue.sent)
    if hedge is not None:
        cue.asked = hedge == _QUESTION
        factor *= _QUESTION_WEIGHT if cue.asked else _HEDGED_WEIGHT
        cue.hedged = True
        cue.notes += (hedge,)
    if ctx.sarcasm:
        factor *= _sarcastic(cue, ctx.sarcasm)
    cue.weight *= factor


def _sarcastic(cue: _Cue, marker: str) -> float:
    # Sarcasm inverts praise ("love this 20% drop /s"); complaints stay bearish but count less,
    # since the literal reading of a sarcastic text is unreliable.
    cue.sarcastic = True
    cue.notes += (f"sarcasm: {marker}",)
    if cue.weight > 0:
        cue.label = f"{cue.label} (sarcasm)"
        return _SARCASM_FLIP
    return _SARCASM_DAMPEN


def _describe(cue: _Cue) -> str:
    if cue.negated:
        return f"negated: {cue.label}"
    return f"{'+' if cue.weight > 0 else '-'} {cue.label}"


class _Scope(NamedTuple):
    """What the sentences an opinion reads hold besides its cues (see ``Signals``)."""

    hedges: int
    sarcasm: bool
    unscored: int
    scheduled: int


def _whole(ctx: _Context) -> _Scope:
    return _Scope(len(ctx.hedges), bool(ctx.sarcasm), len(ctx.unscored), len(ctx.scheduled))


_HOLD: Final = Verdict.HOLD  # module constants for the same reason as the ``_K_`` ones
_BUY: Final = Verdict.BUY
_SELL: Final = Verdict.SELL

# Texts repeat a few small combinations of counts; a frozen instance is safe to share, and
# building one (through object.__setattr__) costs more than finding it.
_signals: Final = functools.lru_cache(maxsize=4096)(Signals)


@functools.lru_cache(maxsize=1024)
def _silent(scope: _Scope) -> Opinion:
    """The opinion of a text (or ticker) with no cues: it depends on its scope alone."""
    signals = _signals(0, 0, 0, 0, 0, 0, *scope)
    return _verdict(0.0, 0.0, 0.0, False, (), signals=signals)


def _opinion(cues: Sequence[_Cue], scope: _Scope) -> Opinion:
    """Sum the cues (repeats of one cue count less each time) and turn that into an Opinion."""
    if not cues:
        return _silent(scope)
    total = magnitude = hedged = 0.0
    sarcastic = False
    repeats: dict[str, int] = {}
    evidence: dict[str, None] = {}
    bullish = bearish = negated = hedged_cues = asked = contrasted = 0
    for cue in cues:
        seen = repeats.get(cue.label, 0)
        repeats[cue.label] = seen + 1
        weight = cue.weight * 0.5**seen  # "🚀🚀🚀" is enthusiasm, not three reasons
        total += weight
        magnitude += abs(weight)
        bullish += weight > 0
        bearish += weight < 0
        negated += cue.negated
        if cue.hedged:
            hedged += abs(weight)
            hedged_cues += not cue.asked
            asked += cue.asked
        contrasted += cue.contrasted
        sarcastic = sarcastic or cue.sarcastic
        evidence[_describe(cue)] = None
        if cue.notes:
            evidence.update(dict.fromkeys(cue.notes))
    signals = _signals(bullish, bearish, negated, hedged_cues, asked, contrasted, *scope)
    evidence_lines = tuple(evidence)[:_MAX_EVIDENCE]
    return _verdict(total, magnitude, hedged, sarcastic, evidence_lines, signals=signals)


def _verdict(
    total: float,
    magnitude: float,
    hedged: float,
    sarcastic: bool,
    evidence: tuple[str, ...],
    *,
    signals: Signals,
) -> Opinion:
    """Score squashes the sum into (-1, 1); a dead zone around 0 is HOLD.

    Confidence grows with how much evidence there is and how much of it agrees, and shrinks
    with the share of it that was hedged or asked as a question, and with sarcasm.
    """
    if magnitude == 0.0:
        return Opinion(_HOLD, _NO_EVIDENCE_CONFIDENCE, 0.0, evidence, signals)
    score = total / (abs(total) + 1.0)
    agreement = abs(total) / magnitude
    strength = 1.0 - math.exp(-magnitude)
    damping = 1.0 - 0.45 * (hedged / magnitude)
    if sarcastic:
        damping *= 0.85
    if abs(score) < _DEAD_ZONE:
        verdict = _HOLD
        confidence = (0.25 + 0.35 * (1.0 - agreement) * strength) * damping
    else:
        verdict = _BUY if score > 0 else _SELL
        confidence = (0.3 + 0.65 * agreement * strength) * damping
    confidence = round(min(1.0, max(0.0, confidence)), 4)
    return Opinion(verdict, confidence, round(min(1.0, max(-1.0, score)), 4), evidence, signals)


class _Mentions:
    """One sentence's ticker mentions, indexed once for the questions every cue asks: which
    are in its clause, where a ticker is named, which tickers it names at all."""

    __slots__ = ("anchors", "by_clause", "by_symbol", "symbols")

    def __init__(self, anchors: list[_Anchor]) -> None:
        self.anchors = anchors
        self.symbols = {anchor.sym for anchor in anchors}
        self.by_clause: dict[int, tuple[list[int], list[int]]] = {}
        self.by_symbol: dict[str, tuple[list[int], list[int]]] = {}
        for k, anchor in enumerate(anchors):
            _add(self.by_clause.setdefault(anchor.clause, ([], [])), k, anchor.pos)
            _add(self.by_symbol.setdefault(anchor.sym, ([], [])), k, anchor.pos)


def _add(where: tuple[list[int], list[int]], k: int, pos: int) -> None:
    where[0].append(k)
    where[1].append(pos)


def _nearest(cue: _Cue, anchors: list[_Anchor], candidates: list[int], positions: list[int]) -> int:
    """Which of several tickers in a clause a cue is about: attachment mode, then distance.
    ``positions`` are the candidates' token positions, in order."""
    split = bisect_left(positions, cue.start)
    past = bisect_left(positions, cue.end)
    before = candidates[split - 1] if split else -1
    after = candidates[past] if past < len(candidates) else -1
    if before < 0 and after < 0:  # the ticker is a word of the cue itself
        return candidates[0]
    if before < 0 or (cue.mode == _N and after >= 0):
        return after
    if after < 0 or cue.mode == _P:
        return before
    gap_before = cue.start - anchors[before].pos
    gap_after = anchors[after].pos - cue.end + 1
    return before if gap_before <= gap_after else after


def _glued(left: int, right: int, low: list[str]) -> bool:
    """Whether two ticker mentions form a list ("NVDA, AMD and AVGO")."""
    return right - left <= 3 and all(tok in _LIST_GLUE for tok in low[left + 1 : right])


def _listed(k: int, anchors: list[_Anchor], low: list[str]) -> set[str]:
    """The ticker at ``k`` plus any listed together with it (at most _MAX_LISTED each way)."""
    lo = hi = k
    while hi + 1 < len(anchors) and hi - k < _MAX_LISTED:
        if not _glued(anchors[hi].pos, anchors[hi + 1].pos, low):
            break
        hi += 1
    while lo > 0 and k - lo < _MAX_LISTED and _glued(anchors[lo - 1].pos, anchors[lo].pos, low):
        lo -= 1
    return {anchor.sym for anchor in anchors[lo : hi + 1]}


def _has_object(cue: _Cue, low: list[str]) -> bool:
    """A verb-like cue followed by a word: its object is something other than a ticker."""
    return cue.end < len(low) and low[cue.end] not in _CLAUSE_SPLITS


def _targets(cue: _Cue, doc: _Doc, sentences: dict[int, _Mentions]) -> set[str] | None:
    """Tickers a cue belongs to; None means every ticker (its sentence names none)."""
    mentions = sentences.get(cue.sent)
    if mentions is None:
        return None
    anchors = mentions.anchors
    if cue.target:  # its subject is a ticker: that one, and those listed with it
        named = mentions.by_symbol.get(cue.target)
        if named is None:
            return {cue.target}
        indices, positions = named
        split = bisect_left(positions, cue.start)
        return _listed(indices[split - 1] if split else indices[0], anchors, doc.low)
    in_clause = mentions.by_clause.get(cue.clause)
    if in_clause is None:
        # "Sold Exxon, bought NEE": "sold" has an object, and it is not NEE.
        if cue.mode == _N and _has_object(cue, doc.low):
            return set()
        return mentions.symbols
    indices, positions = in_clause
    k = indices[0] if len(indices) == 1 else _nearest(cue, anchors, indices, positions)
    return _listed(k, anchors, doc.low)


class Lexicon:
    """Finance-aware lexicon and rule engine.

    Beside each opinion it counts ``Signals``: the cues by kind, whether the text is sarcastic,
    its hedges and questions, dates and upcoming events, and its coverage gaps — market terms it
    recognised but could not score: a change word with nothing it changes ("fees rose"), an
    event verb without its object ("signed on Monday"), a change told by figures of nothing
    named ("from 80 to 95"), option shorthand left a number ("150c").
    """

    def __init__(self, aliases: Iterable[Alias] | None = None) -> None:
        self._trie = _build_trie()
        self._lexical = frozenset(self._trie)
        book_aliases = load_symbol_book().aliases.values() if aliases is None else aliases
        self._names = _name_index(book_aliases)

    def _names_of(self, symbols: Collection[str]) -> _Names | None:
        """The company names of these tickers, by first word (None: they have none)."""
        names: _Names = {}
        for symbol in symbols:
            for first, entry in self._names.get(symbol, ()):
                names.setdefault(first, []).append(entry)
        return names or None

    def _analyse(
        self, text: str, symbols: Collection[str], names: _Names | None = None
    ) -> tuple[_Doc, _Context, list[_Cue]]:
        doc = _tokenize(text, symbols, self._lexical, names)
        if doc.triggers:
            spans = injected_spans(doc.low, doc.triggers, doc.sent_starts, doc.clause_starts)
            _silence(doc.low, spans)
        hits = _match(doc, self._trie)
        ctx = _context(doc, hits)
        return doc, ctx, _cues(doc, hits, ctx)

    def judge(self, text: str) -> Opinion:
        """The whole text's opinion: verdict, confidence, signed score, the cues behind it and
        the ``Signals`` that say how settled it is."""
        _, ctx, cues = self._analyse(text, ())
        return _opinion(cues, _whole(ctx))

    def judge_for(self, text: str, tickers: Sequence[str]) -> dict[str, Opinion]:
        """One opinion per ticker, attributing each cue to the tickers its sentence is about.

        A ticker the text never names (it was found through a company name) gets the
        whole-text opinion.
        """
        symbols = frozenset(tickers)
        if not symbols:
            return {}
        doc, ctx, cues = self._analyse(text, symbols, self._names_of(symbols))
        by_sentence: dict[int, list[_Anchor]] = {}
        for anchor in doc.anchors:
            by_sentence.setdefault(anchor.sent, []).append(anchor)
        sentences = {sent: _Mentions(anchors) for sent, anchors in by_sentence.items()}
        present = {anchor.sym for anchor in doc.anchors if anchor.sym in symbols}
        buckets: dict[str, list[_Cue]] = {sym: [] for sym in present}
        for cue in cues:
            targets = _targets(cue, doc, sentences)
            for sym in present if targets is None else targets & present:
                buckets[sym].append(cue)
        whole: Opinion | None = None
        result: dict[str, Opinion] = {}
        for ticker in tickers:
            if ticker in buckets:
                scope = _scope(ticker, buckets[ticker], ctx, by_sentence)
                result[ticker] = _opinion(buckets[ticker], scope)
            else:
                whole = whole or _opinion(cues, _whole(ctx))
                result[ticker] = whole
        return result


def _name_index(
    aliases: Iterable[Alias],
) -> dict[str, list[tuple[str, tuple[tuple[str, ...], bool, str]]]]:
    """Per symbol, its names as lexicon words keyed by their first word (a one-word name also
    in the possessive, "Tesla's")."""
    index: dict[str, list[tuple[str, tuple[tuple[str, ...], bool, str]]]] = {}
    for alias in aliases:
        words = tuple(_TOKEN_RE.findall(alias.name))
        if not words:
            continue
        entry = (words, alias.mode != "any", alias.symbol)
        keys = [words[0], f"{words[0]}'s"] if len(words) == 1 else [words[0]]
        index.setdefault(alias.symbol, []).extend((key, entry) for key in keys)
    return index


def _scope(
    ticker: str, cues: Sequence[_Cue], ctx: _Context, by_sentence: dict[int, list[_Anchor]]
) -> _Scope:
    """What a ticker's sentences hold: those naming it, naming no ticker, or holding its cues."""
    cue_sents = {cue.sent for cue in cues}
    others = {
        sentence
        for sentence, anchors in by_sentence.items()
        if sentence not in cue_sents and all(anchor.sym != ticker for anchor in anchors)
    }

    def count(sentences: Iterable[int]) -> int:
        return sum(sentence not in others for sentence in sentences)

    return _Scope(count(ctx.hedges), bool(ctx.sarcasm), count(ctx.unscored), count(ctx.scheduled))
