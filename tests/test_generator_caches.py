"""The generator's speed caches change no value: a cached answer is the answer it replaces.

Money amounts, payer line shares, adjudicated claim lines and rounded draws are looked up instead of recomputed (see
``synthetic.builders.common``, ``synthetic.builders.billing``, ``synthetic.catalog``). The rule,
for any input: the first (computed) and the later (cached) answers serialise exactly like the
plain computation, ints stay ints, and nothing editable is shared between callers.
"""

from __future__ import annotations

import random

import orjson
from hypothesis import given
from hypothesis import strategies as hs

from synthetic.builders.billing import adjudicate, line_item, payer_shares
from synthetic.builders.common import UCUM, money, qty, usd, usd_cents
from synthetic.catalog import Dist
from synthetic.frozen import FrozenDict, FrozenList

AMOUNTS = hs.one_of(
    hs.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False),
    hs.integers(min_value=-(10**6), max_value=10**6),
    hs.sampled_from([0.0, -0.0, 0.005, 0.015, 1.005, 2.675, 0.125, -0.005, 1e-9]),
)
RATIOS = hs.floats(min_value=0.0, max_value=1.0, allow_nan=False)
CHARGES = hs.lists(
    hs.floats(min_value=0.0, max_value=5000.0, allow_nan=False).map(lambda x: round(x, 2)),
    min_size=1,
    max_size=6,
)


@given(value=AMOUNTS)
def test_usd_cents_is_usd_of_the_rounded_amount_first_time_and_every_time(value: float) -> None:
    expected = orjson.dumps(usd(round(value, 2)))
    first, again = usd_cents(value), usd_cents(value)
    assert orjson.dumps(first) == expected and orjson.dumps(again) == expected
    assert type(first["value"]) is type(round(value, 2))
    if type(first) is not FrozenDict:  # not shared: every caller gets its own dict
        assert again is not first


@given(value=AMOUNTS)
def test_money_rounds_half_a_cent_up_whatever_is_cached(value: float) -> None:
    expected = orjson.dumps(usd(round(value + 1e-9, 2)))
    assert orjson.dumps(money(value)) == expected and orjson.dumps(money(value)) == expected


@given(charges=CHARGES, ratio=RATIOS, copay=hs.sampled_from([0.0, 10.0, 25.0, 40.0]), ded=RATIOS)
def test_payer_shares_copay_comes_off_the_first_line_only(
    charges: list[float], ratio: float, copay: float, ded: float
) -> None:
    shares = payer_shares(tuple(charges), ratio, copay, ded)
    assert shares == payer_shares(tuple(charges), ratio, copay, ded)  # cached: the same
    assert [s[0] for s in shares] == charges
    assert shares[0] == payer_shares((charges[0],), ratio, copay, ded)[0]
    for sub, line in zip(charges[1:], shares[1:], strict=True):
        assert line == payer_shares((sub,), ratio, 0.0, ded)[0]
    for _, eligible, cp, deductible, benefit in shares:
        assert 0.0 <= cp <= eligible and benefit >= 0.0
        assert abs(eligible - cp - deductible - benefit) < 0.015 or benefit == 0.0


def test_payer_shares_of_ints_stay_ints_and_differ_from_the_float_answer() -> None:
    as_ints = payer_shares((100,), 1, 0, 0)
    as_floats = payer_shares((100.0,), 1.0, 0.0, 0.0)
    assert orjson.dumps(as_ints) == b"[[100,100,0,0,100]]"
    assert orjson.dumps(as_floats) == b"[[100.0,100.0,0.0,0.0,100.0]]"
    assert orjson.dumps(payer_shares((100,), 1, 0, 0)) == orjson.dumps(as_ints)


@given(
    mean=hs.floats(min_value=-500, max_value=500, allow_nan=False),
    decimals=hs.integers(min_value=0, max_value=3),
)
def test_a_draw_is_the_clamped_value_rounded_and_an_int_without_decimals(
    mean: float, decimals: int
) -> None:
    value = Dist(mean, 0.0, -100.0, 100.0, decimals).draw(random.Random(0))
    expected = round(min(max(mean, -100.0), 100.0), decimals)
    if decimals == 0:
        assert type(value) is int and value == int(expected)
    else:
        assert type(value) is float and orjson.dumps(value) == orjson.dumps(expected)


@given(
    value=hs.one_of(hs.integers(-1000, 1000), hs.floats(-1000, 1000, allow_nan=False)),
    unit=hs.sampled_from(["kg", "/min", "mm[Hg]", "%"]),
)
def test_qty_serialises_as_the_plain_quantity_ints_apart_from_floats(
    value: float, unit: str
) -> None:
    for v in (value, float(value), int(value)):  # equal keys of both types, either order
        plain = {"value": v, "unit": unit, "system": UCUM, "code": unit}
        assert orjson.dumps(qty(v, unit)) == orjson.dumps(plain)
        assert orjson.dumps(qty(v, unit)) == orjson.dumps(plain)


def _plain_line(seq: int, share: tuple, reduction: dict | None) -> dict:
    """An adjudicated line as the rule states it, nothing shared."""
    submitted, eligible, cp, deductible, benefit = share

    def entry(code: str, value: float) -> dict:
        coding = {"system": "http://terminology.hl7.org/CodeSystem/adjudication", "code": code}
        display = {"submitted": "Submitted Amount", "eligible": "Eligible Amount"}
        display |= {"copay": "CoPay", "deductible": "Deductible", "benefit": "Benefit Amount"}
        coding["display"] = display[code]
        return {"category": {"coding": [coding]}, "amount": usd(value)}

    out = [entry("submitted", submitted), entry("eligible", eligible)]
    if reduction is not None and submitted != eligible:
        out.append({**reduction, "amount": usd(round(submitted - eligible, 2))})
    out += [entry(c, v) for c, v in (("copay", cp), ("deductible", deductible)) if v]
    out.append(entry("benefit", benefit))
    return {"itemSequence": seq, "adjudication": out}


SHARE_AMOUNTS = hs.one_of(
    hs.sampled_from([0.0, -0.0, 0, 20.0, 20, 12.5]),
    hs.floats(min_value=-10.0, max_value=500.0, allow_nan=False).map(lambda x: round(x, 2)),
)
REDUCTION = {"category": {"text": "CO"}, "reason": {"text": "45"}}


@given(
    lines=hs.lists(
        hs.tuples(hs.integers(1, 4), hs.tuples(*[SHARE_AMOUNTS] * 5), hs.booleans()),
        min_size=1,
        max_size=8,
    )
)
def test_an_adjudicated_line_is_the_plain_line_first_time_and_every_time(
    lines: list[tuple[int, tuple, bool]],
) -> None:
    for seq, share, reduced in lines + lines:  # each line computed, then maybe cached
        reduction = REDUCTION if reduced else None
        item = line_item(seq, share, reduction)
        assert orjson.dumps(item) == orjson.dumps(_plain_line(seq, share, reduction))
        assert type(item) is FrozenDict and type(item["adjudication"]) is FrozenList


@given(
    charges=CHARGES,
    ratio=RATIOS,
    copay=hs.sampled_from([0.0, 10.0, 25.0]),
    ded=RATIOS,
    reduced=hs.booleans(),
)
def test_an_adjudication_is_its_plain_lines(
    charges: list[float], ratio: float, copay: float, ded: float, reduced: bool
) -> None:
    shares = payer_shares(tuple(charges), ratio, copay, ded)
    reduction = REDUCTION if reduced else None
    seqs = tuple(range(1, len(shares) + 1))
    a = adjudicate(shares, seqs, reduction)
    plain = [_plain_line(q, s, reduction) for q, s in zip(seqs, shares, strict=True)]
    assert orjson.dumps(a.items) == orjson.dumps(plain)
    assert a.amount["value"] == round(sum(s[4] for s in shares) + 1e-9, 2)
