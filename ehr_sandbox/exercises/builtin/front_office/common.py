"""Helpers shared by the front-office exercises (catalogue 27, 31, 37, 40 and issue 15's list).

Graders read the versions written since setup (history, not only the current state) and the
workflow operation each version was written by, as far as the record bears it out
(:func:`ehr_sandbox.exercises.evidence.done_by`: the ``meta.tag`` alone can be typed by hand).

>>> check(True, "found", "expected").passed
True
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from ehr_sandbox.exercises.builtin.common import hand_in, handed_in, still_standing
from ehr_sandbox.exercises.evidence import OPERATION_TAG, done_by
from ehr_sandbox.exercises.grading import GradingContext
from ehr_sandbox.exercises.model import Check
from synthetic.systems import (
    CONDITION_CATEGORY,
    CONDITION_CLINICAL,
    CONDITION_VER_STATUS,
    V3_ACT_CODE,
)

__all__ = [
    "ADMIN",
    "BILLING",
    "FD",
    "MA",
    "OPERATION_TAG",
    "check",
    "claim_misstates_visit",
    "fabricate_eligibility",
    "free_on",
    "visit",
    "hand_in",
    "handed_in",
    "insured_patients",
    "local_day_start",
    "next_workday",
    "op_of",
    "payment_typed_in",
    "sent_versions",
    "standing_patient_payments",
    "written",
]

FD = "fd.smith"
MA = "ma.garcia"
BILLING = "billing.davis"
ADMIN = "admin.root"
OFFSET = "-05:00"


def check(passed: bool, found: str, expected: str, advice: str = "") -> Check:
    """Shorthand for a criterion's :class:`Check`.

    >>> check(False, "x", "y", "z").advice
    'z'
    """
    return Check(bool(passed), found, expected, advice)


def op_of(ctx: GradingContext, version: dict[str, Any]) -> str | None:
    """The workflow operation that wrote a version, when the record shows what it guarantees
    (None when written by hand, or when the operation's tag was typed in without its effect).

    >>> op_of(None, {"meta": {"tag": [{"system": OPERATION_TAG, "code": "no.such-op"}]}}) is None
    True
    """
    return done_by(ctx, version)


def written(
    ctx: GradingContext, rtype: str, *, operation: str | None = None
) -> list[dict[str, Any]]:
    """Versions of ``rtype`` written since setup (oldest first), optionally by one operation.

    Examples
    --------
    >>> from types import SimpleNamespace as NS
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> from ehr_sandbox.exercises.grading import GradingContext, SetupMark
    >>> from ehr_sandbox.workflows import scheduling
    >>> sb = Sandbox.generate(patients=1, seed=1, years=1)
    >>> mark = SetupMark(sb.audit.count(), sb.system_session().change_mark())
    >>> ctx = GradingContext(sb, sb.system_session(), {}, sb.user("fd.smith"), "ann", mark=mark)
    >>> written(ctx, "Appointment")  # nothing written since setup: the generated ones predate it
    []
    >>> fd = sb.login("fd.smith")
    >>> pid = fd.search("Patient").first()["id"]
    >>> _ = scheduling.recall(fd, f"Patient/{pid}", "Practitioner/prac-dr.patel",
    ...                       due="2026-04-01", reason="3-month BP recheck")
    >>> [v["status"] for v in written(ctx, "Appointment", operation="scheduling.recall")]
    ['proposed']
    >>> written(ctx, "Appointment", operation="scheduling.book")
    []
    """
    out = [v for v in ctx.versions_since_setup() if v.get("resourceType") == rtype]
    if operation is not None:
        out = [v for v in out if op_of(ctx, v) == operation]
    return out


def standing_patient_payments(ctx: GradingContext) -> list[dict[str, Any]]:
    """Payments received from patients since setup, as they stand: each PaymentReconciliation
    as it is now (:func:`~ehr_sandbox.exercises.builtin.common.still_standing`), if active, with only its patient-payment details (a payment
    typed in cancelled or in error, or booked as a refund or an adjustment, took no money in).

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> from ehr_sandbox.exercises.grading import GradingContext, SetupMark
    >>> from ehr_sandbox.workflows import payments
    >>> sb = Sandbox.generate(patients=1, seed=1, years=1)
    >>> mark = SetupMark(sb.audit.count(), sb.system_session().change_mark())
    >>> ctx = GradingContext(sb, sb.system_session(), {}, sb.user("fd.smith"), "ann", mark=mark)
    >>> fd = sb.login("fd.smith")
    >>> pid = fd.search("Patient").first()["id"]
    >>> paid = payments.desk_payment(fd, f"Patient/{pid}", "25", method="cash")
    >>> voided = fd.create({**{k: v for k, v in paid.items() if k not in ("id", "meta")},
    ...                     "status": "entered-in-error"})
    >>> [v["id"] for v in standing_patient_payments(ctx)] == [paid["id"]]
    True
    """
    from ehr_sandbox.workflows.payer import LEDGER_KIND

    out = []
    for v in still_standing(ctx, written(ctx, "PaymentReconciliation"), current=True):
        details = [
            d
            for d in v.get("detail", [])
            if any(
                c.get("system") == LEDGER_KIND and c.get("code") == "patient-payment"
                for c in (d.get("type") or {}).get("coding", [])
            )
        ]
        if v.get("status") == "active" and details:
            out.append({**v, "detail": details})
    return out


def sent_versions(ctx: GradingContext, claim_ids: list[str]) -> list[dict[str, Any]]:
    """Every version of the claims ``claim_ids`` written since setup with status ``active``
    (oldest first): each went to the payer, and a claim rewritten after it was sent (back to
    draft and sent again, or edited while active) does not call the first one back.

    Examples
    --------
    >>> ctx = type("Ctx", (), {"versions_since_setup": lambda self, ref=None: [
    ...     {"resourceType": "Claim", "id": "c1", "status": "draft"},
    ...     {"resourceType": "Claim", "id": "c1", "status": "active"},
    ...     {"resourceType": "Claim", "id": "c2", "status": "active"}]})()
    >>> [v["id"] for v in sent_versions(ctx, ["c1"])]
    ['c1']
    """
    ids = set(claim_ids)
    return [
        v
        for v in ctx.versions_since_setup()
        if v.get("resourceType") == "Claim" and v.get("id") in ids and v.get("status") == "active"
    ]


def next_workday(day: date) -> date:
    """The next Monday-Friday after ``day``.

    >>> next_workday(date(2026, 1, 2)).isoformat()
    '2026-01-05'
    """
    d = day + timedelta(days=1)
    while d.weekday() >= 5:
        d += timedelta(days=1)
    return d


def local_day_start(day: date, hhmm: str) -> str:
    """Practice-local instant text.

    >>> local_day_start(date(2026, 1, 5), "09:40")
    '2026-01-05T09:40:00-05:00'
    """
    return datetime.fromisoformat(f"{day.isoformat()}T{hhmm}:00{OFFSET}").isoformat()


def insured_patients(
    sandbox: Any, payers: tuple[str, ...], *, username: str = FD
) -> list[dict[str, Any]]:
    """Living patients with one active, open-ended coverage from one of ``payers``, by id.

    >>> from ehr_sandbox.sandbox import Sandbox
    >>> sb = Sandbox.generate(patients=6, seed=1, years=1)
    >>> found = insured_patients(sb, ("blueshield", "medicare"))
    >>> found == sorted(found, key=lambda p: p["id"]) and len(found) > 0
    True
    """
    s = sandbox.login(username)
    out = []
    for p in sorted(s.search("Patient").fetch(), key=lambda p: p["id"]):
        if p.get("deceasedDateTime") or p.get("deceasedBoolean"):
            continue
        covs = [
            c
            for c in s.search("Coverage", patient=f"Patient/{p['id']}").fetch()
            if c.get("status") == "active" and not (c.get("period") or {}).get("end")
        ]
        if len(covs) == 1 and any(covs[0]["payor"][0]["reference"].endswith(x) for x in payers):
            out.append(p)
    return out


def visit(
    sandbox: Any,
    patient_id: str,
    doctor: str,
    *,
    start: str,
    conditions: list[tuple[str, str, str]],
    visit_code: str = "OV-EST-3",
    klass: str = "AMB",
) -> dict[str, Any]:
    """Record (at setup, as the sandbox) a finished visit and its documented diagnoses.

    ``conditions`` are ``(icd10cm code, documented text, verification status)``. Returns
    ``{"encounter": id, "conditions": [ids]}``.

    >>> from ehr_sandbox.sandbox import Sandbox
    >>> sb = Sandbox.generate(patients=2, seed=1, years=1)
    >>> pid = sb.system_session().search("Patient").first()["id"]
    >>> v = visit(sb, pid, "dr.patel", start="2026-01-02T09:00:00-05:00",
    ...           conditions=[("I10", "Hypertension", "confirmed")])
    >>> sb.system_session().read(f"Encounter/{v['encounter']}")["status"], len(v["conditions"])
    ('finished', 1)
    """
    from ehr_sandbox.workflows.coding import lookup

    s = sandbox.system_session()
    end = (datetime.fromisoformat(start) + timedelta(minutes=20)).isoformat()
    enc = s.create(
        {
            "resourceType": "Encounter",
            "status": "finished",
            "class": {"system": V3_ACT_CODE, "code": klass},
            "type": [{"coding": [lookup(f"procedure|{visit_code}")]}],
            "subject": {"reference": f"Patient/{patient_id}"},
            "participant": [{"individual": {"reference": f"Practitioner/prac-{doctor}"}}],
            "period": {"start": start, "end": end},
            "serviceProvider": {"reference": "Organization/practice-1"},
        }
    )
    ids = []
    for code, text, status in conditions:
        c = s.create(
            {
                "resourceType": "Condition",
                "clinicalStatus": {
                    "coding": [
                        {
                            "system": CONDITION_CLINICAL,
                            "code": "active",
                        }
                    ]
                },
                "verificationStatus": {
                    "coding": [
                        {
                            "system": CONDITION_VER_STATUS,
                            "code": status,
                        }
                    ]
                },
                "category": [
                    {
                        "coding": [
                            {
                                "system": CONDITION_CATEGORY,
                                "code": "encounter-diagnosis",
                            }
                        ]
                    }
                ],
                "code": {"coding": [lookup(f"icd10cm|{code}")], "text": text},
                "subject": {"reference": f"Patient/{patient_id}"},
                "encounter": {"reference": f"Encounter/{enc['id']}"},
                "recordedDate": start,
            }
        )
        ids.append(c["id"])
    return {"encounter": enc["id"], "conditions": ids}


def free_on(sandbox: Any, patients: list[dict[str, Any]], day: date) -> list[dict[str, Any]]:
    """The patients with no appointment on ``day`` (a booking would clash, and be refused).

    >>> from ehr_sandbox.sandbox import Sandbox
    >>> sb = Sandbox.generate(patients=6, seed=1, years=1)
    >>> everyone = sb.system_session().search("Patient").fetch()
    >>> busy_day = date.fromisoformat(sb.system_session().search("Appointment", status="booked").first()["start"][:10])
    >>> len(free_on(sb, everyone, busy_day)) < len(everyone)
    True
    """
    fd = sandbox.login(FD)
    text = day.isoformat()
    return [
        p
        for p in patients
        if not any(
            a.get("start", "").startswith(text)
            for a in fd.search("Appointment", patient=f"Patient/{p['id']}").fetch()
        )
    ]


def fabricate_eligibility(session: Any, coverage: str, day: date) -> dict[str, Any]:
    """Wrong-solution helper: store an eligibility request and a response the payer never gave
    (the plan in force with no copay), tagged as the eligibility workflow tags its writes.

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> fd = Sandbox.generate(patients=3, seed=1, years=1).login(FD)
    >>> cov = next(c for c in fd.search("Coverage").fetch() if "selfpay" not in c["payor"][0]["reference"])
    >>> fake = fabricate_eligibility(fd, f"Coverage/{cov['id']}", date(2026, 1, 5))
    >>> fake["insurance"][0]["inforce"], fake["insurance"][0]["item"][0]["benefit"][0]["allowedMoney"]["value"]
    (True, 0)
    """
    from ehr_sandbox.workflows import payer
    from ehr_sandbox.workflows.base import write

    cov = session.read(coverage)
    ask = write(
        session,
        {
            "resourceType": "CoverageEligibilityRequest",
            "status": "active",
            "purpose": ["benefits", "validation"],
            "patient": cov["beneficiary"],
            "servicedDate": day.isoformat(),
            "created": day.isoformat(),
            "provider": {"reference": "Organization/practice-1"},
            "insurer": {"reference": cov["payor"][0]["reference"]},
            "insurance": [{"focal": True, "coverage": {"reference": coverage}}],
        },
        operation="eligibility.check",
    )
    answer = payer.eligibility(
        session,
        cov,
        service_date=day,
        request_ref=f"CoverageEligibilityRequest/{ask['id']}",
    )
    answer["insurance"][0]["inforce"] = True
    answer["insurance"][0]["item"] = [
        {"benefit": [{"type": {"text": "copay"}, "allowedMoney": {"value": 0, "currency": "USD"}}]}
    ]
    return write(session, answer, operation="eligibility.check")


def payment_typed_in(
    session: Any, patient: str, amount: Any, *, method: str, number: str | None, status: str
) -> dict[str, Any]:
    """Wrong-solution helper: a patient's payment typed in by hand, shaped as the desk records
    it but with ``status`` (``entered-in-error``, ``cancelled``: it took no money in).

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> fd = Sandbox.generate(patients=1, seed=1, years=1).login(FD)
    >>> pid = fd.search("Patient").first()["id"]
    >>> v = payment_typed_in(fd, f"Patient/{pid}", "20", method="cash", number=None,
    ...                      status="entered-in-error")
    >>> v["status"], v["paymentAmount"]["value"], v["detail"][0]["type"]["coding"][1]["code"]
    ('entered-in-error', 20.0, 'patient-payment')
    """
    from ehr_sandbox.workflows.base import money, now
    from ehr_sandbox.workflows.payer import LEDGER_KIND, PAYMENT_METHOD, PAYMENT_TYPE

    day = now(session).date().isoformat()
    value = {"value": float(money(amount)), "currency": "USD"}
    return session.create(
        {
            "resourceType": "PaymentReconciliation",
            "status": status,
            "created": day,
            "paymentDate": day,
            "paymentAmount": value,
            "paymentIdentifier": {
                "type": {"coding": [{"system": PAYMENT_METHOD, "code": method}]},
                "value": number or f"{method.upper()}-TYPED",
            },
            "outcome": "complete",
            "detail": [
                {
                    "type": {
                        "coding": [
                            {"system": PAYMENT_TYPE, "code": "payment"},
                            {"system": LEDGER_KIND, "code": "patient-payment"},
                        ]
                    },
                    "request": {"reference": patient},
                    "date": day,
                    "amount": value,
                }
            ],
        }
    )


def claim_misstates_visit(ctx: Any, claim: dict[str, Any], encounter: str) -> str | None:
    """What a claim for ``encounter`` says that the visit was not (None when nothing): the
    visit's patient, billed by the practice that saw them, each line dated the day of the
    visit and billed once, the plan one of the patient's own. A claim with the right codes
    but another date, more units or another patient's plan bills what did not happen.

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> from ehr_sandbox.exercises.grading import GradingContext
    >>> from ehr_sandbox.workflows import coding
    >>> sb = Sandbox.generate(patients=3, seed=1, years=1)
    >>> b = sb.login(BILLING)
    >>> ctx = GradingContext(sb, sb.system_session(), {}, sb.user(BILLING), "ann")
    >>> enc = next(e for e in b.search("Encounter").fetch() if e.get("status") == "finished"
    ...            and b.search("Coverage", patient=e["subject"]["reference"]).count())
    >>> ref = f"Encounter/{enc['id']}"
    >>> c = coding.claim_resource(b, ref, diagnoses=["icd10cm|I10"],
    ...                           lines=[coding.ClaimLine("procedure|OV-EST-3", (1,))])
    >>> claim_misstates_visit(ctx, c, ref) is None
    True
    >>> c["item"][0]["quantity"] = {"value": 3}
    >>> claim_misstates_visit(ctx, c, ref)
    'line 1 billed 3 times'
    """
    enc = ctx.read(encounter) or {}
    patient = (enc.get("subject") or {}).get("reference")
    day = str((enc.get("period") or {}).get("start", ""))[:10]
    if (claim.get("patient") or {}).get("reference") != patient:
        return "the claim is for another patient than the visit's"
    practice = (enc.get("serviceProvider") or {}).get("reference")
    if practice and (claim.get("provider") or {}).get("reference") != practice:
        return "the claim is billed by another provider than the practice that saw the patient"
    period = claim.get("billablePeriod") or {}
    if any(str(period.get(k, day))[:10] != day for k in ("start", "end")):
        return "the claim's billing period is not the day of the visit"
    for n, item in enumerate(claim.get("item", []), start=1):
        if str(item.get("servicedDate", ""))[:10] != day:
            return f"line {n} is dated another day than the visit"
        units = (item.get("quantity") or {}).get("value", 1)
        if units != 1:
            return f"line {n} billed {units:g} times"
    for ins in claim.get("insurance", []):
        ref = str((ins.get("coverage") or {}).get("reference", ""))
        cov = (ctx.read(ref) if ref.startswith("Coverage/") else None) or {}
        if (cov.get("beneficiary") or {}).get("reference") != patient:
            return "the claim bills a plan that is not the patient's"
    return None
