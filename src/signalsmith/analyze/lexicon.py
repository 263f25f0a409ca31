"""The offline finance lexicon and rule engine: phrase tables, tokenizer, cue scoring, attribution.

It turns one text into an ``Opinion`` (or one per ticker) without any network or model files.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_right
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Final, NamedTuple

from signalsmith.domain import Opinion, Verdict

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
    ("taking|took|take|locking|locked in? profits|profit|gains", -0.4, _A),
    ("profit taking", -0.4, _A),
    ("trimmed|trimming|trim", -0.5, _N),
    ("pump and dump", -0.9, _A),
    ("dump", -0.6, _A),
    ("exited|exiting", -0.6, _N),
    ("closed my position", -0.5, _A),
    ("cut my|our losses", -0.7, _A),
    ("got|i'm|im out", -0.5, _A),
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
    ("stonks", 0.2, _A),
    ("lfg", 0.5, _A),
    ("let's|lets go", 0.4, _A),
    ("ripping", 0.6, _P),
    ("wrecked|rekt|destroyed|obliterated|decimated", -0.6, _P),
    ("bleeding|bleed|bled", -0.6, _P),
    ("bloodbath|massacre", -0.7, _A),
    ("sea of red", -0.6, _A),
    ("down bad", -0.6, _P),
    ("lost everything", -0.8, _A),
    ("loss porn", -0.6, _A),
    ("red", -0.3, _A),
    ("green", 0.3, _A),
    ("in|into the red", -0.5, _A),
    ("in the black", 0.5, _A),
    ("back in|into the black", 0.7, _A),
    ("sell off|offs", -0.6, _A),
    ("selloff|selloffs", -0.6, _A),
    ("falling knife", -0.7, _A),
    ("value trap", -0.7, _A),
    ("bubble", -0.5, _A),
    ("correction", -0.3, _A),
    ("capitulation", -0.4, _A),
    ("recession", -0.4, _A),
    ("crisis", -0.5, _A),
    ("dip", -0.2, _A),
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
    ("fomo", 0.2, _A),
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
    ("risk|risks", -0.2, _A),
)

# Evaluative words and news events: they carry their sign whatever the subject (weight, mode).
_NEWS: Final[tuple[tuple[str, float, str], ...]] = (
    (
        "beat|beats|beating|topped|tops|exceeded|exceeds|surpassed|surpasses|crushed|smashed "
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
    ("exceeded|exceeds|surpassed|topped", 0.5, _P),
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
    ("laid|lay|laying|lays off", -0.7, _A),
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
    ("default|defaulted|defaults", -0.7, _A),
    ("dilution|dilutive|diluted|diluting|dilutes", -0.5, _A),
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
    ("approval|approved|approves|clearance", 0.5, _A),
    ("fda approval", 0.8, _A),
    ("rejected|rejection|rejects", -0.6, _A),
    ("complete response letter", -0.6, _A),
    ("delay|delayed|delays|postponed|postpones", -0.4, _A),
    ("halted|halts|halt", -0.5, _A),
    ("wins|won|awarded|secures|secured|lands|landed a|the? contract|deal|order", 0.6, _A),
    ("contract win|wins", 0.6, _A),
    ("partnership", 0.4, _A),
    ("partners|partnered with", 0.4, _A),
    ("teams|teamed up with", 0.4, _A),
    ("to be acquired", 0.6, _A),
    ("buyout|takeover", 0.5, _A),
    ("profitable", 0.6, _A),
    ("unprofitable", -0.5, _A),
    ("turned|turns profitable", 0.9, _A),
    ("swung|swings|swing|turned|turns to a? profit", 1.0, _A),
    ("swung|swings|swing|turned|turns to a? net|operating|pretax profit", 1.0, _A),
    ("swung|swings|swing|turned|turns to a? loss", -1.0, _A),
    ("swung|swings|swing|turned|turns to a? net|operating|pretax loss", -1.0, _A),
    ("returned|returns|return to profit|profitability|growth", 0.9, _A),
    ("compared with|to a? loss", 0.5, _A),
    ("compared with|to a? net|operating loss", 0.5, _A),
    ("compared with|to a? profit", -0.4, _A),
    ("compared with|to a? net|operating profit", -0.4, _A),
    ("improved|improving|improvement|improvements|improves", 0.4, _A),
    ("worsened|worsening|deteriorated|deteriorating|deterioration", -0.5, _A),
    ("disappointed|disappoints|disappoint|letdown", -0.6, _A),
    ("love|loving", 0.15, _A),
    ("hate", -0.2, _A),
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

# Adjectives that also colour a financial noun right after them ("weak demand", "strong sales").
_ADJECTIVES: Final[tuple[tuple[str, float], ...]] = (
    ("great|good|nice", 0.2),
    ("solid|healthy", 0.35),
    ("strong|stronger|robust", 0.4),
    ("excellent|amazing|incredible|monster", 0.4),
    ("impressive|phenomenal|upbeat", 0.5),
    ("stellar", 0.6),
    ("blowout", 0.7),
    ("weak|weaker|sluggish|poor|lackluster", -0.4),
    ("soft|softer|tepid|cautious", -0.3),
    ("bad", -0.3),
    ("muted", -0.2),
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
    ("paid off", 0.4),
    ("cashing|cashed in", 0.3),
    ("up big", 0.5),
)

# Financial nouns: polarity says whether more of it is good (+) or bad (-) for the holder.
_SUBJECTS: Final[tuple[tuple[str, float], ...]] = (
    ("profit|profits|earnings|eps|income|ebitda|ebit|revenue|revenues|sales|turnover", 1.0),
    ("topline", 1.0),
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
    ("up|higher|widened|widen|widens|widening|swelled|ballooned|mounting|mounted", 1.0, 0.0),
    ("raised|raises|raise|raising|lifted|lifts|lifting|hiked|hikes|hike", 1.0, 0.0),
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
    ("weakened|weakening|lost|loses|lose|losing|stalled|stalls|stalling", -1.0, -0.3),
    ("growth slowed|slowing|slows|stalled|decelerated", -1.0, -0.4),
    ("slowing|slower growth", -1.0, -0.4),
    ("slid|slide|slides|sliding", -1.0, -0.4),
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
    "couldn't|shouldn't|wouldn't|haven't|hasn't|hadn't",
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
    ("any day now", 0.0),
    ("who could have predicted|guessed", 0.0),
    ("who could have seen this coming", 0.0),
    ("🙄", 0.0),
    ("nothing says", 0.0),
    ("🤡", -0.3),
    ("love|loving being a? bagholder|bagholders", -0.8),
    ("love|loving holding the? bag|bags", -0.8),
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
    "miss|missing out",
    "earnings|conference|video|phone|zoom|sales|cold call|calls",
    "buy and hold",
    "added|adding that",
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
    "breakeven",
)

_CLAUSE_WORDS: Final = frozenset(
    {"but", "however", "although", "though", "while", "whereas", "despite", "meanwhile"}
)
# 1 ends a sentence, 0 only a clause.
_BREAKS: Final[dict[str, int]] = {".": 1, "!": 1, "?": 1, ";": 1, "\n": 1, ",": 0, ":": 0}
_LIST_GLUE: Final = frozenset({",", "and", "or", "/", "+", "both"})
_COORDINATORS: Final = frozenset({"or", "nor"})
_SENTENCE_ENDS: Final = frozenset(key for key, ends in _BREAKS.items() if ends)
_CLAUSE_SPLITS: Final = frozenset(_BREAKS) | _CLAUSE_WORDS
_PERCENT: Final = frozenset({"%", "percent", "pct"})
# Symbols that are also English words in capitals ("A great quarter"): cashtags only.
_BARE_AMBIGUOUS: Final = frozenset({"A", "I"})
_ANCHOR: Final = "\x00"  # ticker tokens become this so a ticker named LOW or ALL never scores

# All-caps words that are not tickers; without this "CEO" or "EPS" would anchor cues.
_NOT_TICKER_WORDS: Final = (
    "AI CEO CFO CTO COO EPS IPO ETF ETFS SEC FDA FED FOMC CPI PPI GDP USD EUR GBP JPY CNY US",
    "USA UK EU EV EVS DD IMO IMHO TLDR TL DR LOL LMAO OMG WTF FYI YOLO FOMO ATH ATM OTM ITM",
    "IV PE PT EOD EOW EOY AH PM AM OK IRA ROI YOY QOQ HODL LFG NFA WSB GPU GPUS CPU AR VR API",
    "EBIT FY EST ET PST NYSE OTC SPAC IT MN BN MLN INC LLC CO PLC OYJ AB AG SA NV ASA ABP",
    "CEOS THE AND OR TO IN ON IS MY ME WE BE SO NO GO UP DO IF AT BY OF AS AN HE IM RN TBH",
    "IRL SMH IDK JUST THIS THAT WITH ALL BIG NEW NOW OUT FOR YES ARE WAS BUT NOT HAS HAD NII",
    "EMEA APAC LLM LLMS DOJ FTC EPA NHTSA FAA ESG OPEC NASDAQ DOW SPX",
)
_NOT_TICKERS: Final = frozenset(" ".join(_NOT_TICKER_WORDS).split())

# Scoring constants: why they have these values is in the docstrings that use them.
_NEGATION_FLIP: Final = -0.5
_ACTION_NEGATION_FLIP: Final = -0.3
_NEGATION_REACH: Final = 3
_SARCASM_FLIP: Final = -0.5
_SARCASM_DAMPEN: Final = 0.7
_HEDGED_WEIGHT: Final = 0.8
_DEMOTED: Final = 0.6
_PROMOTED: Final = 1.3
_DEAD_ZONE: Final = 0.2
_NO_EVIDENCE_CONFIDENCE: Final = 0.1
_MAX_EVIDENCE: Final = 12
_SUBJECT_BACK: Final = 5
_SUBJECT_AHEAD: Final = 4
_PERCENT_MOVE: Final = 0.5
_PERCENT_REACH: Final = 3

# Alternatives are ordered by how often they match, since each position tries them in turn;
# spaces are consumed inside the match (outside the group) rather than failed on one by one.
_TOKEN_RE: Final = re.compile(
    r"[ \t\r]*("
    r"[A-Za-z][A-Za-z0-9_]*(?:'[A-Za-z]+)*"  # ASCII words, the common case
    r"|[^\W\d_]\w*(?:'[^\W\d_]+)*"
    r"|[.!?;,:\n%]"
    r"|\d+(?:[.,]\d+)*"
    r"|\$[A-Za-z]{1,6}(?:\.[A-Za-z]{1,2})?"  # cashtag, BRK.B included
    r"|/[sS](?![\w/])(?<![\w/]/[sS])"  # the /s sarcasm tag, not part of a path or URL
    r"|[\U0001F300-\U0001FAFF\u2600-\u27BF]"
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


_STRUCTURAL_KINDS: Final = frozenset(
    {_Kind.SUBJ, _Kind.HEDGE, _Kind.SARC, _Kind.CONTRAST, _Kind.CONCEDE, _Kind.ROT_VERB}
)


_SILENT_KINDS: Final = frozenset(
    {_Kind.SUBJ, _Kind.HEDGE, _Kind.CONTRAST, _Kind.CONCEDE, _Kind.ROT_VERB, _Kind.BLOCK}
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
    noted: bool = field(init=False)  # whether the context needs to hear about this hit
    plain: bool = field(init=False)  # a cue whose weight needs no context at all
    silent: bool = field(init=False)  # never scores by itself (subjects, hedges, blockers...)

    def __post_init__(self) -> None:
        noted = self.kind in _STRUCTURAL_KINDS or self.rotates or self.bear or self.put
        object.__setattr__(self, "noted", noted)
        plain = self.kind is _Kind.CUE and not (self.adjective or self.acquires)
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


class _Anchor(NamedTuple):
    """A ticker mention: token position, symbol, and its sentence and clause numbers."""

    pos: int
    sym: str
    sent: int
    clause: int


class _Subject(NamedTuple):
    start: int
    end: int
    polarity: float
    label: str
    sent: int


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
    negated: bool = False
    hedged: bool = False
    sarcastic: bool = False
    notes: tuple[str, ...] = ()


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

    def sent_of(self, pos: int) -> int:
        return bisect_right(self.sent_starts, pos)

    def clause_of(self, pos: int) -> int:
        return bisect_right(self.clause_starts, pos)


@dataclass(slots=True)
class _Context:
    """Sentence-level facts gathered from the hits before any cue is scored."""

    subjects: dict[int, list[_Subject]] = field(default_factory=dict)  # by sentence
    rotating: set[int] = field(default_factory=set)
    bear: set[int] = field(default_factory=set)
    put_clauses: set[int] = field(default_factory=set)
    hedges: dict[int, str] = field(default_factory=dict)
    contrast: dict[int, tuple[int, str]] = field(default_factory=dict)
    demoted_sents: set[int] = field(default_factory=set)
    conceded: set[int] = field(default_factory=set)
    sarcasm: str = ""

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
    if base in _BARE_AMBIGUOUS:
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


def _tokenize(text: str, symbols: Collection[str], lexical: Collection[str]) -> _Doc:
    """One regex pass, then list comprehensions: per-token Python loops are the cost here."""
    if "’" in text:
        text = text.replace("’", "'")
    toks = _TOKEN_RE.findall(text)
    low = [tok.lower() for tok in toks]
    splits = [i for i, lo in enumerate(low) if lo in _CLAUSE_SPLITS]
    doc = _Doc(
        low,
        # A break ends its sentence/clause after itself; "but", "while" start a new clause.
        [i + 1 for i in splits if low[i] in _SENTENCE_ENDS],
        [i + 1 if low[i] in _BREAKS else i for i in splits],
    )
    if "?" in text:
        doc.questions = {doc.sent_of(i) for i in splits if low[i] == "?"}
    # Only tokens with capitals can be tickers; comparing with the lower-cased twin is cheap.
    changed = [i for i, (tok, lo) in enumerate(zip(toks, low, strict=True)) if tok != lo]
    candidates = [i for i in changed if toks[i][:2].isupper() or toks[i][0] == "$"]
    if "$" in text:  # lower-case cashtags ("$tsla") have no capitals to find them by
        candidates = sorted({*candidates, *(i for i, tok in enumerate(toks) if tok[0] == "$")})
    if candidates:
        _find_anchors(doc, toks, candidates, symbols, lexical)
    return doc


def _find_anchors(
    doc: _Doc,
    toks: list[str],
    candidates: list[int],
    symbols: Collection[str],
    lexical: Collection[str],
) -> None:
    """Mark ticker mentions; requested ones and cashtags stop being words to the lexicon."""
    low = doc.low
    found: list[tuple[int, str]] = []
    caps: list[tuple[int, str]] = []
    for i in candidates:
        tok, lo = toks[i], low[i]
        sym = _symbol(tok, lo, symbols)
        if sym is not None:
            found.append((i, sym))
            low[i] = _ANCHOR
        elif _looks_like_ticker(tok, lo, lexical):
            caps.append((i, tok[:-2] if lo.endswith("'s") else tok))
    # A shouted post ("THIS IS GOING UP") is all caps; its words are not tickers.
    if caps and len(caps) * 3 <= len(low):
        found = sorted(found + caps)
    doc.anchors = [_Anchor(i, sym, doc.sent_of(i), doc.clause_of(i)) for i, sym in found]


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
            hits.append(_Hit(i, taken, phrase.entry, phrase.label, sent, clause))
    return hits


def _context(doc: _Doc, hits: list[_Hit]) -> _Context:
    """Collect subjects, hedges, contrasts, rotation and sarcasm before scoring cues."""
    ctx = _Context()
    for anchor in doc.anchors:
        # A ticker is a price subject: "NVDA fell 5%" is a fall in something good to hold.
        subject = _Subject(anchor.pos, anchor.pos + 1, 0.7, anchor.sym, anchor.sent)
        ctx.subjects.setdefault(anchor.sent, []).append(subject)
    for sentence in doc.questions:
        ctx.hedges[sentence] = "question"
    for hit in hits:
        if hit.entry.noted:
            _note_structure(hit, doc, ctx)
    return ctx


def _note_structure(hit: _Hit, doc: _Doc, ctx: _Context) -> None:
    entry, sentence = hit.entry, hit.sent
    kind = entry.kind
    if kind is _Kind.SUBJ:
        subject = _Subject(hit.start, hit.end, entry.weight, hit.label, sentence)
        ctx.subjects.setdefault(sentence, []).append(subject)
    elif kind is _Kind.HEDGE:
        ctx.hedges.setdefault(sentence, f"hedge: {hit.label}")
    elif kind is _Kind.SARC and not ctx.sarcasm:
        # A sarcastic poster rarely turns sincere halfway, so the marker covers the whole text.
        ctx.sarcasm = hit.label
    elif kind is _Kind.CONTRAST:
        _note_contrast(hit, doc, ctx, sentence)
    elif kind is _Kind.CONCEDE:
        ctx.conceded.add(doc.clause_of(hit.end - 1))
    if entry.rotates or kind is _Kind.ROT_VERB:
        ctx.rotating.add(sentence)
    if entry.bear:
        ctx.bear.add(sentence)
    if entry.put:
        ctx.put_clauses.add(hit.clause)


def _note_contrast(hit: _Hit, doc: _Doc, ctx: _Context, sentence: int) -> None:
    # "However," opening a sentence demotes the previous sentence; mid-sentence "but" demotes
    # the clauses before it and promotes the ones after it.
    opens = hit.start == 0 or doc.low[hit.start - 1] in _SENTENCE_ENDS
    if opens and sentence > 0:
        ctx.demoted_sents.add(sentence - 1)
    ctx.contrast.setdefault(sentence, (hit.clause, f"contrast: {hit.label}"))


def _subject_for(hit: _Hit, sentence: int, ctx: _Context) -> _Subject | None:
    """The financial noun a change word is about: nearest within reach, earlier wins ties."""
    best: _Subject | None = None
    best_distance = math.inf
    ahead = hit.entry.ahead + 0.5
    for subject in ctx.subjects.get(sentence, ()):
        if subject.end <= hit.start:
            distance = float(hit.start - subject.end)
            if distance > _SUBJECT_BACK:
                continue
        elif subject.start >= hit.end:
            distance = subject.start - hit.end + 0.5
            if distance > ahead:
                continue
        else:
            continue
        if distance < best_distance:
            best, best_distance = subject, distance
    return best


def _score_direction(hit: _Hit, doc: _Doc, ctx: _Context) -> tuple[float, str] | None:
    """Change word x subject polarity: "loss widened" is bad, "costs fell" is good."""
    sentence = hit.sent
    subject = _subject_for(hit, sentence, ctx)
    sign = hit.entry.weight
    if subject is not None:
        if subject.start < hit.start:
            label = f"{subject.label} {hit.label}"
        else:
            label = f"{hit.label} {subject.label}"
        return sign * subject.polarity, label
    window = doc.low[max(0, hit.start - _PERCENT_REACH) : hit.end + _PERCENT_REACH]
    if not _PERCENT.isdisjoint(window):
        # "down 20%" with no noun is nearly always the share price moving.
        return sign * _PERCENT_MOVE, f"{hit.label} %"
    if hit.entry.alone:
        return hit.entry.alone, hit.label
    return None


def _score_adjective(hit: _Hit, doc: _Doc, ctx: _Context) -> tuple[float, str]:
    """An evaluative adjective doubles when it directly qualifies a financial noun."""
    weight = hit.entry.weight
    for subject in ctx.subjects.get(hit.sent, ()):
        if 0 <= subject.start - hit.end <= 1:
            sign = 1.0 if subject.polarity > 0 else -1.0
            return weight * 2.0 * sign, f"{hit.label} {subject.label}"
    return weight, hit.label


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
                cues.append(_Cue(start, anchor.pos, anchor.sent, anchor.clause, weight, label, _N))
                break
    return cues


def _link_start(low: list[str], pos: int, link: tuple[str, ...]) -> int:
    """Where ``link`` starts if it ends right before ``pos`` or one word earlier; else -1."""
    size = len(link)
    for end in (pos, pos - 1):
        start = end - size
        if start >= 0 and tuple(low[start:end]) == link:
            return start
    return -1


def _score_cue(hit: _Hit, doc: _Doc, ctx: _Context) -> tuple[float, str]:
    entry = hit.entry
    if entry.adjective:
        return _score_adjective(hit, doc, ctx)
    if entry.acquires and hit.clause in ctx.put_clauses:
        # "loaded up on SPY puts": buying puts is a bet on a fall.
        return -abs(entry.weight), f"{hit.label} (puts)"
    return entry.weight, hit.label


def _score_hit(hit: _Hit, doc: _Doc, ctx: _Context) -> tuple[float, str] | None:
    """A hit's base weight and label, or None when it is not a scoring cue here."""
    entry = hit.entry
    kind = entry.kind
    if kind is _Kind.CUE:
        return _score_cue(hit, doc, ctx)
    if kind is _Kind.DIR:
        return _score_direction(hit, doc, ctx)
    if kind is _Kind.PNL:
        sentence = hit.sent
        # Puts or a short nearby mean the poster profits from a fall.
        bearish = sentence in ctx.bear or sentence - 1 in ctx.bear
        return (-entry.weight if bearish else entry.weight), hit.label
    if kind is _Kind.SARC and entry.weight:
        return entry.weight, hit.label
    return None


class _Modifier(NamedTuple):
    end: int
    clause: int
    factor: float
    label: str


def _cues(doc: _Doc, hits: list[_Hit], ctx: _Context) -> list[_Cue]:
    """Score every cue and apply the modifiers that precede or follow it in its clause."""
    cues: list[_Cue] = []
    negator: _Modifier | None = None
    booster: _Modifier | None = None
    for hit in hits:
        entry = hit.entry
        if entry.silent:
            continue
        kind = entry.kind
        if kind is _Kind.NEG:
            negator = _Modifier(hit.end, hit.clause, _NEGATION_FLIP, hit.label)
            continue
        if kind is _Kind.INTENS:
            booster = _intensify(hit, doc, cues)
            continue
        scored = (entry.weight, hit.label) if entry.plain else _score_hit(hit, doc, ctx)
        if scored is None:
            continue
        cue = _Cue(hit.start, hit.end, hit.sent, hit.clause, *scored, entry.mode)
        if negator is not None:
            negator = _apply_negation(cue, negator, entry, doc.low)
        if booster is not None:
            _apply_booster(cue, booster)
            booster = None
        cues.append(cue)
    return _finish(cues, doc, ctx)


def _finish(cues: list[_Cue], doc: _Doc, ctx: _Context) -> list[_Cue]:
    """Add rotation cues, then the sentence-wide effects every cue is subject to."""
    if ctx.rotating and doc.anchors:
        cues.extend(_rotation_cues(doc, ctx))
    if ctx.colours_cues():
        for cue in cues:
            _apply_context(cue, ctx)
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
    trade ("not adding", "never selling") mostly means staying put, so it flips even less.
    """
    if negator.clause != cue.clause or cue.start - negator.end > _NEGATION_REACH:
        return None
    action = entry.acquires or entry.rotates
    cue.weight *= _ACTION_NEGATION_FLIP if action else negator.factor
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
            cue.notes += (contrast[1],)
    if cue.clause in ctx.conceded:
        factor *= _DEMOTED
    hedge = ctx.hedges.get(cue.sent)
    if hedge is not None:
        factor *= _HEDGED_WEIGHT
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


def _opinion(cues: Iterable[_Cue]) -> Opinion:
    """Sum the cues (repeats of one cue count less each time) and turn that into an Opinion."""
    total = magnitude = hedged = 0.0
    sarcastic = False
    repeats: dict[str, int] = {}
    evidence: dict[str, None] = {}
    for cue in cues:
        seen = repeats.get(cue.label, 0)
        repeats[cue.label] = seen + 1
        weight = cue.weight * 0.5**seen  # "🚀🚀🚀" is enthusiasm, not three reasons
        total += weight
        magnitude += abs(weight)
        if cue.hedged:
            hedged += abs(weight)
        sarcastic = sarcastic or cue.sarcastic
        evidence[_describe(cue)] = None
        if cue.notes:
            evidence.update(dict.fromkeys(cue.notes))
    return _verdict(total, magnitude, hedged, sarcastic, tuple(evidence)[:_MAX_EVIDENCE])


def _verdict(
    total: float, magnitude: float, hedged: float, sarcastic: bool, evidence: tuple[str, ...]
) -> Opinion:
    """Score squashes the sum into (-1, 1); a dead zone around 0 is HOLD.

    Confidence grows with how much evidence there is and how much of it agrees, and shrinks
    with the share of it that was hedged or asked as a question, and with sarcasm.
    """
    if magnitude == 0.0:
        return Opinion(Verdict.HOLD, _NO_EVIDENCE_CONFIDENCE, 0.0, evidence)
    score = total / (abs(total) + 1.0)
    agreement = abs(total) / magnitude
    strength = 1.0 - math.exp(-magnitude)
    damping = 1.0 - 0.45 * (hedged / magnitude)
    if sarcastic:
        damping *= 0.85
    if abs(score) < _DEAD_ZONE:
        verdict = Verdict.HOLD
        confidence = (0.25 + 0.35 * (1.0 - agreement) * strength) * damping
    else:
        verdict = Verdict.BUY if score > 0 else Verdict.SELL
        confidence = (0.3 + 0.65 * agreement * strength) * damping
    return Opinion(
        verdict=verdict,
        confidence=round(min(1.0, max(0.0, confidence)), 4),
        score=round(min(1.0, max(-1.0, score)), 4),
        evidence=evidence,
    )


def _nearest(cue: _Cue, anchors: list[_Anchor], candidates: list[int]) -> int:
    """Which of several tickers in a clause a cue is about: attachment mode, then distance."""
    before = [k for k in candidates if anchors[k].pos < cue.start]
    after = [k for k in candidates if anchors[k].pos >= cue.end]
    if not before or (cue.mode == _N and after):
        return after[0]
    if not after or cue.mode == _P:
        return before[-1]
    gap_before = cue.start - anchors[before[-1]].pos
    gap_after = anchors[after[0]].pos - cue.end + 1
    return before[-1] if gap_before <= gap_after else after[0]


def _glued(left: int, right: int, low: list[str]) -> bool:
    """Whether two ticker mentions form a list ("NVDA, AMD and AVGO")."""
    return right - left <= 3 and all(tok in _LIST_GLUE for tok in low[left + 1 : right])


def _listed(k: int, anchors: list[_Anchor], low: list[str]) -> set[str]:
    """The ticker at ``k`` plus any listed together with it."""
    lo = hi = k
    while hi + 1 < len(anchors) and _glued(anchors[hi].pos, anchors[hi + 1].pos, low):
        hi += 1
    while lo > 0 and _glued(anchors[lo - 1].pos, anchors[lo].pos, low):
        lo -= 1
    return {anchor.sym for anchor in anchors[lo : hi + 1]}


def _has_object(cue: _Cue, low: list[str]) -> bool:
    """A verb-like cue followed by a word: its object is something other than a ticker."""
    return cue.end < len(low) and low[cue.end] not in _CLAUSE_SPLITS


def _targets(cue: _Cue, doc: _Doc, by_sentence: dict[int, list[_Anchor]]) -> set[str] | None:
    """Tickers a cue belongs to; None means every ticker (its sentence names none)."""
    anchors = by_sentence.get(cue.sent)
    if not anchors:
        return None
    in_clause = [k for k, anchor in enumerate(anchors) if anchor.clause == cue.clause]
    if not in_clause:
        # "Sold Exxon, bought NEE": "sold" has an object, and it is not NEE.
        if cue.mode == _N and _has_object(cue, doc.low):
            return set()
        return {anchor.sym for anchor in anchors}
    k = in_clause[0] if len(in_clause) == 1 else _nearest(cue, anchors, in_clause)
    return _listed(k, anchors, doc.low)


class Lexicon:
    """Finance-aware lexicon and rule engine."""

    def __init__(self) -> None:
        self._trie = _build_trie()
        self._lexical = frozenset(self._trie)

    def _analyse(self, text: str, symbols: Collection[str]) -> tuple[_Doc, list[_Cue]]:
        doc = _tokenize(text, symbols, self._lexical)
        hits = _match(doc, self._trie)
        return doc, _cues(doc, hits, _context(doc, hits))

    def judge(self, text: str) -> Opinion:
        """The whole text's opinion: verdict, confidence, signed score and the cues behind it."""
        _, cues = self._analyse(text, ())
        return _opinion(cues)

    def judge_for(self, text: str, tickers: Sequence[str]) -> dict[str, Opinion]:
        """One opinion per ticker, attributing each cue to the tickers its sentence is about.

        A ticker the text never names (it was found through a company name) gets the
        whole-text opinion.
        """
        symbols = frozenset(tickers)
        if not symbols:
            return {}
        doc, cues = self._analyse(text, symbols)
        by_sentence: dict[int, list[_Anchor]] = {}
        for anchor in doc.anchors:
            by_sentence.setdefault(anchor.sent, []).append(anchor)
        present = {anchor.sym for anchor in doc.anchors if anchor.sym in symbols}
        buckets: dict[str, list[_Cue]] = {sym: [] for sym in present}
        for cue in cues:
            targets = _targets(cue, doc, by_sentence)
            for sym in present if targets is None else targets & present:
                buckets[sym].append(cue)
        whole: Opinion | None = None
        result: dict[str, Opinion] = {}
        for ticker in tickers:
            if ticker in buckets:
                result[ticker] = _opinion(buckets[ticker])
            else:
                whole = whole or _opinion(cues)
                result[ticker] = whole
        return result
