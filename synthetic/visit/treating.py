"""Visit step: procedures, in-office drugs (MedicationAdministration naming the drug, with the
injection's real route and site) and periodic screenings (USPSTF, content).

>>> Treating.name
'treating'
"""

from __future__ import annotations

from typing import Any

from synthetic.builders import billing, medications, procedures
from synthetic.context import RecordContext
from synthetic.dates import DAYS_PER_YEAR
from synthetic.visit.state import PatientState, VisitState


class Treating:
    """Procedures and drugs given at the visit, and screenings that are due.

    Examples
    --------
    >>> from synthetic.engine import engine_for
    >>> e = engine_for(seed=1, reference_date="2026-01-01", years=1, population="family-practice")
    >>> recs = [e.patient(i) for i in range(12)]
    >>> of = lambda t: [r for rec in recs for r in rec.by_type(t)]
    >>> code = lambda r: r["code"]["coding"][0]["code"]
    >>> {"VENIP", "ECG-12"} <= {code(p) for p in of("Procedure")}
    True
    """

    name = "treating"

    def __init__(self, eng: Any) -> None:
        self.eng = eng

    def run(self, ctx: RecordContext, st: PatientState, vs: VisitState) -> None:
        """Perform and bill the visit's procedures.

        Examples
        --------
        >>> from synthetic.engine import engine_for
        >>> e = engine_for(seed=1, reference_date="2026-01-01", years=1, population="family-practice")
        >>> recs = [e.patient(i) for i in range(12)]
        >>> of = lambda t: [r for rec in recs for r in rec.by_type(t)]
        >>> code = lambda r: r["code"]["coding"][0]["code"]
        >>> all(p["status"] == "completed" and p["encounter"]["reference"].startswith("Encounter/") for p in of("Procedure"))
        True
        """
        if vs.virtual:
            return
        eng = self.eng
        cat = eng.cat
        rng = ctx.rng
        v = vs.v
        refs: list[tuple[str, Any]] = []
        for c in vs.addressed:
            if c.key in v.new or rng.random() < eng.rates.procedure_at_follow_up:
                refs.extend((p, c) for p in c.procedures)
        if vs.acute is not None:
            refs.extend((p, vs.acute) for p in vs.acute.procedures)
        if v.specialty:
            refs.extend((p, None) for p in eng.preset.visit_procedures)
        seen: set[str] = set()
        for ref, cond in refs:
            if ref in seen or ref not in cat.fees:
                continue
            seen.add(ref)
            fee = cat.fees[ref]
            reason = (
                f"Condition/{st.cond_ids[cond.key]}"
                if cond is not None and cond.key in st.cond_ids
                else None
            )
            sec = cond.security if cond is not None else None
            if ref.startswith("hcpcs|J"):
                med, route, site, dose = eng.rules.office_drugs.get(
                    ref.removeprefix("hcpcs|"),
                    ({"text": fee.code.get("text", ref)}, None, None, None),
                )
                ctx.add(
                    medications.administration(
                        ctx,
                        code=med,
                        performer=vs.ma_ref,
                        reason=reason,
                        route=route,
                        site=site,
                        dose=dose,
                        security=sec,
                    )
                )
            else:
                ctx.add(
                    procedures.procedure(
                        ctx, code=fee.code, performer=vs.phys_ref, reason=reason, security=sec
                    )
                )
            ptr = (
                vs.claim_dx.index(cond.code) + 1
                if cond is not None and cond.code in vs.claim_dx
                else 1
            )
            vs.lines.append(billing.ClaimLine(fee.code, fee.price, (ptr,)))
        self.screen(ctx, st, vs)

    def screen(self, ctx: RecordContext, st: PatientState, vs: VisitState) -> None:
        """Screenings due at a preventive or gynecology visit (cervical cytology every 3 years).

        Examples
        --------
        >>> from synthetic.engine import engine_for
        >>> e = engine_for(seed=1, reference_date="2026-01-01", years=2, population="ob-gyn")
        >>> recs = [e.patient(i) for i in range(12)]
        >>> of = lambda t: [r for rec in recs for r in rec.by_type(t)]
        >>> paps = [p for p in of("Procedure") if p["code"]["coding"][0]["code"] == "Q0091"]  # cervical cytology
        >>> len(paps) > 0, all(p["status"] == "completed" for p in paps)
        (True, True)
        """
        eng = self.eng
        v = vs.v
        if not (v.wellness or v.specialty) or vs.preg is not None:
            return
        sex = st.person.sex
        for sc in eng.rules.screenings:
            if sc.sex not in ("any", sex) or not sc.age_min <= vs.age < sc.age_max + 1:
                continue
            last = st.screen_days.get(sc.id)
            if last is not None and vs.day - last < sc.every_years * DAYS_PER_YEAR - 30:
                continue
            if sc.ref not in eng.cat.fees or ctx.rng.random() >= sc.uptake:
                continue
            st.screen_days[sc.id] = vs.day
            fee = eng.cat.fees[sc.ref]
            ctx.add(procedures.procedure(ctx, code=fee.code, performer=vs.phys_ref, reason=None))
            icd = eng.icd_cc(sc.icd10)
            if icd not in vs.claim_dx:
                vs.claim_dx.append(icd)
            vs.lines.append(billing.ClaimLine(fee.code, fee.price, (vs.claim_dx.index(icd) + 1,)))
