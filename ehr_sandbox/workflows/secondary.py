"""Crossover: bill the patient's secondary plan for what the primary plan left to the patient.

After the primary plan's ERA is posted, the patient's share it states (deductible, coinsurance,
copay: ``data/crossover.toml``) is billed to the secondary plan (``Coverage.order`` 2) on a
claim with both plans: sequence 1 the primary (not focal, ``claimResponse`` naming the
primary's answer) and sequence 2 the secondary (focal), ``related`` to the primary claim. Each
line is the primary's line, priced at what the primary left to the patient, so the ledger
moves that amount from the patient's balance back to insurance
(:func:`ehr_sandbox.workflows.ledger.transactions`). The payer simulator adjudicates it as a
secondary payer (:func:`ehr_sandbox.workflows.payer.adjudicate`), and
:func:`ehr_sandbox.workflows.payments.post_era` posts its ERA like any other.

>>> sorted(RULES)[:3]
['secondary.adjudicated', 'secondary.balance', 'secondary.coverage']
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ehr_sandbox.errors import AccessDenied, ValidationError
from ehr_sandbox.workflows.base import Rule, RuleRefused, money, now, write
from ehr_sandbox.workflows.claims import RELATED_SYSTEM
from ehr_sandbox.workflows.eligibility import active_coverages
from ehr_sandbox.workflows.payer import (
    CROSSOVER,
    LineOutcome,
    is_insurance,
    line_outcomes,
    secondary_of,
)

if TYPE_CHECKING:
    from ehr_sandbox.session import Session

__all__ = ["RELATIONSHIP", "RULES", "bill_secondary", "crossover_amounts", "secondary_coverage"]

RELATIONSHIP = "associated"
"""``Claim.related.relationship`` of a crossover claim to the primary claim (as generated)."""
_SRC = CROSSOVER["source"]
RULES = {
    r.id: r
    for r in (
        Rule(
            "secondary.primary-claim",
            "a crossover follows a sent claim to the patient's primary plan, not a draft, a cancelled claim or another crossover",
            _SRC,
        ),
        Rule(
            "secondary.same-patient",
            "the claim crossed over is the account holder's own claim",
            _SRC,
        ),
        Rule(
            "secondary.adjudicated",
            "the secondary plan is billed only after the primary's ERA is posted",
            _SRC,
        ),
        Rule(
            "secondary.coverage",
            "the patient has a secondary plan (Coverage order 2) in force on the date of service",
            _SRC,
        ),
        Rule(
            "secondary.balance",
            "only what the primary left to the patient (deductible, coinsurance, copay) is crossed over",
            _SRC,
        ),
        Rule(
            "secondary.duplicate",
            "a primary claim is crossed over to the secondary plan once",
            _SRC,
        ),
        Rule(
            "secondary.shared-denial",
            "a line the primary denied for a reason the secondary applies too is not billed to the secondary",
            _SRC,
        ),
    )
}


def secondary_coverage(session: Session, patient: str, on: date) -> dict[str, Any] | None:
    """The patient's secondary plan (``order`` 2, an insurance) in force on a date, or None.

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> from ehr_sandbox.workflows.registration import InsuranceCard, add_insurance
    >>> fd = Sandbox.generate(patients=2, seed=1, years=1).login("fd.smith")
    >>> pid = f"Patient/{fd.search('Patient').first()['id']}"
    >>> _ = add_insurance(fd, pid, [InsuranceCard("medicaid", "MCD000111222"),
    ...                             InsuranceCard("blueshield", "RBP000333444")])
    >>> secondary_coverage(fd, pid, date(2026, 1, 1))["payor"][0]["reference"]
    'Organization/org-payer-medicaid'
    """
    for cov in active_coverages(session, patient, on):
        if int(cov.get("order", 0)) == 2 and is_insurance(cov):
            return cov
    return None


def crossover_amounts(
    claim: dict[str, Any], outcomes: dict[int, LineOutcome]
) -> dict[int, Decimal]:
    """What each line of a primary claim crosses over: the patient's share its ERA states.

    Lines denied by the primary, or with nothing left to the patient, are left out.

    Examples
    --------
    >>> from ehr_sandbox.workflows.payer import LineOutcome
    >>> z = Decimal("0.00")
    >>> claim = {"item": [{"sequence": 1}, {"sequence": 2}]}
    >>> crossover_amounts(claim, {1: LineOutcome(1, Decimal(150), Decimal(100), Decimal(60), Decimal(20), z, Decimal(20), None),
    ...                           2: LineOutcome(2, Decimal(40), z, z, z, z, z, ("CO", "50"))})
    {1: Decimal('40.00')}
    """
    out = {}
    for item in claim.get("item", []):
        o = outcomes.get(int(item["sequence"]))
        if o is not None and o.denial is None and o.responsibility > 0:
            out[o.sequence] = o.responsibility
    return out


def _refuse(rule: str, resource: str, path: str, expected: str, found: object) -> RuleRefused:
    return RuleRefused(RULES[rule], resource=resource, path=path, expected=expected, found=found)


def bill_secondary(
    session: Session,
    primary_claim: str,
    *,
    patient: str,
    lines: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Bill the patient's secondary plan for what the primary's ERA left to the patient.

    Parameters
    ----------
    session : Session
        The billing specialist's session (a role that may submit claims).
    primary_claim : str
        ``Claim/<id>`` sent to the primary plan and answered (its ERA posted).
    patient : str
        ``Patient/<id>`` whose account is being worked; the claim must be theirs.
    lines : sequence of int, optional
        The primary claim's line numbers to cross over (default: every line with a patient
        share).

    Returns
    -------
    dict
        The crossover Claim, sent (``active``): the lines at the amounts crossed over,
        ``insurance`` [primary (not focal, with the primary's ``claimResponse``), secondary
        (focal)], ``related`` to the primary claim, and the secondary plan as ``insurer``.

    Raises
    ------
    AccessDenied
        The session's role may not submit claims.
    RuleRefused
        ``secondary.primary-claim``, ``secondary.same-patient``, ``secondary.adjudicated``
        (no posted ERA), ``secondary.coverage`` (no secondary plan in force on the date of
        service), ``secondary.balance`` (nothing left to the patient, or a line with none),
        ``secondary.duplicate`` (already crossed over) or ``secondary.shared-denial`` (a line
        the primary denied for a reason the secondary applies too). Nothing is written.

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> from ehr_sandbox.exercises.builtin.front_office.common import visit
    >>> from ehr_sandbox.workflows import claims, coding, payer, payments
    >>> from ehr_sandbox.workflows.registration import InsuranceCard, add_insurance
    >>> sb = Sandbox.generate(patients=2, seed=1, years=1)
    >>> fd, b = sb.login("fd.smith"), sb.login("billing.davis")
    >>> pid = fd.search("Patient").first()["id"]
    >>> _ = add_insurance(fd, f"Patient/{pid}", [InsuranceCard("medicare", "MBI123456789"),
    ...                                           InsuranceCard("medicaid", "MCD000111222")])
    >>> enc = visit(sb, pid, "dr.patel", start="2026-01-01T09:00:00-05:00", conditions=[])["encounter"]
    >>> c = claims.submit(b, coding.build_claim(b, f"Encounter/{enc}", diagnoses=["icd10cm|I10"],
    ...                   lines=[coding.ClaimLine("procedure|OV-EST-3", (1,))])["id"])
    >>> bill_secondary(b, f"Claim/{c['id']}", patient=f"Patient/{pid}")
    Traceback (most recent call last):
    ...
    ehr_sandbox.workflows.base.RuleRefused: Claim/...: ClaimResponse: expected the primary's posted ERA ... Refused by rule secondary.adjudicated: ...
    >>> cr, _ = payments.post_era(b, payer.adjudicate(b, f"Claim/{c['id']}"))
    >>> sec = bill_secondary(b, f"Claim/{c['id']}", patient=f"Patient/{pid}")
    >>> [(i["sequence"], i["focal"]) for i in sec["insurance"]], sec["insurer"]["reference"]
    ([(1, False), (2, True)], 'Organization/org-payer-medicaid')
    >>> sec["insurance"][0]["claimResponse"]["reference"] == f"ClaimResponse/{cr['id']}"
    True
    >>> cr2, _ = payments.post_era(b, payer.adjudicate(b, f"Claim/{sec['id']}"))
    >>> cr2["payment"]["amount"]["value"] == sec["total"]["value"]  # Medicaid pays it all
    True
    """
    if not session.can_read("Claim"):
        raise AccessDenied(
            f"{session.role} may not bill claims: crossing a claim over to the secondary plan "
            "needs a role that submits claims (billing)"
        )
    ref = primary_claim if primary_claim.startswith("Claim/") else f"Claim/{primary_claim}"
    claim = session.read(ref)
    if claim.get("status") != "active" or claim.get("use", "claim") != "claim":
        raise _refuse("secondary.primary-claim", ref, "status", "a sent claim", claim.get("status"))
    if secondary_of(claim) is not None:
        raise _refuse(
            "secondary.primary-claim",
            ref,
            "insurance.focal",
            "a claim to the primary plan (focal insurance sequence 1)",
            "a crossover claim",
        )
    if not isinstance(patient, str) or not patient.startswith("Patient/"):
        raise ValidationError("Claim", "patient", "'Patient/<id>'", found=patient)
    owner = claim["patient"]["reference"]
    if owner != patient:
        raise _refuse("secondary.same-patient", ref, "patient", f"a claim of {patient}", owner)
    answers = sorted(
        (
            r
            for r in session.search("ClaimResponse", request=ref).fetch()
            if r.get("status") == "active"
        ),
        key=lambda r: (str(r.get("created", "")), r["id"]),
    )
    if not answers:
        raise _refuse(
            "secondary.adjudicated",
            ref,
            "ClaimResponse",
            "the primary's posted ERA (post it with payments.post_era)",
            None,
        )
    answer = answers[-1]
    day = date.fromisoformat(claim["billablePeriod"]["start"])
    focal = next(i for i in claim["insurance"] if i.get("focal"))
    cov = secondary_coverage(session, patient, day)
    if cov is None or f"Coverage/{cov['id']}" == focal["coverage"]["reference"]:
        raise _refuse(
            "secondary.coverage",
            patient,
            "Coverage.order",
            f"a secondary plan (order 2) in force on {day.isoformat()}",
            None,
        )
    for other in session.search("Claim", patient=patient).fetch():
        if other.get("status") in ("active", "draft") and secondary_of(other) == ref:
            raise _refuse(
                "secondary.duplicate",
                ref,
                "related",
                "no crossover claim for it yet",
                f"Claim/{other['id']}",
            )
    outcomes = line_outcomes(answer)
    amounts = crossover_amounts(claim, outcomes)
    wanted = sorted(amounts) if lines is None else list(lines)
    for seq in wanted:
        o = outcomes.get(seq) if isinstance(seq, int) and not isinstance(seq, bool) else None
        if o is None:
            raise ValidationError(ref, "item.sequence", "a line number of the claim", found=seq)
        if o.denial is not None and o.denial[1] in CROSSOVER["shared_denials"]:
            raise _refuse(
                "secondary.shared-denial",
                ref,
                f"item[{seq}].adjudication",
                "a line the primary paid (fix or appeal the denial with the primary, or write it off)",
                "-".join(o.denial),
            )
        if seq not in amounts:
            raise _refuse(
                "secondary.balance",
                ref,
                f"item[{seq}].adjudication",
                "a patient share (deductible, coinsurance or copay) left by the primary",
                str(o.responsibility),
            )
    wanted = sorted(set(wanted))
    if not wanted:
        raise _refuse(
            "secondary.balance",
            ref,
            "ClaimResponse.item.adjudication",
            "a patient share (deductible, coinsurance or copay) left by the primary",
            "0.00",
        )
    items = []
    for item in claim["item"]:
        if item["sequence"] in wanted:
            owed = amounts[item["sequence"]]
            line = copy.deepcopy(item)
            line["unitPrice"] = {"value": float(owed), "currency": "USD"}
            line["net"] = {"value": float(owed), "currency": "USD"}
            items.append(line)
    total = money(sum((amounts[s] for s in wanted), Decimal(0)))
    crossover = {
        **{k: copy.deepcopy(v) for k, v in claim.items() if k not in ("id", "meta", "text")},
        "status": "active",
        "created": now(session).date().isoformat(),
        "insurer": {"reference": cov["payor"][0]["reference"]},
        "related": [
            {
                "claim": {"reference": ref},
                "relationship": {"coding": [{"system": RELATED_SYSTEM, "code": RELATIONSHIP}]},
            }
        ],
        "insurance": [
            {
                "sequence": 1,
                "focal": False,
                "coverage": copy.deepcopy(focal["coverage"]),
                "claimResponse": {"reference": f"ClaimResponse/{answer['id']}"},
            },
            {"sequence": 2, "focal": True, "coverage": {"reference": f"Coverage/{cov['id']}"}},
        ],
        "item": items,
        "total": {"value": float(total), "currency": "USD"},
    }
    return write(
        session,
        crossover,
        operation="secondary.bill",
        reason=f"crossover of {ref} to the secondary plan",
    )
