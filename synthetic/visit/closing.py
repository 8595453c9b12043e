"""Visit step: the visit note, the claim (scrubbed by the content's coding edits, billed to the
coverage in force that day) and, when the payer has answered by the end of the record, its
response after a variable payment lag.

>>> Closing.name
'closing'
"""

from __future__ import annotations

from typing import Any

from synthetic.builders import billing, notes
from synthetic.context import RecordContext
from synthetic.dates import iso_date
from synthetic.visit.state import PatientState, VisitState

ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"


def icd_codes(cc: dict[str, Any]) -> list[str]:
    """ICD-10-CM codes of a CodeableConcept.

    >>> icd_codes({"coding": [{"system": ICD10, "code": "I10"}]})
    ['I10']
    """
    return [c["code"] for c in cc.get("coding", ()) if c.get("system") == ICD10]


def _key(cc: dict[str, Any]) -> str:
    return ",".join(icd_codes(cc)) or str(cc.get("text", ""))


class Closing:
    """Note, claim and claim response."""

    name = "closing"

    def __init__(self, eng: Any) -> None:
        self.eng = eng

    def scrub(self, diagnoses: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The claim's diagnoses after the claim edits (excludes, trimester rules), deduplicated.

        >>> from synthetic.engine import engine_for
        >>> e = engine_for(seed=1, reference_date="2026-01-01", years=2, population="family-practice")
        >>> cc = lambda c: {"coding": [{"system": ICD10, "code": c}]}
        >>> [icd_codes(d)[0] for d in Closing(e).scrub([cc("E11.9"), cc("E11.42"), cc("I10")])]
        ['E11.42', 'I10']
        """
        codes = [c for d in diagnoses for c in icd_codes(d)]
        drop = self.eng.rules.edit_claim(codes)
        out: list[dict[str, Any]] = []
        seen: set[str] = set()
        for d in diagnoses:
            key = _key(d)
            if key in seen or any(c in drop for c in icd_codes(d)):
                continue
            seen.add(key)
            out.append(d)
        return out

    def run(self, ctx: RecordContext, st: PatientState, vs: VisitState) -> None:
        """Write the note, the claim and its response."""
        eng = self.eng
        prof = st.profile
        ctx.security = vs.security
        meds = sorted(
            {
                d.display
                for c in vs.addressed
                if c.key in prof.diagnoses
                for d in prof.diagnoses[c.key].drugs
            }
        )
        text = eng.note_text(
            vs.v, st.person, vs.age, vs.addressed, vs.acute, vs.preg, vs.physician, meds,
            sorted(vs.labs_done),
        )  # fmt: skip
        ctx.add(
            notes.note(
                ctx,
                text=text,
                title=f"{vs.atype.display} note",
                author=vs.phys_ref,
                custodian=eng.org_ref,
                period_end=vs.end_s,
                security=vs.security,
            )
        )
        payer = vs.payer
        insurer = (
            None
            if payer is None or payer.type == "self-pay"
            else f"Organization/{eng.practice.payer_org[payer.key]}"
        )
        diagnoses = self.scrub(vs.claim_dx)
        # pointers refer to the scrubbed list; a line whose diagnosis was dropped points at 1
        index = {_key(d): i + 1 for i, d in enumerate(diagnoses)}
        old = {i + 1: _key(d) for i, d in enumerate(vs.claim_dx)}
        lines = []
        for line in vs.lines:
            ptrs = tuple(
                dict.fromkeys(index.get(old[p], 1) for p in line.diagnosis_pointers if p in old)
            ) or (1,)
            lines.append(billing.ClaimLine(line.code, line.price, ptrs[:4]))
        claim = billing.claim(
            ctx,
            lines=lines,
            diagnoses=diagnoses,
            created=iso_date(vs.day),
            coverage=f"Coverage/{vs.cov_id}",
            provider=eng.org_ref,
            insurer=insurer,
            security=vs.security,
        )
        ctx.add(claim)
        if insurer is not None:
            pr = eng.rules.payer
            lo, hi = (pr.lag_low, pr.lag_high) if pr is not None else (1.0, 1.0)
            lag = max(3, round(payer.lag_days * ctx.rng.uniform(lo, hi)))
            if vs.day + lag < st.end:
                ctx.add(
                    billing.claim_response(
                        ctx,
                        claim,
                        created=iso_date(vs.day + lag),
                        insurer=insurer,
                        requestor=eng.org_ref,
                        allowed_ratio=payer.allowed_ratio,
                        copay=payer.copay,
                        deductible_share=payer.deductible_share,
                        security=vs.security,
                    )
                )
        ctx.security = None
        st.first = False
