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
from functools import lru_cache
from typing import Any

from synthetic.builders import (
    billing,
    conditions,
    encounter,
    immunizations,
    labs,
    medications,
    notes,
    procedures,
    social,
    vitals,
)
from synthetic.builders.common import ENCOUNTER_DX, coding, qty
from synthetic.builders.patient import patient_resource
from synthetic.catalog import Catalog, ConditionDef, LabPanelDef
from synthetic.compile import compile_catalog
from synthetic.context import RecordContext
from synthetic.dates import (
    DAYS_PER_YEAR,
    instant,
    iso_date,
    parse_reference_date,
    weekday,
)
from synthetic.errors import ArgumentError
from synthetic.ids import patient_base
from synthetic.labels import CONF_R
from synthetic.labvalues import lab_values
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
from synthetic.timeline import Timeline, Visit, follow_up_days, poisson, wellness_days
from synthetic.vaccination import is_due, vaccine_windows

KIND_APPOINTMENT = {
    "wellness": ("CHECKUP", "ROUTINE"),
    "acute": ("WALKIN", "ROUTINE"),
    "diagnosis": ("ROUTINE", "FOLLOWUP"),
    "follow-up": ("FOLLOWUP", "ROUTINE"),
    "prenatal": ("PRENATAL", "ROUTINE", "FOLLOWUP"),
    "specialty": ("SPECIALTY", "ROUTINE", "FOLLOWUP"),
}
WELLNESS_CODES = (  # (age below, sandbox preventive code, ICD-10-CM reason)
    (1, "procedure|WELL-INFANT", "Z00.129"),
    (12, "procedure|WELL-CHILD", "Z00.129"),
    (18, "procedure|WELL-ADOL", "Z00.129"),
    (65, "procedure|WELL-ADULT", "Z00.00"),
    (999, "procedure|WELL-SENIOR", "Z00.00"),
)
ADULT_ATTENDANCE = 0.7
FOLLOW_UP_ATTENDANCE = 0.88


class _State:
    """What the engine remembers while walking one patient's visits."""

    __slots__ = (
        "profile",
        "cond_ids",
        "rx",
        "lab_days",
        "doses",
        "vaccine_last",
        "pregnancy_ids",
        "first",
        "conflicts",
    )

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self.cond_ids: dict[str, str] = {}
        self.rx: dict[str, tuple[dict[str, Any], int, str]] = {}
        self.lab_days: dict[str, int] = {}
        self.doses: dict[str, int] = {}
        self.vaccine_last: dict[str, int] = {}
        self.pregnancy_ids: dict[int, str] = {}
        self.first = True
        self.conflicts = profile.conflicts()


def _merge_security(
    a: tuple[dict[str, str], ...] | None, b: tuple[dict[str, str], ...] | None
) -> tuple[dict[str, str], ...] | None:
    if a is None:
        return b
    if b is None:
        return a
    codes: dict[str, dict[str, str]] = {}
    conf = a[0] if a[0]["code"] >= b[0]["code"] and a[0]["code"] != "N" else b[0]
    for s in a[1:] + b[1:]:
        codes[s["code"]] = s
    if conf["code"] not in ("R", "V"):
        conf = CONF_R
    return (conf, *(codes[k] for k in sorted(codes)))


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
        self.offset = self.practice.offset
        mods = [cat.conditions[k] for k in self.preset.modules]
        self.chronic = [m for m in mods if m.kind == "chronic"]
        self.acute = [m for m in mods if m.kind == "acute"]
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
        for m in self.chronic:
            if m.criterion and m.criterion[0] != "39156-5":
                self.criteria.setdefault(m.criterion[0], []).append((m.key, m.criterion[1]))
        p = cat.practice
        area = "".join(ch for ch in p.phone if ch.isdigit())[:3] or "555"
        self.pools = name_pools(p.state, area)
        self.window = int(years * DAYS_PER_YEAR)
        self.age_table = self.preset.ages
        self.types = cat.appointment_types
        self.type_cc: dict[str, dict[str, Any]] = {
            code: encounter.appointment_type_cc(code, t.display) for code, t in self.types.items()
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

    # ------------------------------------------------------------------ practice

    def practice_resources(self) -> list[dict[str, Any]]:
        """The shared practice resources (Organization, Location, staff, Schedule, Slot).

        >>> e = engine_for(seed=1, reference_date="2026-01-01", years=2, population="family-practice")
        >>> any(r["resourceType"] == "Slot" for r in e.practice_resources())
        True
        """
        return self.practice.resources()

    # ------------------------------------------------------------------ patient

    def _age_at_ref(self, rng: Any) -> float:
        x = rng.random() * sum(s for _, _, s in self.age_table)
        for lo, hi, share in self.age_table:
            x -= share
            if x < 0:
                return rng.uniform(lo, hi + 1)
        lo, hi, _ = self.age_table[-1]
        return rng.uniform(lo, hi + 1)

    def patient(self, index: int) -> PatientRecord:
        """Build patient ``index``'s complete record.

        >>> e = engine_for(seed=1, reference_date="2026-01-01", years=2, population="family-practice")
        >>> rec = e.patient(4)
        >>> rec.index, all(r["id"].startswith(rec.patient["id"]) for r in rec.resources)
        (4, True)
        """
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
        physicians = self.practice.physicians
        pcp = physicians[rng.randrange(len(physicians))]
        ctx = RecordContext(base, rng)
        mrn = f"MRN{index + 1:08d}"
        patient = patient_resource(
            base, person, mrn=mrn, physician_id=pcp, organization_id=self.practice.organization_id
        )

        self._lmp_days: list[tuple[int, str]] = []
        profile = self._profile(rng, sex, birth, start, end, age_end)
        st = _State(profile)
        timeline = self._timeline(rng, profile, sex, birth, start, end)
        visits = timeline.visits()

        # Coverage and allergies are part of the chart before the first visit.
        first_day = visits[0].day if visits else start
        cov_id, payer = self._coverage(ctx, rng, age_end, birth, start)
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
            self._visit(ctx, rng, st, v, person, pcp, birth, end, cov_id, payer)
        self._appointments_ahead(ctx, rng, st, profile, person, pcp, birth, death, visits)
        self._settle_prescriptions(st, end, death is not None)
        return PatientRecord(index, patient, ctx.out)

    # ------------------------------------------------------------------ profile and timeline

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
            avoid=prof.conflicts(),
        )
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

    def _timeline(
        self, rng: Any, prof: Profile, sex: str, birth: int, start: int, end: int
    ) -> Timeline:
        t = Timeline(start, end)
        od = self.practice.open_day
        if self.preset.wellness:
            for d in wellness_days(rng, birth, start, end, ADULT_ATTENDANCE):
                t.add(od(d), "wellness")
        for key, dx in prof.diagnoses.items():
            t.add(od(dx.onset), "diagnosis", new=(key,))
            for d in follow_up_days(
                rng, dx.onset, end, dx.condition.follow_up_days, FOLLOW_UP_ATTENDANCE
            ):
                t.add(od(d), "follow-up", conditions=(key,))
        mult = self.preset.multipliers
        y0 = start
        while y0 < end:
            span = min(365, end - y0)
            age = (y0 + span / 2 - birth) / DAYS_PER_YEAR
            frac = span / 365.0
            for m in self.acute:
                lam = m.rate(age, sex) * mult.get(m.key, 1.0) * m.visit_probability * frac
                for _ in range(poisson(rng, lam)):
                    t.add(od(y0 + rng.randrange(span)), "acute", acute=m.key)
            y0 += span
        if sex == "female":
            for m in self.pregnancy:
                self._pregnancies(rng, t, m, prof, birth, start, end)
        if self.preset.observations or self.preset.visit_procedures:
            day = start + rng.randrange(200)
            while day < end:
                if rng.random() < 0.85:
                    t.add(od(day), "specialty")
                day += 300 + rng.randrange(130)
        return t

    def _pregnancies(
        self,
        rng: Any,
        t: Timeline,
        m: ConditionDef,
        prof: Profile,
        birth: int,
        start: int,
        end: int,
    ) -> None:
        preg = m.pregnancy
        weeks = preg.duration_weeks
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
                if lmp - birth < 14 * DAYS_PER_YEAR:
                    day += 365
                    continue
                # conditions that only occur in pregnancy (gestational diabetes...) are found
                # at the 24-28 week screen and resolve at delivery
                delivery = lmp + weeks * 7
                age = (lmp - birth) / DAYS_PER_YEAR
                found: list[tuple[ConditionDef, int]] = []
                for c in self.pregnancy_conditions.get(m.key, ()):
                    if c.key not in prof.diagnoses and rng.random() < c.rate(
                        age, "female"
                    ) * self.preset.multipliers.get(c.key, 1.0):
                        found.append((c, 24 + rng.randrange(5)))
                for w in preg.visit_weeks:
                    vd = self.practice.open_day(lmp + 7 * w)
                    new = tuple(c.key for c, wk in found if wk <= w and c.key not in prof.diagnoses)
                    for c, _ in found:
                        if c.key in new:
                            drugs = choose_drugs(rng, c, prof.conflicts())
                            prof.diagnoses[c.key] = Diagnosis(c, vd, drugs, abatement=delivery)
                    ongoing = tuple(
                        c.key for c, _ in found if c.key in prof.diagnoses and c.key not in new
                    )
                    t.add(vd, "prenatal", pregnancy=m.key, week=w, conditions=ongoing, new=new)
                self._lmp_days.append((lmp, m.key))
                free_from = lmp + weeks * 7 + 180
            day += 365

    # ------------------------------------------------------------------ visits

    def _appointment_type(self, kind: str) -> str:
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

    def _coverage(
        self, ctx: RecordContext, rng: Any, age: float, birth: int, start: int
    ) -> tuple[str, Any]:
        eligible = [p for p in self.cat.payers if p.age_min <= age <= p.age_max + 1]
        payer = eligible[0] if eligible else self.cat.payers[0]
        x = rng.random() * sum(p.share for p in eligible) if eligible else 0
        for p in eligible:
            x -= p.share
            if x < 0:
                payer = p
                break
        payor = (
            ctx.subject["reference"]
            if payer.type == "self-pay"
            else f"Organization/{self.practice.payer_org[payer.key]}"
        )
        cov = billing.coverage(
            ctx,
            type_cc=payer.type_code,
            payor=payor,
            subscriber_id=f"{payer.prefix}{rng.randrange(10**8, 10**9)}",
            start=iso_date(max(start, birth)),
            payer_name=payer.name,
        )
        ctx.add(cov)
        return cov["id"], payer

    def _visit(
        self,
        ctx: RecordContext,
        rng: Any,
        st: _State,
        v: Visit,
        person: Any,
        pcp: str,
        birth: int,
        end: int,
        cov_id: str,
        payer: Any,
    ) -> None:
        cat = self.cat
        prof = st.profile
        day = v.day
        age = (day - birth) / DAYS_PER_YEAR
        slots = self.practice.slot_starts[weekday(day)] or [9 * 60]
        minute = slots[rng.randrange(len(slots))]
        tcode = self._appointment_type(v.kind)
        atype = self.types[tcode]
        minutes = atype.minutes
        start_s = instant(day, minute, self.offset)
        end_s = instant(day, min(minute + minutes, 24 * 60 - 1), self.offset)
        physician = (
            pcp
            if rng.random() < 0.85
            else self.practice.physicians[rng.randrange(len(self.practice.physicians))]
        )
        assistant = self.practice.assistants[rng.randrange(len(self.practice.assistants))]
        phys_ref, ma_ref = f"Practitioner/{physician}", f"Practitioner/{assistant}"

        # no-shows and cancellations of planned visits come before the visit that replaced them
        if v.kind != "acute" and not st.first:
            if rng.random() < self.practice_no_show():
                self._missed(ctx, rng, "noshow", day, pcp, tcode, birth)
            elif rng.random() < self.practice_cancel():
                self._missed(ctx, rng, "cancelled", day, pcp, tcode, birth)

        acute = cat.conditions[v.acute] if v.acute else None
        preg = cat.conditions[v.pregnancy] if v.pregnancy else None
        addressed: list[ConditionDef] = [cat.conditions[k] for k in v.conditions]
        security = None
        for c in addressed + ([acute] if acute else []) + ([preg] if preg else []):
            security = _merge_security(security, c.security)
        ctx.security = security
        reason_text = acute.reason if acute else (addressed[0].display if addressed else None)
        apt = encounter.appointment(
            ctx,
            status="fulfilled",
            start=start_s,
            end=end_s,
            minutes=minutes,
            type_cc=self.type_cc[tcode],
            practitioner=phys_ref,
            location=self.loc_ref,
            reason=None if security else reason_text,
        )
        ctx.add(apt)
        enc_id_preview = f"{ctx.base}-enc-{ctx.counters.get('enc', 0)}"
        ctx.encounter = {"reference": f"Encounter/{enc_id_preview}"}
        ctx.when = start_s
        ctx.day = day
        ctx.performer = [{"reference": ma_ref}]

        # diagnoses recorded at this visit (created before the encounter that cites them)
        body: list[dict[str, Any]] = []
        out_main = ctx.out
        ctx.out = body
        dx_refs: list[str] = []
        dx_codes: list[dict[str, Any]] = []
        for c in addressed:
            if c.key in v.new:
                dxn = prof.diagnoses.get(c.key)
                abated = dxn.abatement if dxn is not None else None
                cond = conditions.condition(
                    ctx,
                    code=c.code,
                    category=c.category,
                    onset=iso_date(day),
                    recorder=phys_ref,
                    security=c.security,
                    abatement=iso_date(abated) if abated is not None and abated < end else None,
                )
                body.append(cond)
                st.cond_ids[c.key] = cond["id"]
            cid = st.cond_ids.get(c.key)
            if cid:
                dx_refs.append(f"Condition/{cid}")
                dx_codes.append(c.code)
        acute_ref = None
        if acute is not None:
            lo, hi = acute.duration
            abate = day + rng.randint(max(1, lo), max(1, lo, hi))
            cond = conditions.condition(
                ctx,
                code=acute.code,
                category=ENCOUNTER_DX,
                onset=iso_date(day),
                recorder=phys_ref,
                security=acute.security,
                abatement=iso_date(abate) if abate < end else None,
            )
            body.append(cond)
            acute_ref = f"Condition/{cond['id']}"
            dx_refs.insert(0, acute_ref)
            dx_codes.insert(0, acute.code)
        if preg is not None:
            key = self._pregnancy_lmp(day)
            cid = st.pregnancy_ids.get(key)
            if cid is None:
                lmp_end = key + preg.pregnancy.duration_weeks * 7
                cond = conditions.condition(
                    ctx,
                    code=preg.code,
                    category=preg.category,
                    onset=iso_date(max(key, birth)),
                    recorder=phys_ref,
                    security=preg.security,
                    abatement=iso_date(lmp_end) if lmp_end < end else None,
                )
                body.append(cond)
                cid = st.pregnancy_ids[key] = cond["id"]
            dx_refs.append(f"Condition/{cid}")
            dx_codes.append(preg.code)
        reason_cc = None
        wellness_fee = None
        if v.wellness:
            for limit, fee, icd in WELLNESS_CODES:
                if age < limit:
                    wellness_fee = fee
                    reason_cc = self._icd_cc(icd)
                    break
        type_cc = self._visit_type_cc(v, st, acute, addressed, wellness_fee)
        enc = encounter.encounter(
            ctx,
            start=start_s,
            end=end_s,
            type_cc=type_cc["cc"],
            physician=phys_ref,
            assistant=ma_ref,
            organization=self.org_ref,
            location=self.loc_ref,
            diagnoses=dx_refs,
            reason=reason_cc,
            appointment=f"Appointment/{apt['id']}",
        )
        ctx.out = out_main
        ctx.add(enc)
        ctx.out.extend(body)

        lines: list[billing.ClaimLine] = []
        all_ptrs = tuple(range(1, len(dx_codes) + (2 if reason_cc else 1)))
        claim_dx = ([reason_cc] if reason_cc else []) + dx_codes
        if not claim_dx:
            claim_dx = [self._icd_cc("Z00.00" if age >= 18 else "Z00.129")]
            all_ptrs = (1,)
        lines.append(billing.ClaimLine(type_cc["code"], type_cc["price"], all_ptrs[:4]))

        # vitals for everyone at every visit
        ctx.security = None
        effects = self.measures.record(ctx, rng, prof, v.day, person.sex, age, acute)
        if v.wellness or st.first:
            self._social(ctx, st, age)
        # specialty and condition observations
        for c in addressed:
            for loinc in c.observations:
                self._extra_observation(ctx, rng, st, loinc, age, person.sex, effects)
        if v.specialty or (self.preset.observations and not v.wellness):
            for loinc in self.preset.observations:
                self._extra_observation(ctx, rng, st, loinc, age, person.sex, effects)
        if preg is not None:
            self._prenatal_observations(ctx, rng, preg, v.week)

        # labs
        panels: list[tuple[str, ConditionDef | None, bool]] = []
        for c in addressed:
            if c.key in v.new:
                panels.extend((p, c, True) for p in c.diagnosis_labs)
            elif (
                day - st.lab_days.get(c.follow_up_labs[0] if c.follow_up_labs else "", -(10**6))
                > 80
            ):
                panels.extend((p, c, False) for p in c.follow_up_labs)
        if acute is not None:
            panels.extend((p, acute, True) for p in acute.acute_labs)
        if preg is not None:
            for p in preg.pregnancy.labs_by_week.get(str(v.week), ()):
                panels.append((p, preg, True))
        if v.wellness and age >= 20:
            for key, every in (("lipid", 5), ("cmp", 3), ("cbc", 3), ("a1c", 3)):
                due = (
                    key in self.wellness_labs and day - st.lab_days.get(key, -(10**6)) > every * 365
                )
                if due and (key != "a1c" or age >= 35):
                    panels.append((key, None, False))
        done: set[str] = set()
        collected = False
        for key, cond, ordered_for in panels:
            if key in done or key not in cat.labs:
                continue
            done.add(key)
            panel = cat.labs[key]
            values = self._lab_values(
                rng, st, panel, v, age, person.sex, cond if ordered_for else None
            )
            sec = cond.security if cond is not None else None
            labs.lab_order(
                ctx,
                panel,
                values,
                requester=phys_ref,
                collector=ma_ref,
                offset=self.offset,
                sex=person.sex,
                security=sec,
                last_day=end - 1 if end - 1 >= day else day,
            )
            st.lab_days[key] = day
            if (
                panel.procedure
                and panel.procedure in cat.fees
                and not collected
                and panel.collection == "venipuncture"
            ):
                collected = True
                fee = cat.fees[panel.procedure]
                ctx.add(procedures.procedure(ctx, code=fee.code, performer=ma_ref, reason=None))
                lines.append(billing.ClaimLine(fee.code, fee.price, (1,)))
            elif (
                panel.procedure
                and panel.procedure in cat.fees
                and panel.collection != "venipuncture"
            ):
                fee = cat.fees[panel.procedure]
                lines.append(billing.ClaimLine(fee.code, fee.price, (1,)))

        # procedures and in-office drugs
        proc_refs: list[tuple[str, ConditionDef | None]] = []
        for c in addressed:
            if c.key in v.new or rng.random() < 0.25:
                proc_refs.extend((p, c) for p in c.procedures)
        if acute is not None:
            proc_refs.extend((p, acute) for p in acute.procedures)
        if v.specialty:
            proc_refs.extend((p, None) for p in self.preset.visit_procedures)
        seen_p: set[str] = set()
        for ref, cond in proc_refs:
            if ref in seen_p or ref not in cat.fees:
                continue
            seen_p.add(ref)
            fee = cat.fees[ref]
            reason = (
                f"Condition/{st.cond_ids[cond.key]}"
                if cond is not None and cond.key in st.cond_ids
                else None
            )
            sec = cond.security if cond is not None else None
            if ref.startswith("hcpcs|J"):
                ctx.add(
                    medications.administration(
                        ctx, code=fee.code, performer=ma_ref, reason=reason, security=sec
                    )
                )
            else:
                ctx.add(
                    procedures.procedure(
                        ctx, code=fee.code, performer=phys_ref, reason=reason, security=sec
                    )
                )
            ptr = claim_dx.index(cond.code) + 1 if cond is not None and cond.code in claim_dx else 1
            lines.append(billing.ClaimLine(fee.code, fee.price, (ptr,)))

        # prescriptions: new, renewed, acute courses
        conflicts = st.conflicts
        for c in addressed:
            dxs = prof.diagnoses.get(c.key)
            if dxs is None:
                continue
            for drug in dxs.drugs:
                current = st.rx.get(drug.key)
                if (
                    current is None
                    and c.key in v.new
                    or current is not None
                    and day >= current[1] - 30
                ):
                    reason = f"Condition/{st.cond_ids[c.key]}" if c.key in st.cond_ids else None
                    self._prescribe(ctx, st, drug, day, phys_ref, c, current, reason)
        if acute is not None:
            for group in acute.drug_groups:
                x = rng.random()
                for d in group:
                    x -= d.probability
                    if x < 0:
                        if d.key not in conflicts:
                            self._prescribe(
                                ctx, st, d, day, phys_ref, acute, None, acute_ref, acute=True
                            )
                        break
            for d in acute.drug_singles:
                if rng.random() < d.probability and d.key not in conflicts:
                    self._prescribe(ctx, st, d, day, phys_ref, acute, None, acute_ref, acute=True)

        # immunizations
        if self.preset.immunizations:
            given = self._immunize(ctx, rng, st, v, day, birth, person.sex, ma_ref)
            for i, fee_ref in enumerate(given):
                ref = fee_ref
                if i > 0 and "procedure|IMM-ADMIN-ADD" in cat.fees and ref == "procedure|IMM-ADMIN":
                    ref = "procedure|IMM-ADMIN-ADD"
                if ref in cat.fees:
                    fee = cat.fees[ref]
                    lines.append(billing.ClaimLine(fee.code, fee.price, (1,)))

        # the note, the claim and (when the payer has paid by the reference date) its response
        ctx.security = security
        meds = sorted(
            {
                d.display
                for c in addressed
                if c.key in prof.diagnoses
                for d in prof.diagnoses[c.key].drugs
            }
        )
        text = self._note_text(
            v, person, age, addressed, acute, preg, physician, meds, sorted(done)
        )
        ctx.add(
            notes.note(
                ctx,
                text=text,
                title=f"{atype.display} note",
                author=phys_ref,
                custodian=self.org_ref,
                period_end=end_s,
                security=security,
            )
        )
        insurer = (
            None
            if payer.type == "self-pay"
            else f"Organization/{self.practice.payer_org[payer.key]}"
        )
        claim = billing.claim(
            ctx,
            lines=lines,
            diagnoses=claim_dx,
            created=iso_date(day),
            coverage=f"Coverage/{cov_id}",
            provider=self.org_ref,
            insurer=insurer,
            security=security,
        )
        ctx.add(claim)
        if insurer is not None and day + payer.lag_days < end:
            ctx.add(
                billing.claim_response(
                    ctx,
                    claim,
                    created=iso_date(day + payer.lag_days),
                    insurer=insurer,
                    requestor=self.org_ref,
                    allowed_ratio=payer.allowed_ratio,
                    copay=payer.copay,
                    deductible_share=payer.deductible_share,
                    security=security,
                )
            )
        ctx.security = None
        st.first = False

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

    def _missed(
        self, ctx: RecordContext, rng: Any, status: str, day: int, pcp: str, tcode: str, birth: int
    ) -> None:
        missed = self.practice.open_day(day - 7 - rng.randrange(21))
        if missed >= day or missed <= birth:
            return
        slots = self.practice.slot_starts[weekday(missed)] or [9 * 60]
        minute = slots[rng.randrange(len(slots))]
        minutes = self.types[tcode].minutes
        ctx.add(
            encounter.appointment(
                ctx,
                status=status,
                start=instant(missed, minute, self.offset),
                end=instant(missed, min(minute + minutes, 24 * 60 - 1), self.offset),
                minutes=minutes,
                type_cc=self.type_cc[tcode],
                practitioner=f"Practitioner/{pcp}",
                location=self.loc_ref,
                reason=None,
            )
        )

    @lru_cache(maxsize=256)  # noqa: B019 - one engine per run, a handful of codes
    def _icd_cc(self, code: str) -> dict[str, Any]:
        for c in self.cat.conditions.values():
            if c.icd10 == code:
                return c.code
        display = self._icd_display(code)
        return {
            "coding": [coding("http://hl7.org/fhir/sid/icd-10-cm", code, display)],
            "text": display,
        }

    def _icd_display(self, code: str) -> str:
        return self.cat.extra.get("icd_display", {}).get(code, code)

    def _visit_type_cc(
        self,
        v: Visit,
        st: _State,
        acute: ConditionDef | None,
        addressed: list[ConditionDef],
        wellness_fee: str | None,
    ) -> dict[str, Any]:
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
            t = self.types[self._appointment_type(v.kind)]
            ref = t.visit_code_new if st.first and t.visit_code_new else t.visit_code_established
        if ref is None or ref not in fees:
            ref = "procedure|OV-EST-3" if "procedure|OV-EST-3" in fees else next(iter(fees))
        if st.first and ref.startswith("procedure|OV-EST-"):
            alt = ref.replace("OV-EST-", "OV-NEW-")
            if alt in fees:
                ref = alt
        fee = fees[ref]
        return {"cc": fee.code, "code": fee.code, "price": fee.price}

    def _social(self, ctx: RecordContext, st: _State, age: float) -> None:
        prof = st.profile
        if prof.smoking and self.smoking_code and age >= self.social.smoking_min_age:
            answer = self.cat.snomed.get(prof.smoking)
            if answer is not None:
                ctx.add(social.smoking_status(ctx, code=self.smoking_code, answer=answer))
        if (
            prof.alcohol_score is not None
            and self.alcohol_code
            and age >= self.social.alcohol_min_age
        ):
            ctx.add(
                social.score(ctx, code=self.alcohol_code, value=prof.alcohol_score, survey=False)
            )

    def _extra_observation(
        self,
        ctx: RecordContext,
        rng: Any,
        st: _State,
        loinc: str,
        age: float,
        sex: str,
        effects: dict[str, list[Any]],
    ) -> None:
        code = self.cat.observation_codes.get(loinc)
        if code is None:
            return
        vd = self.cat.vitals.get(loinc) or self.cat.observations.get(loinc)
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
        val = self.measures.draw(rng, vd, age, sex, effects, None)
        if val is not None:
            ctx.add(vitals.exam_observation(ctx, code, qty(val, vd.unit)))

    def _prenatal_observations(
        self, ctx: RecordContext, rng: Any, preg: ConditionDef, week: int
    ) -> None:
        p = preg.pregnancy
        oc = self.cat.observation_codes
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

    def _lab_values(
        self,
        rng: Any,
        st: _State,
        panel: LabPanelDef,
        v: Visit,
        age: float,
        sex: str,
        ordered_for: ConditionDef | None,
    ) -> list[Any]:
        return lab_values(
            rng,
            st.profile,
            panel,
            day=v.day,
            age=age,
            sex=sex,
            ordered_for=ordered_for,
            criteria=self.criteria,
        )

    def _prescribe(
        self,
        ctx: RecordContext,
        st: _State,
        drug: Any,
        day: int,
        requester: str,
        cond: ConditionDef,
        current: Any,
        reason: str | None,
        *,
        acute: bool = False,
    ) -> None:
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
        ctx.add(mr)
        if not acute:
            st.rx[drug.key] = (mr, until, cond.key)
        elif until < self.ref:
            mr["status"] = "completed"

    def _settle_prescriptions(self, st: _State, end: int, deceased: bool) -> None:
        for mr, until, _ in st.rx.values():
            if mr["status"] != "active":
                continue
            if deceased:
                mr["status"] = "stopped"
            elif until < end:
                mr["status"] = "completed"

    def _immunize(
        self,
        ctx: RecordContext,
        rng: Any,
        st: _State,
        v: Visit,
        day: int,
        birth: int,
        sex: str,
        performer: str,
    ) -> list[str]:
        fees: list[str] = []
        age_days = day - birth
        for vac, lo, hi in self.vaccine_windows:
            if not lo <= age_days <= hi or vac.sex not in ("any", sex):
                continue
            n = st.doses.get(vac.key, 0)
            due = is_due(
                rng,
                vac,
                n,
                st.vaccine_last.get(vac.key),
                day=day,
                age_days=age_days,
                wellness=v.wellness,
            )
            if not due:
                continue
            # each due dose is given at this opportunity with the content's coverage; the rest
            # are gaps (the dose may still be caught up at a later visit)
            if rng.random() >= vac.coverage:
                if vac.repeat_days:
                    st.vaccine_last[vac.key] = day  # skipped this season
                continue
            ctx.add(
                immunizations.immunization(
                    ctx,
                    code=vac.code,
                    route=vac.route,
                    site=vac.site,
                    performer=performer,
                    dose_number=n + 1,
                )
            )
            st.doses[vac.key] = n + 1
            st.vaccine_last[vac.key] = day
            fees.append(vac.admin_code)
        return fees

    def _note_text(
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
        staff = self.practice.staff.get(physician.removeprefix("prac-"))
        clinician = f"{staff.prefix} {staff.given} {staff.family}".strip() if staff else physician
        fields = _NoteFields(
            patient=f"{person.given} {person.family}",
            name=f"{person.given} {person.family}",
            first_name=person.given,
            last_name=person.family,
            age=str(int(age)),
            sex=person.sex,
            date=iso_date(v.day),
            clinician=clinician,
            week=str(v.week),
            reason=acute.reason if acute else "",
            patient_name=f"{person.given} {person.family}",
            medications=", ".join(meds) if meds else "no medications",
            labs=", ".join(self.cat.labs[k].display for k in lab_keys)
            if lab_keys
            else "none today",
        )
        for k, val in self.measures.last.items():
            fields[k] = str(val)
        sys_, dia = self.measures.last.get("systolic"), self.measures.last.get("diastolic")
        fields["control"] = (
            "at goal"
            if sys_ is not None and sys_ < 140 and dia is not None and dia < 90
            else "not at goal"
        )
        parts = [
            f"{iso_date(v.day)} - {clinician}",
            f"Patient: {fields['patient']}, {int(age)}-year-old {person.sex}.",
        ]
        if v.wellness:
            parts.append(
                "Preventive visit. History reviewed, age-appropriate screening and counselling done."
            )
        for c in ([acute] if acute else []) + addressed + ([preg] if preg else []):
            fields["condition"] = c.display
            fields["display"] = c.display
            fields["icd10"] = c.icd10
            fields["follow_up_months"] = (
                str(max(1, round(c.follow_up_days / 30.4))) if c.follow_up_days else "12"
            )
            if c.note_template:
                try:
                    parts.append(c.note_template.format_map(fields))
                except (ValueError, IndexError, AttributeError):
                    parts.append(c.note_template)
            else:
                parts.append(f"Assessment: {c.display} ({c.icd10}).")
        if v.specialty and not addressed and not acute:
            parts.append(f"{self.preset.specialty} visit. Examination documented in the chart.")
        return "\n".join(parts)

    # ------------------------------------------------------------------ after the reference date

    def _pregnancy_lmp(self, day: int) -> int:
        best = None
        for lmp, _ in self._lmp_days:
            if lmp <= day and (best is None or lmp > best):
                best = lmp
        return best if best is not None else day

    def _appointments_ahead(
        self,
        ctx: RecordContext,
        rng: Any,
        st: _State,
        prof: Profile,
        person: Any,
        pcp: str,
        birth: int,
        death: int | None,
        visits: list[Visit],
    ) -> None:
        if death is not None:
            return
        ref = self.ref
        # this week: a share of patients is on the schedule between the reference date and
        # six days later (the reference date itself is "today" in the sandbox)
        x = rng.random()
        days: list[tuple[int, str]] = []
        if x < 0.06:
            days.append((ref, "booked"))
        elif x < 0.16:
            d = self.practice.open_day(ref + 1 + rng.randrange(6))
            days.append((d, "booked"))
        if prof.diagnoses and rng.random() < 0.5:
            days.append((self.practice.open_day(ref + 7 + rng.randrange(90)), "booked"))
        elif self.preset.wellness and rng.random() < 0.2:
            days.append((self.practice.open_day(ref + 7 + rng.randrange(180)), "booked"))
        for d, status in days:
            kind = "follow-up" if prof.diagnoses else "wellness"
            tcode = self._appointment_type(kind)
            slots = self.practice.slot_starts[weekday(d)] or [9 * 60]
            minute = slots[rng.randrange(len(slots))]
            minutes = self.types[tcode].minutes
            reason = None
            sens = False
            if prof.diagnoses:
                first = next(iter(prof.diagnoses.values())).condition
                reason, sens = first.display, first.security is not None
            ctx.add(
                encounter.appointment(
                    ctx,
                    status=status,
                    start=instant(d, minute, self.offset),
                    end=instant(d, min(minute + minutes, 24 * 60 - 1), self.offset),
                    minutes=minutes,
                    type_cc=self.type_cc[tcode],
                    practitioner=f"Practitioner/{pcp}",
                    location=self.loc_ref,
                    reason=None if sens else reason,
                    created=instant(ref - 1 - rng.randrange(30), 10 * 60, self.offset),
                )
            )


class _NoteFields(dict):  # type: ignore[type-arg]
    """Placeholders of note templates; unknown placeholders render as empty text."""

    def __missing__(self, key: str) -> str:
        return ""


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
