"""ALERT_RULES → rules: a decision is sent when it meets every condition of one rule; names and
choices are case-insensitive; every setting that cannot work is one ``ConfigError`` line naming
ALERT_RULES, the rule by its number and text, and what is wrong; any text parses or is refused
that way, never with another exception."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from signalsmith.errors import ConfigError
from signalsmith.notify import message
from signalsmith.notify.rules import (
    AGREEMENTS,
    KINDS,
    STATUSES,
    VERDICTS,
    AlertFacts,
    Rule,
    matches_any,
    parse_rules,
    rule_kinds,
)

POST_RULE = "kind=post verdict=BUY,SELL confidence>=0.8 tickers=NVDA,TSLA"
SPIKE_RULE = "kind=spike"
STRATEGY_RULE = "kind=strategy agreement=reject"


def facts(**changes: object) -> AlertFacts:
    """A BUY post on NVDA at 0.85, with ``changes``."""
    values: dict[str, object] = {
        "kind": "post",
        "ticker": "NVDA",
        "verdict": "BUY",
        "confidence": 0.85,
        "status": "ok",
    }
    return AlertFacts(**{**values, **changes})  # type: ignore[arg-type]


def only(text: str) -> Rule:
    rules = parse_rules(text)
    assert len(rules) == 1
    return rules[0]


def refusal(text: str) -> ConfigError:
    """The error ``text`` is refused with, checked to name the setting on one line."""
    with pytest.raises(ConfigError) as caught:
        parse_rules(text)
    assert caught.value.setting == "ALERT_RULES"
    assert str(caught.value).startswith("ALERT_RULES: ")
    assert len(str(caught.value).splitlines()) == 1
    return caught.value


@pytest.mark.parametrize(
    ("text", "decision", "expected"),
    [
        (POST_RULE, facts(), True),
        (POST_RULE, facts(verdict="SELL", ticker="TSLA", confidence=0.8), True),
        (POST_RULE, facts(confidence=0.79), False),
        (POST_RULE, facts(verdict="HOLD"), False),
        (POST_RULE, facts(ticker="AMD"), False),
        (POST_RULE, facts(kind="spike"), False),
        (SPIKE_RULE, facts(kind="spike", verdict="HOLD", confidence=0.1), True),
        (SPIKE_RULE, facts(), False),
        (STRATEGY_RULE, facts(kind="strategy", agreement="reject", rating=2), True),
        (STRATEGY_RULE, facts(kind="strategy", agreement="confirm", rating=8), False),
        (STRATEGY_RULE, facts(kind="strategy"), False),  # no agreement: never matches
        (STRATEGY_RULE, facts(agreement="reject"), False),
    ],
)
def test_the_example_rules_match_what_they_say(
    text: str, decision: AlertFacts, expected: bool
) -> None:
    rule = only(text)
    assert rule.text == text
    assert rule.matches(decision) is expected
    assert matches_any([rule], decision) is expected


def test_the_example_setting_matches_when_any_rule_does() -> None:
    rules = parse_rules(f"{POST_RULE}; {SPIKE_RULE}; {STRATEGY_RULE}")
    assert [rule.text for rule in rules] == [POST_RULE, SPIKE_RULE, STRATEGY_RULE]
    assert matches_any(rules, facts())
    assert matches_any(rules, facts(kind="spike", ticker="GME"))
    assert matches_any(rules, facts(kind="strategy", agreement="reject"))
    assert not matches_any(rules, facts(ticker="AMD"))
    assert not matches_any(rules, facts(kind="insight"))
    assert not matches_any((), facts())


def test_rules_are_split_on_semicolons_and_new_lines_and_blank_ones_are_ignored() -> None:
    rules = parse_rules(" kind=post ;\n\n  ;kind=spike\r\nkind=insight  verdict=BUY ;; \n")
    assert [rule.text for rule in rules] == ["kind=post", "kind=spike", "kind=insight  verdict=BUY"]


@pytest.mark.parametrize("text", ["", "   ", " ; ;\n\n \t ", "\r\n;"])
def test_no_rule_at_all_turns_rules_off(text: str) -> None:
    assert parse_rules(text) == ()


def test_names_and_choices_are_case_insensitive() -> None:
    rule = only("KIND=Strategy Verdict=buy Ticker=brk.b STATUS=OK Agreement=CONFIRM RATING>=7")
    decision = facts(kind="strategy", ticker="BRK.B", agreement="confirm", rating=7)
    assert rule.matches(decision)
    assert rule.kinds == frozenset({"strategy"})
    assert not rule.matches(facts(kind="strategy", ticker="BRK.B", agreement="confirm", rating=6))


@pytest.mark.parametrize("written", ["tickers", "ticker", "TICKERS"])
def test_tickers_are_compared_upper_case_under_either_name(written: str) -> None:
    rule = only(f"{written}=btc-usd,Brk.B,eur/usd")
    assert rule.matches(facts(ticker="BTC-USD"))
    assert rule.matches(facts(ticker="EUR/USD"))
    assert rule.matches(facts(ticker="brk.b"))
    assert not rule.matches(facts(ticker="BTC"))


@pytest.mark.parametrize(
    ("condition", "confidence", "expected"),
    [
        ("confidence>=0.5", 0.5, True),
        ("confidence>=0.5", 0.49, False),
        ("confidence>0.5", 0.5, False),
        ("confidence>0.5", 0.51, True),
        ("confidence<=0.5", 0.5, True),
        ("confidence<=0.5", 0.51, False),
        ("confidence<0.5", 0.5, False),
        ("confidence<.5", 0.25, True),
        ("confidence=1", 1.0, True),
        ("confidence=1", 0.999, False),
        ("confidence>=5e-1", 0.5, True),
        ("confidence=0", 0.0, True),
    ],
)
def test_confidence_compares_as_a_plain_number(
    condition: str, confidence: float, expected: bool
) -> None:
    assert only(condition).matches(facts(confidence=confidence)) is expected


@pytest.mark.parametrize(
    ("condition", "rating", "expected"),
    [
        ("rating>=7", 7, True),
        ("rating>=7", 6, False),
        ("rating>7", 7, False),
        ("rating<=3", 3, True),
        ("rating<3", 3, False),
        ("rating=10", 10, True),
        ("rating=10", 9, False),
        ("rating<=10", None, False),  # no rating: never matches
    ],
)
def test_rating_compares_as_a_whole_number_and_never_matches_none(
    condition: str, rating: int | None, expected: bool
) -> None:
    assert only(condition).matches(facts(kind="strategy", rating=rating)) is expected


def test_agreement_never_matches_a_decision_without_one() -> None:
    rule = only("agreement=confirm,caution,reject")
    assert rule.matches(facts(kind="strategy", agreement="caution"))
    assert not rule.matches(facts(kind="strategy", agreement=None))


def test_status_chooses_among_the_statuses() -> None:
    rule = only("status=degraded,error")
    assert rule.matches(facts(status="degraded"))
    assert rule.matches(facts(status="error"))
    assert not rule.matches(facts(status="ok"))


def test_the_readme_message_is_the_one_raised() -> None:
    error = refusal("kind=post; kind=pots")
    assert error.problem == (
        'rule 2 "kind=pots": unknown kind pots; '
        "choose from consensus, insight, post, spike, strategy"
    )


@pytest.mark.parametrize(
    ("text", "number", "problem"),
    [
        ("colour=red", 1, "unknown field colour; choose from agreement, confidence"),
        ("kind=post; =BUY", 2, "=BUY names no field"),
        ("kind=post\nverdict>=BUY", 2, "verdict takes =, not >="),
        ("kind>post", 1, "kind takes =, not >"),
        ("verdict!=BUY", 1, "verdict takes =, not !="),
        ("confidence=>0.5", 1, "confidence takes >=, >, <=, <, =, not =>"),
        ("confidence==0.5", 1, "confidence takes >=, >, <=, <, =, not =="),
        ("kind=spike; ; kind=", 2, "kind= has no value"),
        ("confidence>=", 1, "confidence>= has no value"),
        ("tickers=NVDA,,TSLA", 1, "tickers=NVDA,,TSLA has an empty item"),
        ("verdict=BUY,", 1, "verdict=BUY, has an empty item"),
        ("verdict=BUY,LONG", 1, "unknown verdict LONG; choose from BUY, HOLD, SELL"),
        ("status=fine", 1, "unknown status fine; choose from abstain, degraded, error, expired"),
        ("agreement=maybe", 1, "unknown agreement maybe; choose from caution, confirm, reject"),
        ("tickers=$NVDA", 1, "$NVDA is not a ticker"),
        (f"tickers={'A' * 33}", 1, "is not a ticker"),
        ("confidence>=high", 1, "confidence high is not a number; give 0..1"),
        ("confidence>=nan", 1, "confidence nan is not a number"),
        ("confidence>=inf", 1, "confidence inf is not a number"),
        ("confidence>=-0.1", 1, "confidence -0.1 is not a number"),
        ("confidence>=1.5", 1, "confidence 1.5 is out of range; give 0..1"),
        (f"confidence>=1{'0' * 400}", 1, "is out of range; give 0..1"),
        ("rating>=7.5", 1, "rating 7.5 is not a whole number; give 1..10"),
        ("rating>=0", 1, "rating 0 is out of range; give 1..10"),
        ("rating=11", 1, "rating 11 is out of range; give 1..10"),
        (f"rating=9{'9' * 5000}", 1, "is out of range; give 1..10"),
        ("kind=post kind=spike", 1, "kind is given twice"),
        ("kind=post\ntickers=NVDA ticker=TSLA", 2, "tickers is given twice"),
        ("kind=post verdict", 1, "verdict has no operator; write field=value"),
    ],
)
def test_a_wrong_rule_is_named_by_number_and_text_with_what_is_wrong(
    text: str, number: int, problem: str
) -> None:
    error = refusal(text)
    assert error.problem.startswith(f'rule {number} "')
    assert problem in error.problem


def test_a_long_rule_is_quoted_cut_and_on_one_line() -> None:
    text = "tickers=" + ",".join(f"T{n}" for n in range(40)) + " kind=pots"
    error = refusal(f"kind=post\x0b\x00 verdict=BUY kind=spike;{text}")
    assert error.problem.startswith('rule 1 "kind=post ? verdict=BUY kind=spike": ')
    error = refusal(text)
    quoted = error.problem.split('"')[1]
    assert len(quoted) == 60
    assert quoted == text[:59] + "…"
    assert "unknown kind pots" in error.problem


def test_what_an_error_quotes_stays_one_line_of_printable_characters() -> None:
    """Unicode line breaks are white space inside a rule; control characters are shown as ?."""
    error = refusal("verdict=BUY\u2028kind=pots\x85status=ok")
    assert error.problem.startswith('rule 1 "verdict=BUY kind=pots status=ok": unknown kind pots')
    assert "unknown verdict ?bad" in refusal("verdict=\x07bad").problem


def test_too_long_a_setting_or_too_many_rules_is_refused() -> None:
    assert len(parse_rules(";".join(["kind=spike"] * 100))) == 100
    assert "101 rules; at most 100" in refusal(";".join(["kind=spike"] * 101)).problem
    assert parse_rules("kind=post" + " " * (10_000 - 9)) != ()
    assert "10001 characters; at most 10000" in refusal("kind=post" + " " * 9_992).problem


def test_rule_kinds_is_what_the_rules_can_match() -> None:
    assert rule_kinds(parse_rules(f"{POST_RULE}; {SPIKE_RULE}")) == {"post", "spike"}
    assert rule_kinds(parse_rules("kind=post,insight\nkind=POST")) == {"post", "insight"}
    assert rule_kinds(parse_rules("kind=spike; verdict=BUY")) == KINDS
    assert rule_kinds(()) == frozenset()
    assert only("verdict=SELL").kinds is None
    assert only(STRATEGY_RULE).kinds == frozenset({"strategy"})


def test_the_choices_are_those_the_notices_know() -> None:
    assert KINDS == message.KINDS
    assert VERDICTS == message.VERDICTS
    assert AGREEMENTS == message.AGREEMENTS


_PIECES = st.sampled_from(
    [
        "kind", "verdict", "tickers", "ticker", "status", "agreement", "confidence", "rating",
        "=", ">=", ">", "<=", "<", "!", ";", "\n", ",", " ", "post", "spike", "BUY", "hold",
        "0.8", "7", "1e-3", "nvda", "BTC-USD", "reject", "ok", "-", ".",
    ]
)  # fmt: skip


@given(
    st.one_of(
        st.text(max_size=300),
        st.text(alphabet=st.sampled_from("kindvertcoa=<>!;,.\n 0123456789-eE"), max_size=300),
        st.lists(st.one_of(_PIECES, st.text(max_size=4)), max_size=60).map("".join),
    )
)
def test_any_text_is_rules_or_a_one_line_config_error(text: str) -> None:
    refused: ConfigError | None = None
    try:
        rules = parse_rules(text)
    except ConfigError as error:
        refused, rules = error, ()
    if refused is not None:
        assert refused.setting == "ALERT_RULES"
        assert len(str(refused).splitlines()) == 1
    assert isinstance(rules, tuple)
    assert all(rule.text and rule.text == rule.text.strip() for rule in rules)
    assert all(rule.conditions for rule in rules)


@given(
    decision=st.builds(
        AlertFacts,
        kind=st.sampled_from(sorted(KINDS)),
        ticker=st.from_regex(r"[A-Z0-9./-]{1,32}", fullmatch=True),
        verdict=st.sampled_from(sorted(VERDICTS)),
        confidence=st.floats(min_value=0, max_value=1).map(abs),
        status=st.sampled_from(sorted(STATUSES)),
        agreement=st.none() | st.sampled_from(sorted(AGREEMENTS)),
        rating=st.none() | st.integers(min_value=1, max_value=10),
    ),
    compare=st.sampled_from(["=", ">=", "<="]),
)
def test_a_rule_made_of_a_decisions_own_values_matches_it(
    decision: AlertFacts, compare: str
) -> None:
    conditions = [
        f"kind={decision.kind.upper()}",
        f"ticker={decision.ticker.lower()}",
        f"verdict={decision.verdict.lower()}",
        f"status={decision.status}",
        f"confidence{compare}{decision.confidence!r}",
    ]
    if decision.agreement is not None:
        conditions.append(f"agreement={decision.agreement}")
    if decision.rating is not None:
        conditions.append(f"rating{compare}{decision.rating}")
    rules = parse_rules(" ".join(conditions))
    assert matches_any(rules, decision)
    assert rule_kinds(rules) == {decision.kind}
    other = next(kind for kind in sorted(KINDS) if kind != decision.kind)
    assert not matches_any(parse_rules(" ".join([f"kind={other}", *conditions[1:]])), decision)
