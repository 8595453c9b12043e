"""Claims: submit a scrubbed claim, and correct and resubmit a denied one.

A claim goes to the payer only when the scrubber finds nothing (:mod:`scrubber`); a refused
submission lists every finding. A corrected claim replaces the original (CMS-1500 item 22
resubmission code 7, FHIR ``Claim.related`` with relationship ``prior``): the original is
cancelled, never edited, so the history shows what was sent.

>>> RULES["claims.clean"].id
'claims.clean'
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ehr_sandbox.errors import ValidationError
from ehr_sandbox.workflows.base import Rule, RuleRefused, write, write_all
from ehr_sandbox.workflows.coding import ClaimLine, claim_resource
from ehr_sandbox.workflows.scrubber import scrub
from synthetic.systems import EX_RELATED_CLAIM_RELATIONSHIP

if TYPE_CHECKING:
    from ehr_sandbox.session import Session

__all__ = ["RELATED_SYSTEM", "RULES", "resubmit_corrected", "submit"]

RELATED_SYSTEM = EX_RELATED_CLAIM_RELATIONSHIP
_SRC = "NUCC 1500 Claim Form Reference Instruction Manual, item 22 (resubmission code 7 = replacement of prior claim); clearinghouse front-end edits"
RULES = {
    r.id: r
    for r in (
        Rule("claims.clean", "a claim is sent only when the scrubber finds nothing", _SRC),
        Rule(
            "claims.draft-only",
            "only a draft claim can be submitted; a sent claim is corrected by a replacement claim",
            _SRC,
        ),
        Rule("claims.denied-only", "a corrected claim replaces a claim the payer answered", _SRC),
    )
}


def submit(session: Session, claim_id: str) -> dict[str, Any]:
    """Scrub and send a draft claim (status ``draft`` -> ``active``).

    Parameters
    ----------
    session : Session
        The billing specialist's session.
    claim_id : str
        The Claim's id (or ``Claim/<id>``).

    Returns
    -------
    dict
        The submitted Claim.

    Raises
    ------
    RuleRefused
        ``claims.clean`` with every scrubber finding, or ``claims.draft-only``.

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> from ehr_sandbox.workflows.coding import build_claim
    >>> b = Sandbox.generate(patients=3, seed=1, years=1).login("billing.davis")
    >>> enc = next(e for e in b.search("Encounter").fetch() if b.search("Coverage", patient=e["subject"]["reference"]).count())
    >>> c = build_claim(b, f"Encounter/{enc['id']}", diagnoses=["icd10cm|J02.9"],
    ...                 lines=[ClaimLine("procedure|ECG-12", (1,))])
    >>> submit(b, c["id"])
    Traceback (most recent call last):
    ...
    ehr_sandbox.workflows.base.RuleRefused: Claim/...: scrubber: expected no findings (found ['line 1: scrub.necessity: ...']). Refused by rule claims.clean: ...
    """
    ref = claim_id if claim_id.startswith("Claim/") else f"Claim/{claim_id}"
    claim = session.read(ref)
    if claim.get("status") != "draft":
        raise RuleRefused(
            RULES["claims.draft-only"],
            resource=ref,
            path="status",
            expected="draft",
            found=claim.get("status"),
        )
    findings = scrub(session, claim)
    if findings:
        raise RuleRefused(
            RULES["claims.clean"],
            resource=ref,
            path="scrubber",
            expected="no findings",
            found=[str(f) for f in findings],
        )
    return write(session, {**claim, "status": "active"}, operation="claims.submit")


def resubmit_corrected(
    session: Session,
    claim_id: str,
    *,
    diagnoses: list[str],
    lines: list[ClaimLine | dict[str, Any]],
    reason: str,
    place_of_service: str = "11",
    prior_auth: str | None = None,
) -> dict[str, Any]:
    """Replace an answered claim with a corrected one and send it.

    The corrected claim is built and scrubbed like a new one, points at the original
    (``related.relationship = prior``) and is submitted; the original is cancelled, all in one
    transaction.

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> from ehr_sandbox.workflows import payer, payments
    >>> from ehr_sandbox.workflows.coding import build_claim
    >>> b = Sandbox.generate(patients=3, seed=1, years=1).login("billing.davis")
    >>> enc = next(e for e in b.search("Encounter").fetch() if any("selfpay" not in c["payor"][0]["reference"] for c in b.search("Coverage", patient=e["subject"]["reference"]).fetch()))
    >>> c = submit(b, build_claim(b, f"Encounter/{enc['id']}", diagnoses=["icd10cm|I10"],
    ...            lines=[ClaimLine("procedure|OV-EST-3", (1,))])["id"])
    >>> _ = payments.post_era(b, payer.adjudicate(b, f"Claim/{c['id']}"))
    >>> new = resubmit_corrected(b, c["id"], diagnoses=["icd10cm|I10"], lines=[ClaimLine("procedure|OV-EST-4", (1,))],
    ...                          reason="level of service corrected")
    >>> new["related"][0]["claim"]["reference"] == f"Claim/{c['id']}", b.read(f"Claim/{c['id']}")["status"]
    (True, 'cancelled')
    """
    if not reason or not str(reason).strip():
        raise ValidationError("Claim", "related", "why the claim is corrected")
    ref = claim_id if claim_id.startswith("Claim/") else f"Claim/{claim_id}"
    original = session.read(ref)
    if (
        original.get("status") != "active"
        or not session.search("ClaimResponse", request=ref).count()
    ):
        raise RuleRefused(
            RULES["claims.denied-only"],
            resource=ref,
            path="status",
            expected="a sent claim the payer has answered",
            found=original.get("status"),
        )
    encounter = original["item"][0]["encounter"][0]["reference"]
    coverage = next(i["coverage"]["reference"] for i in original["insurance"] if i.get("focal"))
    # Build (validated) as a draft, then check it before anything is sent.
    draft = claim_resource(
        session,
        encounter,
        diagnoses=diagnoses,
        lines=lines,
        place_of_service=place_of_service,
        coverage=coverage,
        prior_auth=prior_auth,
    )
    draft["related"] = [
        {
            "claim": {"reference": ref},
            "relationship": {"coding": [{"system": RELATED_SYSTEM, "code": "prior"}]},
            "reference": {"value": "7"},
        }
    ]
    findings = scrub(session, draft)
    if findings:
        raise RuleRefused(
            RULES["claims.clean"],
            resource="Claim",
            path="scrubber",
            expected="no findings",
            found=[str(f) for f in findings],
        )
    out = write_all(
        session,
        [{**draft, "status": "active"}, {**original, "status": "cancelled"}],
        operation="claims.resubmit-corrected",
    )
    return out[0]
