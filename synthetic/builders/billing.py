"""Coverage, Claim (ICD-10-CM diagnoses, priced sandbox/HCPCS lines) and ClaimResponse.

>>> import random
>>> from synthetic.context import RecordContext
>>> ctx = RecordContext("p", random.Random(0))
>>> ctx.encounter, ctx.when = {"reference": "Encounter/e"}, "2025-01-02T09:00:00-05:00"
>>> lines = [ClaimLine({"text": "Office visit"}, 112.5, (1, 2))]
>>> c = claim(ctx, lines=lines, diagnoses=[{"text": "I10"}, {"text": "E11.9"}], created="2025-01-02",
...           coverage="Coverage/c", provider="Organization/o", insurer="Organization/pay")
>>> c["total"], c["item"][0]["diagnosisSequence"]
({'value': 112.5, 'currency': 'USD'}, [1, 2])
"""

from __future__ import annotations

from dataclasses import dataclass
from math import copysign
from typing import Any

from synthetic.builders.common import cc, coding, money, shared_ref, usd, usd_cents
from synthetic.context import RecordContext
from synthetic.frozen import FrozenDict, FrozenList, freeze
from synthetic.labels import meta
from synthetic.systems import (
    ADJUDICATION,
    CLAIM_TYPE,
    EX_PAYMENT_TYPE,
    PROCESS_PRIORITY,
    SUBSCRIBER_RELATIONSHIP,
)

PRIORITY = PROCESS_PRIORITY
PAYMENT_TYPE = EX_PAYMENT_TYPE
SUBSCRIBER_REL = SUBSCRIBER_RELATIONSHIP
# shared by many resources: frozen (see synthetic.frozen)
_PROFESSIONAL = freeze(cc(CLAIM_TYPE, "professional", "Professional"))
_NORMAL = freeze(cc(PRIORITY, "normal", "Normal"))
_COMPLETE = freeze(cc(PAYMENT_TYPE, "complete", "Complete"))
_SELF = freeze(cc(SUBSCRIBER_REL, "self", "Self"))
_ADJ = {
    k: freeze({"coding": [coding(ADJUDICATION, k, d)]})
    for k, d in (
        ("submitted", "Submitted Amount"),
        ("eligible", "Eligible Amount"),
        ("copay", "CoPay"),
        ("deductible", "Deductible"),
        ("benefit", "Benefit Amount"),
    )
}


_ONE = freeze({"value": 1})
_NET: dict[float, dict[str, Any]] = {}
"""A line's price as Money (:func:`~synthetic.builders.common.money`), by (float) price."""


@dataclass(frozen=True, slots=True)
class ClaimLine:
    """A billed service: code, price and 1-based pointers into the claim's diagnoses.

    >>> ClaimLine({"text": "x"}, 10.0, (1,)).diagnosis_pointers
    (1,)
    """

    code: dict[str, Any]
    price: float
    diagnosis_pointers: tuple[int, ...]


def coverage(
    ctx: RecordContext,
    *,
    type_cc: dict[str, Any],
    payor: str,
    subscriber_id: str,
    start: str,
    payer_name: str,
) -> dict[str, Any]:
    """The patient's active Coverage (payor: the payer Organization, or the Patient for self-pay).

    >>> import random
    >>> from synthetic.context import RecordContext
    >>> cov = coverage(RecordContext("p", random.Random(0)), type_cc={"text": "x"}, payor="Patient/p",
    ...                subscriber_id="S1", start="2020-01-01", payer_name="Self-pay")
    >>> cov["beneficiary"]["reference"], cov["payor"][0]["reference"]
    ('Patient/p', 'Patient/p')
    """
    return {
        "resourceType": "Coverage",
        "id": ctx.new_id("cov"),
        "meta": meta("Coverage"),
        "status": "active",
        "type": type_cc,
        "subscriberId": subscriber_id,
        "beneficiary": ctx.subject,
        "relationship": _SELF,
        "period": {"start": start},
        "payor": [{"reference": payor, "display": payer_name}],
    }


def claim(
    ctx: RecordContext,
    *,
    lines: list[ClaimLine],
    diagnoses: list[dict[str, Any]],
    created: str,
    coverage: str,
    provider: str,
    insurer: str | None,
    security: tuple[dict[str, str], ...] | None = None,
    diagnosis: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A professional Claim for the current encounter (``diagnosis``: the claim's
    ``diagnosis`` element, :func:`diagnosis_element` of ``diagnoses``, when built already).

    >>> import random
    >>> c = RecordContext("p", random.Random(0)); c.encounter = {"reference": "Encounter/e"}
    >>> cl = claim(c, lines=[ClaimLine({"text": "x"}, 10.0, (1,))], diagnoses=[{"text": "I10"}],
    ...            created="2025-01-02", coverage="Coverage/c", provider="Organization/o", insurer=None)
    >>> cl["insurance"][0]["coverage"], "insurer" in cl
    ({'reference': 'Coverage/c'}, False)
    """
    items = []
    total = 0.0
    encounter = [ctx.encounter]  # shared by the items (read-only output)
    for i, line in enumerate(lines):
        price = line.price
        net = _NET.get(price) if type(price) is float else None
        if net is None:
            net = money(price)  # shared by unitPrice and net (read-only output)
            if type(net) is FrozenDict and type(price) is float and len(_NET) < 10_000:
                _NET[price] = net  # fees repeat: the same shared Money
        total += net["value"]
        items.append(
            {
                "sequence": i + 1,
                "diagnosisSequence": list(line.diagnosis_pointers),
                "productOrService": line.code,
                "servicedDate": created,
                "quantity": _ONE,
                "unitPrice": net,
                "net": net,
                "encounter": encounter,
            }
        )
    c: dict[str, Any] = {
        "resourceType": "Claim",
        "id": ctx.new_id("claim"),
        "meta": meta("Claim", security),
        "status": "active",
        "type": _PROFESSIONAL,
        "use": "claim",
        "patient": ctx.subject,
        "billablePeriod": {"start": created, "end": created},
        "created": created,
        "provider": shared_ref(provider),
        "priority": _NORMAL,
    }
    if insurer:
        c["insurer"] = shared_ref(insurer)
    c["diagnosis"] = diagnosis if diagnosis is not None else diagnosis_element(diagnoses)
    c["insurance"] = [{"sequence": 1, "focal": True, "coverage": {"reference": coverage}}]
    c["item"] = items
    c["total"] = money(total)
    return c


def diagnosis_element(diagnoses: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A claim's ``diagnosis`` element: ``diagnoses`` numbered from 1 (frozen: claims with the
    same diagnoses may share it, see :mod:`synthetic.frozen`).

    >>> diagnosis_element([{"text": "I10"}, {"text": "E11.9"}])
    [{'sequence': 1, 'diagnosisCodeableConcept': {'text': 'I10'}}, {'sequence': 2, 'diagnosisCodeableConcept': {'text': 'E11.9'}}]
    """
    return freeze(  # type: ignore[no-any-return]
        [{"sequence": i + 1, "diagnosisCodeableConcept": d} for i, d in enumerate(diagnoses)]
    )


Share = tuple[float, float, float, float, float]
"""One claim line as the payer pays it: (submitted, eligible, copay, deductible, benefit)."""
_SHARES: dict[tuple[Any, ...], tuple[Share, ...]] = {}
_FLOAT = frozenset({float})


def cache_safe(values: tuple[Any, ...]) -> bool:
    """Whether ``values`` may key a shared (cached) answer: floats only, and no -0.0. An int
    or a -0.0 equals a float or a 0.0 as a key but serialises differently, so an answer built
    for one must not be handed out for the other.

    >>> cache_safe((100.0, 0.0)), cache_safe((100, 0.0)), cache_safe((100.0, -0.0))
    (True, False, False)
    """
    if not _FLOAT.issuperset(map(type, values)):
        return False
    return 0.0 not in values or all(copysign(1.0, x) > 0 for x in values if not x)


def payer_shares(
    submitted: tuple[float, ...], allowed_ratio: float, copay: float, deductible_share: float
) -> tuple[Share, ...]:
    """Per claim line (``submitted`` charges, in order): how the payer splits it.

    eligible = submitted x allowed ratio; the copay comes off the first line; a share of the
    rest of eligible goes to the deductible; the payer pays the remainder (the benefit), all
    to the cent. Claims repeat the same few charges under the same few plans, so answers are
    kept in a bounded cache (float inputs only: an int would round to an int).

    >>> payer_shares((100.0, 50.0), 0.8, 20.0, 0.5)
    ((100.0, 80.0, 20.0, 30.0, 30.0), (50.0, 40.0, 0.0, 20.0, 20.0))
    >>> payer_shares((100.0,), 0.8, 20.0, 0.5) is payer_shares((100.0,), 0.8, 20.0, 0.5)
    True
    """
    cacheable = cache_safe((allowed_ratio, copay, deductible_share, *submitted))
    key = (submitted, allowed_ratio, copay, deductible_share)
    hit = _SHARES.get(key) if cacheable else None
    if hit is not None:
        return hit
    out = []
    for i, sub in enumerate(submitted):
        eligible = round(sub * allowed_ratio, 2)
        cp = round(min(copay, eligible), 2) if i == 0 else 0.0
        ded = round((eligible - cp) * deductible_share, 2)
        benefit = round(max(0.0, eligible - cp - ded), 2)
        out.append((sub, eligible, cp, ded, benefit))
    shares = tuple(out)
    if cacheable and len(_SHARES) < 50_000:
        _SHARES[key] = shares
    return shares


def claim_shares(
    claim_: dict[str, Any], allowed_ratio: float, copay: float, deductible_share: float
) -> tuple[Share, ...]:
    """:func:`payer_shares` of ``claim_``'s lines (their ``net`` charges, in order).

    >>> claim_shares({"item": [{"net": {"value": 100.0}}]}, 0.8, 20.0, 0.5)
    ((100.0, 80.0, 20.0, 30.0, 30.0),)
    """
    return payer_shares(claim_charges(claim_), allowed_ratio, copay, deductible_share)


def claim_charges(claim_: dict[str, Any]) -> tuple[float, ...]:
    """The charges (``net`` values) of ``claim_``'s lines, in order.

    >>> claim_charges({"item": [{"net": {"value": 100.0}}, {"net": {"value": 5.0}}]})
    (100.0, 5.0)
    """
    return tuple([item["net"]["value"] for item in claim_["item"]])


_ENTRIES: dict[str, dict[float, dict[str, Any]]] = {k: {} for k in _ADJ}
"""Shared adjudication entries by category, then by (float) amount."""


def _entry(category: str, value: float | int) -> dict[str, Any]:
    """One adjudication entry (category and USD amount), shared from a bounded cache."""
    by_amount = _ENTRIES[category]
    e = by_amount.get(value) if type(value) is float else None  # 1 and 1.0: equal keys
    if e is None:
        e = {"category": _ADJ[category], "amount": usd(value)}
        if value and type(value) is float and len(by_amount) < 10_000:  # a zero: not shared
            e = by_amount[value] = freeze(e)
    return e


@dataclass(frozen=True, slots=True)
class Adjudication:
    """A claim's lines as the payer pays them, ready for a ClaimResponse: the response's
    ``item`` and ``total`` lists and the payment's amounts (frozen: shared by every response
    to the same charges under the same plan), and the patient's share of the charges.

    >>> a = adjudicate(payer_shares((100.0,), 0.8, 20.0, 0.5), (1,))
    >>> a.amount, a.patient_share, [e["category"]["coding"][0]["code"] for e in a.items[0]["adjudication"]]
    ({'value': 30.0, 'currency': 'USD'}, 50.0, ['submitted', 'eligible', 'copay', 'deductible', 'benefit'])
    """

    shares: tuple[Share, ...]
    reduction: dict[str, Any] | None
    items: list[dict[str, Any]]
    total: list[dict[str, Any]]
    adjustment: dict[str, Any]
    amount: dict[str, Any]
    patient_share: float


_ADJUDICATIONS: dict[tuple[Any, ...], Adjudication] = {}


def adjudicate(
    shares: tuple[Share, ...],
    sequences: tuple[int, ...],
    reduction: dict[str, Any] | None = None,
    *,
    shared: bool = True,
) -> Adjudication:
    """The adjudication of claim lines numbered ``sequences`` paid as ``shares`` (from
    :func:`payer_shares`); ``reduction`` (a category and reason, e.g. the contractual
    adjustment CO-45) states each line's submitted minus eligible amount, when not zero,
    after the eligible amount.

    Answers are kept in a bounded cache by the identity of ``shares`` (:func:`payer_shares`
    hands out one tuple per charges and plan; the entry keeps it alive, so its id is not
    reused) and of ``reduction``; ``shared=False`` for shares made for one answer only (they
    would fill the cache with entries never asked for again).

    >>> s = payer_shares((100.0, 50.0), 0.8, 20.0, 0.5)
    >>> a = adjudicate(s, (1, 2))
    >>> [i["itemSequence"] for i in a.items], a.amount["value"], a.adjustment["value"]
    ([1, 2], 50.0, 30.0)
    >>> adjudicate(s, (1, 2)) is a
    True
    >>> r = {"category": {"text": "CO"}, "reason": {"text": "45"}}
    >>> adjudicate(s, (1, 2), r).items[0]["adjudication"][2]
    {'category': {'text': 'CO'}, 'reason': {'text': '45'}, 'amount': {'value': 20.0, 'currency': 'USD'}}
    """
    key = (id(shares), sequences, id(reduction))
    hit = _ADJUDICATIONS.get(key) if shared else None
    if hit is not None:
        return hit
    items = []
    paid = 0.0
    adjustment = 0.0
    submitted_total = 0.0
    for seq, share in zip(sequences, shares, strict=True):
        items.append(line_item(seq, share, reduction))
        submitted, eligible, _, _, benefit = share
        paid += benefit
        adjustment += submitted - eligible
        submitted_total += submitted
    hit = Adjudication(
        shares=shares,
        reduction=reduction,
        items=FrozenList(items),
        total=freeze(
            [
                _entry("submitted", round(submitted_total + 1e-9, 2)),  # as money()
                _entry("benefit", round(paid + 1e-9, 2)),
            ]
        ),
        adjustment=freeze(money(adjustment)),
        amount=freeze(money(paid)),
        patient_share=sum(cp + ded for _, _, cp, ded, _ in shares),
    )
    if (
        shared
        and len(_ADJUDICATIONS) < 10_000
        and cache_safe(tuple([x for share in shares for x in share]))
    ):
        _ADJUDICATIONS[key] = hit
    return hit


_LINE_ITEMS: dict[tuple[int, Share, int], tuple[dict[str, Any] | None, dict[str, Any]]] = {}
"""Adjudicated lines by sequence, share and (the identity of the) reduction; the entry keeps
the reduction alive, so its id is not reused."""


def line_item(seq: int, share: Share, reduction: dict[str, Any] | None = None) -> dict[str, Any]:
    """One adjudicated claim line (``itemSequence`` ``seq``, paid as ``share``, see
    :func:`adjudicate`), frozen: lines repeat (a fee under a plan) far more than whole claims
    do, so they are shared from a bounded cache.

    >>> item = line_item(1, (100.0, 80.0, 20.0, 30.0, 30.0))
    >>> [(e["category"]["coding"][0]["code"], e["amount"]["value"]) for e in item["adjudication"]]
    [('submitted', 100.0), ('eligible', 80.0), ('copay', 20.0), ('deductible', 30.0), ('benefit', 30.0)]
    >>> line_item(1, (100.0, 80.0, 20.0, 30.0, 30.0)) is item, type(item).__name__
    (True, 'FrozenDict')
    """
    shareable = type(seq) is int and cache_safe(share)
    key = (seq, share, id(reduction))
    if shareable:
        hit = _LINE_ITEMS.get(key)
        if hit is not None:
            return hit[1]
    submitted, eligible, cp, deductible, benefit = share
    adjudication = [_entry("submitted", submitted), _entry("eligible", eligible)]
    if reduction is not None and submitted != eligible:
        adjudication.append({**reduction, "amount": usd_cents(submitted - eligible)})
    if cp:
        adjudication.append(_entry("copay", cp))
    if deductible:
        adjudication.append(_entry("deductible", deductible))
    adjudication.append(_entry("benefit", benefit))
    # a zero amount is a new dict each time elsewhere; here the entry is this line's own
    item: dict[str, Any] = freeze({"itemSequence": seq, "adjudication": adjudication})
    if shareable and len(_LINE_ITEMS) < 20_000:
        _LINE_ITEMS[key] = (reduction, item)
    return item


def response(
    ctx: RecordContext,
    claim_: dict[str, Any],
    adjudication: Adjudication,
    *,
    created: str,
    insurer: str,
    requestor: str,
    security: tuple[dict[str, str], ...] | None = None,
    disposition: str | None = None,
    request: dict[str, str] | None = None,
    write_off: bool = True,
) -> dict[str, Any]:
    """The payer's ClaimResponse to ``claim_``, paid on ``created`` as ``adjudication`` says
    (``request``: a frozen reference to ``claim_`` when the caller has one, shared).

    ``write_off=False`` leaves out the payment's adjustment (the contractual write-off): for an
    answer whose reductions move no money (a crossover's OA-23, what the primary settled).

    >>> import random
    >>> from synthetic.context import RecordContext
    >>> ctx = RecordContext("p", random.Random(0)); ctx.encounter = {"reference": "Encounter/e"}
    >>> c = claim(ctx, lines=[ClaimLine({"text": "x"}, 100.0, (1,))], diagnoses=[{"text": "d"}],
    ...           created="2025-01-02", coverage="Coverage/c", provider="Organization/o", insurer=None)
    >>> a = adjudicate(payer_shares((100.0,), 0.8, 20.0, 0.0), (1,))
    >>> r = response(ctx, c, a, created="2025-02-01", insurer="Organization/pay",
    ...              requestor="Organization/o", disposition="Paid")
    >>> r["payment"]["amount"]["value"], r["disposition"]
    (60.0, 'Paid')
    >>> "adjustment" in response(ctx, c, a, created="2025-02-01", insurer="Organization/pay",
    ...                          requestor="Organization/o", write_off=False)["payment"]
    False
    """
    cr = {
        "resourceType": "ClaimResponse",
        "id": ctx.new_id("cr"),
        "meta": meta("ClaimResponse", security),
        "status": "active",
        "type": _PROFESSIONAL,
        "use": "claim",
        "patient": ctx.subject,
        "created": created,
        "insurer": shared_ref(insurer),
        "requestor": shared_ref(requestor),
        "request": request if request is not None else {"reference": f"Claim/{claim_['id']}"},
        "outcome": "complete",
        "item": adjudication.items,
        "total": adjudication.total,
        "payment": {
            "type": _COMPLETE,
            "adjustment": adjudication.adjustment,
            "date": created,
            "amount": adjudication.amount,
        }
        if write_off
        else {"type": _COMPLETE, "date": created, "amount": adjudication.amount},
    }
    if disposition is not None:
        cr["disposition"] = disposition
    return cr


def claim_response(
    ctx: RecordContext,
    claim_: dict[str, Any],
    *,
    created: str,
    insurer: str,
    requestor: str,
    allowed_ratio: float,
    copay: float,
    deductible_share: float,
    security: tuple[dict[str, str], ...] | None = None,
) -> dict[str, Any]:
    """The payer's adjudication of ``claim_``, paid on ``created``.

    Per item: eligible = submitted x allowed ratio; the copay comes off the first item; a share
    of eligible goes to the deductible; the rest is the benefit the payer pays. The difference
    between submitted and eligible is the contractual adjustment.

    >>> import random
    >>> from synthetic.context import RecordContext
    >>> ctx = RecordContext("p", random.Random(0)); ctx.encounter = {"reference": "Encounter/e"}
    >>> c = claim(ctx, lines=[ClaimLine({"text": "x"}, 100.0, (1,))], diagnoses=[{"text": "d"}],
    ...           created="2025-01-02", coverage="Coverage/c", provider="Organization/o", insurer=None)
    >>> r = claim_response(ctx, c, created="2025-02-01", insurer="Organization/pay", requestor="Organization/o",
    ...                    allowed_ratio=0.8, copay=20.0, deductible_share=0.0)
    >>> r["payment"]["amount"]["value"], r["payment"]["adjustment"]["value"]
    (60.0, 20.0)
    """
    shares = claim_shares(claim_, allowed_ratio, copay, deductible_share)
    adjudication = adjudicate(shares, tuple([item["sequence"] for item in claim_["item"]]))
    return response(
        ctx,
        claim_,
        adjudication,
        created=created,
        insurer=insurer,
        requestor=requestor,
        security=security,
    )
