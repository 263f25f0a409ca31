"""The lexicon's data: the phrase tables with their weights and attachment modes, the word
sets the rules read, and the scoring constants. Pure data: nothing here reads a text."""

from __future__ import annotations

from typing import Final

# --------------------------------------------------------------------------------------------
# Phrase tables. A spec is space-separated slots; "a|b" offers alternatives and a trailing "?"
# makes a slot optional, so one line covers the inflections a post or headline actually uses.
# Attachment mode says where the ticker usually sits relative to the cue: "n" the next one
# ("long NVDA"), "p" the previous one, "a" whichever is nearest.
# --------------------------------------------------------------------------------------------

N: Final = "n"
P: Final = "p"
A: Final = "a"

# What the poster is doing or feeling about a stock (weight, attachment mode).
LINGO: Final[tuple[tuple[str, float, str], ...]] = (
    ("buy|buying|bought the|this|that dip|dips", 0.9, A),
    ("btfd|btd", 0.8, A),
    ("sold|selling puts", 0.4, N),
    ("sold|selling calls", -0.3, N),
    ("averaging|averaged down", 0.4, N),
    ("doubling|doubled down", 0.6, N),
    ("stopped|stop out", -0.5, A),
    ("took|take|taking my|a|the loss|losses", -0.6, A),
    ("mess|joke", -0.4, A),
    ("taking|took|take|locking|locked in? profits|profit|gains", -0.4, A),
    ("profit taking", -0.4, A),
    ("trimmed|trimming|trim", -0.5, N),
    ("pump and dump", -0.9, A),
    ("dump", -0.6, A),
    ("exited|exiting", -0.6, N),
    ("closed my position", -0.5, A),
    ("cut|cutting|cuts my|our|the losses|loss", -0.7, A),
    ("starter position|positions|stake", 0.7, N),
    ("started|starting|opened|opening|initiated|initiating a|my|new position|stake", 0.7, A),
    ("new position|positions|stake in", 0.7, N),
    ("take|took|taking a position|stab|starter|nibble", 0.5, A),
    ("nibble|nibbled|nibbling", 0.4, A),
    ("i'll|ill|i'd|gonna take some", 0.5, A),
    ("averaging|averaged|average in|into", 0.4, N),
    ("flipped|flip|flipping|flips long|bullish", 0.9, A),
    ("flipped|flip|flipping|flips short|bearish", -0.9, A),
    ("owning|own it|this|some|more", 0.4, A),
    ("wouldn't|wouldnt|won't|wont|never|not|don't|dont touching|touch", -0.6, A),
    ("stay|staying|stayed|steer|steering away", -0.6, A),
    ("avoid|avoiding", -0.4, A),
    ("not worth it|the|owning|buying|holding", -0.5, A),
    ("haircut", -0.5, A),
    ("here we go again", -0.3, A),
    ("calls expired|expire|expiring|expires worthless", -1.2, A),
    ("puts expired|expire|expiring|expires worthless", 0.4, A),
    ("expired|expiring worthless", -0.4, A),
    ("double|triple top", -0.6, A),
    ("double bottom", 0.6, A),
    ("head and shoulders", -0.5, A),
    ("cup and handle", 0.5, A),
    ("golden cross", 0.6, A),
    ("death cross", -0.6, A),
    ("bull flag", 0.5, A),
    ("bear flag", -0.5, A),
    ("higher lows|highs", 0.4, A),
    ("lower highs|lows", -0.4, A),
    ("rolling|rolled|rolls over", -0.5, P),
    ("lost|losing|loses|broke|breaks|below support", -0.6, A),
    ("held|holding|holds|above support", 0.5, A),
    ("support held|holding|holds", 0.5, A),
    ("bounced|bouncing|bounces off support", 0.5, A),
    ("broke|breaks|breaking|above|through resistance", 0.6, A),
    ("rejected at resistance", -0.4, A),
    ("stables|stablecoins", -0.4, A),
    ("real deal", 0.5, A),
    ("gap|gaps|gapped|gapping up", 0.5, A),
    ("gap|gaps|gapped|gapping down", -0.5, A),
    ("going|heading|headed|goes higher", 0.6, A),
    ("going|heading|headed|goes lower", -0.6, A),
    ("ready|about|set|poised|primed to pop|explode|run|rip|fly|breakout|soar", 0.6, A),
    ("free fall|falling", -0.7, A),
    ("freefall", -0.7, A),
    ("bottom is|was in", 0.5, A),
    ("bottomed|bottoming out?", 0.5, A),
    ("top is|was in", -0.5, A),
    ("sell|short the rip|rally|pop|news", -0.5, A),
    (
        "shorts are|getting? trapped|burned|burning|covering|squeezed|sweating|panicking|"
        "scrambling",
        0.6,
        A,
    ),
    ("pumping|pumped", 0.4, A),
    ("fading|faded|fades", -0.4, P),
    ("bouncing|bounced|bounce", 0.3, P),
    ("runner|runners", 0.4, A),
    ("⬆", 0.4, P),
    ("⬇", -0.4, P),
    ("🔻", -0.5, P),
    ("🔺", 0.3, P),
    ("👍", 0.3, A),
    ("👎", -0.4, A),
    ("💪", 0.4, A),
    ("💰", 0.3, A),
    ("💩", -0.4, A),
    ("🤮", -0.5, A),
    ("😭|😱", -0.3, A),
    ("🪦|⚰", -0.5, A),
    ("upgrade cycle|supercycle", 0.4, A),
    ("dinosaur", -0.3, A),
    ("got|i'm|im out", -0.5, A),
    ("out of", -0.5, N),
    ("bagholder|bagholders|bagholding|baghold", -0.7, A),
    ("bag holder|holders|holding", -0.7, A),
    ("left? holding the bag|bags", -0.7, A),
    ("heavy bags", -0.6, A),
    ("to the moon|mooon|moooon", 1.0, P),
    ("moon|mooning|moonshot|moons", 0.8, P),
    ("🚀", 0.8, P),
    ("📈", 0.6, P),
    ("💎 🙌", 0.7, A),
    ("💎", 0.4, A),
    ("diamond hands|hand|handed", 0.7, A),
    ("🌙", 0.6, P),
    ("🐂", 0.4, A),
    ("🔥", 0.3, P),
    ("🤑", 0.3, A),
    ("🟢", 0.3, P),
    ("🐻", -0.6, A),
    ("📉", -0.7, P),
    ("💀", -0.5, P),
    ("🩸", -0.6, P),
    ("🔴", -0.3, P),
    ("paper hands|hand|handed", -0.4, A),
    ("🧻 🙌", -0.4, A),
    ("rug pull|pulled|pulls|pulling", -1.0, A),
    ("rugged|rugpull", -0.9, A),
    ("short squeeze|squeezed", 0.8, A),
    ("gamma squeeze", 0.8, A),
    ("squeeze|squeezed|squeezing", 0.6, A),
    ("going|headed|heading|goes to zero", -1.0, P),
    ("worthless", -0.7, A),
    ("dead cat bounce", -0.8, A),
    ("overvalued|overpriced", -0.7, A),
    ("overbought|overextended", -0.4, A),
    ("undervalued|underpriced", 0.7, A),
    ("oversold", 0.4, A),
    ("breakout|breakouts", 0.7, A),
    ("breaking|broke|breaks out", 0.7, A),
    ("breakdown", -0.6, A),
    ("breaking|broke|breaks down", -0.6, A),
    ("all time high|highs", 0.6, A),
    ("ath|aths", 0.5, A),
    ("record high|highs", 0.6, A),
    ("new high|highs", 0.5, A),
    ("52 week high|highs", 0.5, A),
    ("all time low|lows", -0.6, A),
    ("record low|lows", -0.6, A),
    ("new low|lows", -0.5, A),
    ("52 week low|lows", -0.5, A),
    ("bullish", 0.9, A),
    ("bearish", -0.9, A),
    ("bull|bulls", 0.3, A),
    ("bear|bears", -0.3, A),
    ("bull run|market", 0.6, A),
    ("bear market", -0.6, A),
    ("bull trap", -0.6, A),
    ("bear trap", 0.4, A),
    ("yolo|yolod|yoloed|yolo'd", 0.5, A),
    ("hodl|hodling", 0.4, A),
    ("holding strong", 0.5, A),
    ("still holding", 0.3, A),
    ("hold|holding|hodl|hodling forever", 0.4, A),
    ("stonks", 0.17, A),
    ("lfg", 0.5, A),
    ("let's|lets go", 0.4, A),
    ("ripping", 0.6, P),
    ("wrecked|rekt|destroyed|obliterated|decimated", -0.6, P),
    ("down bad", -0.6, P),
    ("lost everything", -0.8, A),
    ("loss porn", -0.6, A),
    ("green", 0.3, A),
    ("in|into the red", -0.5, A),
    ("in the black", 0.5, A),
    ("back in|into the black", 0.7, A),
    ("falling knife", -0.7, A),
    ("value trap", -0.7, A),
    ("bubble", -0.5, A),
    ("capitulation", -0.4, A),
    ("recession", -0.4, A),
    ("crisis", -0.5, A),
    ("turnaround|comeback", 0.5, A),
    # Good news put off: "the turnaround is going to take years".
    ("going|gonna to? take|taking years|forever", -0.5, A),
    ("will|ll take years|forever", -0.5, A),  # not "would": "rivals would take years to copy"
    ("recovery", 0.3, A),
    ("no brainer|nobrainer", 0.6, A),
    ("hidden gem", 0.7, A),
    ("gem", 0.3, A),
    ("scam|ponzi|fraud|fraudulent", -0.8, A),
    ("garbage|trash|junk|dogshit", -0.5, A),
    ("cheap", 0.3, A),
    ("bargain", 0.5, A),
    ("on sale", 0.4, A),
    ("expensive|pricey", -0.3, A),
    ("fomo", 0.17, A),
    ("cash burn", -0.4, A),
    ("margin call|calls", -0.6, A),
    ("stepped|steps|stepping down", -0.3, A),
    ("shut|shuts down", -0.4, A),
    ("shutdown", -0.4, A),
    ("cashed out", -0.3, A),
    # Out of the market: "sitting in cash", "went to cash", "sold into strength".
    ("sitting|sit|sat|staying|stay in cash", -0.5, A),
    ("went|go|going|moved|move|moving to|into cash", -0.6, A),
    (
        "sold|selling|sell|sells|trimmed|trimming|trim|trims everything|some|half|more? "
        "into strength",
        -0.4,
        A,
    ),
    ("crushed|killed|nailed it", 0.6, P),
    ("worth buying|owning", 0.4, A),
    ("guided|guiding|guides|guide down|lower", -0.8, P),
    ("guided|guiding|guides|guide up|higher", 0.8, P),
)

# Evaluative words and news events: they carry their sign whatever the subject (weight, mode).
NEWS: Final[tuple[tuple[str, float, str], ...]] = (
    (
        "beat|beats|beating|topped|tops|top|exceeded|exceeds|surpassed|surpasses|crushed|smashed "
        "estimates|expectations|consensus|forecasts|views|street",
        1.0,
        P,
    ),
    (
        "beat|beats|beating|topped|tops|exceeded|exceeds|surpassed|surpasses|crushed|smashed "
        "the|wall street|expectations|estimates",
        1.0,
        P,
    ),
    ("beat|beats|beating", 0.7, P),
    ("exceeded|exceeds|exceed|exceeding|surpassed|topped", 0.5, P),
    ("beaten|beat down|up", -0.4, P),
    ("topped out", -0.4, P),
    ("beat and raise|raised", 1.0, P),
    ("above expectations|estimates|consensus|forecasts|forecast", 0.8, P),
    ("ahead of expectations|estimates|consensus|forecasts", 0.8, P),
    ("below expectations|estimates|consensus|forecasts|forecast", -0.8, P),
    ("short of expectations|estimates|consensus|forecasts|forecast", -0.9, P),
    ("fell|falls|fall|falling|came|comes|coming short", -0.8, P),
    ("miss|missed|misses|missing", -0.7, P),
    ("miss|missed|misses|missing estimates|expectations|consensus|forecasts|views", -1.0, P),
    ("miss|missed|misses|missing the|wall street|estimates|expectations", -1.0, P),
    ("better|stronger than expected", 0.8, P),
    ("worse|weaker than expected", -0.8, P),
    ("layoffs|layoff|redundancies", -0.7, A),
    ("laid|lay|laying|lays off|offs", -0.7, A),
    ("job cuts|losses", -0.7, A),
    ("restructuring", -0.3, A),
    ("hiring freeze", -0.4, A),
    ("recall|recalls|recalled|recalling", -0.7, A),
    ("investigation|investigations|investigating|probe|probes|probing", -0.7, A),
    ("subpoena|subpoenaed|raided", -0.7, A),
    ("lawsuit|lawsuits|sued|sues", -0.5, A),
    ("class action", -0.5, A),
    ("accounting irregularities|scandal", -0.9, A),
    ("scandal", -0.6, A),
    ("bankruptcy|bankrupt|insolvency|insolvent|liquidation|receivership", -1.0, A),
    ("chapter 11|7", -1.0, A),
    ("profit warning|warnings", -1.0, A),
    ("warns|warned|warning", -0.5, A),
    ("going concern", -0.8, A),
    ("delisted|delisting|delist", -0.9, A),
    ("defaulted", -0.7, A),
    ("default|defaults on|in", -0.7, A),
    ("debt|bond|loan|sovereign|payment default|defaults", -0.7, A),
    ("default risk", -0.4, A),
    ("fined", -0.7, A),
    ("record|antitrust|eu|regulatory|hefty|million|billion fine|fines", -0.8, A),
    ("fine of|over", -0.6, A),
    ("hit with", -0.5, A),
    ("penalty|penalties|damages", -0.4, A),
    ("ordered to pay", -0.7, A),
    ("illegal|illegally|unlawful|unlawfully", -0.6, A),
    ("antitrust", -0.3, A),
    ("monopoly", -0.17, A),
    ("shun|shuns|shunned|shunning", -0.4, A),
    ("co operation|cooperation|change negotiations|talks", -0.6, A),
    ("personnel|staff|workforce reductions|reduction|cuts", -0.6, A),
    ("dismissals|redundancy", -0.5, A),
    ("resigns|resigned|quits|ousted|departs", -0.3, A),
    ("outage|outages|breach|hack|hacked|cyberattack|boycott", -0.5, A),
    ("shortage|shortages|sanctions|tariff|tariffs", -0.3, A),
    ("lags|lagged|lagging", -0.3, A),
    ("edges|edged|inches|inched|ticks|ticked higher|up", 0.3, A),
    ("edges|edged|inches|inched|ticks|ticked lower|down", -0.3, A),
    (
        "posted|posts|post|reported|reports|report|booked|books|recorded|records|made a|an? "
        "net|operating|pretax|quarterly|annual? loss|losses",
        -0.6,
        A,
    ),
    (
        "fell|slipped|slumped|dropped|plunged|sank|tumbled to|into a|an? "
        "net|operating|pretax? loss",
        -1.0,
        A,
    ),
    ("fizzling|fizzles|fizzled|fizzle", -0.5, A),
    ("first full? annual|quarterly|year|ever? net|operating? profit", 0.8, A),
    ("surprise|unexpected quarterly|annual? profit", 0.8, A),
    ("surprise|unexpected quarterly|annual? loss", -0.8, A),
    ("ahead of the? original? target|targets|schedule|plan|plans", 0.6, A),
    ("behind schedule", -0.5, A),
    ("selected|chosen as|to|by|for", 0.5, A),
    (
        "reinstates|reinstated|reinstating|restores|restored|resumes|resumed its|the? "
        "dividend|dividends|buyback|payout",
        0.8,
        A,
    ),
    ("dilution|dilutive|diluted|diluting|dilutes", -0.5, A),
    ("accretive", 0.5, A),
    ("discontinue|discontinues|discontinued|discontinuing", -0.5, A),
    ("share|stock|secondary|atm offering", -0.5, A),
    ("buyback|buybacks|repurchase|repurchases", 0.5, A),
    ("special dividend", 0.6, A),
    (
        "suspend|suspends|suspended|suspending|scrapped|scraps|scrap|axed|axes "
        "its|the? dividend|dividends|guidance|outlook|buyback",
        -0.8,
        A,
    ),
    ("withdrew|withdraws|withdrawn|pulled|pulls its|the? guidance|outlook|forecast", -0.8, A),
    ("approval|approved|approves|clearance|nod", 0.5, A),
    ("scrutiny", -0.4, A),
    ("fda approval", 0.8, A),
    ("rejected|rejection|rejects", -0.6, A),
    ("complete response letter", -0.6, A),
    ("delay|delayed|delays|postponed|postpones", -0.4, A),
    ("halted|halts|halt", -0.5, A),
    ("contract win|wins", 0.6, A),
    ("partnership", 0.4, A),
    ("partners|partnered with", 0.4, A),
    ("teams|teamed up with", 0.4, A),
    ("to be acquired", 0.6, A),
    ("buyout|takeover", 0.5, N),  # the premium is the target's: "Kroger's takeover of ACI"
    # Valuation against an analyst's fair value: "trades at double its fair value estimate".
    ("above|over|exceeds|exceeding|beyond its|the? fair value", -0.6, A),
    ("double|twice|triple its|the fair value", -0.7, A),
    ("premium to its|the? fair value", -0.6, A),
    ("below|under|beneath its|the? fair value", 0.6, A),
    ("discount to its|the? fair value", 0.6, A),
    ("profitable", 0.6, A),
    ("unprofitable", -0.5, A),
    ("turned|turns profitable", 0.9, A),
    ("swung|swings|swing|turned|turns to a|an? profit", 1.0, A),
    ("swung|swings|swing|turned|turns to a|an? net|operating|pretax profit", 1.0, A),
    ("swung|swings|swing|turned|turns to a|an? loss", -1.0, A),
    ("swung|swings|swing|turned|turns to a|an? net|operating|pretax loss", -1.0, A),
    ("returned|returns|return to profit|profitability|growth", 0.9, A),
    ("improved|improving|improvement|improvements|improves", 0.4, A),
    ("worsened|worsening|deteriorated|deteriorating|deterioration", -0.5, A),
    ("disappointed|disappoints|disappoint|letdown", -0.6, A),
    ("love|loving", 0.15, A),
    ("hate", -0.17, A),
    ("worried|worry|worries|concerned|concern|concerns|fear|fears", -0.35, A),
    ("afraid|scared|nervous|panic|panicking", -0.35, A),
    ("optimistic|confident|excited", 0.45, A),
    ("pessimistic|skeptical", -0.45, A),
    ("doubt|doubts", -0.3, A),
    ("upside", 0.4, A),
    ("downside", -0.4, A),
    ("headwind|headwinds", -0.4, A),
    ("tailwind|tailwinds|catalyst|catalysts", 0.4, A),
    ("opportunity|opportunities", 0.3, A),
    ("winner|winners", 0.3, A),
    ("loser|losers", -0.3, A),
    ("uncertainty|uncertain|risky", -0.3, A),
    ("disaster|catastrophe|trainwreck", -0.7, A),
    ("dumpster fire", -0.7, A),
    ("best", 0.25, A),
    ("worst", -0.35, A),
    # Headlines in wire style: balance-sheet moves, index changes, settlements, strikes,
    # market share, credit ratings and provisions, which carry a sign with no price move.
    ("pay|pays|paying|paid down|off debt", 0.7, A),
    ("to pay down|off debt", 1.0, A),
    ("to cut|reduce its? debt", 0.8, A),
    ("join|joins|joining|enter|enters|entering the? ftse|stoxx|nasdaq|index", 0.6, A),
    ("promoted to the? ftse|stoxx|nasdaq|index", 0.6, A),
    ("relegated|demoted|dropped|removed|ejected from the? ftse|stoxx|nasdaq|index", -0.6, A),
    ("relegated|relegation", -0.5, A),
    ("settlement ends|resolves|closes", 1.4, A),  # outweighs the probe it names
    ("close|closes|closed|drop|drops|dropped|end|ends|ended probe|investigation", 0.6, A),
    ("without taking action", 0.4, A),
    ("savings drive|programme|program|plan", 0.5, A),
    ("to save", 0.4, A),
    ("averting|averts|averted strike|strikes|walkout", 0.6, A),
    ("strike|strikes|walkout forces|force", -0.6, A),
    ("cancel|cancels|cancelled|canceled flights", -0.5, A),
    ("regains|regained|restores|restored investment grade", 0.7, A),
    ("lifted|raised|upgraded to investment grade", 0.7, A),
    ("cut|cuts|downgraded to junk", -0.8, A),
    ("wins|won|winning eu|us|uk|high|supreme? court? ruling|appeal|case|lawsuit", 0.7, A),
    ("court victory|win", 0.7, A),
    ("overturning|overturns|overturned", 0.4, A),
    ("overturning|overturns|overturned fine|ban|ruling", 0.6, A),
    ("doubles|doubled|triples|tripled its? user|customer base", 0.7, A),
    ("doubles|doubled|triples|tripled its? users|subscribers|sales|revenue|profit", 0.7, A),
    ("ends|ended|abandons|abandoned|terminates|terminated talks", -0.7, A),
    ("breaks|broke off talks", -0.7, A),
    ("walks|walked away", -0.6, A),
    ("investors balk|baulk", -0.6, A),
    ("axe|axes|axing|axed jobs|roles|staff", -0.7, A),
    ("losses mount|widen", -0.7, A),
    ("sets|set aside", -0.4, A),
    ("fda rejects|rejected|declines|refuses", -0.9, A),
    ("discounted|share placing", -0.5, A),
)

# An analyst's action on a stock: it is about the stock rated, never the firm rating it
# ("UBS downgrades Tesla", even when UBS is also news elsewhere in the text).
ANALYST_ACTIONS: Final[tuple[tuple[str, float, str], ...]] = (
    ("upgrade|upgraded|upgrades|upgrading", 0.8, A),
    ("upgrade|upgraded|upgrades|upgrading to buy|outperform|overweight|accumulate", 1.0, A),
    ("upgrade|upgraded|upgrades|upgrading to strong buy", 1.0, A),
    ("upgrade|upgraded|upgrades|upgrading to hold|neutral", 0.5, A),
    ("downgrade|downgraded|downgrades|downgrading", -0.8, A),
    ("downgrade|downgraded|downgrades|downgrading to sell|underperform|underweight", -1.0, A),
    ("downgrade|downgraded|downgrades|downgrading to reduce", -1.0, A),
    ("downgrade|downgraded|downgrades|downgrading to strong sell", -1.0, A),
    ("downgrade|downgraded|downgrades|downgrading to hold|neutral", -0.7, A),
    ("buy rating", 0.6, A),
    ("sell rating", -0.6, A),
    # A rating kept is less news than one given: "trims its target but keeps buy".
    (
        "keeps|kept|keeping|maintains|maintained|maintaining|retains|retained its|a? "
        "buy|outperform|overweight rating?",
        0.4,
        A,
    ),
    (
        "keeps|kept|keeping|maintains|maintained|maintaining|retains|retained its|a? "
        "sell|underperform|underweight rating?",
        -0.4,
        A,
    ),
    ("strong buy", 0.9, A),
    ("strong sell", -0.9, A),
    ("outperform|outperformed|outperforming", 0.5, A),
    ("underperform|underperformed|underperforming", -0.5, A),
    ("overweight", 0.4, A),
    ("underweight", -0.4, A),
)
# What a change word moves when it is an analyst's action: "UBS raises its Tesla target".
RATED_SUBJECTS: Final = frozenset({"price target", "price targets", "target", "targets", "pt"})

# A comparison base with no figures: "profit, compared with a loss". Figures, when the
# sentence gives them, say more (see ``_figures``), so these step aside then.
COMPARED: Final[tuple[tuple[str, float, str], ...]] = (
    ("compared with|to a|an? loss", 0.5, A),
    ("compared with|to a|an? net|operating loss", 0.5, A),
    ("compared with|to a|an? profit", -0.4, A),
    ("compared with|to a|an? net|operating profit", -0.4, A),
)

# Adjectives that also colour a financial noun right after them ("weak demand", "strong sales").
ADJECTIVES: Final[tuple[tuple[str, float], ...]] = (
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
ACQUIRING: Final[tuple[tuple[str, float, str], ...]] = (
    ("buy|buying", 0.6, N),
    ("bought", 0.6, N),
    ("buy|buying|bought more", 0.7, N),
    ("buys", 0.5, A),
    ("added|adding", 0.4, N),
    ("loading|loaded|load|loads up", 0.9, N),
    ("loading", 0.6, N),
    ("loaded the boat", 0.9, A),
    ("adding|added|add to my|our|the position|positions|stake", 0.8, A),
    ("adding|added more", 0.7, N),
    ("accumulating|accumulate|accumulated", 0.6, N),
    ("doubled|doubling my|our", 0.6, N),
    ("picked|pick|picking up more|some|shares|calls", 0.6, N),
    ("to fund|finance|buy more", 0.6, N),  # "trimmed AAPL to fund more MSFT"
    ("all in", 0.6, A),
)

# Positions that bet on a rise: "printing"/"tendies" after them is a gain on a rise.
BULL_POSITIONS: Final[tuple[tuple[str, float, str], ...]] = (
    ("buy|buying|bought|loaded|loading|grabbed calls", 0.9, N),
    ("calls|leaps", 0.6, A),
    ("call options", 0.6, A),
    ("long", 0.7, N),
    ("going|went|go|gone long", 0.8, N),
    ("long position|positions|shares", 0.8, N),
)

# Positions that bet on a fall: they also turn "printing"/"tendies" bearish for the stock.
BEAR_POSITIONS: Final[tuple[tuple[str, float, str], ...]] = (
    ("short", -0.7, N),
    ("shorted|shorting", -0.75, N),
    ("short position|positions", -0.75, N),
    ("going|went|go|gone short", -0.8, N),
    ("buy|buying|bought|loaded|loading|grabbed puts", -0.9, N),
)

# Puts themselves: they also turn buying verbs in their clause bearish.
PUTS: Final[tuple[tuple[str, float, str], ...]] = (
    ("puts", -0.6, A),
    ("put options", -0.6, A),
)

# Selling verbs that, with "into"/"to", mark a rotation from one ticker to another.
ROTATING_SELLS: Final[tuple[tuple[str, float, str], ...]] = (
    ("sell|selling", -0.55, N),
    ("sold", -0.6, N),
    ("sold|selling|sell everything|all", -0.95, A),
    ("sold|selling|sell it all", -0.95, A),
    ("dumped|dumping", -0.7, N),
    ("got|get|getting out of", -0.7, N),
)

# Market share moving between companies: the one before the phrase wins or loses it, and a
# ticker after "to" or "from" takes the other side ("Target loses share to Walmart").
SHARE_SHIFTS: Final[tuple[tuple[str, float, str], ...]] = (
    ("gains|gained|gaining|wins|won|winning|grabs|takes|took|taking market? share", 0.7, P),
    ("cedes|ceded|ceding|loses|lost|losing market? share", -0.7, P),
)

# Money the poster made; the sign follows the position it reports, the nearest one named
# ("$PLTR calls printing, $SNOW puts printing too").
PNL_PHRASES: Final[tuple[tuple[str, float], ...]] = (
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


# Which position words name a position (see ``_context._held`` and ``_option_verb``): a bare
# "long" or "short" beside a ticker; "calls" and "puts" unless a pronoun acts or is acted on.
OPTION_WORDS: Final = frozenset({"calls", "puts"})
BARE_POSITIONS: Final = frozenset({"long", "short"})
VERB_OBJECTS: Final = _words("it him her them its his their himself herself")
VERB_SUBJECTS: Final = _words("he she it who which that ceo management company")
POSITION_LINKS: Final = frozenset({"in", "on", "my", "some", "more"})

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
OBJECT_VERBS: Final[tuple[tuple[str, float, frozenset[str]], ...]] = (
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
OBJECT_REACH: Final = 7

# Price moves: a buyer mentions them as the occasion ("bought the sell-off"), not a view.
MOVES: Final[tuple[tuple[str, float, str], ...]] = (
    ("dip", -0.17, A),
    ("sell off|offs", -0.6, A),
    ("selloff|selloffs", -0.6, A),
    ("red", -0.3, A),
    ("red day|days|candle|candles", -0.5, A),
    ("bleeding|bleed|bled", -0.6, P),
    ("sea of red", -0.6, A),
    ("bloodbath|massacre", -0.7, A),
    ("correction", -0.3, A),
    ("pullback|pull back", -0.17, A),
)

# Financial nouns: polarity says whether more of it is good (+) or bad (-) for the holder.
SUBJECTS: Final[tuple[tuple[str, float], ...]] = (
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
    ("defaults|delinquencies|chargeoffs|writeoffs|npls", -0.7),
    ("bad|nonperforming|non performing loans", -0.7),
    ("loan losses", -0.7),
    ("charge offs|write offs", -0.7),
    ("burn rate", -0.6),
    # A risk that falls is good news ("cuts stroke risk"); a risk named alone states no view.
    ("risk|risks", -0.5),
)

# "growth" is a noun: it takes its subject from before ("sales growth"), never after.
NOUN_DIRECTIONS: Final[tuple[tuple[str, float, float], ...]] = (("growth", 1.0, 0.2),)

# Change words: the sign of the change, and what it means with no financial noun nearby.
DIRECTIONS: Final[tuple[tuple[str, float, float], ...]] = (
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
    ("trims", -1.0, -0.4),  # "trims its price target", "trims losses"
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

NEGATORS: Final[tuple[str, ...]] = (
    "not|no|never|nor|neither|without|cannot|hardly|barely|nothing|none|nobody",
    "isn't|isnt|aren't|arent|wasn't|wasnt|weren't|ain't",
    "don't|dont|doesn't|doesnt|didn't|didnt|won't|wont|can't|cant",
    "couldn't|shouldn't|wouldn't|haven't|hasn't|hadn't|n't",
    "no longer",
    "unable to",
    "fails|failed|fail|failing to",
)
# Negators of a deal or a ruling only, with a deal noun right after (DEAL_STOPS_REACH):
# "Judge blocks Kroger's takeover of Albertsons", not "dark pool blocks show buying".
DEAL_STOPS: Final[tuple[str, ...]] = (
    "blocks|blocked|blocking|scuppers|scuppered|abandons|abandoned",
    "called|calling off",
    "walks|walked|walking away from",
)
DEAL_WORDS: Final = frozenset(
    {"takeover", "buyout", "merger", "deal", "bid", "acquisition", "purchase", "sale", "ban"}
    | {"offer", "tie", "combination", "approval", "listing", "spinoff"}
)
DEAL_STOPS_REACH: Final = 6  # "blocks the $8.5 billion takeover"

HEDGES: Final[tuple[str, ...]] = (
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
INTENSIFIERS: Final[tuple[tuple[str, float, bool], ...]] = (
    ("very|so|really|highly|totally|seriously", 1.3, False),
    ("super|mega|ultra|absolutely|huge", 1.4, False),
    ("extremely|massively|insanely|incredibly|hugely|massive", 1.6, False),
    ("big|major", 1.2, False),
    ("sharply|significantly|substantially|strongly|considerably|heavily", 1.4, True),
    ("dramatically", 1.5, True),
    ("slightly|marginally|modestly", 0.6, True),
    ("somewhat|mildly|kinda", 0.6, False),
    ("a bit|little|touch|tad", 0.6, False),
    ("kind|sort of", 0.7, False),
    # "premiums grow in line with last year's pace": as before, so no news.
    ("in line with last|prior|previous", 0.15, True),
    ("in line with the|a prior|previous|last|year", 0.15, True),
    (
        "in line with analyst|analysts|street|market? expectations|estimates|consensus|forecasts",
        0.15,
        True,
    ),
    ("in line with guidance", 0.15, True),
)

# Sarcasm markers (weight is the cue's own, already-bearish, meaning; 0 for pure markers).
SARCASM: Final[tuple[tuple[str, float], ...]] = (
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
SCHEDULE: Final[tuple[str, ...]] = (
    "today|tomorrow|tonight|tmrw",
    "monday|tuesday|wednesday|thursday|friday",
    "next week|month|quarter",
    "before|after the bell|open|close",
    "date|dates|webinar|webcast|livestream|conference|meeting|agm",
    "to report|host|hold|present|speak|meet|vote|publish|resume|announce",
    "will report|host|hold|present|speak|meet|vote|publish|resume|announce|discuss",
)

CONTRASTS: Final[tuple[str, ...]] = (
    "but|however|nevertheless|nonetheless",
    "that said",
    "on the other hand",
    "then again",
)
CONCESSIONS: Final[tuple[str, ...]] = ("although|though|despite", "even though", "in spite of")

ROTATION_VERBS: Final[tuple[str, ...]] = (
    "rotate|rotating|rotated|rotation|switch|switching|switched|swap|swapping|swapped",
    "move|moving|moved|pivot|pivoting|pivoted|shift|shifting|shifted",
    "reallocate|reallocating|reallocated|ditch|ditched|ditching|trade|traded|trading",
)

ROTATION_WORDS: Final = frozenset(w for spec in ROTATION_VERBS for w in spec.split("|"))
PASSIVE: Final = frozenset({"is", "are", "was", "were", "be", "being", "been"})
POSSESSIVES: Final = frozenset({"my", "our", "all", "some", "half", "the"})

# Rotation links, read off the tokens just before a ticker in a rotating sentence:
# (tokens before the ticker, weight). "out of my INTC" and "into more AMD" allow one word.
ROTATION_LINKS: Final[tuple[tuple[tuple[str, ...], float], ...]] = (
    (("out", "of"), -0.8),
    (("from",), -0.7),
    (("into",), 0.8),
    (("to",), 0.7),
    (("for",), 0.6),
)

# A clause that only answers the one before it, the other way round: "Delta crushed it;
# United not so much" gives United the opposite of Delta's view.
ECHOES: Final[tuple[str, ...]] = (
    "not so much",
    "not as much",
    "less so",
    "much less so",
    "not nearly as much",
)
ECHO_WEIGHT: Final = 0.8  # at most this much, however strong the clause it answers
ECHO_LOOKBACK: Final = 4  # clauses back it looks for the view it answers

# A neutral view stated outright: an analyst's neutral rating ("initiates Carnival at equal
# weight", "keeps neutral on Micron") quiets the other cues of its sentence, since the rating
# is the conclusion they argue for. Kept guidance ("reaffirms its full-year outlook") quiets
# its own clause: REAFFIRMS count only with a guidance noun after them (see GUIDANCE).
NEUTRAL_STANCES: Final[tuple[str, ...]] = (
    "keeps|kept|keeping|maintains|maintained|maintaining|reiterates|reiterated|retains|retained "
    "its|a|an? neutral|hold rating?",
    "keeps|kept|keeping|maintains|maintained|maintaining|reiterates|reiterated|retains|retained "
    "its|an? equal|market|sector|peer weight|perform rating?",
    "at|with a|an? neutral rating",  # "RSI at neutral", "the Fed at neutral" are no ratings
    "at|with a|an? hold rating?",
    "at|with a|an? equal|market|sector|peer|in weight|perform|line rating?",
    "neutral|hold rating",
    # The poster's own: "not adding, not selling".
    "not|neither adding|buying ,? not|nor|or selling|trimming",
    "not|neither selling|trimming ,? not|nor|or adding|buying",
)
REAFFIRMS: Final[tuple[str, ...]] = (
    "reaffirms|reaffirmed|reaffirming|reaffirm|affirms|affirmed|confirms|confirmed",
    "reiterates|reiterated|maintains|maintained|backs|backed",
    "sticks|stuck|sticking|stands|stood by|to",
)
GUIDANCE: Final = _words(
    "guidance outlook forecast forecasts target targets goal goals view projections"
)
# Words that end the search for a guidance noun: "reiterates buy, $300 target" is a rating.
NOT_GUIDANCE: Final = _words(
    "buy sell rating price outperform underperform overweight underweight neutral hold"
)
NEUTRAL_DAMPEN: Final = 0.3  # what a cue weighs beside a neutral view stated outright

# Phrases that look like cues but are not; matching them keeps their words from scoring.
BLOCKERS: Final[tuple[str, ...]] = (
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
    "in order to|for",
    "trade|trades|trading|traded down",  # shoppers moving to cheaper goods, not a price
    # The rating a stock is moved from is history: "upgrades Ford to hold from sell".
    "from strong? buy|sell|hold|neutral|underperform|outperform|underweight|overweight|reduce",
    "from equal|market|sector|peer|in weight|perform|line",
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
    "risk on|off|appetite|sentiment|assets|reward|free|premium|premia|management|parity",
)

_CLAUSE_WORDS: Final = frozenset(
    {"but", "however", "although", "though", "while", "whereas", "despite", "meanwhile"}
)
# 1 ends a sentence, 0 only a clause.
BREAKS: Final[dict[str, int]] = {".": 1, "!": 1, "?": 1, ";": 1, "\n": 1, ",": 0, ":": 0}
LIST_GLUE: Final = frozenset({",", "and", "or", "/", "+", "both"})
MAX_LISTED: Final = 50  # tickers a list reaches on either side ("NVDA, AMD, AVGO and MU")
# "as"/"and" right before a ticker start its clause (see ``_tokens._split_before_tickers``).
JOINS: Final = frozenset({"as", "and"})
NOT_A_CLAUSE: Final = frozenset({"\x00", "\x01", ",", "such", "as", "well", "both"})
COORDINATORS: Final = frozenset({"or", "nor"})
SENTENCE_ENDS: Final = frozenset(key for key, ends in BREAKS.items() if ends)
CLAUSE_SPLITS: Final = frozenset(BREAKS) | _CLAUSE_WORDS
PERCENT: Final = frozenset({"%", "percent", "pct"})
PREFERS: Final = frozenset({">", "over"})
CURRENCIES: Final = _words("eur usd sek nok dkk gbp jpy chf meur musd rs inr")
UNITS: Final[dict[str, float]] = {
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
FIGURE_KINDS: Final[dict[str, str]] = {
    "loss": "loss",
    "losses": "loss",
    "deficit": "loss",
    "profit": "profit",
    "profits": "profit",
}
FIGURE_MARKERS: Final = frozenset({"from", "compared", "against", "versus", "vs", "("})
OPTION_FOLLOWERS: Final = _words(
    "for exp expiring expiry weeklies weekly fd fds leaps this next eow friday jan feb mar apr "
    "may jun jul aug sep sept oct nov dec january february march april june july august "
    "september october november december"
)

# Scoring constants: why they have these values is in the docstrings that use them.
NEGATION_FLIP: Final = -0.5
ACTION_NEGATION_FLIP: Final = -0.5
NEGATION_REACH: Final = 3
SARCASM_FLIP: Final = -0.5
SARCASM_DAMPEN: Final = 0.7
HEDGED_WEIGHT: Final = 0.8
QUESTION_WEIGHT: Final = 0.28  # a question states no stance unless its words are strong
SELL_NEGATION_FLIP: Final = -0.8
FAR_SUBJECT: Final = 0.8
DISCOUNTED_MOVE: Final = 0.3
# A share-price move against other news in its sentence weighs this much more than that news.
PRICE_MOVE_LEAD: Final = 1.5
PRICE_SUBJECTS: Final = frozenset({"shares", "stock", "stocks", "share price", "stock price"})
# The verbs of a share-price move ("TSLA sinks", "shares jump"), as opposed to a change in a
# figure ("losses widen", "margins narrow").
PRICE_VERBS: Final = _words(
    """rise rises rose rising risen fall falls fell falling fallen jump jumps jumped jumping
    surge surges surged surging soar soars soared soaring sink sinks sank sinking sunk slump
    slumps slumped slumping slide slides slid sliding tumble tumbles tumbled tumbling plunge
    plunges plunged plunging rally rallies rallied rallying gain gains gained gaining drop
    drops dropped dropping climb climbs climbed climbing dip dips dipped dipping slip slips
    slipped slipping spike spikes spiked crash crashes crashed tank tanks tanked sag sags
    sagged skyrocket skyrockets skyrocketed rocket rockets rocketed crater craters cratered
    plummet plummets plummeted up down higher lower"""
)
# Change words that also take an object: in "Tesla raised prices" Tesla acts, prices change.
TRANSITIVE_CHANGES: Final = _words(
    "raised raises raise raising lifted lifts lift lifting hiked hikes hike boosted boosts",
    "boost boosting cut cuts cutting slashed slash slashes slashing reduced reduce reduces",
    "reducing lowered lowers lowering trims",
)
# Words after such a change word that are no object: "cut by half", "raised again".
NOT_OBJECTS: Final = _words(
    "to by from in on at for after as and but while again further more than over since amid",
    "despite sharply slightly significantly nearly almost roughly about around today",
    "premarket yesterday again this last",
)
PRICE_LEVELS: Final = frozenset(
    {"record high", "52 week high", "52 week low", "all time high", "all time low", "record low"}
)
FIRST_PERSON_MOVE: Final = 0.5  # a price move in a post told in the first person weighs this
FIRST_PERSON: Final = frozenset({"i", "i'm", "im", "i've", "i'd", "i'll", "my", "me", "we"})
FIGURE_WEIGHT: Final = 0.9
LAYOUT_WEIGHT: Final = 0.6
DEMOTED: Final = 0.6
PROMOTED: Final = 1.3
NO_EVIDENCE_CONFIDENCE: Final = 0.1
MAX_EVIDENCE: Final = 12
SUBJECT_BACK: Final = 5
MANY_SUBJECTS: Final = 32  # subjects in one sentence beyond which only those near are read
LONGEST_SUBJECT: Final = 16  # tokens: no subject phrase is longer
FAR_LOOKS: Final = 64  # earlier subjects tried for the far one in such a sentence
SUBJECT_AHEAD: Final = 4
PERCENT_MOVE: Final = 0.5
PERCENT_REACH: Final = 3
