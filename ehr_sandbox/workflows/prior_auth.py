"""Prior authorisation: ask the plan before the service, bill with the number it gives.

Some plans list services they pay only when authorised in advance (``payers.toml``,
``prior_auth``). The office sends a request — a FHIR ``Claim`` with ``use =
preauthorization`` naming the patient, the plan, the service, its date and the diagnoses
that justify it — and the payer simulator answers with a ``ClaimResponse``: approved, with
an authorisation number (``preAuthRef``) valid for a period, when the plan is in force on
the date and a diagnosis supports the service (the same medical-necessity table the claim
scrubber uses); denied, with the CARC/RARC reason, otherwise. Both are stored through the
Session. The claim for the service then carries the number, and the scrubber checks that
it is a real approval for this patient, service and date
(:func:`~ehr_sandbox.workflows.authorizations.approval_for`).

>>> sorted(RULES)
['prior-auth.listed', 'prior-auth.request']
"""

from __future__ import annotations

import hashlib
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from ehr_sandbox.errors import ValidationError
from ehr_sandbox.workflows import payer, scrubber
from ehr_sandbox.workflows.authorizations import approval_for
from ehr_sandbox.workflows.base import Rule, RuleRefused, now, urn, write_all
from ehr_sandbox.workflows.coding import lookup
from ehr_sandbox.workflows.content import table
from synthetic.systems import ADJUDICATION, CLAIM_TYPE, PROCESS_PRIORITY

if TYPE_CHECKING:
    from ehr_sandbox.session import Session

__all__ = ["RULES", "VALID_DAYS", "approval_for", "request_prior_auth"]

_SRC = (
    table("payers")["source"]
    + "; FHIR R4 Claim.use 'preauthorization' and ClaimResponse.preAuthRef/preAuthPeriod"
)
RULES = {
    r.id: r
    for r in (
        Rule(
            "prior-auth.listed",
            "a prior authorisation is requested for a service the patient's plan lists for it",
            _SRC,
        ),
        Rule(
            "prior-auth.request",
            "a request names one service, its date and at least one diagnosis that justifies it",
            _SRC,
        ),
    )
}

VALID_DAYS = 60
"""How long an approval stays valid from the requested date (a common plan term)."""


def _auth_number(plan_prefix: str, patient: str, service: str, day: date) -> str:
    digest = hashlib.sha256(f"{patient}|{service}|{day.isoformat()}".encode()).hexdigest()
    return f"PA-{plan_prefix or 'X'}-{int(digest[:10], 16) % 10**8:08d}"


def request_prior_auth(
    session: Session,
    coverage: str,
    *,
    service: str,
    diagnoses: list[str],
    service_date: str | None = None,
) -> dict[str, Any]:
    """Send a prior-authorisation request to the plan; store it and the plan's answer.

    Parameters
    ----------
    session : Session
        Whoever submits claims for the office (billing).
    coverage : str
        ``Coverage/<id>`` of the plan that pays.
    service : str
        ``"procedure|CODE"`` (or ``"hcpcs|CODE"``) the plan lists for authorisation.
    diagnoses : list of str
        ``"icd10cm|CODE"`` keys that justify the service.
    service_date : str, optional
        When the service is planned (default today).

    Returns
    -------
    dict
        The stored ClaimResponse: ``disposition`` says approved or denied; an approval has
        ``preAuthRef`` (the number to put on the claim) and ``preAuthPeriod``; a denial
        names its CARC reason.

    Raises
    ------
    RuleRefused
        The plan does not list the service, or the request has no diagnosis.

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> b = Sandbox.generate(patients=4, seed=1, years=1).login("billing.davis")
    >>> cov = next(c for c in b.search("Coverage").fetch()
    ...            if "ECHO" in payer.plan(c["payor"][0]["reference"]).prior_auth)
    >>> r = request_prior_auth(b, f"Coverage/{cov['id']}", service="procedure|ECHO",
    ...                        diagnoses=["icd10cm|I50.9"])
    >>> r["disposition"], r["preAuthRef"].startswith("PA-")
    ('Approved', True)
    >>> request_prior_auth(b, f"Coverage/{cov['id']}", service="procedure|ECHO",
    ...                    diagnoses=["icd10cm|J02.9"])["disposition"]
    'Denied: the diagnoses do not support the service'
    """
    cov = session.read(coverage)
    if not payer.is_insurance(cov):
        raise RuleRefused(
            RULES["prior-auth.listed"],
            resource=coverage,
            path="payor",
            expected="an insurance plan (self-pay needs no authorisation)",
            found=cov["payor"][0]["reference"],
        )
    plan = payer.plan(cov["payor"][0]["reference"])
    if not isinstance(service, str) or "|" not in service:
        raise ValidationError("Claim", "item.productOrService", "'procedure|CODE'", found=service)
    if service.split("|", 1)[1] not in plan.prior_auth:
        raise RuleRefused(
            RULES["prior-auth.listed"],
            resource="Claim",
            path="item[0].productOrService",
            expected=f"a service {plan.name} authorises in advance ({', '.join(plan.prior_auth) or 'none'})",
            found=service,
        )
    if not diagnoses:
        raise RuleRefused(
            RULES["prior-auth.request"],
            resource="Claim",
            path="diagnosis",
            expected="at least one diagnosis that justifies the service",
        )
    service_coding = lookup(service)
    dx = [lookup(d) for d in diagnoses]
    day = date.fromisoformat(service_date) if service_date else now(session).date()
    patient = cov["beneficiary"]["reference"]
    req_url = urn(session, "Claim", "preauthorization", coverage, service)
    request = {
        "resourceType": "Claim",
        "status": "active",
        "type": {
            "coding": [
                {
                    "system": CLAIM_TYPE,
                    "code": "professional",
                }
            ]
        },
        "use": "preauthorization",
        "patient": {"reference": patient},
        "created": now(session).date().isoformat(),
        "provider": {"reference": "Organization/practice-1"},
        "priority": {
            "coding": [
                {
                    "system": PROCESS_PRIORITY,
                    "code": "normal",
                }
            ]
        },
        "insurer": {"reference": plan.org_ref},
        "diagnosis": [
            {"sequence": n, "diagnosisCodeableConcept": {"coding": [c], "text": c["display"]}}
            for n, c in enumerate(dx, start=1)
        ],
        "insurance": [{"sequence": 1, "focal": True, "coverage": {"reference": coverage}}],
        "item": [
            {
                "sequence": 1,
                "diagnosisSequence": list(range(1, min(len(dx), 4) + 1)),
                "productOrService": {"coding": [service_coding], "text": service_coding["display"]},
                "servicedDate": day.isoformat(),
            }
        ],
    }
    in_force = payer.eligibility(session, cov, service_date=day, request_ref=req_url)["insurance"][
        0
    ]["inforce"]
    supported = scrubber.supports(service, [d.split("|", 1)[1] for d in diagnoses])
    response: dict[str, Any] = {
        "resourceType": "ClaimResponse",
        "status": "active",
        "type": request["type"],
        "use": "preauthorization",
        "patient": {"reference": patient},
        "created": now(session).date().isoformat(),
        "insurer": {"reference": plan.org_ref},
        "request": {"reference": req_url},
        "outcome": "complete",
    }
    if in_force and supported:
        response["disposition"] = "Approved"
        response["preAuthRef"] = _auth_number(plan.prefix, patient, service, day)
        response["preAuthPeriod"] = {
            "start": day.isoformat(),
            "end": (day + timedelta(days=VALID_DAYS)).isoformat(),
        }
        response["item"] = [
            {
                "itemSequence": 1,
                "adjudication": [
                    {"category": {"coding": [{"system": ADJUDICATION, "code": "eligible"}]}}
                ],
            }
        ]
    else:
        carc, rarc = ("50", "N115") if in_force else ("27", "N30")
        why = (
            "the diagnoses do not support the service"
            if in_force
            else "the plan is not in force on the date of service"
        )
        response["disposition"] = f"Denied: {why}"
        response["item"] = [
            {
                "itemSequence": 1,
                "adjudication": [
                    {
                        "category": {"coding": [{"system": ADJUDICATION, "code": "submitted"}]},
                        "reason": {
                            "coding": [{"system": payer.CARC_SYSTEM, "code": carc}],
                            "text": payer.carc(carc)["description"],
                        },
                    }
                ],
            }
        ]
        response["processNote"] = [
            {"number": 1, "type": "display", "text": f"{rarc}: {payer.rarc(rarc)['description']}"}
        ]
    out = write_all(
        session,
        [{"fullUrl": req_url, "resource": request}, response],
        operation="prior-auth.request",
    )
    return out[1]
