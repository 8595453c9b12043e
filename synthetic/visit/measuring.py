"""Visit step: vital signs, social history, condition and specialty observations, prenatal
observations (gestational age, fundal height, fetal heart rate - only during a pregnancy).

>>> Measuring.name
'measuring'
"""

from __future__ import annotations

from typing import Any

from synthetic.builders import social, vitals
from synthetic.builders.common import qty
from synthetic.context import RecordContext
from synthetic.profile import weighted_choice
from synthetic.visit.state import PatientState, VisitState


class Measuring:
    """Everything measured or asked at the visit.

    Examples
    --------
    >>> from synthetic.engine import engine_for
    >>> e = engine_for(seed=1, reference_date="2026-01-01", years=1, population="family-practice")
    >>> recs = [e.patient(i) for i in range(12)]
    >>> of = lambda t: [r for rec in recs for r in rec.by_type(t)]
    >>> code = lambda r: r["code"]["coding"][0]["code"]
    >>> cats = {c["coding"][0]["code"] for o in of("Observation") for c in o.get("category", [])}
    >>> {"vital-signs", "social-history", "exam"} <= cats
    True
    """

    name = "measuring"

    def __init__(self, eng: Any) -> None:
        self.eng = eng
        # the preset's observations not measured with the vital signs (head circumference is)
        self.preset_observations = tuple(
            loinc for loinc in eng.preset.observations if loinc not in eng.cat.vitals
        )

    def run(self, ctx: RecordContext, st: PatientState, vs: VisitState) -> None:
        """Record the visit's measurements.

        Examples
        --------
        >>> from synthetic.engine import engine_for
        >>> e = engine_for(seed=1, reference_date="2026-01-01", years=1, population="family-practice")
        >>> recs = [e.patient(i) for i in range(12)]
        >>> of = lambda t: [r for rec in recs for r in rec.by_type(t)]
        >>> code = lambda r: r["code"]["coding"][0]["code"]
        >>> vitals = {code(o) for o in of("Observation") if o["category"][0]["coding"][0]["code"] == "vital-signs"}
        >>> {"8867-4", "85354-9", "29463-7"} <= vitals  # heart rate, blood pressure, weight
        True
        """
        eng = self.eng
        rng = ctx.rng
        v = vs.v
        sex = st.person.sex
        if vs.virtual:  # a video visit: no vitals taken in the office
            eng.measures.last.clear()
            return
        vs.effects = eng.measures.record(ctx, rng, st.profile, vs.day, sex, vs.age, vs.acute)
        st.weight = eng.measures.last.get("weight", st.weight)
        if v.wellness or st.first:
            self.social(ctx, st, vs.age)
        for c in vs.addressed:
            for loinc in c.observations:
                self.observation(ctx, rng, st, loinc, vs.age, sex, vs.effects)
        if v.specialty or (eng.preset.observations and not v.wellness):
            for loinc in self.preset_observations:
                self.observation(ctx, rng, st, loinc, vs.age, sex, vs.effects)
        if vs.preg is not None:
            self.prenatal(ctx, rng, vs.preg, v.week)

    def social(self, ctx: RecordContext, st: PatientState, age: float) -> None:
        """Smoking status and alcohol screening score (Observations, never Conditions).

        Examples
        --------
        >>> from synthetic.engine import engine_for
        >>> e = engine_for(seed=1, reference_date="2026-01-01", years=1, population="family-practice")
        >>> recs = [e.patient(i) for i in range(12)]
        >>> of = lambda t: [r for rec in recs for r in rec.by_type(t)]
        >>> code = lambda r: r["code"]["coding"][0]["code"]
        >>> social = {o["code"]["coding"][0]["display"] for o in of("Observation") if o["category"][0]["coding"][0]["code"] == "social-history"}
        >>> sorted(social), of("Condition") == [c for c in of("Condition") if "smok" not in str(c["code"]).lower()]
        (['Tobacco smoking status', 'Total score [AUDIT-C]'], True)
        """
        eng = self.eng
        prof = st.profile
        if prof.smoking and eng.smoking_code and age >= eng.social.smoking_min_age:
            answer = eng.cat.snomed.get(prof.smoking)
            if answer is not None:
                ctx.add(social.smoking_status(ctx, code=eng.smoking_code, answer=answer))
        if (
            prof.alcohol_score is not None
            and eng.alcohol_code
            and age >= eng.social.alcohol_min_age
        ):
            ctx.add(
                social.score(ctx, code=eng.alcohol_code, value=prof.alcohol_score, survey=False)
            )

    def observation(
        self,
        ctx: RecordContext,
        rng: Any,
        st: PatientState,
        loinc: str,
        age: float,
        sex: str,
        effects: dict[str, list[Any]],
    ) -> None:
        """One exam observation (a coded answer or a measured quantity)."""
        cat = self.eng.cat
        code = cat.observation_codes.get(loinc)
        if code is None:
            return
        vd = cat.vitals.get(loinc) or cat.observations.get(loinc)
        if vd is None:
            return
        if vd.answers:
            answers = vd.answers
            for dx in st.profile.diagnoses.values():
                eff = dx.condition.vitals_effects.get(loinc)
                if dx.onset <= ctx.day < dx.until and eff is not None and eff[3]:
                    answers = eff[3]
                    break
            ctx.add(vitals.exam_observation(ctx, code, weighted_choice(rng, answers)))
            return
        val = self.eng.measures.draw(rng, vd, age, sex, effects, None)
        if val is not None:
            ctx.add(vitals.exam_observation(ctx, code, qty(val, vd.unit)))

    def prenatal(self, ctx: RecordContext, rng: Any, preg: Any, week: int) -> None:
        """Gestational age, fundal height (from 20 weeks), fetal heart rate (from 12 weeks).

        Examples
        --------
        >>> from synthetic.engine import engine_for
        >>> e = engine_for(seed=1, reference_date="2026-01-01", years=2, population="ob-gyn")
        >>> recs = [e.patient(i) for i in range(12)]
        >>> of = lambda t: [r for rec in recs for r in rec.by_type(t)]
        >>> names = {o["code"]["coding"][0]["display"] for o in of("Observation")}
        >>> sorted(n for n in names if n in ("Gestational age in weeks", "Uterus Fundal height Tape measure", "Fetal Heart rate"))
        ['Fetal Heart rate', 'Gestational age in weeks', 'Uterus Fundal height Tape measure']
        """
        p = preg.pregnancy
        oc = self.eng.cat.observation_codes
        if p.gestational_age_loinc in oc:
            ctx.add(vitals.exam_observation(ctx, oc[p.gestational_age_loinc], qty(week, "wk")))
        if week >= p.fundal_height_from_week and p.fundal_height_loinc in oc:
            ctx.add(
                vitals.exam_observation(
                    ctx, oc[p.fundal_height_loinc], qty(week + rng.randint(-2, 2), "cm")
                )
            )
        if week >= 12 and p.fetal_heart_rate_loinc in oc:
            ctx.add(
                vitals.exam_observation(
                    ctx, oc[p.fetal_heart_rate_loinc], qty(rng.randint(120, 160), "/min")
                )
            )
