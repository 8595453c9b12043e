"""The patient ledger, day sheet, deposit slip and A/R aging: one set of transactions, to the cent.

Every figure is derived from the same transactions, read through the session:

* **charge** — each line of a sent (``active``) claim, on the claim's creation date; a claim to
  a secondary plan (its focal insurance is not the first) charges nothing new: it moves the
  patient's share of the primary claim back to the insurance balance (``transfer-to-secondary``);
* from the payer's answer (``ClaimResponse``, on its date): **contractual** adjustment
  (CO-45, or submitted minus eligible), **insurer payment** (benefit), the **patient's share**
  (copay, deductible, coinsurance, PR-group denials) moved from the insurance to the patient
  balance; CO/OA denials stay on the insurance balance until worked; on a secondary plan's
  answer, OA-23 (what the primary already settled) moves nothing;
* from ``PaymentReconciliation`` details (their ``ledger-kind``): **patient payments**,
  **refunds**, **write-offs** and **transfers** of a denied amount to the patient.

Balances: insurance + patient = charges - contractual - insurer payments - patient payments +
refunds - write-offs. The day sheet proves previous A/R + the day's activity = closing A/R.

>>> from decimal import Decimal
>>> t = Txn("2026-01-05", "Patient/p", "Claim/c", "charge", "insurance", Decimal("100.00"), "OV")
>>> t.amount
Decimal('100.00')
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ehr_sandbox.workflows.base import money
from ehr_sandbox.workflows.payer import (
    CROSSOVER,
    GROUP_SYSTEM,
    LEDGER_KIND,
    PAYMENT_METHOD,
    secondary_of,
)
from synthetic.systems import SANDBOX_LEDGER_BUCKET

if TYPE_CHECKING:
    from ehr_sandbox.session import Session

__all__ = [
    "AGING_BUCKETS",
    "Txn",
    "ar_aging",
    "balances",
    "day_sheet",
    "deposit_slip",
    "ledger",
    "reconcile",
    "secondary_of",
    "transactions",
]

_PRIOR = CROSSOVER["prior_payer_reason"]
AGING_BUCKETS = (
    (0, 30, "0-30"),
    (31, 60, "31-60"),
    (61, 90, "61-90"),
    (91, 120, "91-120"),
    (121, 100000, "120+"),
)


@dataclass(frozen=True)
class Txn:
    """One ledger transaction. ``amount`` is signed: + raises the balance, - lowers it.

    ``kind``: charge, contractual, insurer-payment, patient-share, patient-payment, refund,
    write-off, transfer-to-patient. ``bucket``: the balance it moves (insurance or patient;
    a patient-share is recorded twice: - insurance, + patient).

    Parameters
    ----------
    date : str
    patient : str
    claim : str or None
    kind : str
    bucket : str
    amount : Decimal
    description : str
    method, reference : str, optional
        How a payment was made and its reference (check number ...).

    Examples
    --------
    >>> from decimal import Decimal
    >>> share = [Txn("2026-01-05", "Patient/p1", "Claim/c1", "patient-share", b, a, "coinsurance")
    ...          for b, a in (("insurance", Decimal("-20.00")), ("patient", Decimal("20.00")))]
    >>> sum(t.amount for t in share), [t.bucket for t in share]
    (Decimal('0.00'), ['insurance', 'patient'])
    """

    date: str
    patient: str
    claim: str | None
    kind: str
    bucket: str
    amount: Decimal
    description: str
    method: str | None = None
    reference: str | None = None


def _code(concept: dict[str, Any] | None, system: str | None = None) -> str | None:
    for c in (concept or {}).get("coding", []):
        if system is None or c.get("system") == system:
            return c.get("code")
    return None


def _claim_txns(claim: dict[str, Any], responses: list[dict[str, Any]]) -> list[Txn]:
    ref = f"Claim/{claim['id']}"
    patient = claim["patient"]["reference"]
    primary = secondary_of(claim)
    out = []
    for item in claim.get("item", []):
        amt = money((item.get("net") or {}).get("value", 0))
        text = (
            (item.get("productOrService") or {}).get("text")
            or _code(item.get("productOrService"))
            or "service"
        )
        day = claim.get("created", "")[:10]
        if primary is not None:  # the patient's share moves to the secondary plan, no new charge
            text = f"Billed to the secondary plan: {text}"
            out.append(Txn(day, patient, primary, "transfer-to-secondary", "patient", -amt, text))
            out.append(Txn(day, patient, ref, "transfer-to-secondary", "insurance", amt, text))
            continue
        out.append(Txn(day, patient, ref, "charge", "insurance", amt, text))
    for cr in responses:
        day = cr.get("created", "")[:10]
        for it in cr.get("item", []):
            by: dict[str, Decimal] = defaultdict(Decimal)
            groups: list[tuple[str, str, Decimal]] = []
            for adj in it.get("adjudication", []):
                cat = _code(adj.get("category"))
                amt = money((adj.get("amount") or {}).get("value", 0))
                if _code(adj.get("category"), GROUP_SYSTEM):
                    groups.append((cat or "", _code(adj.get("reason")) or "", amt))
                else:
                    by[cat or ""] += amt
            # OA-23 on a secondary's ERA states what the primary settled: it moves no money
            prior = sum((a for g, r, a in groups if g == "OA" and r == _PRIOR), Decimal(0))
            denied_co = sum(
                (a for g, r, a in groups if g in ("CO", "OA") and r not in ("45", _PRIOR)),
                Decimal(0),
            )
            denied_pr = sum(
                (a for g, r, a in groups if g == "PR" and r not in ("1", "2", "3")), Decimal(0)
            )
            coins = sum((a for g, r, a in groups if g == "PR" and r == "2"), Decimal(0))
            if "eligible" in by and not denied_co and not denied_pr:
                contractual = by["submitted"] - by["eligible"] - prior
            else:
                contractual = sum((a for g, r, a in groups if g == "CO" and r == "45"), Decimal(0))
            seq = it.get("itemSequence")
            if contractual:
                out.append(
                    Txn(
                        day,
                        patient,
                        ref,
                        "contractual",
                        "insurance",
                        -contractual,
                        f"Contractual adjustment (CO-45), line {seq}",
                    )
                )
            if by.get("benefit"):
                out.append(
                    Txn(
                        day,
                        patient,
                        ref,
                        "insurer-payment",
                        "insurance",
                        -by["benefit"],
                        f"Insurance payment, line {seq}",
                        "eft",
                    )
                )
            share = (
                by.get("copay", Decimal(0)) + by.get("deductible", Decimal(0)) + coins + denied_pr
            )
            if share:
                out.append(
                    Txn(
                        day,
                        patient,
                        ref,
                        "patient-share",
                        "insurance",
                        -share,
                        f"Patient responsibility, line {seq}",
                    )
                )
                out.append(
                    Txn(
                        day,
                        patient,
                        ref,
                        "patient-share",
                        "patient",
                        share,
                        f"Patient responsibility, line {seq}",
                    )
                )
    return out


def transactions(session: Session, patient: str | None = None) -> list[Txn]:
    """Every ledger transaction the session may see (of one patient, or all), in date order.

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> b = Sandbox.generate(patients=2, seed=1, years=1).login("billing.davis")
    >>> kinds = {t.kind for t in transactions(b)}
    >>> {"charge", "contractual", "insurer-payment"} <= kinds
    True
    """
    every = [c for c in session.resources("Claim") if c.get("use", "claim") == "claim"]
    claims = {
        c["id"]: c
        for c in every
        if c.get("status") == "active" and (patient is None or c["patient"]["reference"] == patient)
    }
    # money paid on a claim later replaced by a corrected one (claims.resubmit_corrected
    # cancels the original) was still received: it stays on the patient's ledger
    owner = {c["id"]: c["patient"]["reference"] for c in every}
    responses: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for cr in session.resources("ClaimResponse"):
        req = (cr.get("request") or {}).get("reference", "")
        cid = req.split("/")[-1]
        if cid in claims and cr.get("status") == "active":
            responses[cid].append(cr)
    out: list[Txn] = []
    for cid in sorted(claims):
        out.extend(
            _claim_txns(claims[cid], sorted(responses[cid], key=lambda r: r.get("created", "")))
        )
    for pr in session.resources("PaymentReconciliation"):
        if pr.get("status") != "active":
            continue
        method = _code((pr.get("paymentIdentifier") or {}).get("type"), PAYMENT_METHOD)
        number = (pr.get("paymentIdentifier") or {}).get("value")
        for d in pr.get("detail", []):
            kind = _code(d.get("type"), LEDGER_KIND)
            if kind in (None, "insurer-payment"):
                continue  # insurer money is counted from the ClaimResponse it pays
            req = (d.get("request") or {}).get("reference", "")
            pat = None
            claim_ref = req if req.startswith("Claim/") else None
            if claim_ref:
                pat = owner.get(claim_ref.split("/")[-1])
            elif req.startswith("Patient/"):
                pat = req
            if pat is None or (patient is not None and pat != patient):
                continue
            amt = money((d.get("amount") or {}).get("value", 0))
            day = (d.get("date") or pr.get("created", ""))[:10]
            if kind == "patient-payment":
                out.append(
                    Txn(
                        day,
                        pat,
                        claim_ref,
                        kind,
                        "patient",
                        -amt,
                        "Patient payment",
                        method,
                        number,
                    )
                )
            elif kind == "refund":
                out.append(
                    Txn(
                        day,
                        pat,
                        claim_ref,
                        kind,
                        "patient",
                        amt,
                        "Refund to patient",
                        method,
                        number,
                    )
                )
            elif kind == "write-off":
                bucket = _code(d.get("type"), SANDBOX_LEDGER_BUCKET) or "patient"
                out.append(Txn(day, pat, claim_ref, kind, bucket, -amt, "Write-off (approved)"))
            elif kind == "transfer-to-patient":
                out.append(
                    Txn(
                        day,
                        pat,
                        claim_ref,
                        kind,
                        "insurance",
                        -amt,
                        "Denied amount billed to patient",
                    )
                )
                out.append(
                    Txn(
                        day, pat, claim_ref, kind, "patient", amt, "Denied amount billed to patient"
                    )
                )
    # a crossover claim's activity follows its primary claim's on the same day
    follows = {f"Claim/{c['id']}": secondary_of(c) for c in every if secondary_of(c)}
    out.sort(
        key=lambda t: (
            t.date,
            t.patient,
            follows.get(t.claim or "") or t.claim or "",
            (t.claim or "") in follows,
            t.kind,
        )
    )
    return out


def balances(
    session: Session, patient: str | None = None, as_of: str | None = None
) -> dict[str, Decimal]:
    """Insurance, patient and total balance (to the cent), up to and including ``as_of``.

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> b = Sandbox.generate(patients=2, seed=1, years=1).login("billing.davis")
    >>> bal = balances(b)
    >>> bal["total"] == bal["insurance"] + bal["patient"]
    True
    """
    out = {"insurance": Decimal("0.00"), "patient": Decimal("0.00")}
    for t in transactions(session, patient):
        if as_of is None or t.date <= as_of:
            out[t.bucket] += t.amount
    out["total"] = out["insurance"] + out["patient"]
    return {k: money(v) for k, v in out.items()}


def ledger(session: Session, patient: str) -> list[dict[str, Any]]:
    """A patient's account ledger: date, description, charge, credit, running balance.

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> b = Sandbox.generate(patients=2, seed=1, years=1).login("billing.davis")
    >>> pid = b.search("Claim").first()["patient"]["reference"]
    >>> rows = ledger(b, pid)
    >>> rows[-1]["balance"] == balances(b, pid)["total"]
    True
    """
    rows = []
    running = Decimal("0.00")
    for t in transactions(session, patient):
        if t.kind in ("patient-share", "transfer-to-patient", "transfer-to-secondary"):
            continue  # moves between buckets; the total balance does not change
        running += t.amount
        rows.append(
            {
                "date": t.date,
                "claim": t.claim,
                "description": t.description,
                "charge": t.amount if t.amount > 0 else Decimal("0.00"),
                "credit": -t.amount if t.amount < 0 else Decimal("0.00"),
                "balance": money(running),
            }
        )
    return rows


def day_sheet(session: Session, day: str) -> dict[str, Any]:
    """The day sheet: the day's charges, receipts and adjustments, with the A/R proof.

    ``previous + charges - receipts - adjustments + refunds == closing`` where previous and
    closing are the A/R balances computed independently at the end of the day before and of
    the day; ``proof`` is True when they agree to the cent.

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> b = Sandbox.generate(patients=3, seed=1, years=1).login("billing.davis")
    >>> d = b.search("ClaimResponse").first()["created"]
    >>> sheet = day_sheet(b, d)
    >>> sheet["proof"], sheet["totals"]["receipts"] > 0
    (True, True)
    """
    prev_day = (date.fromisoformat(day) - timedelta(days=1)).isoformat()
    rows = [t for t in transactions(session) if t.date == day]
    totals = {
        "charges": sum((t.amount for t in rows if t.kind == "charge"), Decimal(0)),
        "receipts": -sum(
            (t.amount for t in rows if t.kind in ("insurer-payment", "patient-payment")), Decimal(0)
        ),
        "adjustments": -sum(
            (t.amount for t in rows if t.kind in ("contractual", "write-off")), Decimal(0)
        ),
        "refunds": sum((t.amount for t in rows if t.kind == "refund"), Decimal(0)),
    }
    by_method: dict[str, Decimal] = defaultdict(Decimal)
    for t in rows:
        if t.kind in ("insurer-payment", "patient-payment"):
            by_method[t.method or "unknown"] += -t.amount
    previous = balances(session, as_of=prev_day)["total"]
    closing = balances(session, as_of=day)["total"]
    computed = (
        previous
        + totals["charges"]
        - totals["receipts"]
        - totals["adjustments"]
        + totals["refunds"]
    )
    return {
        "date": day,
        "rows": [t.__dict__ for t in rows],
        "totals": {k: money(v) for k, v in totals.items()},
        "receipts_by_method": {k: money(v) for k, v in sorted(by_method.items())},
        "previous_balance": previous,
        "closing_balance": closing,
        "proof": money(computed) == closing,
    }


def deposit_slip(session: Session, day: str) -> dict[str, Any]:
    """The bank deposit for a day: cash and checks received (cards and EFT settle on their own).

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> deposit_slip(Sandbox.generate(patients=1, seed=1, years=1).login("billing.davis"), "2026-01-01")["total"]
    Decimal('0.00')
    """
    items = []
    for t in transactions(session):
        if t.date == day and t.kind == "patient-payment" and t.method in ("cash", "check"):
            items.append(
                {
                    "patient": t.patient,
                    "method": t.method,
                    "number": t.reference,
                    "amount": -t.amount,
                }
            )
    cash = sum((i["amount"] for i in items if i["method"] == "cash"), Decimal(0))
    checks = sum((i["amount"] for i in items if i["method"] == "check"), Decimal(0))
    return {
        "date": day,
        "items": items,
        "cash": money(cash),
        "checks": money(checks),
        "total": money(cash + checks),
    }


def ar_aging(session: Session, as_of: str) -> dict[str, Any]:
    """Accounts receivable by age of the service (days since the claim's service date).

    Patient credits not applied to a claim are applied to the patient's oldest patient
    balances; what is left shows as a credit in the 0-30 bucket. ``total`` equals the sum of
    every ledger balance.

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> b = Sandbox.generate(patients=3, seed=1, years=1).login("billing.davis")
    >>> aging = ar_aging(b, "2026-01-01")
    >>> aging["total"] == balances(b, as_of="2026-01-01")["total"]
    True
    """
    end = date.fromisoformat(as_of)
    txns = [t for t in transactions(session) if t.date <= as_of]
    service: dict[str, str] = {}
    for c in session.resources("Claim"):
        service[f"Claim/{c['id']}"] = (c.get("billablePeriod") or {}).get(
            "start", c.get("created", "")
        )[:10]
    per_claim: dict[tuple[str, str, str], Decimal] = defaultdict(Decimal)
    unapplied: dict[str, Decimal] = defaultdict(Decimal)
    for t in txns:
        if t.claim:
            per_claim[(t.patient, t.claim, t.bucket)] += t.amount
        else:
            unapplied[t.patient] += t.amount
    for pat, credit in unapplied.items():
        keys = sorted(
            (k for k in per_claim if k[0] == pat and k[2] == "patient" and per_claim[k] > 0),
            key=lambda k: service.get(k[1], ""),
        )
        for k in keys:
            if credit >= 0:
                break
            use = min(per_claim[k], -credit)
            per_claim[k] -= use
            credit += use
        unapplied[pat] = credit
    table: dict[str, dict[str, Decimal]] = {
        b[2]: {"insurance": Decimal(0), "patient": Decimal(0)} for b in AGING_BUCKETS
    }
    for (_pat, claim, bucket), amt in per_claim.items():
        if not amt:
            continue
        age = (end - date.fromisoformat(service.get(claim, as_of))).days
        label = next(b[2] for b in AGING_BUCKETS if b[0] <= max(age, 0) <= b[1])
        table[label][bucket] += amt
    for credit in unapplied.values():
        table["0-30"]["patient"] += credit
    total = sum((v for row in table.values() for v in row.values()), Decimal(0))
    return {
        "as_of": as_of,
        "buckets": {k: {b: money(v) for b, v in row.items()} for k, row in table.items()},
        "total": money(total),
    }


def reconcile(session: Session, day: str) -> dict[str, Any]:
    """Check that ledger, day sheet, deposit slip and A/R aging agree to the cent for a day.

    Returns the four figures and ``ok``.

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> reconcile(Sandbox.generate(patients=3, seed=1, years=1).login("billing.davis"), "2026-01-01")["ok"]
    True
    """
    sheet = day_sheet(session, day)
    aging = ar_aging(session, day)
    patients = {t.patient for t in transactions(session)}
    ledgers = sum(
        (
            rows[-1]["balance"]
            for p in patients
            if (rows := [r for r in ledger(session, p) if r["date"] <= day])
        ),
        Decimal(0),
    )
    slip = deposit_slip(session, day)
    cash_checks = sheet["receipts_by_method"].get("cash", Decimal(0)) + sheet[
        "receipts_by_method"
    ].get("check", Decimal(0))
    ok = (
        sheet["proof"]
        and aging["total"] == sheet["closing_balance"] == money(ledgers)
        and slip["total"] == money(cash_checks)
    )
    return {
        "day_sheet_closing": sheet["closing_balance"],
        "aging_total": aging["total"],
        "ledger_total": money(ledgers),
        "deposit_total": slip["total"],
        "ok": bool(ok),
    }
