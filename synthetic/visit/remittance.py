"""The revenue cycle of one visit, as the EHR's workflows record it: eligibility check at
check-in, the copay paid at the desk, the payer's answer after a variable lag (paid with a
contractual adjustment, or denied whole with a CARC group and reason code and a RARC remark),
the ERA's payment (``PaymentReconciliation``), a statement (``Invoice``) for what the patient
still owes, and the patient's payment of it. A denial is worked some days later by its reason
(``denial_work.toml``): a corrected claim replaces it and is paid, it is written off with a
physician-owner's approval, or it is moved to the patient's balance and billed. Rates and reasons are content
(``rules.toml [remittance]``, with sources).

The shapes are those of ``ehr_sandbox.workflows`` (eligibility, payer, payments), so the
workflows' ledger, day sheet and A/R aging read generated data as they read their own.

>>> from synthetic.engine import engine_for
>>> e = engine_for(seed=1, reference_date="2026-01-01", years=3, population="family-practice")
>>> types = {r["resourceType"] for i in range(12) for r in e.patient(i).resources}
>>> {"CoverageEligibilityResponse", "PaymentReconciliation", "ClaimResponse"} <= types
True
"""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources
from typing import Any

from synthetic.builders import billing
from synthetic.builders.common import coding, shared_ref, usd_cents
from synthetic.context import RecordContext
from synthetic.dates import iso_date
from synthetic.frozen import FrozenDict, freeze, unshare
from synthetic.labels import meta
from synthetic.systems import (
    ADJUDICATION,
    BENEFIT_TYPE,
    CARC,
    CARC_GROUP,
    EFT_TRACE,
    EX_BENEFIT_CATEGORY,
    EX_PAYMENT_TYPE,
    EX_RELATED_CLAIM_RELATIONSHIP,
    PAYMENT_TYPE,
    SANDBOX_LEDGER_BUCKET,
    SANDBOX_LEDGER_KIND,
    SANDBOX_PAYMENT_METHOD,
)
from synthetic.visit.state import PatientState, VisitState

CARC_SYSTEM = CARC
"""CARC code system (as ``ehr_sandbox.workflows.payer``)."""
GROUP_SYSTEM = CARC_GROUP
"""Claim adjustment group codes (CO, PR, OA, PI)."""
LEDGER_KIND = SANDBOX_LEDGER_KIND
"""The ledger's transaction kinds (``ehr_sandbox.workflows.ledger``)."""
PAYMENT_METHOD = SANDBOX_PAYMENT_METHOD
BUCKET_SYSTEM = SANDBOX_LEDGER_BUCKET
"""Which balance a write-off lowers (``ehr_sandbox.workflows.payments``)."""
RELATED_SYSTEM = EX_RELATED_CLAIM_RELATIONSHIP
CROSSOVER_DAYS = 2
"""Days from the primary's ERA to the crossover claim to the secondary plan."""
SMALL_BALANCE = 10.0
"""Write-offs above this need a physician-owner's approval (``workflows.payments``)."""
ANSWER_CACHE_SIZE = 10_000
"""At most this many paid answers (by payer and charges) are kept (per engine)."""
# shared by many resources: frozen (see synthetic.frozen)
_CAT = {
    k: freeze({"coding": [{"system": ADJUDICATION, "code": k}]})
    for k in ("submitted", "eligible", "benefit")
}
_PURPOSE = freeze(["benefits", "validation"])
_COPAY_BENEFIT = freeze({"coding": [{"system": BENEFIT_TYPE, "code": "copay"}]})
_PLAN_COVERAGE = freeze(
    {
        "coding": [
            coding(
                EX_BENEFIT_CATEGORY,
                "30",
                "Health Benefit Plan Coverage",
            )
        ]
    }
)
_CO45 = freeze(
    {
        "category": {"coding": [{"system": GROUP_SYSTEM, "code": "CO"}]},
        "reason": {
            "coding": [
                {
                    "system": CARC_SYSTEM,
                    "code": "45",
                    "display": "Charge exceeds the fee schedule or contracted maximum allowable amount",
                }
            ]
        },
    }
)
_OA23 = freeze(
    {
        "category": {"coding": [{"system": GROUP_SYSTEM, "code": "OA"}]},
        "reason": {
            "coding": [
                {
                    "system": CARC_SYSTEM,
                    "code": "23",
                    "display": "The impact of prior payer(s) adjudication including payments and/or adjustments",
                }
            ]
        },
    }
)
"""On a secondary plan's answer, what the primary already settled of each line (its payment
and contractual adjustment): X12 CARC 23, group OA, as ``ehr_sandbox.workflows.payer`` states
it (informational: it moves no money)."""


_usd = usd_cents


@cache
def _kind(kind: str, payment_type: str = "payment", bucket: str | None = None) -> dict[str, Any]:
    """A ledger transaction's type (payment type, ledger kind, the balance a write-off lowers);
    shared by many resources: frozen (see synthetic.frozen)."""
    coding_ = [
        {"system": PAYMENT_TYPE, "code": payment_type},
        {"system": LEDGER_KIND, "code": kind},
    ]
    if bucket is not None:
        coding_.append({"system": BUCKET_SYSTEM, "code": bucket})
    return freeze({"coding": coding_})  # type: ignore[no-any-return]


@cache
def _method_type(method: str) -> dict[str, Any]:
    """The ``paymentIdentifier.type`` of a payment method (shared: frozen)."""
    return freeze({"coding": [{"system": PAYMENT_METHOD, "code": method}]})  # type: ignore[no-any-return]


# the types every ERA and patient payment carries, looked up once
_INSURER_PAYMENT = _kind("insurer-payment")
_PATIENT_PAYMENT = _kind("patient-payment")
_EFT = _method_type("eft")


@cache
def self_pay_policy() -> dict[str, Any]:
    """Uninsured visits' payment policy (``synthetic/content/data/self_pay.toml``).

    >>> 0 < self_pay_policy()["paid_at_desk"] < 1
    True
    """
    text = (resources.files("synthetic.content") / "data" / "self_pay.toml").read_text("utf-8")
    return tomllib.loads(text)


@cache
def denial_work() -> dict[str, Any]:
    """How denials are worked, by CARC code (``synthetic/content/data/denial_work.toml``).

    >>> denial_work()["action"]["27"]
    'bill-patient'
    """
    text = (resources.files("synthetic.content") / "data" / "denial_work.toml").read_text("utf-8")
    return tomllib.loads(text)


class _Weighted:
    """Weighted choices and their total weight (summed once, as a draw would sum them)."""

    __slots__ = ("weights", "total")

    def __init__(self, weights: list[tuple[Any, float]]) -> None:
        self.weights = weights
        self.total = sum(w for _, w in weights)


def _pick(rng: Any, choices: _Weighted) -> Any:
    weights = choices.weights
    x = rng.random() * choices.total
    for item, w in weights:
        x -= w
        if x < 0:
            return item
    return weights[-1][0]


def day_span(span: list[int]) -> tuple[int, int]:
    """A content span of days ``[low, high]`` as (low, number of days), for :func:`_days`.

    >>> day_span([3, 10]), day_span([5]), day_span([4, 2])
    ((3, 8), (5, 1), (4, 1))
    """
    lo, hi = span[0], span[-1]
    return lo, max(1, hi - lo + 1)


def _days(rng: Any, span: tuple[int, int]) -> int:
    return span[0] + rng.randrange(span[1])


_CROSSOVER_SETS = frozenset({"id", "created", "insurer", "related", "insurance", "item", "total"})
"""The fields a crossover claim sets anew (:meth:`Remittance.crossover`)."""


def unshare_except(resource: dict[str, Any], replaced: frozenset[str]) -> dict[str, Any]:
    """:func:`~synthetic.frozen.unshare` of ``resource`` but for the fields in ``replaced``, kept
    as they are (the caller replaces them; copying them would be wasted work).

    >>> claim = {"id": "c1", "item": [{"net": 1}], "total": {"value": 1}}
    >>> new = unshare_except(claim, frozenset({"item"}))
    >>> list(new), new["item"] is claim["item"], new["total"] is claim["total"], new == claim
    (['id', 'item', 'total'], True, False, True)
    """
    return {k: v if k in replaced else unshare(v) for k, v in resource.items()}


def _denial_group(reason: Any) -> dict[str, Any]:
    """A denial reason's group and CARC code (shared by the lines: frozen)."""
    return freeze(  # type: ignore[no-any-return]
        {
            "category": {"coding": [{"system": GROUP_SYSTEM, "code": reason.group}]},
            "reason": {
                "coding": [
                    {"system": CARC_SYSTEM, "code": reason.carc, "display": reason.description}
                ]
            },
        }
    )


class Remittance:
    """Writes one visit's front-office and payer resources (see the module text).

    >>> from synthetic.engine import engine_for
    >>> r = Remittance(engine_for(seed=1, reference_date="2026-01-01", years=2, population="family-practice"))
    >>> 0.05 <= r.rates.denial_rate <= 0.10
    True
    """

    def __init__(self, eng: Any) -> None:
        self.eng = eng
        self.rates = eng.rules.remittance
        self.org = eng.org_ref
        reasons = [(d, d.share) for d in self.rates.denial]
        self.reasons = _Weighted(reasons)
        # a verified eligibility rules out a denial for coverage not in force
        self.reasons_checked = _Weighted([(d, w) for d, w in reasons if d.carc != "27"] or reasons)
        self.copay_methods = _Weighted(list(self.rates.copay_methods.items()))
        self.statement_methods = _Weighted(list(self.rates.statement_methods.items()))
        pr = eng.rules.payer  # the payer's answer comes after lag_days x [lag_low, lag_high]
        self.lag_span = (pr.lag_low, pr.lag_high) if pr is not None else (1.0, 1.0)
        # rng.uniform(lo, hi) is lo + (hi - lo) * rng.random() (as random documents it)
        self._lag_draw = (self.lag_span[0], self.lag_span[1] - self.lag_span[0])
        self._statement_after = day_span(self.rates.statement_after_days)
        self._statement_paid_after = day_span(self.rates.statement_paid_after_days)
        self._work_after = day_span(denial_work()["work_after_days"])
        self.provider = FrozenDict(reference=self.org)  # shared: frozen
        # per denial reason (content): its group and CARC, shared by every denied line
        self._groups = {id(d): (d, _denial_group(d)) for d in self.rates.denial}
        # per payer (content: a few): its Organization reference, its plan's benefits
        self._insurers: dict[str, str] = {}
        self._benefits: dict[str, list[dict[str, Any]]] = {}
        self._last_coverage: tuple[str, Any, Any] | None = None  # see eligibility_parts
        # per payer and claim charges: the lines' shares and the paid adjudication
        self._answers: dict[
            tuple[str, tuple[float, ...]], tuple[tuple[billing.Share, ...], billing.Adjudication]
        ] = {}

    def insurer(self, payer: Any) -> str | None:
        """The reference to the payer's Organization (None: no payer, or self-pay).

        >>> from synthetic.engine import engine_for
        >>> e = engine_for(seed=1, reference_date="2026-01-01", years=2, population="family-practice")
        >>> r = Remittance(e)
        >>> payer = next(p for p in e.cat.payers if p.type != "self-pay")
        >>> r.insurer(payer) == f"Organization/{e.practice.payer_org[payer.key]}", r.insurer(None)
        (True, None)
        """
        if payer is None or payer.type == "self-pay":
            return None
        ref = self._insurers.get(payer.key)
        if ref is None:
            ref = self._insurers[payer.key] = (
                f"Organization/{self.eng.practice.payer_org[payer.key]}"
            )
        return ref

    def _plan_benefits(self, payer: Any) -> list[dict[str, Any]]:
        """The eligibility response's benefit items for the payer's plan (shared: frozen)."""
        items = self._benefits.get(payer.key)
        if items is None:
            benefit = [{"type": _COPAY_BENEFIT, "allowedMoney": _usd(float(payer.copay))}]
            items = self._benefits[payer.key] = freeze(
                [{"category": _PLAN_COVERAGE, "benefit": benefit}]
            )
        return items

    def paid_answer(
        self, claim: dict[str, Any], payer: Any
    ) -> tuple[tuple[billing.Share, ...], billing.Adjudication]:
        """How ``payer`` pays ``claim``: its lines' :func:`~synthetic.builders.billing.payer_shares`
        and their :func:`~synthetic.builders.billing.adjudicate` with the contractual adjustment
        stated as CO-45. Kept in a bounded cache by payer and charges (float charges only: an
        int serialises differently), the claim's lines numbered 1, 2, ... as
        :func:`~synthetic.builders.billing.claim` numbers them.

        >>> from synthetic.engine import engine_for
        >>> e = engine_for(seed=1, reference_date="2026-01-01", years=2, population="family-practice")
        >>> r, payer = Remittance(e), next(p for p in e.cat.payers if p.type != "self-pay")
        >>> claim = {"item": [{"sequence": 1, "net": {"value": 100.0}}]}
        >>> shares, adjudication = r.paid_answer(claim, payer)
        >>> shares[0][0], adjudication.shares is shares, r.paid_answer(claim, payer)[1] is adjudication
        (100.0, True, True)
        """
        charges = billing.claim_charges(claim)
        cacheable = billing.cache_safe(charges)
        key = (payer.key, charges)
        hit = self._answers.get(key) if cacheable else None
        if hit is None:
            shares = billing.payer_shares(
                charges, payer.allowed_ratio, float(payer.copay), payer.deductible_share
            )
            sequences = tuple([item["sequence"] for item in claim["item"]])
            hit = (shares, billing.adjudicate(shares, sequences, _CO45))
            if cacheable and len(self._answers) < ANSWER_CACHE_SIZE:
                self._answers[key] = hit
        return hit

    # ------------------------------------------------------------------ check-in

    def eligibility_parts(
        self, cov_id: str, payer: Any
    ) -> tuple[dict[str, str], list[dict[str, Any]], list[dict[str, Any]]]:
        """An eligibility check's insurer reference and the request's and response's
        ``insurance`` for coverage ``cov_id`` with ``payer``; shared by the checks of the
        coverage (frozen: see :mod:`synthetic.frozen`). The last coverage's parts are kept:
        a patient's visits come one after another.

        >>> from synthetic.engine import engine_for
        >>> e = engine_for(seed=1, reference_date="2026-01-01", years=2, population="family-practice")
        >>> r, payer = Remittance(e), next(p for p in e.cat.payers if p.type != "self-pay")
        >>> insurer, asked, answered = r.eligibility_parts("cov-1", payer)
        >>> asked, answered[0]["coverage"] is asked[0]["coverage"], insurer["reference"] == r.insurer(payer)
        ([{'focal': True, 'coverage': {'reference': 'Coverage/cov-1'}}], True, True)
        >>> r.eligibility_parts("cov-1", payer)[1] is asked, r.eligibility_parts("cov-2", payer)[1] is asked
        (True, False)
        """
        last = self._last_coverage
        if last is not None and last[0] == cov_id and last[1] is payer:
            return last[2]
        cov = FrozenDict(reference=f"Coverage/{cov_id}")
        parts = (
            shared_ref(self.insurer(payer)),  # type: ignore[arg-type]
            freeze([{"focal": True, "coverage": cov}]),
            freeze([{"coverage": cov, "inforce": True, "item": self._plan_benefits(payer)}]),
        )
        self._last_coverage = (cov_id, payer, parts)
        return parts

    def check_in(self, ctx: RecordContext, st: PatientState, vs: VisitState) -> bool:
        """Verify eligibility for a share of insured visits (request and payer's response).

        Returns whether the plan was verified.

        >>> callable(Remittance.check_in)
        True
        """
        payer = vs.payer
        if payer is None or payer.type == "self-pay" or not vs.cov_id:
            return False
        if ctx.rng.random() >= self.rates.eligibility_check_share:
            return False
        day = iso_date(vs.day)
        insurer, asked, answered = self.eligibility_parts(vs.cov_id, payer)
        req = {
            "resourceType": "CoverageEligibilityRequest",
            "id": ctx.new_id("cer"),
            "meta": meta("CoverageEligibilityRequest", vs.security),
            "status": "active",
            "purpose": _PURPOSE,
            "patient": ctx.subject,
            "servicedDate": day,
            "created": day,
            "provider": self.provider,
            "insurer": insurer,
            "insurance": asked,
        }
        resp = {
            "resourceType": "CoverageEligibilityResponse",
            "id": ctx.new_id("ces"),
            "meta": meta("CoverageEligibilityResponse", vs.security),
            "status": "active",
            "purpose": _PURPOSE,
            "patient": ctx.subject,
            "servicedDate": day,
            "created": day,
            "request": {"reference": f"CoverageEligibilityRequest/{req['id']}"},
            "outcome": "complete",
            "disposition": "Coverage in force",
            "insurer": insurer,
            "insurance": answered,
        }
        ctx.add(req)
        ctx.add(resp)
        return True

    # ------------------------------------------------------------------ after the visit

    def settle(
        self,
        ctx: RecordContext,
        st: PatientState,
        vs: VisitState,
        claim: dict[str, Any],
        insurer: str,
        verified: bool,
    ) -> None:
        """Desk copay, the payer's answer and ERA, statement and the patient's payment.

        >>> callable(Remittance.settle)
        True
        """
        rng = ctx.rng
        rates = self.rates
        payer = vs.payer
        claim_ref = FrozenDict(reference=f"Claim/{claim['id']}")  # shared: frozen
        answer = self.paid_answer(claim, payer)
        shares = answer[0]
        copay = shares[0][2] if shares else 0.0
        paid_at_desk = 0.0
        if copay > 0 and rng.random() < rates.copay_at_desk:
            paid_at_desk = copay
            method = _pick(rng, self.copay_methods)
            self._patient_payment(
                ctx, vs, claim_ref, vs.day, copay, method, "Patient payment at the desk"
            )
        lo, width = self._lag_draw
        lag = max(3, round(payer.lag_days * (lo + width * rng.random())))
        answered = vs.day + lag
        denied = rng.random() < rates.denial_rate and self.reasons.weights
        reason = _pick(rng, self.reasons_checked if verified else self.reasons) if denied else None
        if answered >= st.end:
            return  # the payer has not answered by the end of the record
        if reason is not None:
            cr = self._denial(ctx, vs, claim, insurer, answered, reason)
            ctx.add(cr)
            self._era(ctx, vs, claim_ref, cr, insurer, answered)
            self.work_denial(ctx, st, vs, claim, insurer, answered, reason, paid_at_desk)
            return
        self._paid(ctx, st, vs, claim, insurer, answered, paid_at_desk, answer, claim_ref)

    def _paid(
        self,
        ctx: RecordContext,
        st: PatientState,
        vs: VisitState,
        claim: dict[str, Any],
        insurer: str,
        answered: int,
        paid_at_desk: float,
        answer: tuple[tuple[billing.Share, ...], billing.Adjudication] | None = None,
        claim_ref: dict[str, str] | None = None,
    ) -> None:
        """The payer pays ``claim`` on ``answered``: ClaimResponse with CO-45, the ERA, then a
        statement for what the patient still owes and maybe its payment (``answer``: the
        claim's :meth:`paid_answer` under the visit's payer, and ``claim_ref`` a frozen
        reference to it, when already known)."""
        shares, adjudication = answer if answer is not None else self.paid_answer(claim, vs.payer)
        if claim_ref is None:
            claim_ref = FrozenDict(reference=f"Claim/{claim['id']}")  # shared: frozen
        cr = billing.response(
            ctx,
            claim,
            adjudication,
            created=iso_date(answered),
            insurer=insurer,
            requestor=self.org,
            security=vs.security,
            disposition="Paid",
            request=claim_ref,
        )
        share = adjudication.patient_share
        ctx.add(cr)
        self._era(ctx, vs, claim_ref, cr, insurer, answered)
        second = st.secondary.get(vs.cov_id) if st.secondary else None
        if second is not None and share > 0 and paid_at_desk == 0:
            self.crossover(ctx, st, vs, claim, shares, answered, second, cr["id"])
            return
        self._statement(ctx, st, vs, claim_ref, answered, round(share - paid_at_desk, 2))

    def crossover(
        self,
        ctx: RecordContext,
        st: PatientState,
        vs: VisitState,
        claim: dict[str, Any],
        shares: tuple[billing.Share, ...],
        answered: int,
        second: tuple[str, Any],
        answer_id: str,
    ) -> None:
        """Bill what the primary left to the patient to the secondary plan: a Claim with both
        plans (the primary not focal, naming its answer ``answer_id`` in ``claimResponse``; the
        secondary focal), ``related`` to the primary claim, its lines keeping the primary's
        line numbers, sent when the primary's ERA is posted, and the secondary's payment in
        full (Medicaid pays Medicare's cost sharing for dual-eligible patients, who are not
        billed), as :func:`ehr_sandbox.workflows.secondary.bill_secondary` writes it. The
        secondary's answer states each line's charge as first billed and what the primary
        settled of it as OA-23, as :func:`ehr_sandbox.workflows.payer.adjudicate` does.

        >>> callable(Remittance.crossover)
        True
        """
        cov_id, payer = second
        items = []
        answered_lines = []  # (charge as first billed, owed) per line billed to the secondary
        for item, (charge, _, cp, ded, _) in zip(claim["item"], shares, strict=True):
            owed = round(cp + ded, 2)
            if owed > 0:
                items.append(
                    {
                        **unshare(item),  # a new resource shares only frozen parts
                        "unitPrice": _usd(owed),
                        "net": _usd(owed),
                    }
                )
                answered_lines.append((charge, owed, 0.0, 0.0, owed))
        if not items:
            return
        day = answered + CROSSOVER_DAYS
        if day >= st.end:
            return
        insurer = f"Organization/{self.eng.practice.payer_org[payer.key]}"
        new = {
            # a new resource shares only frozen parts with the first claim (the fields set
            # here are not copied: they are replaced, keeping the first claim's field order)
            **unshare_except(claim, _CROSSOVER_SETS),
            "id": ctx.new_id("claim"),
            "created": iso_date(day),
            "insurer": {"reference": insurer},
            "related": [
                {
                    "claim": {"reference": f"Claim/{claim['id']}"},
                    "relationship": {"coding": [{"system": RELATED_SYSTEM, "code": "associated"}]},
                }
            ],
            "insurance": [
                {
                    "sequence": 1,
                    "focal": False,
                    "coverage": unshare(claim["insurance"][0]["coverage"]),
                    "claimResponse": {"reference": f"ClaimResponse/{answer_id}"},
                },
                {"sequence": 2, "focal": True, "coverage": {"reference": f"Coverage/{cov_id}"}},
            ],
            "item": items,
            "total": _usd(sum(i["net"]["value"] for i in items)),
        }
        ctx.add(new)
        lo, width = self._lag_draw
        paid_on = day + max(3, round(payer.lag_days * (lo + width * ctx.rng.random())))
        if paid_on >= st.end:
            return
        # each line as first billed, what the primary settled of it as OA-23, and the rest
        # (the patient's cost sharing) eligible and paid in full
        adjudication = billing.adjudicate(
            tuple(answered_lines),
            tuple([item["sequence"] for item in items]),
            _OA23,
            shared=False,  # one answer's shares: never asked for again
        )
        cr = billing.response(
            ctx,
            new,
            adjudication,
            created=iso_date(paid_on),
            insurer=insurer,
            requestor=self.eng.org_ref,
            security=vs.security,
            disposition="Paid",
            # nothing is written off: OA-23 moves no money (the primary's answer carried the
            # contractual adjustment)
            write_off=False,
        )
        ctx.add(cr)
        self._era(ctx, vs, {"reference": f"Claim/{new['id']}"}, cr, insurer, paid_on)

    def _era(
        self,
        ctx: RecordContext,
        vs: VisitState,
        claim_ref: dict[str, str],
        cr: dict[str, Any],
        insurer: str,
        answered: int,
    ) -> None:
        amount = _usd(cr["payment"]["amount"]["value"])  # one amount, read-only in this resource
        day = iso_date(answered)
        ctx.add(
            {
                "resourceType": "PaymentReconciliation",
                "id": ctx.new_id("era"),
                "meta": meta("PaymentReconciliation", vs.security),
                "status": "active",
                "created": day,
                "paymentIssuer": shared_ref(insurer),
                "paymentDate": day,
                "paymentAmount": amount,
                "paymentIdentifier": {
                    "type": _EFT,
                    "system": EFT_TRACE,
                    "value": f"EFT-{cr['id']}",
                },
                "outcome": "complete",
                "disposition": f"ERA for {claim_ref['reference']}",
                "detail": [
                    {
                        "type": _INSURER_PAYMENT,
                        "request": claim_ref,
                        "response": {"reference": f"ClaimResponse/{cr['id']}"},
                        "date": day,
                        "amount": amount,
                    }
                ],
            }
        )

    def _statement(
        self,
        ctx: RecordContext,
        st: PatientState,
        vs: VisitState,
        claim_ref: dict[str, str],
        after: int,
        owed: float,
    ) -> None:
        """A statement (``Invoice``) for ``owed`` some days after ``after``, and maybe its payment."""
        if owed <= 0:
            return
        rng = ctx.rng
        rates = self.rates
        sent = after + _days(rng, self._statement_after)
        if sent >= st.end:
            return
        amount = _usd(owed)  # owed > 0: shared and frozen
        ctx.add(
            {
                "resourceType": "Invoice",
                "id": ctx.new_id("inv"),
                "meta": meta("Invoice", vs.security),
                "status": "issued",
                "subject": ctx.subject,
                "date": iso_date(sent),
                "issuer": self.provider,
                "lineItem": [
                    {
                        "sequence": 1,
                        "chargeItemCodeableConcept": {
                            "text": f"Balance after insurance, {claim_ref['reference']}"
                        },
                        "priceComponent": [{"type": "base", "amount": amount}],
                    }
                ],
                "totalNet": amount,
                "totalGross": amount,
                "paymentTerms": "Due within 30 days of the statement date.",
            }
        )
        if rng.random() >= rates.statement_paid:
            return
        when = sent + _days(rng, self._statement_paid_after)
        if when < st.end:
            method = _pick(rng, self.statement_methods)
            self._patient_payment(ctx, vs, claim_ref, when, owed, method, "Statement payment")

    def self_pay(
        self, ctx: RecordContext, st: PatientState, vs: VisitState, claim: dict[str, Any]
    ) -> None:
        """An uninsured visit: its charges moved to the patient's balance on the day (ledger
        kind ``transfer-to-patient``), then paid in full at the desk or billed on a statement
        (``self_pay.toml``).

        >>> self_pay_policy()["paid_at_desk"] > 0
        True
        """
        total = claim["total"]["value"]
        if total <= 0:
            return
        claim_ref = FrozenDict(reference=f"Claim/{claim['id']}")  # shared: frozen
        iso = iso_date(vs.day)
        ctx.add(
            {
                "resourceType": "PaymentReconciliation",
                "id": ctx.new_id("adj"),
                "meta": meta("PaymentReconciliation", vs.security),
                "status": "active",
                "created": iso,
                "paymentDate": iso,
                "paymentAmount": _usd(total),
                "outcome": "complete",
                "disposition": "Self-pay visit: charges billed to the patient",
                "detail": [
                    {
                        "type": _kind("transfer-to-patient", "adjustment"),
                        "request": claim_ref,
                        "date": iso,
                        "amount": _usd(total),
                    }
                ],
            }
        )
        rng = ctx.rng
        if rng.random() < self_pay_policy()["paid_at_desk"]:
            method = _pick(rng, self.copay_methods)
            self._patient_payment(
                ctx, vs, claim_ref, vs.day, total, method, "Patient payment at the desk"
            )
            return
        self._statement(ctx, st, vs, claim_ref, vs.day, total)

    def work_denial(
        self,
        ctx: RecordContext,
        st: PatientState,
        vs: VisitState,
        claim: dict[str, Any],
        insurer: str,
        denied_on: int,
        reason: Any,
        paid_at_desk: float,
    ) -> None:
        """Work a denied claim some days after its ERA, as ``denial_work.toml`` says for the
        reason: a corrected claim (the original cancelled) that the payer then pays, a
        write-off approved by a physician-owner, or the amount moved to the patient's balance
        and billed. A denial not worked by the end of the record stays open.

        >>> sorted(set(denial_work()["action"].values()))
        ['bill-patient', 'correct', 'write-off']
        """
        work = denial_work()
        action = work["action"].get(reason.carc)
        day = denied_on + _days(ctx.rng, self._work_after)
        if action is None or day >= st.end:
            return
        claim_ref = FrozenDict(reference=f"Claim/{claim['id']}")  # shared: frozen
        total = claim["total"]["value"]
        if action == "correct":
            # a new resource: it may share only frozen parts with the first claim
            new = {**unshare(claim), "id": ctx.new_id("claim"), "created": iso_date(day)}
            new["related"] = [
                {
                    "claim": claim_ref,
                    "relationship": {"coding": [{"system": RELATED_SYSTEM, "code": "prior"}]},
                    "reference": {"value": "7"},  # CMS-1500 box 22: replacement of prior claim
                }
            ]
            claim["status"] = "cancelled"  # replaced, as claims.resubmit_corrected does
            ctx.add(new)
            lo, width = self._lag_draw
            answered = day + max(3, round(vs.payer.lag_days * (lo + width * ctx.rng.random())))
            if answered < st.end:
                self._paid(ctx, st, vs, new, insurer, answered, paid_at_desk)
            return
        iso = iso_date(day)
        if action == "write-off":
            kind = _kind("write-off", "adjustment", "insurance")
            detail: dict[str, Any] = {
                "type": kind,
                "request": claim_ref,
                "date": iso,
                "amount": _usd(total),
            }
            if total > SMALL_BALANCE:  # approved by a physician-owner (payments.write_off)
                owner = self.eng.practice.physicians[0].removeprefix("prac-")
                detail["responsible"] = {"reference": f"PractitionerRole/role-{owner}"}
            text = f"Write-off: denial {reason.group}-{reason.carc} cannot be billed"
        else:  # bill-patient: the denied amount moves to the patient's balance
            kind = _kind("transfer-to-patient", "adjustment")
            detail = {"type": kind, "request": claim_ref, "date": iso, "amount": _usd(total)}
            text = f"Denied amount billed to patient: {reason.group}-{reason.carc}"
        ctx.add(
            {
                "resourceType": "PaymentReconciliation",
                "id": ctx.new_id("adj"),
                "meta": meta("PaymentReconciliation", vs.security),
                "status": "active",
                "created": iso,
                "paymentDate": iso,
                "paymentAmount": _usd(total),
                "outcome": "complete",
                "disposition": text,
                "detail": [detail],
            }
        )
        if action == "bill-patient":
            self._statement(ctx, st, vs, claim_ref, day, round(total - paid_at_desk, 2))

    def _patient_payment(
        self,
        ctx: RecordContext,
        vs: VisitState,
        claim_ref: dict[str, str],
        day: int,
        amount: float,
        method: str,
        text: str,
    ) -> None:
        iso = iso_date(day)
        pid = ctx.new_id("pay")
        paid = _usd(amount)  # one amount, read-only in this resource
        ident: dict[str, Any] = {
            "type": _method_type(method),
            "value": f"{method.upper()}-{pid.rsplit('-', 1)[-1]}",
        }
        ctx.add(
            {
                "resourceType": "PaymentReconciliation",
                "id": pid,
                "meta": meta("PaymentReconciliation", vs.security),
                "status": "active",
                "created": iso,
                "paymentDate": iso,
                "paymentAmount": paid,
                "paymentIdentifier": ident,
                "outcome": "complete",
                "disposition": text,
                "detail": [
                    {
                        "type": _PATIENT_PAYMENT,
                        "request": claim_ref,
                        "date": iso,
                        "amount": paid,
                    }
                ],
            }
        )

    def _denial(
        self,
        ctx: RecordContext,
        vs: VisitState,
        claim: dict[str, Any],
        insurer: str,
        answered: int,
        reason: Any,
    ) -> dict[str, Any]:
        """A whole-claim denial: every line's charge under the reason's group and CARC."""
        known = self._groups.get(id(reason))
        group = known[1] if known is not None else _denial_group(reason)
        items = []
        submitted = 0.0
        for item in claim["item"]:
            net = item["net"]
            submitted += net["value"]
            entry: dict[str, Any] = {
                "itemSequence": item["sequence"],
                "adjudication": [
                    {"category": _CAT["submitted"], "amount": net},
                    {"category": _CAT["eligible"], "amount": _usd(0.0)},
                    {**group, "amount": net},
                    {"category": _CAT["benefit"], "amount": _usd(0.0)},
                ],
            }
            if reason.rarc:
                entry["noteNumber"] = [1]
            items.append(entry)
        day = iso_date(answered)
        cr: dict[str, Any] = {
            "resourceType": "ClaimResponse",
            "id": ctx.new_id("cr"),
            "meta": meta("ClaimResponse", vs.security),
            "status": "active",
            "type": claim["type"],
            "use": "claim",
            "patient": ctx.subject,
            "created": day,
            "insurer": {"reference": insurer},
            "requestor": {"reference": self.org},
            "request": {"reference": f"Claim/{claim['id']}"},
            "outcome": "complete",
            "disposition": "Denied",
            "item": items,
            "total": [
                {"category": _CAT["submitted"], "amount": _usd(submitted)},
                {"category": _CAT["benefit"], "amount": _usd(0.0)},
            ],
            "payment": {
                "type": {
                    "coding": [
                        {
                            "system": EX_PAYMENT_TYPE,
                            "code": "complete",
                        }
                    ]
                },
                "date": day,
                "amount": _usd(0.0),
            },
        }
        if reason.rarc:
            cr["processNote"] = [
                {"number": 1, "type": "display", "text": f"{reason.rarc}: {reason.remark}"}
            ]
        return cr
