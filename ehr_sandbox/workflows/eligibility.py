"""Eligibility and the patient's financial responsibility at check-in; referrals and prior auth.

The front desk checks eligibility for each active plan before the visit
(``CoverageEligibilityRequest`` -> the payer simulator's ``CoverageEligibilityResponse``, both
stored) and tells the patient what they owe today: the primary plan's copay, and what is left
of the deductible and the coinsurance that will apply after the visit.

>>> RULES["eligibility.verified"].id
'eligibility.verified'
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ehr_sandbox.errors import ValidationError
from ehr_sandbox.workflows import payer
from ehr_sandbox.workflows.base import Rule, RuleRefused, money, now, urn, write_all
from ehr_sandbox.workflows.content import table

if TYPE_CHECKING:
    from ehr_sandbox.session import Session

__all__ = [
    "RULES",
    "active_coverages",
    "check_eligibility",
    "financial_responsibility",
    "latest_response",
    "needs_prior_auth",
    "needs_referral",
]

_SRC = (
    table("payers")["source"] + "; practice front-desk policy (verify every plan before each visit)"
)
RULES = {
    r.id: r
    for r in (
        Rule(
            "eligibility.verified",
            "every active plan is verified on or before the day of service, before the patient is told what they owe",
            _SRC,
        ),
        Rule(
            "eligibility.active-plan", "eligibility is checked for a plan the patient has now", _SRC
        ),
    )
}


def active_coverages(
    session: Session, patient: str, on: date | None = None
) -> list[dict[str, Any]]:
    """The patient's plans in force on a date, primary first.

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> fd = Sandbox.generate(patients=2, seed=1, years=1).login("fd.smith")
    >>> c = fd.search("Coverage").first()
    >>> active_coverages(fd, c["beneficiary"]["reference"])[0]["id"] == c["id"]
    True
    """
    day = (on or now(session).date()).isoformat()
    out = []
    for c in session.search("Coverage", patient=patient).fetch():
        period = c.get("period") or {}
        if (
            c.get("status") == "active"
            and period.get("start", day) <= day
            and (period.get("end") or day) >= day
        ):
            out.append(c)
    return sorted(out, key=lambda c: int(c.get("order", 1)))


def check_eligibility(
    session: Session, coverage: str, *, service_date: str | None = None
) -> dict[str, Any]:
    """Ask the payer whether the plan is in force and what it pays; store request and response.

    Parameters
    ----------
    session : Session
        Front desk.
    coverage : str
        ``Coverage/<id>``.
    service_date : str, optional
        The visit date (default today).

    Returns
    -------
    dict
        The stored CoverageEligibilityResponse.

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> fd = Sandbox.generate(patients=3, seed=1, years=1).login("fd.smith")
    >>> cov = next(c for c in fd.search("Coverage").fetch() if "selfpay" not in c["payor"][0]["reference"])
    >>> r = check_eligibility(fd, f"Coverage/{cov['id']}")
    >>> r["resourceType"], r["insurance"][0]["inforce"], r["request"]["reference"].startswith("CoverageEligibilityRequest/")
    ('CoverageEligibilityResponse', True, True)
    """
    cov = session.read(coverage)
    if not payer.is_insurance(cov):
        raise RuleRefused(
            RULES["eligibility.active-plan"],
            resource=coverage,
            path="payor",
            expected="an insurance plan (self-pay has no eligibility)",
            found=cov["payor"][0]["reference"],
        )
    day = date.fromisoformat(service_date) if service_date else now(session).date()
    p = payer.plan(cov["payor"][0]["reference"])
    req_url = urn(session, "CoverageEligibilityRequest", coverage)
    request = {
        "resourceType": "CoverageEligibilityRequest",
        "status": "active",
        "purpose": ["benefits", "validation"],
        "patient": cov["beneficiary"],
        "servicedDate": day.isoformat(),
        "created": now(session).date().isoformat(),
        "provider": {"reference": "Organization/practice-1"},
        "insurer": {"reference": p.org_ref},
        "insurance": [{"focal": True, "coverage": {"reference": coverage}}],
    }
    response = payer.eligibility(session, cov, service_date=day, request_ref=req_url)
    out = write_all(
        session,
        [{"fullUrl": req_url, "resource": request}, response],
        operation="eligibility.check",
    )
    return out[1]


def latest_response(session: Session, coverage: str, *, on_or_after: str) -> dict[str, Any] | None:
    """The newest eligibility response for a plan, created on or after a date (or None).

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> latest_response(Sandbox.generate(patients=1, seed=1, years=1).login("fd.smith"), "Coverage/x", on_or_after="2026-01-01") is None
    True
    """
    found = [
        r
        for r in session.resources("CoverageEligibilityResponse")
        if r.get("status") == "active"
        and any(i.get("coverage", {}).get("reference") == coverage for i in r.get("insurance", []))
        and r.get("created", "") >= on_or_after
    ]
    found.sort(key=lambda r: (r.get("created", ""), r.get("meta", {}).get("lastUpdated", "")))
    return found[-1] if found else None


def _benefit(resp: dict[str, Any], code: str) -> dict[str, Any] | None:
    for ins in resp.get("insurance", []):
        for item in ins.get("item", []):
            for b in item.get("benefit", []):
                if any(c.get("code") == code for c in b.get("type", {}).get("coding", [])):
                    return b
    return None


def financial_responsibility(
    session: Session, patient: str, *, service_date: str | None = None
) -> dict[str, Any]:
    """What the patient owes at check-in, from today's eligibility answers.

    Returns the primary plan, ``copay_due`` (collect now), the deductible and what remains of
    it, coinsurance, and the secondary plan if any. Refused until every active plan has been
    verified for the day.

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> fd = Sandbox.generate(patients=3, seed=1, years=1).login("fd.smith")
    >>> cov = next(c for c in fd.search("Coverage").fetch() if "blueshield" in c["payor"][0]["reference"])
    >>> pat = cov["beneficiary"]["reference"]
    >>> financial_responsibility(fd, pat)
    Traceback (most recent call last):
    ...
    ehr_sandbox.workflows.base.RuleRefused: Coverage/...: CoverageEligibilityResponse: expected an eligibility check dated ... Refused by rule eligibility.verified: ...
    >>> for c in active_coverages(fd, pat):
    ...     _ = check_eligibility(fd, f"Coverage/{c['id']}")
    >>> fr = financial_responsibility(fd, pat)
    >>> fr["copay_due"], fr["primary"]
    (Decimal('30.00'), 'Riverton Blue PPO')
    """
    day = date.fromisoformat(service_date) if service_date else now(session).date()
    covs = [
        c
        for c in active_coverages(session, patient, day)
        if "selfpay" not in c["payor"][0]["reference"]
    ]
    if not covs:
        return {"primary": "Self-pay", "copay_due": Decimal("0.00"), "self_pay": True, "plans": []}
    plans = []
    checked_on = now(session).date().isoformat()
    for c in covs:
        ref = f"Coverage/{c['id']}"
        resp = latest_response(session, ref, on_or_after=min(checked_on, day.isoformat()))
        if resp is None or resp.get("servicedDate") != day.isoformat():
            raise RuleRefused(
                RULES["eligibility.verified"],
                resource=ref,
                path="CoverageEligibilityResponse",
                expected=f"an eligibility check dated today for service on {day.isoformat()}",
                found=None,
            )
        inforce = any(i.get("inforce") for i in resp.get("insurance", []))
        entry: dict[str, Any] = {
            "coverage": ref,
            "payer": c["payor"][0].get("display") or payer.plan(c["payor"][0]["reference"]).name,
            "inforce": inforce,
            "response": f"CoverageEligibilityResponse/{resp['id']}",
        }
        if inforce:
            cp, ded, co = (
                _benefit(resp, "copay"),
                _benefit(resp, "deductible"),
                _benefit(resp, "coinsurance"),
            )
            entry["copay"] = money((cp or {}).get("allowedMoney", {"value": 0}))
            entry["deductible"] = money((ded or {}).get("allowedMoney", {"value": 0}))
            entry["deductible_met"] = money((ded or {}).get("usedMoney", {"value": 0}))
            entry["deductible_remaining"] = max(
                Decimal("0.00"), entry["deductible"] - entry["deductible_met"]
            )
            entry["coinsurance"] = (co or {}).get("allowedString", "0%")
        plans.append(entry)
    primary = next((p for p in plans if p["inforce"]), None)
    if primary is None:
        return {
            "primary": None,
            "copay_due": Decimal("0.00"),
            "self_pay": True,
            "plans": plans,
            "note": "no plan in force: ask for current insurance or register as self-pay",
        }
    secondary = next((p for p in plans if p["inforce"] and p is not primary), None)
    return {
        "primary": primary["payer"],
        "copay_due": primary["copay"],
        "deductible": primary["deductible"],
        "deductible_remaining": primary["deductible_remaining"],
        "coinsurance": primary["coinsurance"],
        "secondary": secondary["payer"] if secondary else None,
        "self_pay": False,
        "plans": plans,
    }


def needs_referral(coverage: dict[str, Any], *, specialist: bool) -> bool:
    """True when the plan needs a PCP referral for this visit (HMO to a specialist).

    >>> needs_referral({"payor": [{"reference": "Organization/org-payer-unityhealth"}]}, specialist=True)
    True
    """
    return specialist and payer.plan(coverage["payor"][0]["reference"]).referral_required


def needs_prior_auth(coverage: dict[str, Any], service: str) -> bool:
    """True when the plan lists the service (``procedure|CODE``) for prior authorisation.

    >>> needs_prior_auth({"payor": [{"reference": "Organization/org-payer-blueshield"}]}, "procedure|ECHO")
    True
    """
    if "|" not in service:
        raise ValidationError(
            "Claim", "item.productOrService", "a key 'procedure|CODE'", found=service
        )
    return service.split("|", 1)[1] in payer.plan(coverage["payor"][0]["reference"]).prior_auth
