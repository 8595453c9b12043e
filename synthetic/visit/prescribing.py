"""Visit step: prescriptions - new chronic therapy, timely renewals and acute courses under the
content's safety rules (drug classes against allergies with cross-reactivity, age limits,
weight-based pediatric liquid doses, one antibiotic per visit, no duplicate therapy).

>>> Prescribing.name
'prescribing'
"""

from __future__ import annotations

import dataclasses
from datetime import date
from typing import Any

from synthetic.context import RecordContext
from synthetic.frozen import freeze
from synthetic.visit.state import PatientState, VisitState

RENEW_BEFORE_DAYS = 30
"""A maintenance prescription is renewed at a visit within this many days of running out."""


class Prescribing:
    """The visit's prescriptions.

    Examples
    --------
    >>> from synthetic.engine import engine_for
    >>> e = engine_for(seed=1, reference_date="2026-01-01", years=1, population="family-practice")
    >>> recs = [e.patient(i) for i in range(12)]
    >>> of = lambda t: [r for rec in recs for r in rec.by_type(t)]
    >>> code = lambda r: r["code"]["coding"][0]["code"]
    >>> {m["status"] for m in of("MedicationRequest")} <= {"active", "completed", "stopped"}
    True
    """

    name = "prescribing"

    def __init__(self, eng: Any) -> None:
        self.eng = eng
        self._weighted: dict[tuple[int, int], tuple[Any, Any]] = {}

    def allowed(self, st: PatientState, drug: Any, age: float) -> bool:
        """Whether ``drug`` may be prescribed to this patient at ``age`` (allergies, age, duplicates).

        >>> from synthetic.engine import engine_for
        >>> from synthetic.profile import Profile
        >>> e = engine_for(seed=1, reference_date="2026-01-01", years=2, population="family-practice")
        >>> tab = next(d for g in e.cat.conditions["otitis_media"].drug_groups for d in g if d.key == "308192")
        >>> Prescribing(e).allowed(PatientState(Profile()), tab, 1.0)
        False
        """
        if drug.key in st.conflicts or not drug.fits(age):
            return False
        return not self.eng.rules.duplicate_of(drug.key, set(st.rx))

    def dosed(self, drug: Any, weight: float | None) -> Any:
        """``drug`` with its liquid dose computed from the child's weight (content rule).

        >>> from synthetic.engine import engine_for
        >>> e = engine_for(seed=1, reference_date="2026-01-01", years=2, population="family-practice")
        >>> susp = next(d for g in e.cat.conditions["otitis_media"].drug_groups for d in g if d.key == "308189")
        >>> Prescribing(e).dosed(susp, 10.0).dosage[0]["doseAndRate"][0]["doseQuantity"]["value"]
        5.5
        """
        rule = self.eng.rules.weight_doses.get(drug.key)
        if rule is None or weight is None:
            return drug
        # keyed by the Drug itself: one RxNorm code may carry a different dosage, indication
        # and dose text in another condition, and the result must not depend on which
        # condition's drug was dosed first in this process (determinism across workers)
        key = (id(drug), round(weight))
        hit = self._weighted.get(key)
        if hit is not None and hit[0] is drug:
            return hit[1]
        ml = rule.ml(float(round(weight)))
        per_day = rule.doses_per_day
        inst = dict(drug.dosage[0])
        dq = dict(inst["doseAndRate"][0]["doseQuantity"])
        dq["value"] = ml
        inst["doseAndRate"] = [{"doseQuantity": dq}]
        inst["timing"] = {"repeat": {"frequency": per_day, "period": 1, "periodUnit": "d"}}
        times = {1: "once", 2: "twice", 3: "three times"}.get(per_day, f"{per_day} times")
        inst["text"] = (
            f"Take {ml:g} mL by mouth {times} daily for {drug.days_supply} days "
            f"({rule.mg_per_kg_day:g} mg/kg/day at {round(weight)} kg)"
        )
        disp = dict(drug.dispense)
        q = dict(disp["quantity"])
        q["value"] = max(1, round(ml * per_day * drug.days_supply))
        disp["quantity"] = q
        dosed = freeze(dataclasses.replace(drug, dosage=[inst], dispense=disp))  # cached: shared
        self._weighted[key] = (drug, dosed)  # holding ``drug`` keeps its id from being reused
        return dosed

    def run(self, ctx: RecordContext, st: PatientState, vs: VisitState) -> None:
        """Renew, start and prescribe at the visit.

        Examples
        --------
        >>> from synthetic.engine import engine_for
        >>> e = engine_for(seed=1, reference_date="2026-01-01", years=1, population="family-practice")
        >>> recs = [e.patient(i) for i in range(12)]
        >>> of = lambda t: [r for rec in recs for r in rec.by_type(t)]
        >>> code = lambda r: r["code"]["coding"][0]["code"]
        >>> rx = of("MedicationRequest")
        >>> len(rx) > 0 and all(m["medicationCodeableConcept"]["coding"][0]["system"].endswith("rxnorm") for m in rx)
        True
        """
        eng = self.eng
        rng = ctx.rng
        prof = st.profile
        v = vs.v
        day = vs.day
        for c in vs.addressed:
            dxs = prof.diagnoses.get(c.key)
            if dxs is None:
                continue
            for drug in dxs.drugs:
                current = st.rx.get(drug.key)
                new = current is None and c.key in v.new
                renew = current is not None and day >= current[1] - RENEW_BEFORE_DAYS
                if new or renew:
                    reason = f"Condition/{st.cond_ids[c.key]}" if c.key in st.cond_ids else None
                    eng.prescribe(ctx, st, drug, day, vs.phys_ref, c, current, reason)
        acute = vs.acute
        if acute is None:
            return
        weight = st.weight  # today's, or the last measured one at a video visit
        for group in acute.drug_groups:
            x = rng.random()
            for d in group:
                if not d.fits(vs.age):
                    continue  # the group's other formulations are for other ages
                x -= d.probability
                if x < 0:
                    self._acute(ctx, st, vs, d, weight)
                    break
        for d in acute.drug_singles:
            if rng.random() < d.probability and d.fits(vs.age):
                self._acute(ctx, st, vs, d, weight)

    def _acute(
        self, ctx: RecordContext, st: PatientState, vs: VisitState, d: Any, weight: Any
    ) -> None:
        eng = self.eng
        if d.key in st.conflicts:
            return  # allergy (drug class, cross-reactivity): not prescribed
        antibiotic = eng.rules.is_antibiotic(d.key)
        if antibiotic and vs.antibiotic_given:
            return
        vs.antibiotic_given = vs.antibiotic_given or antibiotic
        drug = self.dosed(d, weight)
        eng.prescribe(ctx, st, drug, vs.day, vs.phys_ref, vs.acute, None, vs.acute_ref, acute=True)


def renew_between_visits(eng: Any, ctx: RecordContext, st: PatientState, upto: int) -> None:
    """Renewals the clinic authorises without a visit (refill requests), when supply runs out.

    Each active maintenance prescription whose supply ends before ``upto`` is renewed a few
    days before it runs out, as long as its condition lasts.

    Schedule II drugs are never renewed this way (21 CFR 1306.12: no refills; a new
    prescription needs the prescriber, at a visit), and a renewal is always later than the
    prescription it renews.

    >>> renew_between_visits(None, None, type("S", (), {"rx": {}})(), 0)
    """
    rx = st.rx
    for _mr, until, _cond in rx.values():
        if until < upto:
            break
    else:
        return  # no supply runs out before ``upto`` (most visits): nothing to renew
    schedules = eng.content.codes["rxnorm"].attributes
    for key in sorted(rx):
        mr, until, cond_key = rx[key]
        if until >= upto or schedules.get(key, {}).get("schedule") == "II":
            continue
        dxn = st.profile.diagnoses.get(cond_key)
        while until < upto and mr["status"] == "active":
            if dxn is None or dxn.until <= until or until >= st.end:
                break
            last = date.fromisoformat(mr["authoredOn"][:10]).toordinal()
            day = max(until - ctx.rng.randint(0, 7), ctx.day, last + 1)
            if day >= min(upto, st.end):
                break
            for drug in dxn.drugs:  # the drug the condition is treated with
                if drug.key == key:
                    break
            else:  # no longer among its drugs: no renewal
                break
            saved = ctx.encounter, ctx.when, ctx.day
            ctx.encounter, ctx.day = None, day
            ctx.when = eng.renewal_instant(day)
            reason = f"Condition/{st.cond_ids[cond_key]}" if cond_key in st.cond_ids else None
            eng.prescribe(
                ctx, st, drug, day, f"Practitioner/{st.pcp}", dxn.condition, st.rx[key], reason
            )
            ctx.encounter, ctx.when, ctx.day = saved
            mr, until, cond_key = st.rx[key]
            st.renewals.append(mr)
