"""A cached adjudication is the adjudication it replaces, and it shares only frozen parts.

``synthetic.builders.billing.adjudicate`` keeps the payer's answer to the same charges under
the same plan and hands the same frozen ``item`` and ``total`` lists to every ClaimResponse.
The rule, for any charges and plan: the first (computed) and the later (cached) answers
serialise exactly like the arithmetic of :func:`~synthetic.builders.billing.payer_shares`
spelled out line by line, with the reduction (CO-45) after the eligible amount exactly when
the payer allows less than was billed, and every container in them refuses changes.
"""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as hs

from synthetic.builders.billing import adjudicate, payer_shares
from synthetic.builders.common import money, usd_cents
from synthetic.frozen import FrozenDict, FrozenList, freeze

CHARGES = hs.lists(
    hs.floats(min_value=0.0, max_value=5000.0, allow_nan=False).map(lambda x: round(x, 2)),
    min_size=1,
    max_size=6,
)
RATIOS = hs.floats(min_value=0.0, max_value=1.0, allow_nan=False)
COPAYS = hs.sampled_from([0.0, 10.0, 20.0, 25.0, 40.0, 75.5])
REDUCTION = freeze({"category": {"text": "CO"}, "reason": {"text": "45"}})


def _amount(value: float) -> dict[str, Any]:
    return {"value": value, "currency": "USD"}


def _expected(shares: Any, reduced: bool) -> dict[str, Any]:
    """The adjudication written out plainly from the line shares."""
    items = []
    for seq, (sub, elig, cp, ded, benefit) in enumerate(shares, start=1):
        entries = [("submitted", sub), ("eligible", elig)]
        adj = [{"category": k, "amount": _amount(v)} for k, v in entries]
        if reduced and sub != elig:
            adj.append({**REDUCTION, "amount": _amount(round(sub - elig, 2))})
        adj += [{"category": "copay", "amount": _amount(cp)}] if cp else []
        adj += [{"category": "deductible", "amount": _amount(ded)}] if ded else []
        adj.append({"category": "benefit", "amount": _amount(benefit)})
        items.append({"itemSequence": seq, "adjudication": adj})
    paid = sum(s[4] for s in shares)
    return {
        "items": items,
        "total": [round(sum(s[0] for s in shares) + 1e-9, 2), round(paid + 1e-9, 2)],
        "adjustment": round(sum(s[0] - s[1] for s in shares) + 1e-9, 2),
        "amount": round(paid + 1e-9, 2),
        "patient_share": sum(s[2] + s[3] for s in shares),
    }


def _plain(a: Any) -> dict[str, Any]:
    """The adjudication with category codings replaced by their code (as ``_expected``)."""

    def entry(e: dict[str, Any]) -> dict[str, Any]:
        cat = e["category"]
        code = cat["coding"][0]["code"] if "coding" in cat else cat
        return {**e, "category": code}

    return {
        "items": [{**i, "adjudication": [entry(e) for e in i["adjudication"]]} for i in a.items],
        "total": [e["amount"]["value"] for e in a.total],
        "adjustment": a.adjustment["value"],
        "amount": a.amount["value"],
        "patient_share": a.patient_share,
    }


def _containers(obj: Any) -> list[Any]:
    out = [obj]
    for v in obj.values() if isinstance(obj, dict) else obj:
        if isinstance(v, dict | list):
            out += _containers(v)
    return out


@given(charges=CHARGES, ratio=RATIOS, copay=COPAYS, ded=RATIOS, reduced_first=hs.booleans())
def test_adjudication_first_and_cached_is_the_line_arithmetic(
    charges: list[float], ratio: float, copay: float, ded: float, reduced_first: bool
) -> None:
    shares = payer_shares(tuple(charges), ratio, copay, ded)
    seqs = tuple(range(1, len(charges) + 1))
    for reduced in (reduced_first, not reduced_first, reduced_first):  # computed, then cached
        first = adjudicate(shares, seqs, REDUCTION if reduced else None)
        again = adjudicate(shares, seqs, REDUCTION if reduced else None)
        expected = orjson.dumps(_expected(shares, reduced))
        assert orjson.dumps(_plain(first)) == expected
        assert orjson.dumps(_plain(again)) == expected
        total = money(sum(s[0] - s[1] for s in shares))
        assert orjson.dumps(first.adjustment) == orjson.dumps(total)
        for part in (first.items, first.total, first.adjustment, first.amount):
            assert all(type(c) in (FrozenDict, FrozenList) for c in _containers(part))


@given(charges=CHARGES, ratio=RATIOS, copay=COPAYS, ded=RATIOS)
def test_reduction_entry_states_the_cents_between_billed_and_allowed(
    charges: list[float], ratio: float, copay: float, ded: float
) -> None:
    shares = payer_shares(tuple(charges), ratio, copay, ded)
    a = adjudicate(shares, tuple(range(1, len(charges) + 1)), REDUCTION)
    for item, (sub, elig, *_) in zip(a.items, shares, strict=True):
        reasons = [e for e in item["adjudication"] if "reason" in e]
        if sub == elig:
            assert reasons == []
        else:
            assert item["adjudication"].index(reasons[0]) == 2
            assert reasons[0]["amount"] == usd_cents(sub - elig)
