"""Payments: post an ERA, take a payment at the desk, refund, write off, bill the patient.

Money is recorded as ``PaymentReconciliation`` (one per deposit, ERA or desk receipt) whose
details carry a ``ledger-kind`` (insurer-payment, patient-payment, refund, write-off,
transfer-to-patient) that the ledger reads (:mod:`ledger`). Patient statements are
``Invoice`` resources. Every refusal names its rule.

>>> sorted(RULES)[:3]
['payments.approval', 'payments.balanced', 'payments.credit-only']
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ehr_sandbox.errors import NotFound, ValidationError
from ehr_sandbox.workflows.base import Rule, RuleRefused, money, now, write, write_all
from ehr_sandbox.workflows.ledger import balances, transactions
from ehr_sandbox.workflows.payer import (
    ADJUDICATION,
    CROSSOVER,
    GROUP_SYSTEM,
    LEDGER_KIND,
    PAYMENT_METHOD,
    PAYMENT_TYPE,
)
from synthetic.systems import SANDBOX_LEDGER_BUCKET, USERNAME

if TYPE_CHECKING:
    from ehr_sandbox.session import Session

__all__ = [
    "APPROVER_ROLES",
    "RULES",
    "SMALL_BALANCE",
    "bill_denial_to_patient",
    "check_balanced",
    "desk_payment",
    "post_era",
    "refund",
    "send_statement",
    "write_off",
]

SMALL_BALANCE = Decimal("10.00")
"""Write-offs up to this amount need no approval (small-balance policy)."""
APPROVER_ROLES = ("physician",)
"""Who may approve a larger write-off (the practice's physician-owners)."""
USERNAME_SYSTEM = USERNAME
BUCKET_SYSTEM = SANDBOX_LEDGER_BUCKET
_SRC = "practice financial policy; HFMA patient financial communications best practices; payer contracts (no balance billing of contractual adjustments)"
RULES = {
    r.id: r
    for r in (
        Rule(
            "payments.balanced",
            "an ERA posts only when its payments add up to the deposit and each line balances",
            "ASC X12 835 balancing rules",
        ),
        Rule(
            "payments.duplicate",
            "an ERA is posted once (same payer trace number)",
            "ASC X12 835 balancing rules",
        ),
        Rule("payments.positive", "a payment is a positive amount", _SRC),
        Rule("payments.method", "a payment method is cash, check (with its number) or card", _SRC),
        Rule(
            "payments.credit-only",
            "only a credit balance is refunded, never more than the credit",
            _SRC,
        ),
        Rule(
            "payments.approval",
            "a write-off above the small-balance limit needs a physician-owner's approval, not your own",
            _SRC,
        ),
        Rule(
            "payments.not-above-balance",
            "a write-off cannot exceed the balance it writes off",
            _SRC,
        ),
        Rule(
            "payments.no-balance-billing",
            "a contractual (CO) denial is not billed to the patient; only PR amounts or a denial with a signed waiver",
            _SRC,
        ),
        Rule(
            "payments.statement",
            "a statement bills only the patient's balance after insurance",
            _SRC,
        ),
    )
}


def _money_json(v: Decimal) -> dict[str, Any]:
    return {"value": float(money(v)), "currency": "USD"}


def _kind(kind: str, payment_type: str = "payment") -> dict[str, Any]:
    return {
        "coding": [
            {"system": PAYMENT_TYPE, "code": payment_type},
            {"system": LEDGER_KIND, "code": kind},
        ]
    }


def _code(concept: dict[str, Any] | None, system: str | None = None) -> str | None:
    for c in (concept or {}).get("coding", []):
        if system is None or c.get("system") == system:
            return c.get("code")
    return None


def post_era(session: Session, era: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Post an ERA (the payer's ClaimResponse and PaymentReconciliation) in one transaction.

    Checks that the ERA balances (each line: submitted = eligible + contractual + denied;
    eligible = patient share + payment; deposit = sum of claim payments) and that it was not
    posted before.

    Parameters
    ----------
    session : Session
        The billing specialist's session.
    era : dict
        A collection Bundle as :func:`ehr_sandbox.workflows.payer.adjudicate` returns.

    Returns
    -------
    tuple of dict
        The posted ClaimResponse and PaymentReconciliation.

    Raises
    ------
    RuleRefused
        ``payments.balanced`` or ``payments.duplicate``.

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> from ehr_sandbox.workflows import payer
    >>> from ehr_sandbox.workflows.coding import build_claim, ClaimLine
    >>> from ehr_sandbox.workflows.claims import submit
    >>> b = Sandbox.generate(patients=3, seed=1, years=1).login("billing.davis")
    >>> enc = next(e for e in b.search("Encounter").fetch() if any("selfpay" not in c["payor"][0]["reference"] for c in b.search("Coverage", patient=e["subject"]["reference"]).fetch()))
    >>> c = submit(b, build_claim(b, f"Encounter/{enc['id']}", diagnoses=["icd10cm|I10"],
    ...            lines=[ClaimLine("procedure|OV-EST-3", (1,))])["id"])
    >>> era = payer.adjudicate(b, f"Claim/{c['id']}")
    >>> cr, pr = post_era(b, era)
    >>> pr["detail"][0]["response"]["reference"] == f"ClaimResponse/{cr['id']}"
    True
    >>> post_era(b, era)
    Traceback (most recent call last):
    ...
    ehr_sandbox.workflows.base.RuleRefused: PaymentReconciliation: paymentIdentifier: expected an ERA not posted before ... Refused by rule payments.duplicate: ...
    """
    if not isinstance(era, dict) or era.get("resourceType") != "Bundle":
        raise ValidationError("Bundle", "resourceType", "an ERA Bundle from the payer")
    entries = era.get("entry", [])
    crs = [e for e in entries if e.get("resource", {}).get("resourceType") == "ClaimResponse"]
    prs = [
        e for e in entries if e.get("resource", {}).get("resourceType") == "PaymentReconciliation"
    ]
    if len(prs) != 1 or not crs:
        raise ValidationError("Bundle", "entry", "one PaymentReconciliation and its ClaimResponses")
    pr = prs[0]["resource"]
    trace = (pr.get("paymentIdentifier") or {}).get("value")
    for old in session.resources("PaymentReconciliation"):
        if (old.get("paymentIdentifier") or {}).get("value") == trace and old.get(
            "status"
        ) == "active":
            raise RuleRefused(
                RULES["payments.duplicate"],
                resource="PaymentReconciliation",
                path="paymentIdentifier",
                expected=f"an ERA not posted before (trace {trace})",
                found=f"PaymentReconciliation/{old['id']}",
            )
    for e in crs:
        session.read(e["resource"]["request"]["reference"])
    check_balanced([e["resource"] for e in crs], pr)
    written = write_all(session, [*crs, pr], operation="payments.post-era")
    return written[0], written[-1]


def check_balanced(claim_responses: list[dict[str, Any]], pr: dict[str, Any]) -> None:
    """Refuse an ERA that does not balance: on each line submitted = eligible + adjustments and
    eligible = patient share + payment; the deposit = its details = the claims' payments.

    Used by :func:`post_era` before posting, and by graders to re-check a posted ERA (a
    ``payments.post-era`` tag can be typed by hand; whether the posting adds up is re-checked).

    Raises
    ------
    RuleRefused
        ``payments.balanced``.

    Examples
    --------
    >>> cr = {"item": [{"itemSequence": 1, "adjudication": [
    ...     {"category": {"coding": [{"system": ADJUDICATION, "code": "submitted"}]}, "amount": {"value": 100}},
    ...     {"category": {"coding": [{"system": ADJUDICATION, "code": "eligible"}]}, "amount": {"value": 100}},
    ...     {"category": {"coding": [{"system": ADJUDICATION, "code": "benefit"}]}, "amount": {"value": 100}}]}]}
    >>> check_balanced([cr], {"paymentAmount": {"value": 100}, "detail": [{"amount": {"value": 100}}]})
    >>> check_balanced([cr], {"paymentAmount": {"value": 100}, "detail": []})
    Traceback (most recent call last):
    ...
    ehr_sandbox.workflows.base.RuleRefused: PaymentReconciliation: paymentAmount: expected deposit = sum of claim payments (100.00) ...
    """
    paid_total = Decimal(0)
    for cr in claim_responses:
        for it in cr.get("item", []):
            by: dict[str, Decimal] = {}
            groups = Decimal(0)
            for adj in it.get("adjudication", []):
                amt = money(adj["amount"]["value"])
                if _code(adj.get("category"), GROUP_SYSTEM):
                    if _code(adj.get("reason")) not in ("2",):
                        groups += amt
                    else:
                        by["coins"] = by.get("coins", Decimal(0)) + amt
                else:
                    cat = _code(adj.get("category"), ADJUDICATION) or ""
                    by[cat] = by.get(cat, Decimal(0)) + amt
            sub, elig = by.get("submitted", Decimal(0)), by.get("eligible", Decimal(0))
            share = (
                by.get("copay", Decimal(0))
                + by.get("deductible", Decimal(0))
                + by.get("coins", Decimal(0))
            )
            if sub != elig + groups or elig != share + by.get("benefit", Decimal(0)):
                raise RuleRefused(
                    RULES["payments.balanced"],
                    resource="ClaimResponse",
                    path=f"item[{it.get('itemSequence')}].adjudication",
                    expected="submitted = eligible + adjustments and eligible = patient share + payment",
                    found={k: str(v) for k, v in by.items()},
                )
            paid_total += by.get("benefit", Decimal(0))
        paid_total = money(paid_total)
    detail_total = money(
        sum((Decimal(str(d["amount"]["value"])) for d in pr.get("detail", [])), Decimal(0))
    )
    if not (detail_total == money((pr.get("paymentAmount") or {}).get("value", 0)) == paid_total):
        raise RuleRefused(
            RULES["payments.balanced"],
            resource="PaymentReconciliation",
            path="paymentAmount",
            expected=f"deposit = sum of claim payments ({paid_total})",
            found=str(money((pr.get("paymentAmount") or {}).get("value", 0))),
        )


def _patient_ref(session: Session, patient: str) -> str:
    if not isinstance(patient, str) or not patient.startswith("Patient/"):
        raise ValidationError(
            "PaymentReconciliation", "detail.request", "'Patient/<id>'", found=patient
        )
    session.read(patient)
    return patient


def desk_payment(
    session: Session,
    patient: str,
    amount: Any,
    *,
    method: str,
    number: str | None = None,
    claim: str | None = None,
) -> dict[str, Any]:
    """Record a patient's payment at the desk (copay, balance, prepayment).

    Parameters
    ----------
    session : Session
        Front desk or billing.
    patient : str
        ``Patient/<id>``.
    amount : number or str
        Dollars and cents.
    method : str
        ``cash``, ``check`` (with ``number``) or ``card``.
    number : str, optional
        Check number or card authorisation.
    claim : str, optional
        ``Claim/<id>`` the payment applies to (else it is applied to the oldest balance).

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> fd = Sandbox.generate(patients=1, seed=1, years=1).login("fd.smith")
    >>> pid = fd.search("Patient").first()["id"]
    >>> pr = desk_payment(fd, f"Patient/{pid}", "30", method="cash")
    >>> pr["paymentAmount"]["value"], pr["detail"][0]["type"]["coding"][1]["code"]
    (30.0, 'patient-payment')
    >>> desk_payment(fd, f"Patient/{pid}", "30", method="check")
    Traceback (most recent call last):
    ...
    ehr_sandbox.workflows.base.RuleRefused: PaymentReconciliation: paymentIdentifier.value: expected the check number. Refused by rule payments.method: ...
    """
    pat = _patient_ref(session, patient)
    amt = money(amount)
    if amt <= 0:
        raise RuleRefused(
            RULES["payments.positive"],
            resource="PaymentReconciliation",
            path="paymentAmount",
            expected="an amount > 0",
            found=str(amt),
        )
    if method not in ("cash", "check", "card"):
        raise RuleRefused(
            RULES["payments.method"],
            resource="PaymentReconciliation",
            path="paymentIdentifier.type",
            expected="cash, check or card",
            found=method,
        )
    if method == "check" and not (number and str(number).strip()):
        raise RuleRefused(
            RULES["payments.method"],
            resource="PaymentReconciliation",
            path="paymentIdentifier.value",
            expected="the check number",
            found=number,
        )
    if claim:
        c = session.read(claim) if _can_read_claims(session) else None
        if c is not None and c["patient"]["reference"] != pat:
            raise ValidationError(
                "PaymentReconciliation", "detail.request", f"a claim of {pat}", found=claim
            )
    day = now(session).date().isoformat()
    n = number or f"{method.upper()}-{now(session).strftime('%H%M%S')}"
    pr = {
        "resourceType": "PaymentReconciliation",
        "status": "active",
        "created": day,
        "paymentDate": day,
        "paymentAmount": _money_json(amt),
        "paymentIdentifier": {
            "type": {"coding": [{"system": PAYMENT_METHOD, "code": method}]},
            "value": str(n),
        },
        "outcome": "complete",
        "disposition": "Patient payment at the desk",
        "detail": [
            {
                "type": _kind("patient-payment"),
                "request": {"reference": claim or pat},
                "date": day,
                "amount": _money_json(amt),
            }
        ],
    }
    return write(session, pr, operation="payments.desk-payment")


def _can_read_claims(session: Session) -> bool:
    return session.can_read("Claim")


def refund(
    session: Session,
    patient: str,
    amount: Any,
    *,
    reason: str,
    method: str = "check",
    number: str | None = None,
) -> dict[str, Any]:
    """Refund a patient's credit balance (never more than the credit).

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> b = Sandbox.generate(patients=1, seed=1, years=1).login("billing.davis")
    >>> pid = b.search("Patient").first()["id"]
    >>> refund(b, f"Patient/{pid}", "5.00", reason="overpaid copay", number="1001")
    Traceback (most recent call last):
    ...
    ehr_sandbox.workflows.base.RuleRefused: Patient/...: balance: expected a credit of at least 5.00 ... Refused by rule payments.credit-only: ...
    """
    pat = _patient_ref(session, patient)
    if not reason or not str(reason).strip():
        raise ValidationError("PaymentReconciliation", "disposition", "why the refund is due")
    amt = money(amount)
    if amt <= 0:
        raise RuleRefused(
            RULES["payments.positive"],
            resource="PaymentReconciliation",
            path="paymentAmount",
            expected="an amount > 0",
            found=str(amt),
        )
    bal = balances(session, pat)
    if -bal["patient"] < amt or -bal["total"] < amt:
        raise RuleRefused(
            RULES["payments.credit-only"],
            resource=pat,
            path="balance",
            expected=f"a credit of at least {amt}",
            found=f"patient balance {bal['patient']}, total {bal['total']}",
        )
    day = now(session).date().isoformat()
    pr = {
        "resourceType": "PaymentReconciliation",
        "status": "active",
        "created": day,
        "paymentDate": day,
        "paymentAmount": _money_json(amt),
        "paymentIdentifier": {
            "type": {"coding": [{"system": PAYMENT_METHOD, "code": method}]},
            "value": str(number or f"REF-{day}"),
        },
        "outcome": "complete",
        "disposition": f"Refund: {reason}",
        "detail": [
            {
                "type": _kind("refund", "adjustment"),
                "request": {"reference": pat},
                "date": day,
                "amount": _money_json(amt),
            }
        ],
    }
    return write(session, pr, operation="payments.refund", reason=str(reason))


def _approver_role(session: Session, username: str) -> dict[str, Any] | None:
    prac = session.search("Practitioner", identifier=f"{USERNAME_SYSTEM}|{username}").first()
    if prac is None:
        return None
    for role in session.search(
        "PractitionerRole", practitioner=f"Practitioner/{prac['id']}"
    ).fetch():
        if role.get("active", True) is not False and any(
            c.get("code") in APPROVER_ROLES
            for cc in role.get("code", [])
            for c in cc.get("coding", [])
        ):
            return role
    return None


def write_off(
    session: Session,
    patient: str,
    amount: Any,
    *,
    reason: str,
    claim: str | None = None,
    bucket: str = "patient",
    approved_by: str | None = None,
) -> dict[str, Any]:
    """Write off part of a balance (bad debt, small balance, a denial the practice absorbs).

    Above :data:`SMALL_BALANCE` the write-off needs ``approved_by``: the username of a
    physician-owner, not the person posting it; the approver's PractitionerRole is recorded
    as ``detail.responsible``. Never more than the balance written off.

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> b = Sandbox.generate(patients=3, seed=1, years=1).login("billing.davis")
    >>> pid = b.search("Claim").first()["patient"]["reference"]
    >>> write_off(b, pid, "50.00", reason="hardship", bucket="insurance")
    Traceback (most recent call last):
    ...
    ehr_sandbox.workflows.base.RuleRefused: PaymentReconciliation: detail.responsible: expected the approving physician's username ... Refused by rule payments.approval: ...
    """
    pat = _patient_ref(session, patient)
    if not reason or not str(reason).strip():
        raise ValidationError(
            "PaymentReconciliation", "disposition", "why the balance is written off"
        )
    if bucket not in ("patient", "insurance"):
        raise ValidationError(
            "PaymentReconciliation", "bucket", "'patient' or 'insurance'", found=bucket
        )
    amt = money(amount)
    if amt <= 0:
        raise RuleRefused(
            RULES["payments.positive"],
            resource="PaymentReconciliation",
            path="paymentAmount",
            expected="an amount > 0",
            found=str(amt),
        )
    responsible = None
    if amt > SMALL_BALANCE:
        if not approved_by:
            raise RuleRefused(
                RULES["payments.approval"],
                resource="PaymentReconciliation",
                path="detail.responsible",
                expected=f"the approving physician's username (write-offs over {SMALL_BALANCE})",
                found=None,
            )
        if approved_by == session.user.username:
            raise RuleRefused(
                RULES["payments.approval"],
                resource="PaymentReconciliation",
                path="detail.responsible",
                expected="someone other than you",
                found=approved_by,
            )
        responsible = _approver_role(session, approved_by)
        if responsible is None:
            raise RuleRefused(
                RULES["payments.approval"],
                resource="PaymentReconciliation",
                path="detail.responsible",
                expected="a physician-owner's username",
                found=approved_by,
            )
    if claim:
        owed = sum(
            (
                t.amount
                for t in transactions(session, pat)
                if t.claim == claim and t.bucket == bucket
            ),
            Decimal(0),
        )
    else:
        owed = balances(session, pat)[bucket]
    if amt > owed:
        raise RuleRefused(
            RULES["payments.not-above-balance"],
            resource=claim or pat,
            path="balance",
            expected=f"at most the {bucket} balance {money(owed)}",
            found=str(amt),
        )
    day = now(session).date().isoformat()
    kind = _kind("write-off", "adjustment")
    kind["coding"].append({"system": BUCKET_SYSTEM, "code": bucket})
    detail: dict[str, Any] = {
        "type": kind,
        "request": {"reference": claim or pat},
        "date": day,
        "amount": _money_json(amt),
    }
    if responsible is not None:
        detail["responsible"] = {"reference": f"PractitionerRole/{responsible['id']}"}
    pr = {
        "resourceType": "PaymentReconciliation",
        "status": "active",
        "created": day,
        "paymentDate": day,
        "paymentAmount": _money_json(amt),
        "outcome": "complete",
        "disposition": f"Write-off: {reason}",
        "detail": [detail],
    }
    return write(session, pr, operation="payments.write-off", reason=str(reason))


def bill_denial_to_patient(
    session: Session, claim: str, *, line: int, reason: str
) -> dict[str, Any]:
    """Move a denied line's amount to the patient's balance, where the patient may be billed.

    Only a denial in the PR group (patient responsibility, e.g. a non-covered service with a
    signed waiver, modifier GA) may be billed; a CO (contractual) denial may not: correct and
    resubmit it, appeal, or write it off.

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> b = Sandbox.generate(patients=3, seed=1, years=1).login("billing.davis")
    >>> answered = b.search("ClaimResponse").first()
    >>> bill_denial_to_patient(b, answered["request"]["reference"], line=1, reason="patient asked")
    Traceback (most recent call last):
    ...
    ehr_sandbox.errors.ValidationError: Claim/...: item[1]: expected a denied line
    """
    if not reason or not str(reason).strip():
        raise ValidationError("PaymentReconciliation", "disposition", "why the patient is billed")
    session.read(claim)
    crs = [
        r
        for r in session.search("ClaimResponse", request=claim).fetch()
        if r.get("status") == "active"
    ]
    if not crs:
        raise ValidationError(claim, "ClaimResponse", "the payer's answer to this claim")
    item = next(
        (it for r in crs for it in r.get("item", []) if it.get("itemSequence") == line), None
    )
    if item is None:
        raise NotFound(f"{claim} line {line} has no adjudication")
    denial = [
        a
        for a in item.get("adjudication", [])
        if _code(a.get("category"), GROUP_SYSTEM)
        and _code(a.get("reason")) not in ("45", "1", "2", "3", CROSSOVER["prior_payer_reason"])
    ]
    if not denial:
        raise ValidationError(claim, f"item[{line}]", "a denied line")
    group = _code(denial[0]["category"], GROUP_SYSTEM)
    if group != "PR":
        raise RuleRefused(
            RULES["payments.no-balance-billing"],
            resource=claim,
            path=f"item[{line}].adjudication",
            expected="a PR (patient responsibility) denial",
            found=f"{group}-{_code(denial[0].get('reason'))}",
        )
    # PR denials are already on the patient's balance (ledger); record the decision.
    amt = money(denial[0]["amount"]["value"])
    day = now(session).date().isoformat()
    pr = {
        "resourceType": "PaymentReconciliation",
        "status": "active",
        "created": day,
        "paymentDate": day,
        "paymentAmount": _money_json(Decimal(0)),
        "outcome": "complete",
        "disposition": f"Denied line {line} billed to patient: {reason}",
        "detail": [
            {
                "type": _kind("patient-billed", "adjustment"),
                "request": {"reference": claim},
                "date": day,
                "amount": _money_json(amt),
            }
        ],
    }
    return write(session, pr, operation="payments.bill-patient", reason=str(reason))


def send_statement(session: Session, patient: str) -> dict[str, Any]:
    """Issue a patient statement (``Invoice``) for the patient's balance after insurance.

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> b = Sandbox.generate(patients=4, seed=1, years=1).login("billing.davis")
    >>> pid = next(p for p in {c["patient"]["reference"] for c in b.search("Claim").fetch()} if balances(b, p)["patient"] > 0)
    >>> inv = send_statement(b, pid)
    >>> inv["status"], money(inv["totalNet"]) == balances(b, pid)["patient"]
    ('issued', True)
    """
    pat = _patient_ref(session, patient)
    bal = balances(session, pat)
    if bal["patient"] <= 0:
        raise RuleRefused(
            RULES["payments.statement"],
            resource=pat,
            path="balance",
            expected="a patient balance due after insurance",
            found=str(bal["patient"]),
        )
    lines = []
    per_claim: dict[str, Decimal] = {}
    for t in transactions(session, pat):
        if t.bucket == "patient":
            per_claim[t.claim or "unapplied"] = (
                per_claim.get(t.claim or "unapplied", Decimal(0)) + t.amount
            )
    seq = 1
    for claim_ref, amt in sorted(per_claim.items()):
        if money(amt) == 0:
            continue
        lines.append(
            {
                "sequence": seq,
                "chargeItemCodeableConcept": {"text": f"Balance after insurance, {claim_ref}"},
                "priceComponent": [{"type": "base", "amount": _money_json(amt)}],
            }
        )
        seq += 1
    day = now(session).date().isoformat()
    inv = {
        "resourceType": "Invoice",
        "status": "issued",
        "subject": {"reference": pat},
        "date": day,
        "issuer": {"reference": "Organization/practice-1"},
        "lineItem": lines,
        "totalNet": _money_json(bal["patient"]),
        "totalGross": _money_json(bal["patient"]),
        "paymentTerms": "Due within 30 days of the statement date.",
    }
    return write(session, inv, operation="payments.statement")
