"""Visit step: the diagnoses recorded at the visit and the Encounter that cites them.

Chronic conditions carry their real onset and the day they entered the chart (recordedDate);
acute conditions take a side where the code has one (laterality, content); pregnancies are
coded by trimester. The visit's billing code and claim diagnoses start here.

>>> Charting.name
'charting'
"""

from __future__ import annotations

from typing import Any

from synthetic.builders import billing, conditions, encounter
from synthetic.builders.common import ENCOUNTER_DX
from synthetic.context import RecordContext
from synthetic.dates import iso_date
from synthetic.frozen import freeze
from synthetic.systems import V3_ACT_CODE
from synthetic.visit.state import PatientState, VisitState

VIRTUAL = freeze(
    {
        "system": V3_ACT_CODE,
        "code": "VR",
        "display": "virtual",
    }
)
"""Encounter class of a video (telehealth) visit."""

WELLNESS_CODES = (  # (age below, sandbox preventive code, ICD-10-CM reason)
    (1, "procedure|WELL-INFANT", "Z00.129"),
    (12, "procedure|WELL-CHILD", "Z00.129"),
    (18, "procedure|WELL-ADOL", "Z00.129"),
    (65, "procedure|WELL-ADULT", "Z00.00"),
    (999, "procedure|WELL-SENIOR", "Z00.00"),
)


def with_icd(code: dict[str, Any], icd_cc: dict[str, Any]) -> dict[str, Any]:
    """``code`` with its ICD-10-CM coding replaced by the one of ``icd_cc``.

    >>> a = {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "A"}], "text": "a"}
    >>> b = {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "B"}], "text": "b"}
    >>> with_icd(a, b)["coding"][0]["code"], with_icd(a, b)["text"]
    ('B', 'b')
    """
    new = icd_cc["coding"][0]
    codings = [new if c["system"] == new["system"] else c for c in code["coding"]]
    return {"coding": codings, "text": icd_cc.get("text", code.get("text", ""))}


class Charting:
    """Conditions recorded at the visit, the Encounter, the visit line of the claim.

    Examples
    --------
    >>> from synthetic.engine import engine_for
    >>> e = engine_for(seed=1, reference_date="2026-01-01", years=1, population="family-practice")
    >>> recs = [e.patient(i) for i in range(12)]
    >>> of = lambda t: [r for rec in recs for r in rec.by_type(t)]
    >>> code = lambda r: r["code"]["coding"][0]["code"]
    >>> all("encounter" in c for c in of("Condition")), len(of("Encounter")) > 0
    (True, True)
    """

    name = "charting"

    def __init__(self, eng: Any) -> None:
        self.eng = eng
        self._variants: dict[str, list[tuple[dict[str, Any], float]]] = {}
        self._trimester: dict[tuple[str, int], dict[str, Any]] = {}

    def acute_code(self, rng: Any, acute: Any) -> dict[str, Any]:
        """The acute condition's code, with a side drawn when the code has laterality.

        >>> from synthetic.engine import engine_for
        >>> import random
        >>> e = engine_for(seed=1, reference_date="2026-01-01", years=2, population="family-practice")
        >>> ch = Charting(e); sprain = e.cat.conditions["ankle_sprain"]
        >>> len({ch.acute_code(random.Random(i), sprain)["coding"][0]["code"] for i in range(20)})
        2
        """
        alts = self.eng.rules.laterality.get(acute.icd10)
        if not alts:
            return acute.code
        variants = self._variants.get(acute.key)
        if variants is None:
            variants = self._variants[acute.key] = [
                (freeze(with_icd(acute.code, cc)), p) for cc, p in alts
            ]
        x = rng.random() * sum(p for _, p in variants)
        for code, p in variants:
            x -= p
            if x < 0:
                return code
        return variants[-1][0]

    def pregnancy_code(self, preg: Any, week: int) -> dict[str, Any]:
        """The pregnancy's supervision code for the trimester of gestational ``week``.

        >>> from synthetic.engine import engine_for
        >>> e = engine_for(seed=1, reference_date="2026-01-01", years=2, population="ob-gyn")
        >>> Charting(e).pregnancy_code(e.cat.conditions["pregnancy"], 30)["coding"][0]["code"]
        'Z34.83'
        """
        rule = self.eng.rules.trimester.get(preg.icd10)
        if rule is None:
            return preg.code
        code = rule.for_week(week)
        hit = self._trimester.get((preg.key, week))
        if hit is None:
            hit = self._trimester[(preg.key, week)] = freeze(
                with_icd(preg.code, self.eng.icd_cc(code))
            )
        return hit

    def run(self, ctx: RecordContext, st: PatientState, vs: VisitState) -> None:
        """Record the visit's conditions and the Encounter; start the claim.

        Examples
        --------
        >>> from synthetic.engine import engine_for
        >>> e = engine_for(seed=1, reference_date="2026-01-01", years=1, population="family-practice")
        >>> recs = [e.patient(i) for i in range(12)]
        >>> of = lambda t: [r for rec in recs for r in rec.by_type(t)]
        >>> code = lambda r: r["code"]["coding"][0]["code"]
        >>> enc = of("Encounter")[0]
        >>> enc["status"], [k for k in ("diagnosis", "participant", "period") if k in enc]
        ('finished', ['diagnosis', 'participant', 'period'])
        """
        eng = self.eng
        rng = ctx.rng
        prof = st.profile
        v = vs.v
        day = vs.day
        end = st.end
        body: list[dict[str, Any]] = []
        out_main = ctx.out
        ctx.out = body
        for c in vs.addressed:
            if c.key in v.new:
                dxn = prof.diagnoses.get(c.key)
                abated = dxn.abatement if dxn is not None else None
                onset = dxn.onset if dxn is not None else day
                cond = conditions.condition(
                    ctx,
                    code=c.code,
                    category=c.category,
                    onset=iso_date(max(st.birth, min(onset, day))),
                    recorded=iso_date(day),
                    recorder=vs.phys_ref,
                    security=c.security,
                    abatement=iso_date(abated) if abated is not None and abated < end else None,
                )
                body.append(cond)
                st.cond_ids[c.key] = cond["id"]
            cid = st.cond_ids.get(c.key)
            if cid:
                vs.dx_refs.append(f"Condition/{cid}")
                vs.dx_codes.append(c.code)
        acute = vs.acute
        if acute is not None:
            lo, hi = acute.duration
            abate = day + rng.randint(max(1, lo), max(1, lo, hi))
            vs.acute_code = code = self.acute_code(rng, acute)
            cond = conditions.condition(
                ctx,
                code=code,
                category=ENCOUNTER_DX,
                onset=iso_date(day),
                recorder=vs.phys_ref,
                security=acute.security,
                abatement=iso_date(abate) if abate < end else None,
            )
            body.append(cond)
            vs.acute_ref = f"Condition/{cond['id']}"
            vs.dx_refs.insert(0, vs.acute_ref)
            vs.dx_codes.insert(0, code)
        preg = vs.preg
        if preg is not None:
            lmp, preg_end, _outcome = eng.pregnancy_of(st, day)
            vs.preg_lmp = lmp
            code = self.pregnancy_code(preg, v.week)
            cid = st.pregnancy_ids.get(lmp)
            if cid is None:
                cond = conditions.condition(
                    ctx,
                    code=code,
                    category=preg.category,
                    onset=iso_date(max(lmp, st.birth)),
                    recorded=iso_date(day),
                    recorder=vs.phys_ref,
                    security=preg.security,
                    abatement=iso_date(preg_end) if preg_end < end else None,
                )
                body.append(cond)
                cid = st.pregnancy_ids[lmp] = cond["id"]
            vs.dx_refs.append(f"Condition/{cid}")
            vs.dx_codes.append(code)
        wellness_fee = None
        if v.wellness:
            for limit, fee, icd in WELLNESS_CODES:
                if vs.age < limit:
                    wellness_fee = fee
                    vs.reason_cc = eng.icd_cc(icd)
                    break
            wellness_fee = self._medicare_wellness(st, vs, wellness_fee)
        type_cc = eng.visit_type_cc(v, st, acute, vs.addressed, wellness_fee)
        enc = encounter.encounter(
            ctx,
            start=vs.start_s,
            end=vs.end_s,
            type_cc=type_cc["cc"],
            physician=vs.phys_ref,
            assistant=vs.ma_ref,
            organization=eng.org_ref,
            location=eng.loc_ref,
            diagnoses=vs.dx_refs,
            reason=vs.reason_cc,
            appointment=f"Appointment/{vs.appointment_id}",
        )
        if vs.virtual:
            enc["class"] = VIRTUAL
        out_main.append(enc)
        out_main.extend(body)
        ctx.out = out_main

        claim_dx = ([vs.reason_cc] if vs.reason_cc else []) + vs.dx_codes
        all_ptrs = tuple(range(1, len(claim_dx) + 1))
        if not claim_dx:
            claim_dx = [eng.icd_cc("Z00.00" if vs.age >= 18 else "Z00.129")]
            all_ptrs = (1,)
        vs.claim_dx = claim_dx
        vs.lines.append(billing.ClaimLine(type_cc["code"], type_cc["price"], all_ptrs[:4]))
        ctx.security = None

    def _medicare_wellness(self, st: PatientState, vs: VisitState, fee: str | None) -> str | None:
        """Medicare pays annual wellness visits (G0438 first, then G0439), not a physical."""
        rules = self.eng.rules.payer
        payer = vs.payer
        if rules is None or payer is None or payer.key != rules.medicare_payer:
            return fee
        code = rules.awv_subsequent if st.awv_billed else rules.awv_initial
        st.awv_billed = True
        return code if code in self.eng.cat.fees else fee
