"""The generator engine: one patient index in, one coherent :class:`PatientRecord` out.

The engine holds everything that does not depend on the patient (compiled catalog, practice,
name pools, preset) and builds each record from the patient's own random stream, so a record
is a pure function of (seed, index, reference date, years, population, content version).

>>> e = engine_for(seed=1, reference_date="2026-01-01", years=3, population="family-practice")
>>> r = e.patient(0)
>>> r.patient["resourceType"], r.patient["id"] == e.patient(0).patient["id"]
('Patient', True)
"""

from __future__ import annotations

import math
import string
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date as _date
from functools import lru_cache
from typing import Any

from synthetic.builders import billing, conditions, encounter, medications
from synthetic.builders.common import coding
from synthetic.builders.patient import patient_resource
from synthetic.catalog import NORMAL_STEPS, NORMALS, Catalog, ConditionDef
from synthetic.compile import compile_catalog
from synthetic.context import RecordContext
from synthetic.dates import (
    DAYS_PER_YEAR,
    instant,
    iso_date,
    parse_reference_date,
)
from synthetic.errors import ArgumentError
from synthetic.frozen import freeze
from synthetic.ids import patient_base
from synthetic.measures import VitalSampler
from synthetic.person import make_person, name_pools
from synthetic.practice import Practice
from synthetic.profile import (
    Diagnosis,
    Profile,
    band_for,
    choose_drugs,
    draw_allergies,
    draw_conditions,
    weighted_choice,
)
from synthetic.record import PatientRecord
from synthetic.rng import patient_rng
from synthetic.schedule import Book, Grid
from synthetic.systems import ICD10CM
from synthetic.timeline import Timeline, Visit, follow_up_days, poisson, wellness_days
from synthetic.vaccination import vaccine_windows
from synthetic.visit import (
    VISIT_STEPS,
    PatientState,
    VisitState,
    recalls,
    renew_between_visits,
    secondary,
)
from synthetic.visit.clinical_ma import install as install_clinical_ma
from synthetic.visit.portal import PortalInbox
from synthetic.visit.scheduling import (
    AheadPlan,
    PatientPlan,
    busy_slots,
    place,
    plan_visits,
    slot_refs,
)

KIND_APPOINTMENT = {
    "wellness": ("CHECKUP", "ROUTINE"),
    "acute": ("WALKIN", "ROUTINE"),
    "diagnosis": ("ROUTINE", "FOLLOWUP"),
    "follow-up": ("FOLLOWUP", "ROUTINE"),
    "prenatal": ("PRENATAL", "ROUTINE", "FOLLOWUP"),
    "specialty": ("SPECIALTY", "ROUTINE", "FOLLOWUP"),
}


class Engine:
    """Makes patients for one (seed, reference date, years, population, content).

    >>> e = engine_for(seed=2, reference_date="2026-01-01", years=2, population="pediatrics")
    >>> e.preset.key
    'pediatrics'
    """

    def __init__(
        self, *, seed: int, reference_day: int, years: int, population: str, content: Any
    ) -> None:
        cat: Catalog = compile_catalog(content)
        if population not in cat.presets:
            raise ArgumentError(
                f"population: expected one of {', '.join(sorted(cat.presets))}, got {population!r}"
            )
        self.seed = seed
        self.ref = reference_day
        self.years = years
        self.cat = cat
        self.preset = cat.presets[population]
        self.practice = Practice(cat, population, reference_day)
        self.grid = Grid(self.practice)
        self._book_mark: tuple[int, Book] = (0, Book(self.practice, self.grid))
        self.offset = self.practice.offset
        mods = [cat.conditions[k] for k in self.preset.modules]
        self.chronic = [m for m in mods if m.kind == "chronic"]
        self.acute = [m for m in mods if m.kind == "acute"]
        self._acute_scales = [
            (m, self.preset.multipliers.get(m.key, 1.0), m.visit_probability) for m in self.acute
        ]
        """Acute modules with the preset's multiplier and their visit probability (constants
        of the yearly visit rate, see :meth:`_timeline`)."""
        self.pregnancy = [m for m in mods if m.kind == "pregnancy"]
        preg_keys = {m.key for m in self.pregnancy}
        # chronic modules that require a pregnancy are drawn per pregnancy, not per person
        self.pregnancy_conditions: dict[str, list[ConditionDef]] = {}
        for m in [x for x in self.chronic if preg_keys & set(x.requires)]:
            self.chronic.remove(m)
            for r in preg_keys & set(m.requires):
                self.pregnancy_conditions.setdefault(r, []).append(m)
        self.obesity_key = next(
            (m.key for m in self.chronic if m.criterion and m.criterion[0] == "39156-5"), None
        )
        self.bmi_threshold = (
            self.cat.conditions[self.obesity_key].criterion[1] if self.obesity_key else 30.0  # type: ignore[index]
        )
        # criteria that people *without* the condition must stay under (A1c < 6.5 ...)
        self.criteria: dict[str, list[tuple[str, float]]] = {}
        for m in cat.conditions.values():  # also modules the preset lacks (A1c >= 6.5 is diabetes)
            if m.kind == "chronic" and m.criterion and m.criterion[0] != "39156-5":
                self.criteria.setdefault(m.criterion[0], []).append((m.key, m.criterion[1]))
        p = cat.practice
        area = "".join(ch for ch in p.phone if ch.isdigit())[:3] or "555"
        self.pools = name_pools(p.state, area)
        self.window = int(years * DAYS_PER_YEAR)
        self.age_table = self.preset.ages
        self.types = cat.appointment_types
        self.type_cc: dict[str, dict[str, Any]] = {
            code: freeze(encounter.appointment_type_cc(code, t.display))
            for code, t in self.types.items()
        }
        self.measures = VitalSampler(cat, self.bmi_threshold)
        self.social = cat.social
        self.smoking_code = cat.observation_codes.get(self.social.smoking_loinc)
        self.alcohol_code = cat.observation_codes.get(self.social.alcohol_loinc)
        self.current_smoker = frozenset(self.social.current_smoker_codes)
        self.org_ref = f"Organization/{self.practice.organization_id}"
        self.loc_ref = f"Location/{self.practice.location_id}"
        self.vaccine_windows = vaccine_windows(cat.vaccines)
        self._kind_types: dict[str, str] = {}
        self.wellness_labs = [k for k in ("lipid", "a1c", "cmp", "cbc") if k in cat.labs]
        self.rules = cat.rules
        self.rates = cat.rules.engine
        self._avoid_cache: dict[frozenset[str], frozenset[str]] = {}
        self._clinicians: dict[str, str] = {}
        self._note_templates: dict[str, tuple[str, dict[str, str]]] = {}
        self.portal = PortalInbox(self)
        self.steps: list[Any] = [step(self) for step in VISIT_STEPS]
        """The visit-step providers, run in order for every visit (see :mod:`synthetic.visit`)."""
        self.content = content
        self.record_steps: list[Any] = []
        """Record steps, run once after the patient's last visit (``finish(ctx, state)``)."""
        self.clinic: Any = None
        """The practice's rooms, POC kits and QC log (:class:`synthetic.clinic_logs.ClinicLogs`)."""
        install_clinical_ma(self)

    def add_step(self, step: Any, *, after: str | None = None) -> None:
        """Add a visit-step provider (an object with ``name`` and ``run(ctx, state, visit)``).

        ``after`` names the step it follows (default: the end, before nothing).

        >>> e = Engine(seed=1, reference_day=739617, years=1, population="family-practice",
        ...            content=__import__("synthetic.content", fromlist=["x"]).load_content())
        >>> class Hello:
        ...     name = "hello"
        ...     def run(self, ctx, state, visit): pass
        >>> e.add_step(Hello(), after="booking"); [s.name for s in e.steps][:2]
        ['booking', 'hello']
        """
        names = [x.name for x in self.steps]
        at = names.index(after) + 1 if after is not None else len(self.steps)
        self.steps.insert(at, step)

    def add_record_step(self, step: Any) -> None:
        """Add a record step (``name`` and ``finish(ctx, state)``), run after the last visit.

        >>> e = engine_for(seed=1, reference_date="2026-01-01", years=1, population="family-practice")
        >>> "deliveries" in [s.name for s in e.record_steps]
        True
        """
        self.record_steps.append(step)

    # ------------------------------------------------------------------ practice

    def practice_resources(self, book: Book | None = None) -> list[dict[str, Any]]:
        """The shared practice resources (Organization, Location, staff, Schedule, Slot).

        With ``book`` (every patient of the dataset placed, see :meth:`schedule_for`), the
        free Slots around the reference date leave out those patients fill and the covering
        physicians the schedule needed are added.

        >>> e = engine_for(seed=1, reference_date="2026-01-01", years=2, population="family-practice")
        >>> any(r["resourceType"] == "Slot" for r in e.practice_resources())
        True
        """
        out = self.practice.resources(book, self.ref - self.window)
        return out + self.clinic.resources() if self.clinic is not None else out

    def schedule_for(self, start: int, stop: int) -> Book:
        """Place patients ``0`` to ``stop - 1`` (the planning pass) and return the book.

        >>> e = engine_for(seed=1, reference_date="2026-01-01", years=1, population="family-practice")
        >>> e.schedule_for(0, 4).locums
        0
        """
        book = self.book_before(start)
        for i in range(start, stop):
            self.plan(i, book)
        return book

    # ------------------------------------------------------------------ patient

    def _age_at_ref(self, rng: Any) -> float:
        x = rng.random() * sum(s for _, _, s in self.age_table)
        for lo, hi, share in self.age_table:
            x -= share
            if x < 0:
                return rng.uniform(lo, hi + 1)
        lo, hi, _ = self.age_table[-1]
        return rng.uniform(lo, hi + 1)

    def patient(self, index: int, book: Book | None = None) -> PatientRecord:
        """Build patient ``index``'s complete record, its appointments placed in ``book``.

        ``book`` holds the slots patients ``0 .. index - 1`` took (see
        :mod:`synthetic.schedule`); without one, the engine plans them first (see
        :meth:`book_before`), so a record is the same however it is asked for.

        >>> e = engine_for(seed=1, reference_date="2026-01-01", years=2, population="family-practice")
        >>> rec = e.patient(4)
        >>> rec.index, all(r["id"].startswith(rec.patient["id"]) for r in rec.resources if r["resourceType"] != "Slot")
        (4, True)
        """
        if book is None:
            book = self.book_before(index)
        pre = self._prepare(index)
        place(book, pre.plan)
        return self._build(pre)

    def book_before(self, index: int) -> Book:
        """The schedule as patients ``0 .. index - 1`` left it (a fresh copy).

        Patients are always placed from index 0, so patient ``i``'s record does not depend on
        where a run starts. The engine keeps its last answer, so asking in increasing order
        plans each patient once.

        >>> e = engine_for(seed=1, reference_date="2026-01-01", years=1, population="family-practice")
        >>> a = e.book_before(3); b = Book(e.practice)
        >>> for i in range(3): e.plan(i, b)
        >>> a.occupied == b.occupied
        True
        """
        at, book = self._book_mark
        if at > index:
            at, book = 0, Book(self.practice, self.grid)
        else:
            book = book.copy()
        for i in range(at, index):
            self.plan(i, book)
        self._book_mark = (index, book.copy())
        return book

    def plan(self, index: int, book: Book) -> None:
        """Place patient ``index``'s appointments in ``book`` without building the record.

        This is the cheap first pass that lets a worker start mid-population with the same
        schedule as a single process (see :func:`synthetic.api.write_dataset`).

        >>> from synthetic.schedule import Book
        >>> e = engine_for(seed=1, reference_date="2026-01-01", years=2, population="family-practice")
        >>> b = Book(e.practice); e.plan(0, b); c = Book(e.practice); _ = e.patient(0, c)
        >>> b.occupied == c.occupied
        True
        """
        place(book, self._prepare(index).plan)

    def _prepare(self, index: int) -> _Prepared:
        rng = patient_rng(self.seed, index)
        base = patient_base(self.seed, index)
        ref = self.ref
        sex = "female" if rng.random() < self.preset.female_share else "male"
        age = self._age_at_ref(rng)
        birth = ref - max(1, int(age * DAYS_PER_YEAR))
        start = max(birth, ref - self.window)
        death = None
        annual = math.exp(-10.2 + 0.09 * age)
        if rng.random() < min(0.5, annual * self.years * 0.6) and ref - start > 60:
            death = rng.randint(start + 30, ref - 1)
        end = death if death is not None else ref
        person = make_person(rng, self.pools, birth=birth, sex=sex)
        person.deceased = death
        age_end = (end - birth) / DAYS_PER_YEAR
        if age_end < 18:
            person.marital = None
        fit = self.practice.clinicians_for((max(start, birth) - birth) / DAYS_PER_YEAR)
        pcp = fit[rng.randrange(len(fit))]
        profile = self._profile(rng, sex, birth, start, end, age_end)
        st = PatientState(profile)
        st.conflicts = self._avoid(profile)
        st.person, st.birth, st.end, st.pcp = person, birth, end, pcp
        st.pregnancies = []
        timeline = self._timeline(rng, st, sex, birth, start, end)
        visits = timeline.visits()
        plan = plan_visits(self, rng, visits, pcp, birth, DAYS_PER_YEAR)
        if death is None:
            plan.ahead = self._plan_ahead(rng, profile, pcp)
        return _Prepared(index, rng, base, sex, birth, start, end, death, person, pcp, st, plan)

    def _build(self, pre: _Prepared) -> PatientRecord:
        rng, st, person, pcp = pre.rng, pre.st, pre.person, pre.pcp
        birth, start, end, death = pre.birth, pre.start, pre.end, pre.death
        profile = st.profile
        visits = pre.plan.visits
        ctx = RecordContext(pre.base, rng)
        mrn = f"MRN{pre.index + 1:08d}"
        patient = patient_resource(
            pre.base,
            person,
            mrn=mrn,
            physician_id=pcp,
            organization_id=self.practice.organization_id,
        )

        # Coverage and allergies are part of the chart before the first visit.
        first_day = visits[0].day if visits else start
        self._coverage(ctx, st, rng, birth, start, end, death)
        secondary.add(self, ctx, st)
        for allergy, onset in profile.allergies:
            reaction = None
            x = rng.random()
            for manif, p, severity in allergy.reactions:
                x -= p
                if x < 0:
                    reaction = (manif, severity)
                    break
            ctx.add(
                conditions.allergy(
                    ctx,
                    code=allergy.code,
                    category=allergy.category,
                    type_=allergy.type,
                    criticality=allergy.criticality,
                    onset=iso_date(max(birth, onset)),
                    recorded=iso_date(max(first_day, onset)),
                    recorder=f"Practitioner/{pcp}",
                    reaction=reaction,
                )
            )
        for v in visits:
            self.visit(ctx, st, v)
        renew_between_visits(self, ctx, st, end)
        for step in self.record_steps:
            step.finish(ctx, st)
        self.portal.write(ctx, st, [v.day for v in visits], start)
        self._appointments_ahead(ctx, rng, pre.plan.ahead or [])
        recalls.write(self, ctx, st, pre.plan)
        self._settle_prescriptions(st, end, death is not None)
        return PatientRecord(pre.index, patient, ctx.out)

    def visit(self, ctx: RecordContext, st: PatientState, v: Visit) -> None:
        """Document one visit: renewals due before it, then every visit step in order.

        >>> e = engine_for(seed=1, reference_date="2026-01-01", years=2, population="family-practice")
        >>> [s.name for s in e.steps][0]
        'booking'
        """
        if st.rx:  # (no prescription: nothing to renew)
            renew_between_visits(self, ctx, st, v.day)
        vs = VisitState(v, v.day, (v.day - st.birth) / DAYS_PER_YEAR)
        for step in self.steps:
            step.run(ctx, st, vs)

    # ------------------------------------------------------------------ profile and timeline

    def _avoid(self, prof: Profile) -> frozenset[str]:
        """RxNorm codes the patient's allergies rule out, drug classes and cross-reactivity included."""
        if not prof.allergies:
            return frozenset()
        keys = frozenset(a.key for a, _ in prof.allergies)
        hit = self._avoid_cache.get(keys)
        if hit is None:
            out = set(prof.conflicts())
            for code in self.rules.drug_classes:
                if self.rules.blocked_by_allergies(code, keys):
                    out.add(code)
            hit = self._avoid_cache[keys] = frozenset(out)
        return hit

    def _growth(self, rng: Any, prof: Profile, sex: str, birth: int, start: int, end: int) -> None:
        """Children's growth z-scores; a child who reaches 18 joins their adult BMI smoothly."""
        g = self.rules.growth
        if (start - birth) / DAYS_PER_YEAR >= 18:
            return
        z_h = NORMALS[int(rng.random() * NORMAL_STEPS)]
        z_c = NORMALS[int(rng.random() * NORMAL_STEPS)]
        if (end - birth) / DAYS_PER_YEAR >= 18:
            z_b = self.measures.growth.zscore("bmi", sex, 216.0, prof.adult_bmi)
        else:
            z_b = g.bmi_z_mean + NORMALS[int(rng.random() * NORMAL_STEPS)] * g.bmi_z_sd
        prof.growth_z = (z_h, max(-3.0, min(3.5, z_b)), z_c)

    def _profile(
        self, rng: Any, sex: str, birth: int, start: int, end: int, age_end: float
    ) -> Profile:
        prof = Profile()
        bmi_def = self.cat.vitals.get("39156-5")
        adult_age = max(age_end, 18.0)
        band = bmi_def.band(adult_age, sex) if bmi_def else None
        preset: dict[str, bool] = {}
        obese = None
        threshold = 30.0
        if self.obesity_key:
            ob = self.cat.conditions[self.obesity_key]
            threshold = ob.criterion[1]  # type: ignore[index]
            obese = age_end >= 18 and rng.random() < ob.rate(
                age_end, sex
            ) * self.preset.multipliers.get(ob.key, 1.0)
            preset[self.obesity_key] = obese
        if band:
            mean, sd, lo, hi = band
            bmi = min(max(rng.gauss(mean, sd), lo), hi)
            for _ in range(30):  # BMI on the right side of the obesity criterion
                if obese is None or (bmi >= threshold) == obese:
                    break
                bmi = min(max(rng.gauss(mean, sd), lo), hi)
            if obese is not None:
                bmi = max(bmi, threshold + 0.3) if obese else min(bmi, threshold - 0.6)
            prof.adult_bmi = round(bmi, 1)
        prof.obese = bool(obese)
        self._growth(rng, prof, sex, birth, start, end)
        if self.obesity_key and age_end < 18 and prof.growth_z is not None:
            # children: obesity is a BMI-for-age at or above the 95th percentile (CDC)
            child_obese = age_end >= 2 and prof.growth_z[1] >= self.rules.growth.obesity_z
            preset[self.obesity_key] = child_obese
        prof.allergies = draw_allergies(rng, self.cat.allergies, birth=birth, end=end)
        prof.diagnoses = draw_conditions(
            rng,
            self.chronic,
            self.preset.multipliers,
            sex=sex,
            birth=birth,
            start=start,
            end=end,
            preset=preset,
            avoid=self._avoid(prof),
        )
        self._undiagnosed(rng, prof)
        self._no_duplicate_therapy(prof, birth)
        social = self.social
        sband = (
            band_for(social.smoking, age_end, sex) if age_end >= social.smoking_min_age else None
        )
        if sband is not None:
            prof.smoking = weighted_choice(rng, sband.probabilities)
        aband = (
            band_for(social.alcohol, age_end, sex) if age_end >= social.alcohol_min_age else None
        )
        if aband is not None:
            prof.alcohol_score = int(weighted_choice(rng, aband.scores))
        return prof

    def _undiagnosed(self, rng: Any, prof: Profile) -> None:
        """Only a share of people with hypertension know it (content): the rest stay undiagnosed."""
        aware = self.rules.awareness.hypertension
        dx = prof.diagnoses.get("hypertension")
        if dx is None or rng.random() < aware:
            return
        if any("hypertension" in d.condition.requires for d in prof.diagnoses.values()):
            return  # a complication was diagnosed: so was its cause
        del prof.diagnoses["hypertension"]
        prof.undiagnosed["hypertension"] = dx.onset

    def _no_duplicate_therapy(self, prof: Profile, birth: int) -> None:
        """Drop drugs that duplicate a therapy class already taken, or that do not fit the age."""
        taken: list[str] = []
        for dx in sorted(prof.diagnoses.values(), key=lambda d: (d.recorded, d.condition.key)):
            age = (dx.recorded - birth) / DAYS_PER_YEAR
            keep = []
            for d in dx.drugs:
                if not d.fits(age) or self.rules.duplicate_of(d.key, set(taken)):
                    continue
                keep.append(d)
                taken.append(d.key)
            dx.drugs = keep

    def _timeline(
        self, rng: Any, st: PatientState, sex: str, birth: int, start: int, end: int
    ) -> Timeline:
        prof = st.profile
        rates = self.rates
        t = Timeline(start, end)
        open_day = self.practice.open_day  # (day, rng): a closed day moves to one near it

        if self.preset.wellness:
            for d in wellness_days(
                rng,
                birth,
                start,
                end,
                rates.adult_checkup_attendance,
                rates.child_wellness_attendance,
            ):
                t.add(open_day(d, rng), "wellness")
        for key, dx in prof.diagnoses.items():
            if dx.recorded != dx.onset and not dx.condition.requires:
                # conditions older than the records are charted at a visit already planned
                near = t.nearest(dx.recorded, 2 * rates.follow_up_merge_days)
                if near is not None:
                    dx.recorded = near
            t.add(open_day(dx.recorded, rng), "diagnosis", new=(key,))
            for d in follow_up_days(
                rng, dx.recorded, end, dx.condition.follow_up_days, rates.follow_up_attendance
            ):
                # several chronic conditions are reviewed at one visit when visits fall close
                near = t.nearest(d, rates.follow_up_merge_days)
                t.add(
                    near if near is not None else open_day(d, rng), "follow-up", conditions=(key,)
                )
            # drug monitoring more often than follow-up (warfarin -> INR every few weeks)
            for codes, _panel, every in self.rules.monitoring:
                if every < dx.condition.follow_up_days and any(d.key in codes for d in dx.drugs):
                    day = dx.recorded + every
                    while day < end:
                        t.add(open_day(day, rng), "follow-up", conditions=(key,))
                        day += every
        y0 = start
        while y0 < end:
            span = min(365, end - y0)
            age = (y0 + span / 2 - birth) / DAYS_PER_YEAR
            frac = span / 365.0
            for m, m_mult, visit_p in self._acute_scales:
                lam = m.rate(age, sex) * m_mult * visit_p * frac
                for _ in range(poisson(rng, lam)):
                    day = y0 + rng.randrange(span)
                    if (day - birth) / DAYS_PER_YEAR < m.onset_min:
                        continue  # too young for this condition (otitis media from 6 months)
                    t.add(open_day(day, rng), "acute", acute=m.key)
            y0 += span
        if sex == "female":
            for m in self.pregnancy:
                self._pregnancies(rng, t, m, st, birth, start, end)
        if self.preset.observations or self.preset.visit_procedures:
            day = start + rng.randrange(200)
            while day < end:
                if rng.random() < rates.specialty_visit_probability:
                    t.add(open_day(day, rng), "specialty")
                day += 300 + rng.randrange(130)
        cm = getattr(self.content, "clinical_ma", None)
        if cm is not None:
            # nobody comes to the office from the delivery ward: what was due is done later
            stay = max(cm.delivery.stay_days_vaginal, cm.delivery.stay_days_cesarean)
            for _lmp, finish, outcome in st.pregnancies:
                if outcome == "delivery":
                    t.move(finish, finish + stay, self.practice.open_day(finish + stay + 1))
        if self.rules.eras:
            t.thin(rng, self.rules.era)  # the 2020 dip and telehealth (content)
        return t

    def _pregnancies(
        self,
        rng: Any,
        t: Timeline,
        m: ConditionDef,
        st: PatientState,
        birth: int,
        start: int,
        end: int,
    ) -> None:
        prof = st.profile
        preg = m.pregnancy
        weeks = preg.duration_weeks
        rules = self.rules.pregnancy
        mult = self.preset.multipliers.get(m.key, 1.0)
        # the content gives the chance of being pregnant on a given day; the yearly chance of a
        # pregnancy starting is that divided by the share of a year a pregnancy lasts
        day = start - weeks * 7 // 2
        free_from = day
        while day < end:
            age = (day - birth) / DAYS_PER_YEAR
            p = m.rate(age, "female") * mult / (weeks / 52.0)
            if day >= free_from and rng.random() < min(0.9, p):
                lmp = day + rng.randrange(365)
                lmp_age = (lmp - birth) / DAYS_PER_YEAR
                if rules is not None and not rules.age_min <= lmp_age < rules.age_max:
                    day += 365
                    continue
                # length and outcome (content): a loss in the first trimester, or a delivery
                # at a gestational age drawn from the national distribution
                if rules is not None and rng.random() < rules.loss_probability:
                    last_week = rng.randint(rules.loss_week_min, rules.loss_week_max)
                    outcome = "loss"
                elif rules is not None:
                    last_week = int(weighted_choice(rng, rules.delivery_weeks))
                    outcome = "delivery"
                else:
                    last_week, outcome = weeks, "delivery"
                finish = lmp + last_week * 7 + rng.randrange(7)
                # conditions that only occur in pregnancy (gestational diabetes...) are found
                # at the 24-28 week screen and resolve at delivery
                found: list[tuple[ConditionDef, int]] = []
                for c in self.pregnancy_conditions.get(m.key, ()):
                    if c.key not in prof.diagnoses and rng.random() < c.rate(
                        lmp_age, "female"
                    ) * self.preset.multipliers.get(c.key, 1.0):
                        found.append((c, 24 + rng.randrange(5)))
                for w in preg.visit_weeks:
                    vd = self.practice.open_day(lmp + 7 * w, rng)
                    if vd >= finish:
                        break
                    new = tuple(c.key for c, wk in found if wk <= w and c.key not in prof.diagnoses)
                    for c, _ in found:
                        if c.key in new:
                            drugs = choose_drugs(rng, c, st.conflicts)
                            prof.diagnoses[c.key] = Diagnosis(c, vd, drugs, abatement=finish)
                    ongoing = tuple(
                        c.key for c, _ in found if c.key in prof.diagnoses and c.key not in new
                    )
                    t.add(
                        vd,
                        "prenatal",
                        pregnancy=m.key,
                        week=(vd - lmp) // 7,
                        conditions=ongoing,
                        new=new,
                    )
                st.pregnancies.append((lmp, finish, outcome))
                free_from = finish + 180
            day += 365

    def pregnancy_of(self, st: PatientState, day: int) -> tuple[int, int, str]:
        """(last menstrual period, end, outcome) of the pregnancy ongoing on ``day``.

        >>> e = engine_for(seed=1, reference_date="2026-01-01", years=2, population="ob-gyn")
        >>> s = PatientState(Profile()); s.pregnancies = [(100, 380, "delivery")]
        >>> e.pregnancy_of(s, 200)
        (100, 380, 'delivery')
        """
        best: tuple[int, int, str] | None = None
        for lmp, finish, outcome in st.pregnancies:
            if lmp <= day and (best is None or lmp > best[0]):
                best = (lmp, finish, outcome)
        return best if best is not None else (day, day + 280, "delivery")

    # ------------------------------------------------------------------ visits

    def appointment_type(self, kind: str) -> str:
        """The appointment type code for a kind of visit.

        >>> engine_for(seed=1, reference_date="2026-01-01", years=2, population="family-practice").appointment_type("wellness")
        'CHECKUP'
        """
        code = self._kind_types.get(kind)
        if code is None:
            code = self._kind_types[kind] = self._find_appointment_type(kind)
        return code

    def _find_appointment_type(self, kind: str) -> str:
        if kind == "specialty":
            for code in self.preset.visit_types:
                if code not in encounter.V2_0276_CODES and code in self.types:
                    return code
        for code in KIND_APPOINTMENT.get(kind, ()):
            if code in self.types:
                return code
        return next(iter(self.types))

    def _draw_payer(self, rng: Any, age: float, exclude: str | None) -> Any:
        eligible = [
            p for p in self.cat.payers if p.age_min <= age <= p.age_max + 1 and p.key != exclude
        ]
        payer = eligible[0] if eligible else self.cat.payers[0]
        x = rng.random() * sum(p.share for p in eligible) if eligible else 0
        for p in eligible:
            x -= p.share
            if x < 0:
                return p
        return payer

    def _coverage(
        self,
        ctx: RecordContext,
        st: PatientState,
        rng: Any,
        birth: int,
        start: int,
        end: int,
        death: int | None,
    ) -> None:
        """Coverage periods: Medicare from the 65th birthday, another payer before, none after death."""
        first = max(start, birth)
        rules = self.rules.payer
        medicare = (
            next((p for p in self.cat.payers if p.key == rules.medicare_payer), None)
            if rules is not None
            else None
        )
        periods: list[tuple[int, int | None, Any]] = []
        if medicare is not None:
            b = _date.fromordinal(birth)
            try:
                turn65 = b.replace(year=b.year + rules.medicare_age).toordinal()
            except ValueError:  # born on 29 February
                turn65 = b.replace(year=b.year + rules.medicare_age, day=28).toordinal() + 1
            if turn65 <= first:
                periods.append((first, None, medicare))
            else:
                before = self._draw_payer(rng, (first - birth) / DAYS_PER_YEAR, medicare.key)
                if turn65 < end:
                    periods.append((first, turn65, before))
                    periods.append((turn65, None, medicare))
                else:
                    periods.append((first, None, before))
        else:
            periods.append(
                (first, None, self._draw_payer(rng, (first - birth) / DAYS_PER_YEAR, None))
            )
        for p_start, p_end, payer in periods:
            payor = (
                ctx.subject["reference"]
                if payer.type == "self-pay"
                else f"Organization/{self.practice.payer_org[payer.key]}"
            )
            closed = p_end if p_end is not None else death
            cov = billing.coverage(
                ctx,
                type_cc=payer.type_code,
                payor=payor,
                subscriber_id=f"{payer.prefix}{rng.randrange(10**8, 10**9)}",
                start=iso_date(p_start),
                payer_name=payer.name,
            )
            if closed is not None:
                cov["period"]["end"] = iso_date(closed - 1 if p_end is not None else closed)
                if closed <= self.ref:
                    cov["status"] = "cancelled" if p_end is not None else "active"
            ctx.add(cov)
            st.coverages.append((p_start, p_end if p_end is not None else 10**7, cov["id"], payer))

    # ------------------------------------------------------------------ visit parts

    def practice_no_show(self) -> float:
        """The practice's no-show rate (content).

        >>> 0 <= engine_for(seed=1, reference_date="2026-01-01", years=2, population="family-practice").practice_no_show() < 1
        True
        """
        return float(self.cat.practice.no_show_rate)

    def practice_cancel(self) -> float:
        """The practice's cancellation rate (content).

        >>> 0 <= engine_for(seed=1, reference_date="2026-01-01", years=2, population="family-practice").practice_cancel() < 1
        True
        """
        return float(self.cat.practice.cancel_rate)

    @lru_cache(maxsize=256)  # noqa: B019 - one engine per run, a handful of codes
    def icd_cc(self, code: str) -> dict[str, Any]:
        """A CodeableConcept for an ICD-10-CM code (the module's code when one uses it).

        >>> engine_for(seed=1, reference_date="2026-01-01", years=2, population="family-practice").icd_cc("Z00.00")["coding"][0]["code"]
        'Z00.00'
        """
        for c in self.cat.conditions.values():
            if c.icd10 == code:
                return c.code
        display = self._icd_display(code)
        return freeze(  # cached and shared: frozen (see synthetic.frozen)
            {
                "coding": [coding(ICD10CM, code, display)],
                "text": display,
            }
        )

    def _icd_display(self, code: str) -> str:
        return self.cat.extra.get("icd_display", {}).get(code, code)

    def visit_type_cc(
        self,
        v: Visit,
        st: PatientState,
        acute: ConditionDef | None,
        addressed: list[ConditionDef],
        wellness_fee: str | None,
    ) -> dict[str, Any]:
        """The visit's billing code (preventive, prenatal, condition or appointment-type code).

        >>> e = engine_for(seed=1, reference_date="2026-01-01", years=2, population="family-practice")
        >>> e.visit_type_cc(Visit(1, "acute"), PatientState(Profile()), None, [], None)["price"] > 0
        True
        """
        fees = self.cat.fees
        ref = None
        if v.wellness and wellness_fee in fees:
            ref = wellness_fee
        elif v.pregnancy and "procedure|PRENATAL" in fees:
            ref = "procedure|PRENATAL"
        else:
            for c in ([acute] if acute else []) + addressed:
                for code in c.visit_codes:
                    if code in fees:
                        ref = code
                        break
                if ref:
                    break
        if ref is None:
            t = self.types[self.appointment_type(v.kind)]
            ref = t.visit_code_new if st.first and t.visit_code_new else t.visit_code_established
        if ref is None or ref not in fees:
            ref = "procedure|OV-EST-3" if "procedure|OV-EST-3" in fees else next(iter(fees))
        if st.first and ref.startswith("procedure|OV-EST-"):
            alt = ref.replace("OV-EST-", "OV-NEW-")
            if alt in fees:
                ref = alt
        fee = fees[ref]
        return {"cc": fee.code, "code": fee.code, "price": fee.price}

    def prescribe(
        self,
        ctx: RecordContext,
        st: PatientState,
        drug: Any,
        day: int,
        requester: str,
        cond: ConditionDef,
        current: Any,
        reason: str | None,
        *,
        acute: bool = False,
    ) -> None:
        """Write a prescription (a renewal of ``current`` when given) and remember its supply.

        >>> e = engine_for(seed=1, reference_date="2026-01-01", years=2, population="family-practice")
        >>> callable(e.prescribe)
        True
        """
        supply = drug.days_supply * (1 + drug.refills)
        until = day + supply
        dxn = st.profile.diagnoses.get(cond.key)
        if not acute and dxn is not None and dxn.abatement is not None:
            until = min(until, max(day + 1, dxn.abatement))  # treatment ends with the condition
        prior = None
        if current is not None:
            current[0]["status"] = "completed"
            prior = f"MedicationRequest/{current[0]['id']}"
        mr = medications.prescription(
            ctx,
            drug,
            requester=requester,
            reason=reason,
            until=iso_date(until),
            prior=prior,
            security=cond.security,
        )
        ctx.out.append(mr)
        if not acute:
            st.rx[drug.key] = (mr, until, cond.key)
        elif until < self.ref:
            mr["status"] = "completed"

    def _settle_prescriptions(self, st: PatientState, end: int, deceased: bool) -> None:
        for mr, until, _ in st.rx.values():
            if mr["status"] != "active":
                continue
            if deceased:
                mr["status"] = "stopped"
            elif until < end:
                mr["status"] = "completed"

    def note_text(
        self,
        v: Visit,
        person: Any,
        age: float,
        addressed: list[ConditionDef],
        acute: ConditionDef | None,
        preg: ConditionDef | None,
        physician: str,
        meds: list[str],
        lab_keys: list[str],
    ) -> str:
        """The visit note's text from the conditions' templates and the visit's measures.

        >>> e = engine_for(seed=1, reference_date="2026-01-01", years=2, population="family-practice")
        >>> callable(e.note_text)
        True
        """
        clinician = self._clinicians.get(physician)
        if clinician is None:
            staff = self.practice.staff.get(physician.removeprefix("prac-"))
            clinician = (
                f"{staff.prefix} {staff.given} {staff.family}".strip() if staff else physician
            )
            self._clinicians[physician] = clinician
        name = f"{person.given} {person.family}"
        day = iso_date(v.day)
        parts = [
            f"{day} - {clinician}",
            f"Patient: {name}, {int(age)}-year-old {person.sex}.",
        ]
        if v.wellness:
            parts.append(
                "Preventive visit. History reviewed, age-appropriate screening and counselling done."
            )
        fields: _NoteFields | None = None  # built for the first template that needs it
        for c in ([acute] if acute else []) + addressed + ([preg] if preg else []):
            if not c.note_template:
                parts.append(f"Assessment: {c.display} ({c.icd10}).")
                continue
            template, own = self._note_templates.get(c.key) or self.note_template(c)
            if fields is None:
                fields = _NoteFields(
                    patient=name,
                    name=name,
                    first_name=person.given,
                    last_name=person.family,
                    age=str(int(age)),
                    sex=person.sex,
                    date=day,
                    clinician=clinician,
                    week=str(v.week),
                    reason=acute.reason if acute else "",
                    patient_name=name,
                    medications=", ".join(meds) if meds else "no medications",
                    labs=", ".join([self.cat.labs[k].display for k in lab_keys])
                    if lab_keys
                    else "none today",
                )
                # today's measures (and "control") are read on demand: a template names few
                last = fields.last = self.measures.last
                if not _NOTE_BASE_KEYS.isdisjoint(last):  # a measure named like a base field wins
                    for k in _NOTE_BASE_KEYS & last.keys():
                        fields[k] = str(last[k])
            if own:  # a template that could not be specialised takes the condition's fields
                fields.update(own)
            parts.append(render_template(template, fields))
        if v.specialty and not addressed and not acute:
            parts.append(f"{self.preset.specialty} visit. Examination documented in the chart.")
        return "\n".join(parts)

    def note_template(self, c: ConditionDef) -> tuple[str, dict[str, str]]:
        """The condition's note template with its own fields filled in, and the fields left.

        A condition's fields (``condition``, ``display``, ``icd10``, ``follow_up_months``) are
        the same at every visit and win over any other value of those names, so a template of
        plain ``{name}`` placeholders is filled with them once (see
        :func:`specialise_template`) and the fields left are empty; another template is kept
        as written with the fields to set before rendering it. One entry per condition.

        >>> e = engine_for(seed=1, reference_date="2026-01-01", years=2, population="family-practice")
        >>> c = next(c for c in e.cat.conditions.values() if "{follow_up_months}" in c.note_template)
        >>> t, own = e.note_template(c); "{follow_up_months}" in t, own
        (False, {})
        """
        hit = self._note_templates.get(c.key)
        if hit is None:
            own = {
                "condition": c.display,
                "display": c.display,
                "icd10": c.icd10,
                "follow_up_months": (
                    str(max(1, round(c.follow_up_days / 30.4))) if c.follow_up_days else "12"
                ),
            }
            template = specialise_template(c.note_template, own)
            hit = (c.note_template, own) if template is None else (template, {})
            if len(self._note_templates) < 4096:
                self._note_templates[c.key] = hit
        return hit

    # ------------------------------------------------------------------ after the reference date

    def renewal_instant(self, day: int) -> str:
        """When a renewal authorised between visits is signed (mid-afternoon, practice time).

        >>> engine_for(seed=1, reference_date="2026-01-01", years=2, population="family-practice").renewal_instant(739617)[11:16]
        '15:00'
        """
        return instant(day, 15 * 60, self.offset)

    def _plan_ahead(self, rng: Any, prof: Profile, pcp: str) -> list[AheadPlan]:
        """Appointments already booked after the reference date (drawn at planning time)."""
        ref = self.ref
        # this week: a share of patients is on the schedule between the reference date and
        # six days later (the reference date itself is "today" in the sandbox)
        x = rng.random()
        days: list[int] = []
        if x < 0.06:
            days.append(self.practice.open_day(ref))
        elif x < 0.16:
            days.append(self.practice.open_day(ref + 1 + rng.randrange(6)))
        if prof.diagnoses and rng.random() < 0.5:
            days.append(self.practice.open_day(ref + 7 + rng.randrange(90)))
        elif self.preset.wellness and rng.random() < 0.2:
            days.append(self.practice.open_day(ref + 7 + rng.randrange(180)))
        out: list[AheadPlan] = []
        kind = "follow-up" if prof.diagnoses else "wellness"
        tcode = self.appointment_type(kind)
        reason = None
        if prof.diagnoses:
            first = next(iter(prof.diagnoses.values())).condition
            reason = None if first.security is not None else first.display
        for d in days:
            out.append(
                AheadPlan(
                    d,
                    tcode,
                    self.types[tcode].minutes,
                    pcp,
                    rng.random(),
                    reason,
                    ref - 1 - rng.randrange(30),
                )
            )
        return out

    def _appointments_ahead(self, ctx: RecordContext, rng: Any, ahead: list[AheadPlan]) -> None:
        for a in ahead:
            placed = a.placed
            assert placed is not None
            slots = busy_slots(self, a.day, placed)
            ctx.out.extend(slots)
            apt = encounter.appointment(
                ctx,
                status="booked",
                start=instant(a.day, placed.minute, self.offset),
                end=instant(a.day, placed.minute + a.minutes, self.offset),
                minutes=a.minutes,
                type_cc=self.type_cc[a.tcode],
                practitioner=f"Practitioner/{placed.provider}",
                location=self.loc_ref,
                reason=a.reason,
                created=instant(a.created, 10 * 60, self.offset),
            )
            apt["slot"] = slot_refs(slots)
            ctx.add(apt)


@dataclass(slots=True)
class _Prepared:
    """A patient up to the schedule: the planning pass's output, then the build's input."""

    index: int
    rng: Any
    base: str
    sex: str
    birth: int
    start: int
    end: int
    death: int | None
    person: Any
    pcp: str
    st: PatientState
    plan: PatientPlan


class _NoteFields(dict):  # type: ignore[type-arg]
    """Placeholders of note templates: the fields set, then "control" and today's measures
    (``last``, converted on first use); unknown placeholders render as empty text."""

    last: dict[str, Any] = {}

    def __missing__(self, key: str) -> str:
        last = self.last
        if key == "control":
            sys_, dia = last.get("systolic"), last.get("diastolic")
            at_goal = sys_ is not None and sys_ < 140 and dia is not None and dia < 90
            return "at goal" if at_goal else "not at goal"
        val = last.get(key, _NO_VALUE)
        return "" if val is _NO_VALUE else str(val)


_NO_VALUE = object()
_FORMATTER = string.Formatter()
_TEMPLATES: dict[str, tuple[list[str], tuple[str, ...]] | None] = {}


def render_template(template: str, fields: Mapping[str, Any]) -> str:
    """``template.format_map(fields)``, or the template as written when a placeholder cannot
    be rendered (a positional field, a bad attribute or index, a stray brace).

    A template of plain ``{name}`` placeholders is split once (bounded cache: templates are
    content) and rendered by joining its texts and the formatted fields, which is what
    ``format_map`` does without parsing the template on every note.

    >>> render_template("BP {systolic}/{diastolic}, {{ok}}", {"systolic": 120, "diastolic": 80})
    'BP 120/80, {ok}'
    >>> render_template("{0}, {x.y}", {"x": 1})
    '{0}, {x.y}'
    """
    split = _TEMPLATES.get(template, _NO_VALUE)
    if split is _NO_VALUE:
        split = _split_template(template)
        if len(_TEMPLATES) < 4096:
            _TEMPLATES[template] = split
    if split is None:  # more than plain {name} placeholders
        try:
            return template.format_map(fields)
        except (ValueError, IndexError, AttributeError):
            return template
    texts, keys = split  # type: ignore[misc]
    out = [""] * (2 * len(keys) + 1)
    out[0::2] = texts
    out[1::2] = map(format, map(fields.__getitem__, keys))  # as format_map looks up and formats
    return "".join(out)


def specialise_template(template: str, values: Mapping[str, str]) -> str | None:
    """``template`` with the placeholders named in ``values`` replaced by them (as literal
    text), the other placeholders left; None when the template has more than plain ``{name}``
    placeholders (see :func:`render_template`), which is then rendered as written.

    ``render_template(specialise_template(t, values), fields)`` is
    ``render_template(t, fields | values)`` for every ``fields``.

    >>> t = specialise_template("{a} and {b}, {{c}}", {"a": "x{y}"}); t
    'x{{y}} and {b}, {{c}}'
    >>> render_template(t, {"b": 2})
    'x{y} and 2, {c}'
    >>> specialise_template("{a!r}", {"a": "x"}) is None
    True
    """
    split = _split_template(template)
    if split is None:
        return None
    texts, keys = split
    out = [_escape(texts[0])]
    for key, text in zip(keys, texts[1:], strict=True):
        value = values.get(key)
        out.append("{" + key + "}" if value is None else _escape(value))
        out.append(_escape(text))
    return "".join(out)


def _escape(text: str) -> str:
    """``text`` as literal text of a format string (braces doubled)."""
    return text.replace("{", "{{").replace("}", "}}")


def _split_template(template: str) -> tuple[list[str], tuple[str, ...]] | None:
    """The template's texts and the ``{name}`` placeholders between them; None when a
    placeholder has a format spec, a conversion or more than a name, or it does not parse."""
    texts: list[str] = []
    keys: list[str] = []
    text = ""
    try:  # the parser of str.format (doubled braces come back single)
        for literal, name, spec, conversion in _FORMATTER.parse(template):
            text += literal
            if name is None:
                continue
            if spec or conversion is not None or not name.isidentifier():
                return None
            texts.append(text)
            keys.append(name)
            text = ""
    except ValueError:
        return None
    texts.append(text)
    return texts, tuple(keys)


_NOTE_BASE_KEYS = frozenset(
    (
        "patient",
        "name",
        "first_name",
        "last_name",
        "age",
        "sex",
        "date",
        "clinician",
        "week",
        "reason",
        "patient_name",
        "medications",
        "labs",
    )
)


def engine_for(
    *,
    seed: int,
    reference_date: str,
    years: int,
    population: str,
    content: Any = None,
) -> Engine:
    """An engine for these arguments (``content=None``: the shipped content; then cached).

    >>> engine_for(seed=1, reference_date="2026-01-01", years=2, population="family-practice").ref
    739617
    """
    if content is None:
        from synthetic.content import load_content

        content = load_content()  # cached by the loader; a cleared cache gives a new version
    # content pickled to a worker arrives as a new object per partition: key on its version
    key = (
        seed,
        reference_date,
        years,
        population,
        getattr(content, "version", None) or id(content),
    )
    eng = _ENGINES.get(key)
    if eng is None:
        if len(_ENGINES) >= 8:
            _ENGINES.clear()
        eng = _ENGINES[key] = Engine(
            seed=seed,
            reference_day=parse_reference_date(reference_date),
            years=years,
            population=population,
            content=content,
        )
    return eng


_ENGINES: dict[tuple[Any, ...], Engine] = {}
