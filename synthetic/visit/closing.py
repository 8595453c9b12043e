"""Visit step: the visit note, the claim (scrubbed by the content's coding edits, billed to the
coverage in force that day) and, when the payer has answered by the end of the record, its
response after a variable payment lag.

>>> Closing.name
'closing'
"""

from __future__ import annotations

from typing import Any, NamedTuple

from synthetic.builders import billing, notes
from synthetic.context import RecordContext
from synthetic.dates import iso_date
from synthetic.systems import ICD10CM
from synthetic.visit.remittance import Remittance
from synthetic.visit.state import PatientState, VisitState

ICD10 = ICD10CM
SCRUB_CACHE_SIZE = 10_000
"""At most this many scrubbed diagnosis lists are kept (per engine)."""


def icd_codes(cc: dict[str, Any]) -> list[str]:
    """ICD-10-CM codes of a CodeableConcept.

    >>> icd_codes({"coding": [{"system": ICD10, "code": "I10"}]})
    ['I10']
    """
    return [c["code"] for c in cc.get("coding", ()) if c.get("system") == ICD10]


def _key(cc: dict[str, Any]) -> str:
    return ",".join(icd_codes(cc)) or str(cc.get("text", ""))


class Scrubbed(NamedTuple):
    """A claim's diagnoses after the claim edits (see :meth:`Closing.scrubbed`).

    >>> Scrubbed([], {}, [], []).remap
    {}
    """

    diagnoses: list[dict[str, Any]]
    """The kept diagnoses, in order."""
    remap: dict[int, int]
    """Diagnosis pointer old -> new (empty when nothing changed; a dropped one maps to 1)."""
    diagnosis: list[dict[str, Any]]
    """The claim's ``diagnosis`` element (:func:`~synthetic.builders.billing.diagnosis_element`)."""
    inputs: list[dict[str, Any]]
    """The scrubbed concepts (kept alive with the answer: their ids key the cache)."""


class Closing:
    """Note, claim and claim response.

    Examples
    --------
    >>> from synthetic.engine import engine_for
    >>> e = engine_for(seed=1, reference_date="2026-01-01", years=1, population="family-practice")
    >>> recs = [e.patient(i) for i in range(12)]
    >>> of = lambda t: [r for rec in recs for r in rec.by_type(t)]
    >>> code = lambda r: r["code"]["coding"][0]["code"]
    >>> len(of("Claim")) >= len(of("Encounter")), {d["type"]["coding"][0]["display"] for d in of("DocumentReference")}
    (True, {'Progress note'})
    """

    name = "closing"

    def __init__(self, eng: Any) -> None:
        self.eng = eng
        self.remit = Remittance(eng)
        # scrub results by the identity of the (long-lived, catalog-owned) diagnosis concepts
        self._scrubbed: dict[int | tuple[int, ...], Scrubbed] = {}

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

    def scrubbed(self, claim_dx: list[dict[str, Any]]) -> Scrubbed:
        """:meth:`scrub` of ``claim_dx``, the diagnosis pointer map old -> new (empty when
        nothing changed; a dropped diagnosis maps to 1) and the claim's (frozen) ``diagnosis``
        element, kept in a bounded cache by the identity of the (long-lived, catalog-owned)
        diagnosis concepts.

        >>> from synthetic.engine import engine_for
        >>> e = engine_for(seed=1, reference_date="2026-01-01", years=2, population="family-practice")
        >>> c, dx = Closing(e), [e.icd_cc("E11.9"), e.icd_cc("I10"), e.icd_cc("E11.42")]
        >>> kept, remap, diagnosis, _ = c.scrubbed(dx)
        >>> [icd_codes(d)[0] for d in kept], remap, c.scrubbed(dx).diagnoses is kept
        (['I10', 'E11.42'], {1: 1, 2: 1, 3: 2}, True)
        >>> [(d["sequence"], icd_codes(d["diagnosisCodeableConcept"])) for d in diagnosis]
        [(1, ['I10']), (2, ['E11.42'])]
        """
        # most claims have one diagnosis: its id is the key (a tuple of ids costs more)
        key = id(claim_dx[0]) if len(claim_dx) == 1 else tuple(map(id, claim_dx))
        hit = self._scrubbed.get(key)
        if hit is None:
            diagnoses = self.scrub(claim_dx)
            remap: dict[int, int] = {}
            if len(diagnoses) != len(claim_dx):
                index = {_key(d): i + 1 for i, d in enumerate(diagnoses)}
                remap = {i + 1: index.get(_key(d), 1) for i, d in enumerate(claim_dx)}
            element = billing.diagnosis_element(diagnoses)
            # the inputs are kept alive with the result, so their ids are never reused
            hit = Scrubbed(diagnoses, remap, element, list(claim_dx))
            if len(self._scrubbed) < SCRUB_CACHE_SIZE:
                self._scrubbed[key] = hit
        return hit

    def run(self, ctx: RecordContext, st: PatientState, vs: VisitState) -> None:
        """Write the note, the claim and its response.

        Examples
        --------
        >>> from synthetic.engine import engine_for
        >>> e = engine_for(seed=1, reference_date="2026-01-01", years=1, population="family-practice")
        >>> recs = [e.patient(i) for i in range(12)]
        >>> of = lambda t: [r for rec in recs for r in rec.by_type(t)]
        >>> code = lambda r: r["code"]["coding"][0]["code"]
        >>> claim = of("Claim")[0]
        >>> claim["type"]["coding"][0]["code"], len(claim["item"]) >= 1, bool(claim["diagnosis"])
        ('professional', True, True)
        """
        eng = self.eng
        prof = st.profile
        ctx.security = vs.security
        dxs = prof.diagnoses
        addressed = vs.addressed
        meds = (
            sorted({d.display for c in addressed if c.key in dxs for d in dxs[c.key].drugs})
            if addressed
            else []
        )
        text = eng.note_text(
            vs.v, st.person, vs.age, addressed, vs.acute, vs.preg, vs.physician, meds,
            sorted(vs.labs_done) if vs.labs_done else [],
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
        verified = self.remit.check_in(ctx, st, vs)
        insurer = self.remit.insurer(vs.payer)
        scrubbed = self.scrubbed(vs.claim_dx)
        remap = scrubbed.remap
        lines = vs.lines
        if remap:  # pointers refer to the scrubbed list; a dropped diagnosis points at 1
            lines = []
            for line in vs.lines:
                ptrs = tuple(dict.fromkeys(remap.get(p, 1) for p in line.diagnosis_pointers)) or (
                    1,
                )
                lines.append(billing.ClaimLine(line.code, line.price, ptrs[:4]))
        claim = billing.claim(
            ctx,
            lines=lines,
            diagnoses=scrubbed.diagnoses,
            diagnosis=scrubbed.diagnosis,
            created=iso_date(vs.day),
            coverage=f"Coverage/{vs.cov_id}",
            provider=eng.org_ref,
            insurer=insurer,
            security=vs.security,
        )
        ctx.add(claim)
        if insurer is not None:  # eligibility, desk copay, the payer's answer, statements
            self.remit.settle(ctx, st, vs, claim, insurer, verified)
        else:  # self-pay: the patient owes the visit, paid at the desk or on a statement
            self.remit.self_pay(ctx, st, vs, claim)
        ctx.security = None
        st.first = False
