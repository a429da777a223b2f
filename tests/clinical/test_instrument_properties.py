"""Properties that hold for every instrument, checked with hypothesis."""

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ketaclinic.clinical.instruments import Instrument, get_instrument, list_instruments, score
from ketaclinic.clinical.outcomes import REMISSION_RULES, classify

INSTRUMENTS = list_instruments()
SUMMED = [i for i in INSTRUMENTS if i.total_range is not None]
FAST = settings(max_examples=60, deadline=None)

# Every scoring-option variant whose band table or item ranges differ from the default.
VARIANTS = [
    *[(i.code, {}) for i in INSTRUMENTS],
    ("phq2", {"cutoff": 2}),
    ("pcl5", {"cutoff": 31}),
    ("hamd17", {"bands": "consensus"}),
    ("pain_nrs", {"bands": "serlin1995"}),
    ("bprs_positive", {"convention": "0-6"}),
    ("aldrete_modified", {"cutoff": 8}),
    ("padss_modified", {"cutoff": 10}),
]


@st.composite
def complete_answers(draw, instrument: Instrument) -> dict:
    """A valid, complete set of answers that respects skip logic and alternatives."""
    answers: dict = {}
    skip: set[str] = set()
    for group in instrument.exclusive_items:
        chosen = draw(st.sampled_from(group))
        skip.update(i for i in group if i != chosen)
    for item in instrument.items:
        if item.id in skip:
            continue
        if item.asked_if and answers.get(item.asked_if[0]) != item.asked_if[1]:
            answers[item.id] = None
            continue
        usable = [o.value for o in item.options if not o.unratable]
        if not item.scored and draw(st.booleans()):
            continue  # unscored items may be left blank
        answers[item.id] = draw(st.sampled_from(usable))
    return answers


@pytest.mark.parametrize(("code", "options"), VARIANTS, ids=lambda v: str(v))
@FAST
@given(data=st.data())
def test_valid_complete_answers_score_within_the_declared_range(code, options, data):
    instrument = get_instrument(code).configured(**options)
    answers = data.draw(complete_answers(instrument))
    result = score(code, answers, **options)
    assert result.errors == ()
    assert result.complete is True
    assert result.prorated is False
    if instrument.total_range is None:
        assert result.total is None
        assert result.band in instrument.band_codes
    else:
        low, high = instrument.total_range
        assert result.total is not None
        assert low <= result.total <= high
        if instrument.bands:
            assert result.band == instrument.band_for(result.total).code
    assert result.convention == instrument.settings


@pytest.mark.parametrize(("code", "options"), VARIANTS, ids=lambda v: str(v))
def test_band_tables_tile_the_total_range_in_rising_order(code, options):
    instrument = get_instrument(code).configured(**options)
    if instrument.total_range is None or not instrument.bands:
        return
    low, high = instrument.total_range
    assert instrument.bands[0].low == low
    assert instrument.bands[-1].high == high
    for lower, upper in zip(instrument.bands, instrument.bands[1:], strict=False):
        assert lower.high + 1 == upper.low  # no gap, no overlap
    order = [instrument.band_for(total).code for total in range(low, high + 1)]
    ranks = [instrument.band_codes.index(code) for code in order]
    assert ranks == sorted(ranks)  # bands never go down as the total rises


@st.composite
def one_bad_answer(draw):
    """(code, answers, bad item id): valid complete answers with one item made invalid."""
    instrument = draw(st.sampled_from(INSTRUMENTS))
    answers = draw(complete_answers(instrument))
    item = draw(st.sampled_from(instrument.items))
    if item.answer_type == "yes_no":
        bad = draw(st.one_of(st.integers(), st.text(max_size=3), st.floats(allow_nan=False)))
    else:
        low, high = item.value_range
        bad = draw(
            st.one_of(
                st.integers(max_value=low - 1),
                st.integers(min_value=high + 1),
                st.booleans(),
                st.floats(allow_nan=False),
                st.text(max_size=3),
            )
        )
    answers[item.id] = bad
    return instrument.code, answers, item.id


@FAST
@given(case=one_bad_answer())
def test_an_invalid_answer_always_errors_and_never_scores(case):
    code, answers, item_id = case
    result = score(code, answers)
    assert result.total is None
    assert result.band is None
    assert result.complete is False
    assert any(f"({item_id})" in error for error in result.errors)


@FAST
@given(
    answers=st.lists(st.one_of(st.none(), st.integers(0, 3)), min_size=9, max_size=9),
)
def test_phq9_prorates_up_to_two_missing_items_only(answers):
    result = score("phq9", answers)
    answered = [a for a in answers if a is not None]
    missing = 9 - len(answered)
    if missing == 0:
        assert result.total == sum(answered) and not result.prorated
    elif missing <= 2:
        exact = Fraction(sum(answered) * 9, len(answered))
        assert result.total == int(exact + Fraction(1, 2))  # half up
        assert result.prorated is True
        assert result.band == get_instrument("phq9").band_for(result.total).code
    else:
        assert result.total is None and result.band is None
    assert ("suicidality_unknown" in result.flags) == (answers[8] is None)
    assert ("suicidality" in result.flags) == (answers[8] is not None and answers[8] >= 1)


@FAST
@given(code=st.sampled_from([i.code for i in SUMMED]), data=st.data())
def test_a_mapping_scores_the_same_as_the_sequence(code, data):
    instrument = get_instrument(code)
    answers = data.draw(complete_answers(instrument))
    sequence = [answers.get(item_id) for item_id in instrument.item_ids]
    assert score(code, sequence) == score(code, answers)


OUTCOME_CODES = ["phq9", "gad7", "qids_sr16", "madrs", "hamd17", "pcl5", "cadss", "peg"]


@st.composite
def outcome_case(draw):
    code = draw(st.sampled_from(OUTCOME_CODES))
    low, high = get_instrument(code).total_range
    totals = st.one_of(st.none(), st.integers(low, high))
    return code, draw(totals), draw(totals)


@FAST
@given(case=outcome_case())
def test_classify_percent_change_and_response_agree(case):
    code, baseline, current = case
    outcome = classify(code, baseline, current)
    if baseline is None or current is None or baseline == 0:
        assert outcome.percent_change is None
        assert outcome.response is None
    else:
        assert outcome.percent_change == pytest.approx((baseline - current) / baseline * 100)
        assert outcome.response == ((baseline - current) * 2 >= baseline)
    rule = REMISSION_RULES.get(code)
    if current is None or rule is None:
        assert outcome.remission is None
    else:
        assert outcome.remission == rule.met(current)
