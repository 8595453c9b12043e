"""Visit step: lab orders (diagnostic, follow-up, acute, prenatal, preventive, drug monitoring),
each with its specimen, results and report, and the collection billed once per visit.

>>> Ordering.name
'ordering'
"""

from __future__ import annotations

from typing import Any

from synthetic.builders import billing, labs, procedures
from synthetic.context import RecordContext
from synthetic.dates import instant
from synthetic.labvalues import lab_values
from synthetic.visit.state import PatientState, VisitState

WELLNESS_LABS = (("lipid", 5), ("cmp", 3), ("cbc", 3), ("a1c", 3))
"""Preventive panels at adult check-ups (panel, every N years): USPSTF lipid/diabetes screening."""
NEVER = -(10**6)
"""The day of a lab never done (long before any visit)."""


class Ordering:
    """The visit's lab panels.

    Examples
    --------
    >>> from synthetic.engine import engine_for
    >>> e = engine_for(seed=1, reference_date="2026-01-01", years=1, population="family-practice")
    >>> recs = [e.patient(i) for i in range(12)]
    >>> of = lambda t: [r for rec in recs for r in rec.by_type(t)]
    >>> code = lambda r: r["code"]["coding"][0]["code"]
    >>> {s["category"][0]["coding"][0]["code"] for s in of("ServiceRequest")}, {s["status"] for s in of("ServiceRequest")}
    ({'laboratory'}, {'completed'})
    """

    name = "ordering"

    def __init__(self, eng: Any) -> None:
        self.eng = eng

    def panels(self, st: PatientState, vs: VisitState) -> list[tuple[str, Any, bool]]:
        """(panel key, condition it is ordered for, diagnostic?) in order, duplicates allowed."""
        eng = self.eng
        v = vs.v
        day = vs.day
        lab_days = st.lab_days
        out: list[tuple[str, Any, bool]] = []
        for c in vs.addressed:
            if c.key in v.new:
                for p in c.diagnosis_labs:
                    out.append((p, c, True))
            elif c.follow_up_labs and day - lab_days.get(c.follow_up_labs[0], NEVER) > 80:
                for p in c.follow_up_labs:
                    out.append((p, c, False))
        if vs.acute is not None:
            for p in vs.acute.acute_labs:
                out.append((p, vs.acute, True))
        if vs.preg is not None:
            for p in vs.preg.pregnancy.labs_by_week.get(str(v.week), ()):
                out.append((p, vs.preg, True))
        if v.wellness and vs.age >= 20:
            for key, every in WELLNESS_LABS:
                due = key in eng.wellness_labs and day - lab_days.get(key, NEVER) > every * 365
                if due and (key != "a1c" or vs.age >= 35):
                    out.append((key, None, False))
        # monitoring rules (content): warfarin -> INR, statin -> lipids, metformin -> eGFR ...
        monitoring = eng.rules.monitoring
        if monitoring and st.rx:  # nothing to monitor without a prescription
            drugs = None
            for codes, panel, every in monitoring:
                if day - lab_days.get(panel, NEVER) < every * 0.8:
                    continue
                if drugs is None:  # (code, until, condition) of each prescription, once
                    drugs = [
                        (mr["medicationCodeableConcept"]["coding"][0]["code"], until, cond_key)
                        for mr, until, cond_key in st.rx.values()
                    ]
                for code, until, cond_key in drugs:
                    if code in codes and until >= day:
                        out.append((panel, eng.cat.conditions.get(cond_key), False))
                        break
        return out

    def run(self, ctx: RecordContext, st: PatientState, vs: VisitState) -> None:
        """Order, collect and result the visit's panels.

        Examples
        --------
        >>> from synthetic.engine import engine_for
        >>> e = engine_for(seed=1, reference_date="2026-01-01", years=1, population="family-practice")
        >>> recs = [e.patient(i) for i in range(12)]
        >>> of = lambda t: [r for rec in recs for r in rec.by_type(t)]
        >>> code = lambda r: r["code"]["coding"][0]["code"]
        >>> len(of("ServiceRequest")) == len(of("Specimen")) > 0  # each panel ordered is collected
        True
        >>> reports = of("DiagnosticReport")
        >>> all(r["basedOn"][0]["reference"].startswith("ServiceRequest/") for r in reports if "basedOn" in r)
        True
        """
        if vs.virtual:
            return
        eng = self.eng
        cat = eng.cat
        rng = ctx.rng
        day = vs.day
        collected = False
        lo, hi = eng.rates.specimen_receipt_minutes
        for key, cond, ordered_for in self.panels(st, vs):
            if key in vs.labs_done or key not in cat.labs:
                continue
            vs.labs_done.add(key)
            panel = cat.labs[key]
            values = lab_values(
                rng,
                st.profile,
                panel,
                day=day,
                age=vs.age,
                sex=st.person.sex,
                ordered_for=cond if ordered_for else None,
                criteria=eng.criteria,
            )
            received = instant(day, vs.minute + rng.randint(lo, hi), eng.offset)
            labs.lab_order(
                ctx,
                panel,
                values,
                requester=vs.phys_ref,
                collector=vs.ma_ref,
                offset=eng.offset,
                sex=st.person.sex,
                security=cond.security if cond is not None else None,
                last_day=st.end - 1 if st.end - 1 >= day else day,
                received=received,
            )
            st.lab_days[key] = day
            if not panel.procedure or panel.procedure not in cat.fees:
                continue
            fee = cat.fees[panel.procedure]
            if panel.collection == "venipuncture":
                if collected:
                    continue
                collected = True
                ctx.add(procedures.procedure(ctx, code=fee.code, performer=vs.ma_ref, reason=None))
            vs.lines.append(billing.ClaimLine(fee.code, fee.price, (1,)))
