"""The remittance step's speed caches change no value: a cached answer is the answer it replaces.

``Remittance.paid_answer`` keeps a payer's shares of a claim's lines and their adjudication by
payer and charges. The rule, for any charges under any plan: the first (computed) and the later
(cached) answers serialise exactly like the plain computation (``payer_shares`` then
``adjudicate`` with CO-45), int charges stay ints, shared parts are frozen, and the cache stays
bounded.
"""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from synthetic.builders import billing
from synthetic.engine import engine_for
from synthetic.frozen import FrozenDict, FrozenList
from synthetic.visit import remittance as remittance_module
from synthetic.visit.remittance import Remittance

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
                "display": "Charge exceeds fee schedule/maximum allowable or contracted/legislated fee arrangement",
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
