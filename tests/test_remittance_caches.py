"""The remittance step's speed caches change no value: a cached answer is the answer it replaces.

``Remittance.paid_answer`` keeps a payer's shares of a claim's lines and their adjudication by
payer and charges. The rule, for any charges under any plan: the first (computed) and the later
(cached) answers serialise exactly like the plain computation (``payer_shares`` then
``adjudicate`` with CO-45), int charges stay ints, shared parts are frozen, and the cache stays
bounded. ``Remittance.eligibility_parts`` keeps the last coverage's eligibility parts: for any
sequence of coverages they are the plain parts of the coverage asked for, frozen. Every billing
cache keys by one rule (``billing.cache_safe``): equal safe keys serialise alike. A crossover claim copies the primary claim but for the fields it replaces
(``unshare_except``): the two still share no editable container.
"""

from __future__ import annotations

import random

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

import synthetic
from synthetic.builders import billing
from synthetic.engine import engine_for
from synthetic.frozen import FrozenDict, FrozenList
from synthetic.visit import remittance as remittance_module
from synthetic.visit.remittance import Remittance, day_span, unshare_except

ENGINE = engine_for(seed=1, reference_date="2026-01-01", years=2, population="family-practice")
PAYERS = [p for p in ENGINE.cat.payers if p.type != "self-pay"]
CHARGES = hs.lists(
    hs.one_of(
        hs.floats(min_value=0.0, max_value=5000.0, allow_nan=False).map(lambda x: round(x, 2)),
        hs.integers(min_value=0, max_value=5000),
    ),
    min_size=1,
    max_size=6,
)
CO45 = {
    "category": {"coding": [{"system": remittance_module.GROUP_SYSTEM, "code": "CO"}]},
    "reason": {
        "coding": [
            {
                "system": remittance_module.CARC_SYSTEM,
                "code": "45",
                "display": "Charge exceeds the fee schedule or contracted maximum allowable amount",
            }
        ]
    },
}


def _claim(charges: list[float]) -> dict:
    return {
        "item": [{"sequence": i + 1, "net": {"value": c}} for i, c in enumerate(charges)],
    }


def _plain(charges: list[float], payer: object) -> bytes:
    """The answer computed from scratch (new tuples: no cached adjudication applies)."""
    shares = billing.payer_shares(
        tuple(charges),
        payer.allowed_ratio,  # type: ignore[attr-defined]
        float(payer.copay),  # type: ignore[attr-defined]
        payer.deductible_share,  # type: ignore[attr-defined]
    )
    fresh = tuple(tuple(s) for s in shares)
    a = billing.adjudicate(fresh, tuple(range(1, len(charges) + 1)), CO45)
    return orjson.dumps([fresh, a.items, a.total, a.adjustment, a.amount, a.patient_share])


def _dump(answer: tuple) -> bytes:
    shares, a = answer
    return orjson.dumps([shares, a.items, a.total, a.adjustment, a.amount, a.patient_share])


@settings(max_examples=150, deadline=None)
@given(charges=CHARGES, payer_i=hs.integers(0, len(PAYERS) - 1))
def test_paid_answer_is_the_plain_computation_first_time_and_every_time(
    charges: list[float], payer_i: int
) -> None:
    payer = PAYERS[payer_i]
    r = Remittance(ENGINE)
    expected = _plain(charges, payer)
    first = r.paid_answer(_claim(charges), payer)
    again = r.paid_answer(_claim(list(charges)), payer)
    assert _dump(first) == expected and _dump(again) == expected
    assert [type(s[0]) for s in first[0]] == [type(c) for c in charges]  # ints stay ints
    a = first[1]
    assert type(a.items) is FrozenList and type(a.amount) is FrozenDict
    if all(type(c) is float for c in charges):
        assert again is first  # cached
    # a float claim after an equal int claim (or the reverse) gets its own answer
    other = [float(c) if type(c) is int else int(c) if c == int(c) else c for c in charges]
    assert _dump(r.paid_answer(_claim(other), payer)) == _plain(other, payer)


def test_the_answer_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(remittance_module, "ANSWER_CACHE_SIZE", 2)
    r = Remittance(ENGINE)
    for charges in ([10.0], [20.0], [30.0, 5.0], [40.0]):
        assert _dump(r.paid_answer(_claim(charges), PAYERS[0])) == _plain(charges, PAYERS[0])
    assert len(r._answers) == 2


def _plain_containers(obj: object) -> list[object]:
    if type(obj) is dict:
        return [obj, *(c for v in obj.values() for c in _plain_containers(v))]
    if type(obj) is list:
        return [obj, *(c for v in obj for c in _plain_containers(v))]
    return []


@settings(deadline=None)  # a loaded machine must not fail a rule about values
@given(
    fields=hs.dictionaries(
        hs.sampled_from(["id", "item", "total", "diagnosis", "insurance", "created"]),
        hs.recursive(
            hs.integers() | hs.text(max_size=3),
            lambda inner: hs.lists(inner, max_size=3) | hs.dictionaries(hs.text(max_size=2), inner),
            max_leaves=6,
        ),
    ),
    replaced=hs.frozensets(hs.sampled_from(["id", "item", "total", "diagnosis"])),
)
def test_unshare_except_copies_every_field_it_does_not_leave_to_the_caller(
    fields: dict, replaced: frozenset
) -> None:
    new = unshare_except(fields, replaced)
    assert new == fields and list(new) == list(fields)
    for k, v in fields.items():
        if k in replaced:
            assert new[k] is v
        else:
            mine = {id(c) for c in _plain_containers(new[k])}
            assert not mine & {id(c) for c in _plain_containers(v)}


def test_crossover_claims_share_no_plain_container_with_the_primary_claim() -> None:
    records = list(synthetic.generate(2, seed=3, years=10, population="cardiology"))
    resources = [r for rec in records for r in rec.all()]
    crossovers = [r for r in resources if r["resourceType"] == "Claim" and len(r["insurance"]) == 2]
    assert crossovers  # the data set has dual-eligible patients
    owner: dict[int, int] = {}
    for i, r in enumerate(resources):
        for c in _plain_containers(r):
            assert owner.setdefault(id(c), i) == i, r["resourceType"]


@settings(max_examples=60, deadline=None)
@given(
    asks=hs.lists(
        hs.tuples(hs.sampled_from(["cov-1", "cov-2", "cov-x-3"]), hs.integers(0, len(PAYERS) - 1)),
        min_size=1,
        max_size=8,
    )
)
def test_eligibility_parts_are_the_plain_parts_of_the_coverage_asked_for(
    asks: list[tuple[str, int]],
) -> None:
    r = Remittance(ENGINE)
    for cov_id, payer_i in asks:
        payer = PAYERS[payer_i]
        insurer, asked, answered = r.eligibility_parts(cov_id, payer)
        cov = {"reference": f"Coverage/{cov_id}"}
        benefit = [
            {"type": {"coding": [{"system": remittance_module.BENEFIT_TYPE, "code": "copay"}]}}
        ]
        benefit[0]["allowedMoney"] = {"value": round(float(payer.copay), 2), "currency": "USD"}
        assert insurer == {"reference": f"Organization/{ENGINE.practice.payer_org[payer.key]}"}
        assert asked == [{"focal": True, "coverage": cov}]
        assert answered[0]["coverage"] == cov and answered[0]["inforce"] is True
        assert answered[0]["item"][0]["benefit"] == benefit
        for part in (insurer, asked, answered, asked[0], answered[0]):
            assert type(part) in (FrozenDict, FrozenList)


def test_a_paid_answer_and_its_era_share_one_frozen_reference_to_the_claim() -> None:
    records = list(synthetic.generate(3, seed=5, years=4))
    resources = [r for rec in records for r in rec.all()]
    claims = {r["id"] for r in resources if r["resourceType"] == "Claim"}
    paid = [
        r
        for r in resources
        if r["resourceType"] == "ClaimResponse" and r.get("disposition") == "Paid"
    ]
    eras = {
        r["detail"][0]["response"]["reference"]: r["detail"][0]
        for r in resources
        if r["resourceType"] == "PaymentReconciliation" and "response" in r["detail"][0]
    }
    assert paid
    shared = 0
    for cr in paid:
        ref = cr["request"]
        assert ref == {"reference": ref["reference"]}
        assert ref["reference"].removeprefix("Claim/") in claims
        detail = eras.get(f"ClaimResponse/{cr['id']}")
        if detail is not None:
            assert detail["request"] == ref
            shared += detail["request"] is ref
            assert detail["request"] is not ref or type(ref) is FrozenDict
    assert shared  # the answer and its ERA share one reference


@given(
    seed=hs.integers(0, 2**32),
    lo=hs.floats(0.0, 5.0, allow_nan=False),
    width=hs.floats(0.0, 5.0, allow_nan=False),
    span=hs.lists(hs.integers(0, 60), min_size=1, max_size=2),
)
def test_the_payment_lag_and_day_draws_are_the_draws_random_makes(
    seed: int, lo: float, width: float, span: list[int]
) -> None:
    """Remittance draws a lag as lo + (hi - lo) * random() (how ``random.uniform`` is
    documented) and days as low + randrange(day_span(span)[1]): the same numbers, the same
    draws."""
    hi = lo + width
    a, b = random.Random(seed), random.Random(seed)
    assert a.uniform(lo, hi) == lo + (hi - lo) * b.random()
    first, n = day_span(span)
    assert first + a.randrange(n) == span[0] + b.randrange(max(1, span[-1] - span[0] + 1))
    assert a.random() == b.random()  # as many draws made


@given(
    hs.lists(hs.one_of(hs.floats(allow_nan=False), hs.integers(-5, 5)), max_size=6),
    hs.lists(hs.one_of(hs.floats(allow_nan=False), hs.integers(-5, 5)), max_size=6),
)
def test_cache_safe_keys_that_are_equal_serialise_alike(a: list[object], b: list[object]) -> None:
    """The one rule every billing cache keys by: two safe keys that are equal give the same JSON."""
    x, y = tuple(a), tuple(b)
    if billing.cache_safe(x) and billing.cache_safe(y) and x == y:
        assert orjson.dumps(x) == orjson.dumps(y)


def test_payer_shares_of_a_negative_zero_charge_are_not_those_of_zero() -> None:
    """-0.0 equals 0.0 as a key but serialises differently: its answer is its own."""
    billing.payer_shares((0.0,), 0.8, 20.0, 0.5)  # fills the cache for the 0.0 key
    shares = billing.payer_shares((-0.0,), 0.8, 20.0, 0.5)
    assert orjson.dumps(shares[0][0]) == b"-0.0"
