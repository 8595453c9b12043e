"""The revenue cycle of one visit, as the EHR's workflows record it: eligibility check at
check-in, the copay paid at the desk, the payer's answer after a variable lag (paid with a
contractual adjustment, or denied whole with a CARC group and reason code and a RARC remark),
the ERA's payment (``PaymentReconciliation``), a statement (``Invoice``) for what the patient
still owes, and the patient's payment of it. Rates and reasons are content
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

from typing import Any

from synthetic.builders import billing
from synthetic.builders.common import coding, usd
from synthetic.context import RecordContext
from synthetic.dates import iso_date
from synthetic.labels import meta
from synthetic.visit.state import PatientState, VisitState

CARC_SYSTEM = "https://x12.org/codes/claim-adjustment-reason-codes"
"""CARC code system (as ``ehr_sandbox.workflows.payer``)."""
GROUP_SYSTEM = "https://x12.org/codes/claim-adjustment-group-codes"
"""Claim adjustment group codes (CO, PR, OA, PI)."""
ADJUDICATION = "http://terminology.hl7.org/CodeSystem/adjudication"
PAYMENT_TYPE = "http://terminology.hl7.org/CodeSystem/payment-type"
LEDGER_KIND = "http://ehr-sandbox.org/CodeSystem/ledger-kind"
"""The ledger's transaction kinds (``ehr_sandbox.workflows.ledger``)."""
PAYMENT_METHOD = "http://ehr-sandbox.org/CodeSystem/payment-method"
EFT_TRACE = "http://ehr-sandbox.org/fhir/eft-trace"
BENEFIT_TYPE = "http://terminology.hl7.org/CodeSystem/benefit-type"
_CAT = {
    k: {"coding": [{"system": ADJUDICATION, "code": k}]}
    for k in ("submitted", "eligible", "benefit")
}
_CO45 = {
    "category": {"coding": [{"system": GROUP_SYSTEM, "code": "CO"}]},
    "reason": {
        "coding": [
            {
                "system": CARC_SYSTEM,
                "code": "45",
                "display": "Charge exceeds fee schedule/maximum allowable or contracted/legislated fee arrangement",
            }
        ]
    },
}


def _usd(v: float) -> dict[str, Any]:
    return usd(round(v, 2))


def _kind(kind: str) -> dict[str, Any]:
    return {
        "coding": [
            {"system": PAYMENT_TYPE, "code": "payment"},
            {"system": LEDGER_KIND, "code": kind},
        ]
    }


def _pick(rng: Any, weights: list[tuple[Any, float]]) -> Any:
    x = rng.random() * sum(w for _, w in weights)
    for item, w in weights:
        x -= w
        if x < 0:
            return item
    return weights[-1][0]


def _days(rng: Any, span: list[int]) -> int:
    lo, hi = span[0], span[-1]
    return lo + rng.randrange(max(1, hi - lo + 1))


def line_shares(
    claim: dict[str, Any], allowed_ratio: float, copay: float, deductible_share: float
) -> list[tuple[float, float, float, float, float]]:
    """Per claim line: (submitted, eligible, copay, deductible, benefit), as the payer pays.

    The copay comes off the first line; a share of the rest of the eligible amount goes to the
    deductible; the payer pays the remainder (same arithmetic as
    :func:`synthetic.builders.billing.claim_response`).

    >>> line_shares({"item": [{"net": {"value": 100.0}}]}, 0.8, 20.0, 0.5)
    [(100.0, 80.0, 20.0, 30.0, 30.0)]
    """
    out = []
    for i, item in enumerate(claim["item"]):
        submitted = item["net"]["value"]
        eligible = round(submitted * allowed_ratio, 2)
        cp = round(min(copay, eligible), 2) if i == 0 else 0.0
        ded = round((eligible - cp) * deductible_share, 2)
        benefit = round(max(0.0, eligible - cp - ded), 2)
        out.append((submitted, eligible, cp, ded, benefit))
    return out


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
        self.reasons = reasons
        # a verified eligibility rules out a denial for coverage not in force
        self.reasons_checked = [(d, w) for d, w in reasons if d.carc != "27"] or reasons
        self.copay_methods = list(self.rates.copay_methods.items())
        self.statement_methods = list(self.rates.statement_methods.items())

    # ------------------------------------------------------------------ check-in

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
        insurer = {"reference": f"Organization/{self.eng.practice.payer_org[payer.key]}"}
        cov = {"reference": f"Coverage/{vs.cov_id}"}
        req = {
            "resourceType": "CoverageEligibilityRequest",
            "id": ctx.new_id("cer"),
            "meta": meta("CoverageEligibilityRequest", vs.security),
            "status": "active",
            "purpose": ["benefits", "validation"],
            "patient": ctx.subject,
            "servicedDate": day,
            "created": day,
            "provider": {"reference": self.org},
            "insurer": insurer,
            "insurance": [{"focal": True, "coverage": cov}],
        }
        benefit = [
            {
                "type": {"coding": [{"system": BENEFIT_TYPE, "code": "copay"}]},
                "allowedMoney": _usd(float(payer.copay)),
            }
        ]
        resp = {
            "resourceType": "CoverageEligibilityResponse",
            "id": ctx.new_id("ces"),
            "meta": meta("CoverageEligibilityResponse", vs.security),
            "status": "active",
            "purpose": ["benefits", "validation"],
            "patient": ctx.subject,
            "servicedDate": day,
            "created": day,
            "request": {"reference": f"CoverageEligibilityRequest/{req['id']}"},
            "outcome": "complete",
            "disposition": "Coverage in force",
            "insurer": insurer,
            "insurance": [
                {
                    "coverage": cov,
                    "inforce": True,
                    "item": [
                        {
                            "category": {
                                "coding": [
                                    coding(
                                        "http://terminology.hl7.org/CodeSystem/ex-benefitcategory",
                                        "30",
                                        "Health Benefit Plan Coverage",
                                    )
                                ]
                            },
                            "benefit": benefit,
                        }
                    ],
                }
            ],
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
        eng = self.eng
        rng = ctx.rng
        rates = self.rates
        payer = vs.payer
        claim_ref = {"reference": f"Claim/{claim['id']}"}
        shares = line_shares(claim, payer.allowed_ratio, float(payer.copay), payer.deductible_share)
        copay = shares[0][2] if shares else 0.0
        paid_at_desk = 0.0
        if copay > 0 and rng.random() < rates.copay_at_desk:
            paid_at_desk = copay
            method = _pick(rng, self.copay_methods)
            self._patient_payment(
                ctx, vs, claim_ref, vs.day, copay, method, "Patient payment at the desk"
            )
        pr = eng.rules.payer
        lo, hi = (pr.lag_low, pr.lag_high) if pr is not None else (1.0, 1.0)
        lag = max(3, round(payer.lag_days * rng.uniform(lo, hi)))
        answered = vs.day + lag
        denied = rng.random() < rates.denial_rate and self.reasons
        reason = _pick(rng, self.reasons_checked if verified else self.reasons) if denied else None
        if answered >= st.end:
            return  # the payer has not answered by the end of the record
        if reason is not None:
            cr = self._denial(ctx, vs, claim, insurer, answered, reason)
            share = 0.0
        else:
            cr = billing.claim_response(
                ctx,
                claim,
                created=iso_date(answered),
                insurer=insurer,
                requestor=eng.org_ref,
                allowed_ratio=payer.allowed_ratio,
                copay=float(payer.copay),
                deductible_share=payer.deductible_share,
                security=vs.security,
            )
            for item, (sub, elig, _, _, _) in zip(cr["item"], shares, strict=True):
                if sub != elig:  # the contractual adjustment, as an ERA states it (CO-45)
                    item["adjudication"].insert(2, {**_CO45, "amount": _usd(sub - elig)})
            cr["disposition"] = "Paid"
            share = sum(cp + ded for _, _, cp, ded, _ in shares)
        ctx.add(cr)
        paid = cr["payment"]["amount"]["value"]
        day = iso_date(answered)
        ctx.add(
            {
                "resourceType": "PaymentReconciliation",
                "id": ctx.new_id("era"),
                "meta": meta("PaymentReconciliation", vs.security),
                "status": "active",
                "created": day,
                "paymentIssuer": {"reference": insurer},
                "paymentDate": day,
                "paymentAmount": _usd(paid),
                "paymentIdentifier": {
                    "type": {"coding": [{"system": PAYMENT_METHOD, "code": "eft"}]},
                    "system": EFT_TRACE,
                    "value": f"EFT-{cr['id']}",
                },
                "outcome": "complete",
                "disposition": f"ERA for Claim/{claim['id']}",
                "detail": [
                    {
                        "type": _kind("insurer-payment"),
                        "request": claim_ref,
                        "response": {"reference": f"ClaimResponse/{cr['id']}"},
                        "date": day,
                        "amount": _usd(paid),
                    }
                ],
            }
        )
        owed = round(share - paid_at_desk, 2)
        if owed <= 0:
            return
        sent = answered + _days(rng, rates.statement_after_days)
        if sent >= st.end:
            return
        ctx.add(
            {
                "resourceType": "Invoice",
                "id": ctx.new_id("inv"),
                "meta": meta("Invoice", vs.security),
                "status": "issued",
                "subject": ctx.subject,
                "date": iso_date(sent),
                "issuer": {"reference": eng.org_ref},
                "lineItem": [
                    {
                        "sequence": 1,
                        "chargeItemCodeableConcept": {
                            "text": f"Balance after insurance, Claim/{claim['id']}"
                        },
                        "priceComponent": [{"type": "base", "amount": _usd(owed)}],
                    }
                ],
                "totalNet": _usd(owed),
                "totalGross": _usd(owed),
                "paymentTerms": "Due within 30 days of the statement date.",
            }
        )
        if rng.random() >= rates.statement_paid:
            return
        when = sent + _days(rng, rates.statement_paid_after_days)
        if when < st.end:
            method = _pick(rng, self.statement_methods)
            self._patient_payment(ctx, vs, claim_ref, when, owed, method, "Statement payment")

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
        ident: dict[str, Any] = {
            "type": {"coding": [{"system": PAYMENT_METHOD, "code": method}]},
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
                "paymentAmount": _usd(amount),
                "paymentIdentifier": ident,
                "outcome": "complete",
                "disposition": text,
                "detail": [
                    {
                        "type": _kind("patient-payment"),
                        "request": claim_ref,
                        "date": iso,
                        "amount": _usd(amount),
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
        group = {
            "category": {"coding": [{"system": GROUP_SYSTEM, "code": reason.group}]},
            "reason": {
                "coding": [
                    {"system": CARC_SYSTEM, "code": reason.carc, "display": reason.description}
                ]
            },
        }
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
                            "system": "http://terminology.hl7.org/CodeSystem/ex-paymenttype",
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
